"""index.html renders in a real browser with all its images: headless Chromium (Debian's
``chromium`` package; skipped cleanly when /usr/bin/chromium is absent)."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import matplotlib.image as mpimg
import numpy as np
import pytest

from analysis.report import write_report

CHROMIUM = Path("/usr/bin/chromium")
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
#: after the load event, record each image's decoded width (0 when it failed to load)
PROBE = (
    '<script>window.addEventListener("load", () => { for (const img of document.images) '
    '{ img.setAttribute("data-natural-width", img.naturalWidth); } '
    'document.body.setAttribute("data-probed", "1"); });</script>'
)

pytestmark = pytest.mark.skipif(
    not CHROMIUM.exists(), reason="needs /usr/bin/chromium (apt-get install -y chromium)"
)


def _chromium(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    profile = tmp_path / "profile"
    profile.mkdir(exist_ok=True)
    return subprocess.run(
        [str(CHROMIUM), *FLAGS, f"--user-data-dir={profile}", *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.fixture(scope="module")
def report_dir(classifier_sweep, tmp_path_factory):
    return write_report(classifier_sweep, out_dir=tmp_path_factory.mktemp("browser") / "r").dir


def test_every_img_src_exists(report_dir):
    sources = re.findall(r'<img src="([^"]+)"', (report_dir / "index.html").read_text())
    assert len(sources) >= 4
    for source in sources:
        assert (report_dir / source).is_file(), source


def test_index_html_screenshot_is_not_blank(report_dir, tmp_path):
    shot = tmp_path / "shot.png"
    result = _chromium(
        tmp_path,
        f"--screenshot={shot}",
        "--window-size=1200,2000",
        (report_dir / "index.html").as_uri(),
    )
    assert shot.is_file(), result.stderr[-2000:]
    image = mpimg.imread(shot)[..., :3]
    assert image.shape[:2] == (2000, 1200)
    not_white = (image < 0.95).any(axis=2).mean()
    assert not_white > 0.05, f"only {not_white:.1%} of the screenshot is not white"
    assert float(np.std(image)) > 0.05


def test_images_decode_in_the_browser(report_dir, tmp_path):
    page = tmp_path / "r"
    shutil.copytree(report_dir, page)
    probe = page / "probe.html"
    probe.write_text((page / "index.html").read_text().replace("</body>", PROBE + "</body>"))
    result = _chromium(tmp_path, "--dump-dom", probe.as_uri())
    assert 'data-probed="1"' in result.stdout, result.stderr[-2000:]
    widths = re.findall(r'<img src="([^"]+)"[^>]*data-natural-width="(\d+)"', result.stdout)
    sources = re.findall(r'<img src="([^"]+)"', (page / "index.html").read_text())
    assert sorted(s for s, _ in widths) == sorted(sources)
    assert all(int(w) > 100 for _, w in widths), widths


def test_the_answer_is_the_first_thing_the_page_says(classifier_sweep, report_dir, tmp_path):
    """The sentence of ``python -m analysis.answer`` (the same figures), above every figure."""
    import html

    from analysis.answer import compute_answer

    sentence = compute_answer(classifier_sweep).sentence
    result = _chromium(tmp_path, "--dump-dom", (report_dir / "index.html").as_uri())
    dom = result.stdout
    body = dom[dom.index("<body") :]
    text = html.unescape(re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", body)))
    assert sentence in text, (sentence, text[:2000])
    assert body.index("<img") > body.index(html.escape(sentence, quote=False)[:40])
