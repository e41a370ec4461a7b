"""orchestrator.atomicfs: a write through it replaces the target whole, or leaves it as it was.

A failing write is a real one: the process's file-size limit (``RLIMIT_FSIZE``, SIGXFSZ
ignored) makes the kernel refuse bytes past it with EFBIG, as a full disk refuses them with
ENOSPC, inside ``pyarrow.fs.copy_files`` as Ray Tune calls it. The full disk itself, under a
real sweep, is tests/faults/test_fault_full_disk.py."""

from __future__ import annotations

import contextlib
import errno
import os
import pickle
import resource
import signal
from collections.abc import Iterator
from pathlib import Path

import pyarrow.fs as pafs
import pytest

from orchestrator.atomicfs import TYPE_NAME, atomic_local_fs, for_storage
from orchestrator.store import ResultsStore

LIMIT = 1 << 20  # bytes a file may hold while the limit is on


@contextlib.contextmanager
def file_size_limit(limit: int) -> Iterator[None]:
    """Writes past ``limit`` bytes of any file fail with EFBIG (not a signal) meanwhile."""
    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    old = signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (limit, hard))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
        signal.signal(signal.SIGXFSZ, old)


def hidden(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir() if p.name.startswith("."))


def test_a_write_replaces_the_target_whole(tmp_path: Path) -> None:
    fs = atomic_local_fs()
    target = str(tmp_path / "state.json")
    for text in (b'{"n": 1}', b'{"n": 2, "more": "a longer state"}', b"{}"):
        with fs.open_output_stream(target) as out:
            out.write(text[:3])
            # until close, the target is the previous version (or absent)
            assert not os.path.exists(target) or Path(target).read_bytes() != text
            out.write(text[3:])
        assert Path(target).read_bytes() == text
    assert hidden(tmp_path) == []


def test_a_failed_copy_leaves_the_old_file_and_no_temporary(tmp_path: Path) -> None:
    """Ray Tune's upload (``copy_files`` from a staging dir) of a state file too big to fit."""
    fs = atomic_local_fs()
    storage, staging = tmp_path / "storage", tmp_path / "staging"
    staging.mkdir()
    storage.mkdir()
    old = b'{"trials": ["a", "b"]}'
    (storage / "experiment_state.json").write_bytes(old)
    (staging / "experiment_state.json").write_bytes(b"x" * (2 * LIMIT))
    with file_size_limit(LIMIT), pytest.raises(OSError) as caught:
        pafs.copy_files(str(staging), str(storage), destination_filesystem=fs)
    assert caught.value.errno == errno.EFBIG or "too large" in str(caught.value), caught.value
    assert (storage / "experiment_state.json").read_bytes() == old
    assert hidden(storage) == []  # the failed write's space is freed at once
    # the same copy once it fits replaces the file
    new = b'{"trials": ["a", "b", "c"]}'
    (staging / "experiment_state.json").write_bytes(new)
    pafs.copy_files(str(staging), str(storage), destination_filesystem=fs)
    assert (storage / "experiment_state.json").read_bytes() == new
    assert hidden(storage) == []


def test_a_failed_write_refuses_later_writes_and_close(tmp_path: Path) -> None:
    fs = atomic_local_fs()
    target = tmp_path / "tuner.pkl"
    target.write_bytes(b"old")
    out = fs.open_output_stream(str(target))
    with file_size_limit(LIMIT):
        with pytest.raises(OSError):
            out.write(b"y" * (2 * LIMIT))
        with pytest.raises(OSError):
            out.write(b"z")  # the rest of a cut file must not land either
        with pytest.raises(OSError):
            out.close()
    assert target.read_bytes() == b"old"
    assert hidden(tmp_path) == []


def test_a_stream_dropped_unclosed_replaces_nothing(tmp_path: Path) -> None:
    """Its writer died (or gave up) half-way: never a half file under the target's name."""
    fs = atomic_local_fs()
    target = tmp_path / "searcher-state.pkl"
    target.write_bytes(b"old")
    out = fs.open_output_stream(str(target))
    out.write(b"half of a new")
    assert len(hidden(tmp_path)) == 1
    del out  # the last reference: the stream and its writer go, unclosed
    assert target.read_bytes() == b"old"
    assert hidden(tmp_path) == []


def test_copy_file_is_whole_or_nothing(tmp_path: Path) -> None:
    fs = atomic_local_fs()
    (tmp_path / "src").write_bytes(b"s" * (2 * LIMIT))
    (tmp_path / "dst").write_bytes(b"old")
    with file_size_limit(LIMIT), pytest.raises(OSError):
        fs.copy_file(str(tmp_path / "src"), str(tmp_path / "dst"))
    assert (tmp_path / "dst").read_bytes() == b"old"
    assert hidden(tmp_path) == []
    fs.copy_file(str(tmp_path / "src"), str(tmp_path / "dst"))
    assert (tmp_path / "dst").read_bytes() == (tmp_path / "src").read_bytes()


def test_it_pickles_and_reads_like_the_local_filesystem(tmp_path: Path) -> None:
    """Tune sends it to the trial actors; listing, reading, moving, deleting are the local fs's."""
    fs = pickle.loads(pickle.dumps(atomic_local_fs()))
    assert fs.type_name == f"py::{TYPE_NAME}" and fs == atomic_local_fs()
    fs.create_dir(str(tmp_path / "a" / "b"), recursive=True)
    with fs.open_output_stream(str(tmp_path / "a" / "b" / "f")) as out:
        out.write(b"data")
    with fs.open_input_stream(str(tmp_path / "a" / "b" / "f")) as stream:
        assert stream.read() == b"data"
    listed = fs.get_file_info(pafs.FileSelector(str(tmp_path / "a"), recursive=True))
    assert sorted(i.base_name for i in listed) == ["b", "f"]
    fs.move(str(tmp_path / "a" / "b" / "f"), str(tmp_path / "g"))
    assert (tmp_path / "g").read_bytes() == b"data"
    fs.delete_dir(str(tmp_path / "a"))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["g"]


def test_for_storage_wraps_a_local_results_dir_only() -> None:
    assert for_storage(pafs.LocalFileSystem()) == atomic_local_fs()
    assert for_storage(pafs._MockFileSystem()) is None  # an object store: Tune's own


def test_repair_removes_temporaries_a_killed_writer_left_in_tunes_dir(tmp_path: Path) -> None:
    store = ResultsStore(tmp_path, "s")
    trial = tmp_path / "s" / "tune" / "trial_1" / "checkpoint_000001"
    trial.mkdir(parents=True)
    (trial / "state.pt").write_bytes(b"ok")
    (trial / ".state.pt.0123.tmp").write_bytes(b"half")
    (tmp_path / "s" / "tune" / ".experiment_state-x.json.4567.tmp").write_bytes(b"{")
    said = store.repair(say=lambda _m: None)
    assert len(said) == 1 and "removed 2 unfinished write(s)" in said[0], said
    assert [p.name for p in trial.iterdir()] == ["state.pt"]
    assert [p.name for p in (tmp_path / "s" / "tune").iterdir()] == ["trial_1"]
