"""The MLflow UI in a real browser: a real ``mlflow server`` on 127.0.0.1 over a small real
sweep's SQLite store, the experiment URL the sweep printed opened in headless Chromium
(Debian's ``chromium``; skipped cleanly only when /usr/bin/chromium is absent): the page is the
sweep's saved view of the runs table, the parent run first, its children by name with their
verdicts, the objective a column; the parent's page shows the answer; the screenshot is kept in
the test's tmp dir."""

from __future__ import annotations

import html
import re
import subprocess
from pathlib import Path

import matplotlib.image as mpimg
import pyarrow.parquet as pq
import pytest

from tests.orchestrator.mlflow_server import MlflowServer
from tests.orchestrator.ui_sweep import NAMES, pty_sweep
from tests.shared_run import shared_dir

CHROMIUM = Path("/usr/bin/chromium")
FLAGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--window-size=1600,900",
]  # fmt: skip
#: virtual time for the React app to fetch the runs and draw the table
BUDGET = "--virtual-time-budget=20000"
ESCAPES = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        not CHROMIUM.exists(), reason="needs /usr/bin/chromium (apt-get install -y chromium)"
    ),
]


def _chromium(profile: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """Headless Chromium with a fresh profile (the UI's per-browser settings start empty)."""
    profile.mkdir(parents=True, exist_ok=True)
    return subprocess.run(
        [str(CHROMIUM), *FLAGS, f"--user-data-dir={profile}", *args],
        capture_output=True, text=True, timeout=180, check=False,
    )  # fmt: skip


def _page(tmp_path: Path, url: str, tag: str) -> tuple[str, str]:
    """(title, visible text) of ``url`` once the React app has rendered."""
    result = _chromium(
        tmp_path / f"profile-{tag}", "--virtual-time-budget=20000", "--dump-dom", url
    )
    dom = result.stdout
    title = html.unescape(m.group(1)) if (m := re.search(r"<title>(.*?)</title>", dom)) else ""
    dom = re.sub(r"<(script|style)[^>]*>.*?</\1>", " ", dom, flags=re.S)
    text = html.unescape(re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", dom)))
    return title, text


@pytest.fixture(scope="module")
def sweep(fake_env: dict[str, str], tmp_path_factory: pytest.TempPathFactory):
    done = pty_sweep(fake_env, shared_dir(tmp_path_factory))
    assert done.returncode == 0, ESCAPES.sub("", done.output)[-3000:]
    return done


def test_printed_url_opens_the_runs_table_with_parent_and_named_children(
    sweep, tmp_path: Path
) -> None:
    """The printed URL names the sweep's saved view: the UI opens it (MLflow says so), filters
    the runs to this sweep, orders them by verdict with the parent first, and shows the verdict
    and the objective as columns (the other 47 hidden)."""
    printed = re.search(r"then open (http://\S+)", ESCAPES.sub("", sweep.output))
    assert printed, "the sweep did not print the experiment's URL"
    meta = sweep.meta
    assert f"viewStateShareKey={meta['sweep_id']}" in printed.group(1)
    # each trial's configuration: its child run's name (no seed varies here)
    rows = pq.read_table(sweep.directory / "results" / "ui" / "trials.parquet").to_pylist()
    assert sorted(row["configuration"] for row in rows) == sorted(NAMES)
    with MlflowServer(meta["tracking_uri"], tmp_path) as server:
        url = printed.group(1).replace("http://127.0.0.1:5000", server.url)
        assert f"/#/experiments/{meta['experiment_id']}/runs?" in url
        title, text = _page(tmp_path, url, "printed")
        assert title.startswith("Runs - Experiment"), (title, text[:2000])
        assert "You're viewing a shared view" in text, text[:3000]
        assert "Sort: verdict" in text, text[:3000]
        assert "Run Name" in text and "5 matching runs" in text, text[:3000]  # parent + 4
        # the columns: the objective (a metric) and the verdict (a tag), in that order
        assert re.search(r"Metrics Tags Duration test_error verdict", text), text[:3000]
        # the rows: the parent first, then the baseline, then the other three
        names = re.findall(r"#[0-9a-f]{6} (.+?) (?:\d+|a|an) (?:second|minute|hour)s? ago", text)
        assert names[0] == "ui", names
        assert names[1] == "fixed<8,3> lr=0.1", names  # the baseline sorts before inconclusive
        assert sorted(names[1:]) == sorted(NAMES), names
        verdicts = re.findall(r"answer: \S+|baseline|inconclusive|equivalent|better|worse", text)
        assert verdicts[0].startswith("answer: ") and verdicts[1] == "baseline", verdicts

        # the parent run's page: the description holds the answer's sentence
        page = f"{server.url}/#/experiments/{meta['experiment_id']}/runs/{meta['parent_run_id']}"
        _, text = _page(tmp_path, page, "parent")
        assert "Verdicts against the baseline" in text, text[:3000]
        assert "fixed<8,3> lr=0.1" in text, text[:3000]

        # the experiment's own address, in Model training: the runs table, not the traces
        # overview (whose page title MLflow 3.17 makes "Overview - Experiment ...")
        plain = f"{server.url}/#/experiments/{meta['experiment_id']}?workflowType=machine_learning"
        title, text = _page(tmp_path, plain, "plain")
        assert title.startswith("Runs - Experiment") and "5 matching runs" in text, title

        shot = tmp_path / "mlflow_runs_table.png"
        _chromium(
            tmp_path / "profile-shot", "--virtual-time-budget=20000", f"--screenshot={shot}", url
        )
    assert shot.is_file()
    image = mpimg.imread(shot)[..., :3]
    assert image.shape[:2] == (900, 1600)
    assert (image < 0.9).any(axis=2).mean() > 0.02  # text and table drawn, not a blank page
