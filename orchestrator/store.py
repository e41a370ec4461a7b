"""Results on disk: the Parquet files analysis reads (the contract is docs/results.md).

    RESULTS/<name>/spec.yaml                         the search-space file as the sweep ran it
    RESULTS/<name>/sweep.json                        sweep id, MLflow parent run, tracking URI
    RESULTS/<name>/trials.parquet                    one row per trial (consolidated)
    RESULTS/<name>/trials/<trial_id>.parquet         the same row, written by the trial itself
    RESULTS/<name>/predictions/trial_id=<id>/part-0.parquet   classifiers
    RESULTS/<name>/samples/trial_id=<id>/part-0.parquet       synthetic targets
    RESULTS/<name>/tune/                             Ray Tune's experiment dir (for --resume)

Every file is written atomically: to a hidden temporary name in the same directory, then
renamed over the final name (``pyarrow.fs.FileSystem.move``; a rename on a local or shared
filesystem, a single PUT-then-copy on object stores). A trial writes its own row as soon as it
ends, so a driver crash loses nothing; :meth:`ResultsStore.consolidate` gathers the rows into
``trials.parquet``, one row per ``trial_id`` (a retried trial overwrites its own file: the last
attempt wins).

A write killed half-way (SIGKILL, a full disk) leaves at most a hidden ``.NAME.HEX.tmp`` file,
which nothing reads (Parquet datasets skip hidden files too); :meth:`ResultsStore.repair`, run
by the sweep before any trial starts, removes them and sets aside row files that cannot be read,
saying so on stderr. A write that fails raises :class:`ResultsWriteError` naming the file.

``RESULTS`` is a local path or any URI ``pyarrow.fs.FileSystem.from_uri`` understands
(``s3://bucket/prefix``, ``gs://...``, ``file:///mnt/shared``).
"""

from __future__ import annotations

import contextlib
import errno
import io
import json
import os
import pickletools
import posixpath
import re
import sys
import urllib.parse
import urllib.request
import uuid
from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.fs as pafs
import pyarrow.parquet as pq

#: bookkeeping columns of trials.parquet, in the order they come first
ID_COLUMNS: tuple[str, ...] = (
    "trial_id", "status", "error", "wall_s", "bits", "mlflow_run_id", "sweep_id", "git_commit",
    "node", "hostname", "attempt", "early_stopped",
)  # fmt: skip

PREDICTIONS_SCHEMA = pa.schema(
    [("example", pa.int32()), ("label", pa.int32()), ("probs", pa.list_(pa.float32()))]
)
SAMPLES_SCHEMA = pa.schema(
    [("sample", pa.int32()), ("chain", pa.int32()), ("x", pa.list_(pa.float32()))]
)


class ResultsWriteError(OSError):
    """A results file could not be written (a full disk, no permission ...): names the file.
    Whatever was there before is untouched (the write went to a temporary name)."""

    def __init__(self, path: str, cause: BaseException):
        code = getattr(cause, "errno", None)
        if code is None and "no space left" in str(cause).lower():
            code = errno.ENOSPC
        reason = os.strerror(code) if code else str(cause).strip().splitlines()[-1]
        super().__init__(code, f"cannot write {path}: {reason}")
        self.filename = path

    def __str__(self) -> str:
        return str(self.strerror)


def _say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def resolve_uri(uri: str | os.PathLike[str]) -> tuple[pafs.FileSystem, str]:
    """``(filesystem, path)`` of a local path (made absolute) or a pyarrow filesystem URI."""
    text = os.fspath(uri)
    if "://" not in text:
        text = os.path.abspath(os.path.expanduser(text))
        return pafs.LocalFileSystem(), text
    fs, path = pafs.FileSystem.from_uri(text)
    return fs, path.rstrip("/")


def storage_uri(uri: str | os.PathLike[str]) -> str:
    """``uri`` as Ray Tune's ``storage_path`` wants it: absolute local path, or the URI."""
    text = os.fspath(uri)
    return text if "://" in text else os.path.abspath(os.path.expanduser(text))


#: a sweep's name is one path component inside the results root (no '/', not '..')
SWEEP_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")


class DamagedFile(ValueError):
    """A file of the sweep directory that cannot be read: one line, the file and what to do."""

    def __init__(self, path: str, reason: str, fix: str):
        self.path = path
        super().__init__(f"{path} is damaged ({' '.join(reason.split())}); {fix}")


class ResultsStore:
    """The directory ``<root>/<name>/`` of one sweep, on any pyarrow filesystem."""

    def __init__(self, root: str | os.PathLike[str], name: str):
        if not SWEEP_NAME.fullmatch(name):  # the spec checks it too: never outside the root
            raise ValueError(f"sweep name {name!r}: use letters, digits, '_', '.', '-' only")
        self.root_uri = storage_uri(root)
        self.fs, root_path = resolve_uri(root)
        self.name = name
        self.path = posixpath.join(root_path, name)

    # ------------------------------------------------------------------ paths
    def sweep_uri(self) -> str:
        """The sweep directory as a URI (or absolute local path)."""
        return posixpath.join(self.root_uri, self.name) if "://" in self.root_uri else self.path

    def tune_uri(self) -> str:
        """Ray Tune's experiment directory: ``storage_path`` = the sweep dir, name ``tune``."""
        return posixpath.join(self.sweep_uri(), "tune")

    def join(self, *parts: str) -> str:
        return posixpath.join(self.path, *parts)

    def exists(self, *parts: str) -> bool:
        return self.fs.get_file_info(self.join(*parts)).type != pafs.FileType.NotFound

    # ------------------------------------------------------------------ atomic writes
    def _atomic_write(self, relpath: str, write: Any) -> str:
        """Call ``write(tmp_path)`` for a hidden temporary name, then rename it to ``relpath``."""
        final = self.join(relpath)
        directory, base = posixpath.split(final)
        self.fs.create_dir(directory, recursive=True)
        tmp = posixpath.join(directory, f".{base}.{uuid.uuid4().hex}.tmp")
        try:
            write(tmp)
            self.fs.move(tmp, final)
        except BaseException as exc:
            with contextlib.suppress(OSError):
                if self.fs.get_file_info(tmp).type != pafs.FileType.NotFound:
                    self.fs.delete_file(tmp)
            if isinstance(exc, OSError) and not isinstance(exc, ResultsWriteError):
                raise ResultsWriteError(final, exc) from exc
            raise
        return final

    def write_bytes(self, relpath: str, data: bytes) -> str:
        def write(tmp: str) -> None:
            with self.fs.open_output_stream(tmp) as out:
                out.write(data)

        return self._atomic_write(relpath, write)

    def read_bytes(self, relpath: str) -> bytes | None:
        if not self.exists(relpath):
            return None
        with self.fs.open_input_stream(self.join(relpath)) as stream:
            return stream.read()

    def write_table(self, relpath: str, table: pa.Table) -> str:
        return self._atomic_write(
            relpath, lambda tmp: pq.write_table(table, tmp, filesystem=self.fs)
        )

    def read_table(self, relpath: str) -> pa.Table | None:
        if not self.exists(relpath):
            return None
        return pq.read_table(self.join(relpath), filesystem=self.fs)

    # ------------------------------------------------------------------ sweep files
    def write_spec(self, text: str) -> str:
        return self.write_bytes("spec.yaml", text.encode())

    def read_spec_text(self) -> str | None:
        data = self.read_bytes("spec.yaml")
        if data is None:
            return None
        try:
            return data.decode()
        except UnicodeDecodeError as exc:
            raise DamagedFile(
                self.join("spec.yaml"),
                f"not UTF-8 text at byte {exc.start}",
                "copy the spec file the sweep ran over it, then --resume again",
            ) from None

    def write_meta(self, meta: Mapping[str, Any]) -> str:
        return self.write_bytes("sweep.json", json.dumps(dict(meta), indent=2).encode())

    def read_meta(self) -> dict[str, Any] | None:
        data = self.read_bytes("sweep.json")
        if data is None:
            return None
        try:
            meta = json.loads(data)
        except ValueError as exc:  # JSONDecodeError, UnicodeDecodeError
            meta, reason = None, str(exc)
        else:
            needed = ("sweep_id", "parent_run_id")
            missing = [k for k in needed if not isinstance(meta, dict) or k not in meta]
            reason = f"no {', '.join(missing)}" if missing else ""
        if reason:
            raise DamagedFile(
                self.join("sweep.json"),
                reason,
                "restore it from a copy, or move the sweep directory aside and start the sweep "
                "again without --resume (its finished rows stay in trials/)",
            )
        return meta

    # ------------------------------------------------------------------ per-trial files
    def write_trial_row(self, row: Mapping[str, Any]) -> str:
        """``trials/<trial_id>.parquet``: the trial's one row (replaces an earlier attempt's)."""
        trial_id = str(row["trial_id"])
        return self.write_table(f"trials/{trial_id}.parquet", rows_to_table([row]))

    def read_trial_row(self, trial_id: str) -> dict[str, Any] | None:
        """The trial's row; None when it has none, or when its file cannot be read (damaged:
        never read back; :meth:`repair` sets it aside)."""
        try:
            with self.fs.open_input_file(self.join("trials", f"{trial_id}.parquet")) as stream:
                # one small file: ParquetFile.read, without read_table's dataset discovery
                # (2-4x faster; consolidating 10,000 rows reads 10,000 files: bench.scale)
                table = pq.ParquetFile(stream).read(use_threads=False)
        except (OSError, pa.ArrowInvalid):  # missing (FileNotFoundError) or damaged
            return None
        return None if table.num_rows == 0 else table.to_pylist()[-1]

    def trial_row_ids(self) -> list[str]:
        """Trial ids with a row file."""
        selector = pafs.FileSelector(self.join("trials"), allow_not_found=True)
        return sorted(
            posixpath.basename(info.path)[: -len(".parquet")]
            for info in self.fs.get_file_info(selector)
            if info.path.endswith(".parquet") and not posixpath.basename(info.path).startswith(".")
        )

    def write_predictions(self, trial_id: str, labels: np.ndarray, probs: np.ndarray) -> str:
        """``predictions/trial_id=<id>/part-0.parquet``: per test example its label and the
        ensemble's class probabilities."""
        return self.write_table(
            f"predictions/trial_id={trial_id}/part-0.parquet", predictions_table(labels, probs)
        )

    def write_samples(self, trial_id: str, samples: np.ndarray) -> str:
        """``samples/trial_id=<id>/part-0.parquet``: one row per (sample, chain)."""
        return self.write_table(
            f"samples/trial_id={trial_id}/part-0.parquet", samples_table(samples)
        )

    # ------------------------------------------------------------------ repair
    def _listing(self, relpath: str) -> list[pafs.FileInfo]:
        selector = pafs.FileSelector(self.join(relpath), allow_not_found=True)
        return self.fs.get_file_info(selector)

    def repair(self, say: Any = _say) -> list[str]:
        """Undo what an interrupted run left (call it while no trial of this sweep runs):
        remove unfinished writes (hidden ``*.tmp`` files: never read, but they take space) and
        set aside row files that cannot be read (renamed ``trials/.ID.parquet.damaged``: their
        trials are not recorded and run again). Says each on stderr; returns the messages."""
        said: list[str] = []
        places = ["", "trials"]
        for top in ("predictions", "samples"):
            places += [
                posixpath.relpath(i.path, self.path)
                for i in self._listing(top)
                if i.type == pafs.FileType.Directory
            ]
        # Tune's own files (its state, trial checkpoints) too: written by orchestrator.atomicfs
        tune = pafs.FileSelector(self.join("tune"), allow_not_found=True, recursive=True)
        stale = [
            i.path
            for i in [
                *(j for place in places for j in self._listing(place)),
                *self.fs.get_file_info(tune),
            ]
            if i.type == pafs.FileType.File
            and posixpath.basename(i.path).startswith(".")
            and i.path.endswith(".tmp")
        ]
        for path in stale:
            with contextlib.suppress(OSError):
                self.fs.delete_file(path)
        if stale:
            said.append(
                f"[{self.name}] removed {len(stale)} unfinished write(s) an interrupted run left "
                f"(e.g. {stale[0]}); nothing read them"
            )
        for trial_id in self.trial_row_ids():
            path = self.join("trials", f"{trial_id}.parquet")
            try:
                pq.read_metadata(path, filesystem=self.fs)
            except (OSError, pa.ArrowInvalid) as exc:
                aside = self.join("trials", f".{trial_id}.parquet.damaged")
                self.fs.move(path, aside)
                reason = str(exc).strip().splitlines()[-1] if str(exc).strip() else type(exc)
                said.append(
                    f"[{self.name}] {path} cannot be read ({reason}): set aside as {aside}; "
                    "that trial is not recorded"
                )
        for message in said:
            say(message)
        return said

    def tune_state_damage(self) -> str | None:
        """What is wrong with Ray Tune's saved state (``tune/*.json``, which Tune writes in
        place: a full disk can leave it cut short, except where it wrote through
        :mod:`orchestrator.atomicfs`, as a sweep does in a local results directory; JSON, or a
        pickle for a searcher's state), or None when every file parses."""
        for info in self._listing("tune"):
            if info.type != pafs.FileType.File or not info.path.endswith(".json"):
                continue
            try:
                with self.fs.open_input_stream(info.path) as stream:
                    data = stream.read()
                if data[:1] == b"\x80":
                    # a searcher's state: Ray pickles it under a .json name (ray.tune.utils.
                    # _atomic_save); walk its opcodes (nothing is executed): a cut ends early
                    for _ in pickletools.genops(data):
                        pass
                else:
                    json.loads(data)
            except (OSError, ValueError) as exc:
                return f"{info.path} cannot be read ({str(exc).splitlines()[0]})"
        return None

    # ------------------------------------------------------------------ consolidation
    def consolidate(self) -> pa.Table:
        """Gather every ``trials/<id>.parquet`` into ``trials.parquet`` (atomically), one row
        per trial id sorted by it, and return the table. A row file that cannot be read is
        left out, with a line on stderr (never read back half-written)."""
        rows: dict[str, dict[str, Any]] = {}
        for trial_id in self.trial_row_ids():
            row = self.read_trial_row(trial_id)
            if row is not None:
                rows[str(row["trial_id"])] = row
            elif self.exists("trials", f"{trial_id}.parquet"):
                _say(
                    f"[{self.name}] {self.join('trials', trial_id + '.parquet')} cannot be "
                    "read: left out of trials.parquet"
                )
        table = rows_to_table([rows[k] for k in sorted(rows)])
        self.write_table("trials.parquet", table)
        return table


# ----------------------------------------------------------------------------------------------
# tables
# ----------------------------------------------------------------------------------------------


def _plain(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    return value


def rows_to_table(rows: Iterable[Mapping[str, Any]]) -> pa.Table:
    """Rows (dicts of scalars) as one table: bookkeeping columns first, then the rest sorted.

    A column's type is inferred over all rows; a column missing from a row is null there, and
    ints mixed with floats become float64.
    """
    rows = [{k: _plain(v) for k, v in row.items()} for row in rows]
    seen: dict[str, None] = {}  # ordered set: first appearance order, O(1) membership
    for row in rows:
        seen.update(dict.fromkeys(row))
    names = list(seen)
    ordered = [c for c in ID_COLUMNS if c in names] + sorted(
        c for c in names if c not in ID_COLUMNS
    )
    columns = {}
    for name in ordered:
        values = [row.get(name) for row in rows]
        kinds = {type(v) for v in values if v is not None}
        if kinds == {int, float} or kinds == {bool, float}:
            values = [None if v is None else float(v) for v in values]
        elif len(kinds) > 1:
            values = [None if v is None else str(v) for v in values]
        columns[name] = pa.array(values)
    return pa.table(columns) if columns else pa.table({"trial_id": pa.array([], pa.string())})


def predictions_table(labels: np.ndarray, probs: np.ndarray) -> pa.Table:
    """Columns ``example`` int32, ``label`` int32, ``probs`` list<float32> (one row per example)."""
    labels = np.asarray(labels).reshape(-1)
    probs = np.ascontiguousarray(np.asarray(probs, dtype=np.float32))
    if probs.ndim != 2 or probs.shape[0] != labels.shape[0]:
        raise ValueError(
            f"predictions: probs must be [examples, classes] matching labels [{labels.shape[0]}], "
            f"got {probs.shape}"
        )
    n, classes = probs.shape
    offsets = pa.array(np.arange(0, (n + 1) * classes, classes, dtype=np.int32))
    return pa.Table.from_arrays(
        [
            pa.array(np.arange(n, dtype=np.int32)),
            pa.array(labels.astype(np.int32)),
            pa.ListArray.from_arrays(offsets, pa.array(probs.reshape(-1))),
        ],
        schema=PREDICTIONS_SCHEMA,
    )


def samples_table(samples: np.ndarray) -> pa.Table:
    """``samples [num_samples, chains, dim]`` as rows ``sample``, ``chain``, ``x`` (list<float32>),
    sample-major (row ``s * chains + c`` holds sample s of chain c)."""
    samples = np.asarray(samples, dtype=np.float32)
    if samples.ndim == 2:  # [num_samples, chains] of a 1-D target
        samples = samples[..., None]
    if samples.ndim != 3:
        raise ValueError(f"samples: expected [num_samples, chains, dim], got {samples.shape}")
    num, chains, dim = samples.shape
    rows = num * chains
    offsets = pa.array(np.arange(0, (rows + 1) * dim, dim, dtype=np.int64).astype(np.int32))
    return pa.Table.from_arrays(
        [
            pa.array(np.repeat(np.arange(num, dtype=np.int32), chains)),
            pa.array(np.tile(np.arange(chains, dtype=np.int32), num)),
            pa.ListArray.from_arrays(offsets, pa.array(np.ascontiguousarray(samples).reshape(-1))),
        ],
        schema=SAMPLES_SCHEMA,
    )


def trial_row(
    config: Mapping[str, Any],
    metrics: Mapping[str, Any],
    *,
    status: str,
    error: str | None,
    trial_id: str,
    **extra: Any,
) -> dict[str, Any]:
    """One row of trials.parquet: the resolved config, then the final metrics over it (the
    metric ``bits``, the weight format's word bits, replaces the config key ``bits``), then the
    bookkeeping columns (``status``, ``error``, ``trial_id``, ``mlflow_run_id``, ``wall_s``,
    ``sweep_id``, ``git_commit``, ``node`` ... given in ``extra``)."""
    row: dict[str, Any] = dict(config)
    row.update(metrics)
    row.update(extra)
    row.update(status=status, error=error, trial_id=trial_id)
    return row


def table_to_text(table: pa.Table, columns: list[str], limit: int = 40) -> str:
    """A plain-text table of ``columns`` (those present), at most ``limit`` rows."""
    columns = [c for c in columns if c in table.column_names]
    rows = table.select(columns).slice(0, limit).to_pylist()

    def cell(value: Any) -> str:
        if isinstance(value, float):
            return f"{value:.4g}"
        return "" if value is None else str(value)

    cells = [[cell(r[c]) for c in columns] for r in rows]
    widths = [max([len(c), *(len(row[i]) for row in cells)]) for i, c in enumerate(columns)]
    out = io.StringIO()
    out.write("  ".join(c.ljust(w) for c, w in zip(columns, widths, strict=True)).rstrip() + "\n")
    for row in cells:
        out.write("  ".join(v.ljust(w) for v, w in zip(row, widths, strict=True)).rstrip() + "\n")
    if table.num_rows > limit:
        out.write(f"... {table.num_rows - limit} more rows\n")
    return out.getvalue()


def local_path(uri: str) -> str | None:
    """The local directory of a sweep URI: a path as it is, ``file:///dir`` as ``/dir``; None
    for remote storage (``s3://``, ``gs://`` ...)."""
    if "://" not in uri:
        return uri
    parsed = urllib.parse.urlparse(uri)
    if parsed.scheme == "file" and parsed.netloc in ("", "localhost"):
        return urllib.request.url2pathname(parsed.path)
    return None
