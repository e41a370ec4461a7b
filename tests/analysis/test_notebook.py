"""The notebook: its jupytext pair is in sync; it runs as shipped (default ``results/bits``,
the default sweep's directory) and on other sweep directories under papermill, showing the
answer (the same sentence as ``analysis.answer``), the front tables and the figures."""

from __future__ import annotations

import shutil
from pathlib import Path

import jupytext
import nbformat
import pytest

NOTEBOOK = Path(__file__).resolve().parents[2] / "analysis" / "notebooks" / "pareto.ipynb"
PAIRED = NOTEBOOK.with_suffix(".py")


def _cells(notebook: nbformat.NotebookNode) -> list[tuple[str, str]]:
    return [(c.cell_type, c.source.strip()) for c in notebook.cells]


def test_ipynb_and_py_are_in_sync():
    ipynb = jupytext.read(NOTEBOOK)
    py = jupytext.read(PAIRED)
    assert _cells(ipynb) == _cells(py), "run: jupytext --sync analysis/notebooks/pareto.ipynb"
    assert ipynb.metadata["jupytext"]["formats"] == "ipynb,py:percent"


def test_parameters_cell_holds_results_dir():
    cells = [c for c in jupytext.read(NOTEBOOK).cells if "parameters" in c.metadata.get("tags", [])]
    assert len(cells) == 1
    assert 'results_dir = "results/bits"' in cells[0].source  # the default sweep's results


def _execute(results_dir: Path | None, out: Path) -> nbformat.NotebookNode:
    """Run the notebook with papermill in ``out``'s folder; ``results_dir`` None: as shipped."""
    papermill = pytest.importorskip("papermill")
    parameters = {"resamples": 500}
    if results_dir is not None:
        parameters["results_dir"] = str(results_dir)
    papermill.execute_notebook(
        str(NOTEBOOK),
        str(out),
        parameters=parameters,
        kernel_name="python3",
        progress_bar=False,
        cwd=str(out.parent),
    )
    return nbformat.read(out, as_version=4)


def _outputs(notebook: nbformat.NotebookNode) -> tuple[str, int]:
    text, images = [], 0
    for cell in notebook.cells:
        for output in cell.get("outputs", []):
            assert output.output_type != "error", output
            data = output.get("data", {})
            images += "image/png" in data
            text.append(
                output.get("text", "") + data.get("text/plain", "") + data.get("text/html", "")
            )
    return "\n".join(text), images


def test_notebook_runs_as_shipped_on_the_default_sweeps_results(storage_sweep, tmp_path):
    """No parameters: it reads results/bits (what `make sweep` writes) and shows the same answer
    as `python -m analysis.answer results/bits`."""
    from analysis.answer import compute_answer

    shutil.copytree(storage_sweep, tmp_path / "results" / "bits")
    text, images = _outputs(_execute(None, tmp_path / "out.ipynb"))
    answer = compute_answer(tmp_path / "results" / "bits", resamples=500)
    assert answer.sentence in text
    assert "equivalent" in text and "front prob." in text  # the verdict table
    assert images >= 5  # the answer's figure, error/NLL/ECE against bits, reliability


def test_notebook_as_shipped_without_a_sweep_says_what_to_run(tmp_path):
    text, images = _outputs(_execute(None, tmp_path / "out.ipynb"))
    assert "no sweep at results/bits: run `make sweep`" in text
    assert images == 0


def test_notebook_executes_on_a_classifier_sweep(classifier_sweep, tmp_path):
    text, images = _outputs(_execute(classifier_sweep, tmp_path / "out.ipynb"))
    assert "sweep bits: 56 trials" in text
    assert "knee" in text and "hypervolume:" in text
    assert "against fp32 full" in text  # the answer's sentence
    assert "simulated failure" in text  # the failed trial is listed
    assert images >= 4  # error, NLL, ECE against bits and the reliability diagrams
    assert "np.float64" not in text  # numbers print as numbers, not as numpy reprs
    assert "reference point: {'test_error': " in text


def test_notebook_executes_on_a_gaussian_sweep(gaussian_sweep, tmp_path):
    text, images = _outputs(_execute(gaussian_sweep, tmp_path / "out.ipynb"))
    assert "objectives {'w2': 'min', 'bits': 'min'}" in text
    assert images >= 2  # w2 against bits and the sample histograms


def test_notebook_executes_when_no_trial_is_ok(failed_sweep, tmp_path):
    """Every trial failed or diverged and trials.parquet has no metric columns."""
    text, images = _outputs(_execute(failed_sweep, tmp_path / "out.ipynb"))
    assert "sweep broken: 4 trials" in text
    assert "RuntimeError: no block kernel" in text and "non-finite loss" in text
    assert "no ok trial" in text
    assert images == 0
