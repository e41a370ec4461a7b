"""numba's on-disk cache keyed by every kernel source (lowprec/kernels/numba/jit.py): an edit to
a helper file removes the cached kernels of the files that inline it; nothing else does."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from lowprec.kernels.numba import jit


def _tree(tmp_path: Path) -> tuple[list[Path], Path]:
    sources = [tmp_path / "grid.py", tmp_path / "quantize.py"]
    for path in sources:
        path.write_text(f"# {path.stem}\n")
    cache = tmp_path / "__pycache__"
    cache.mkdir()
    return sources, cache


def _compiled(cache: Path) -> list[Path]:
    files = [
        cache / "quantize.quantize_fixed-1.py311.nbi",
        cache / "quantize.quantize_fixed-1.py311.1.nbc",
    ]
    for path in files:
        path.write_bytes(b"machine code")
    return files


def test_cache_kept_while_sources_unchanged_dropped_after_an_edit(tmp_path: Path) -> None:
    sources, cache = _tree(tmp_path)
    assert jit.drop_stale_cache(sources, cache)  # no stamp yet: whatever is there is unknown
    kept = _compiled(cache)
    assert not jit.drop_stale_cache(sources, cache)
    assert all(path.exists() for path in kept)
    other = cache / "quantize.cpython-311.pyc"  # Python's own cache is not numba's
    other.write_bytes(b"bytecode")

    sources[0].write_text("# grid, edited: a helper the quantize kernels inline\n")
    assert jit.drop_stale_cache(sources, cache)
    assert not any(path.exists() for path in kept)
    assert other.exists()
    assert not jit.drop_stale_cache(sources, cache)  # the new hash is kept


def test_unwritable_cache_is_left_alone(tmp_path: Path) -> None:
    sources, cache = _tree(tmp_path)
    cache.rmdir()
    cache.write_text("a file where the directory would be")  # mkdir fails
    assert not jit.drop_stale_cache(sources, cache)


def test_the_package_stamp_matches_its_sources_after_import() -> None:
    """Importing the kernels leaves the stamp of the sources as they are (a fresh process)."""
    code = (
        "import hashlib; from lowprec.kernels.numba import jit;"
        "d = hashlib.sha256(b''.join(p.read_bytes() for p in jit.KERNEL_SOURCES)).hexdigest();"
        "print((jit._HERE / '__pycache__' / jit.STAMP).read_text() == d)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "True"
    names = {p.name for p in jit.KERNEL_SOURCES}
    assert {"grid.py", "bits.py", "step.py", "encoding.py", "rng.py"} <= names
