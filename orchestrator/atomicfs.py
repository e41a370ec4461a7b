"""A local pyarrow filesystem whose writes replace a file whole or not at all.

Ray Tune writes its own state (``experiment_state-*.json``, the searcher's state, ``tuner.pkl``,
trial checkpoints) by copying from the driver's or a worker's staging directory onto the
storage filesystem with ``pyarrow.fs.copy_files``, which opens the target in place: a full disk
in the middle of that copy leaves the previous, good file cut short, and ``--resume`` cannot
read it. Given to Tune as ``RunConfig(storage_filesystem=...)`` (and to ``Tuner.restore`` /
``Tuner.can_restore``), :func:`atomic_local_fs` makes every output stream

    write(target) = write(tmp) ; fsync(tmp) ; rename(tmp -> target)    when every write succeeded
                  = write(tmp) ; unlink(tmp)                             otherwise

with ``tmp = dir(target)/.<name>.<uuid>.tmp`` on the same filesystem, so that ``rename`` is
atomic (POSIX ``rename(2)``): a reader sees the old file or the new one, never a part. A stream
dropped without ``close()`` (its writer died) never replaces anything. Hidden
``*.tmp`` names match none of Tune's patterns (``experiment_state-*.json``,
``searcher-state-*.pkl``), and :meth:`orchestrator.store.ResultsStore.repair` removes the ones a
killed process leaves.

Everything else (listing, reading, deleting, ``move``, which is a rename already) is the plain
``pyarrow.fs.LocalFileSystem``'s. The filesystem pickles (Tune sends it to the trial actors).
"""

from __future__ import annotations

import contextlib
import os
import posixpath
import uuid
from typing import Any

import pyarrow as pa
import pyarrow.fs as pafs

TYPE_NAME = "atomic-local"


def temporary_name(target: str) -> str:
    """The hidden temporary name beside ``target`` that a write goes to first."""
    directory, base = posixpath.split(target)
    return posixpath.join(directory, f".{base}.{uuid.uuid4().hex}.tmp")


class AtomicWriter:
    """A binary file object that writes ``tmp`` and, on ``close()`` after writes that all
    succeeded, renames it onto ``target``; after any failed write (or when dropped unclosed) it
    removes ``tmp`` and leaves ``target`` as it was. (A caller that stops writing for a reason
    of its own and still closes the stream commits what it wrote: the stream cannot tell.)"""

    def __init__(self, target: str):
        self.target = target
        self.tmp = temporary_name(target)
        # unbuffered: a write that does not fit fails in write(), where every caller sees it
        # (pyarrow.fs.copy_files drops an error raised by a Python stream's close())
        self._file = open(self.tmp, "xb", buffering=0)  # noqa: SIM115 (closed in close()/_discard)
        self._failed: BaseException | None = None
        self._written = 0
        self.closed = False

    # the file-object protocol pyarrow.PythonFile uses
    def write(self, data: Any) -> int:
        if self._failed is not None:
            raise OSError(f"an earlier write to {self.target} failed: {self._failed}")
        try:
            view = memoryview(data).cast("B")
            done = 0
            while done < len(view):  # a raw write may take part of the buffer
                done += self._file.write(view[done:])
            self._written += done
            return done
        except BaseException as exc:
            self._failed = exc
            self._discard()  # at once: the space it took is freed, whoever holds the stream
            raise

    def flush(self) -> None:
        """Nothing to do: the file is unbuffered."""

    def tell(self) -> int:
        return self._written

    def writable(self) -> bool:
        return True

    def readable(self) -> bool:
        return False

    def seekable(self) -> bool:
        return False

    def close(self) -> None:
        """Replace ``target`` with what was written, or raise and leave ``target`` untouched."""
        if self.closed:
            return
        self.closed = True
        if self._failed is not None:
            self._discard()
            raise OSError(f"cannot write {self.target}: {self._failed}")
        try:
            os.fsync(self._file.fileno())
            self._file.close()
            os.replace(self.tmp, self.target)
        except BaseException:
            self._discard()
            raise

    def _discard(self) -> None:
        with contextlib.suppress(OSError):  # unbuffered: nothing left to flush
            self._file.close()
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.tmp)

    def __del__(self) -> None:  # dropped without close(): never replace the target
        if not getattr(self, "closed", True):
            self.closed = True
            self._discard()


class AtomicLocalHandler(pafs.FileSystemHandler):
    """``pyarrow.fs.LocalFileSystem`` with :class:`AtomicWriter` output streams."""

    def __init__(self) -> None:
        self._fs = pafs.LocalFileSystem()

    def __eq__(self, other: object) -> bool:
        return isinstance(other, AtomicLocalHandler)

    def __ne__(self, other: object) -> bool:
        return not self == other

    def __hash__(self) -> int:
        return hash(TYPE_NAME)

    def __reduce__(self) -> tuple[Any, ...]:
        return (AtomicLocalHandler, ())

    def get_type_name(self) -> str:
        return TYPE_NAME

    def normalize_path(self, path: str) -> str:
        return self._fs.normalize_path(path)

    def get_file_info(self, paths: list[str]) -> list[pafs.FileInfo]:
        return self._fs.get_file_info(paths)

    def get_file_info_selector(self, selector: pafs.FileSelector) -> list[pafs.FileInfo]:
        return self._fs.get_file_info(selector)

    def create_dir(self, path: str, recursive: bool) -> None:
        self._fs.create_dir(path, recursive=recursive)

    def delete_dir(self, path: str) -> None:
        self._fs.delete_dir(path)

    def delete_dir_contents(self, path: str, missing_dir_ok: bool = False) -> None:
        self._fs.delete_dir_contents(path, missing_dir_ok=missing_dir_ok)

    def delete_root_dir_contents(self) -> None:
        raise OSError("refusing to delete the contents of the root directory")

    def delete_file(self, path: str) -> None:
        self._fs.delete_file(path)

    def move(self, src: str, dest: str) -> None:
        self._fs.move(src, dest)  # rename(2): atomic already

    def copy_file(self, src: str, dest: str) -> None:
        tmp = temporary_name(dest)
        try:
            self._fs.copy_file(src, tmp)
            os.replace(tmp, dest)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
            raise

    def open_input_stream(self, path: str) -> pa.NativeFile:
        return self._fs.open_input_stream(path)

    def open_input_file(self, path: str) -> pa.NativeFile:
        return self._fs.open_input_file(path)

    def open_output_stream(self, path: str, metadata: Any) -> pa.NativeFile:
        return pa.PythonFile(AtomicWriter(path), mode="w")

    def open_append_stream(self, path: str, metadata: Any) -> pa.NativeFile:
        return self._fs.open_append_stream(path)  # appending cannot be whole-or-nothing


def atomic_local_fs() -> pafs.PyFileSystem:
    """The local filesystem whose writes replace a file whole or not at all (module docstring)."""
    return pafs.PyFileSystem(AtomicLocalHandler())


def for_storage(fs: pafs.FileSystem) -> pafs.FileSystem | None:
    """What to give Ray Tune as ``storage_filesystem`` for results on ``fs``: the atomic local
    filesystem for a local results directory; None (Tune's own resolution of the URI) for an
    object store, whose uploads replace an object whole already."""
    return atomic_local_fs() if isinstance(fs, pafs.LocalFileSystem) else None
