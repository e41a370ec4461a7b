"""MLflow writes that survive a tracking server outage: queued in order, sent by a background
thread, caught up when the server answers again, and saved beside the results when it does not.

A run's writes are *operations*, plain JSON-able dicts applied in order by :func:`apply`:

    {"op": "start", "experiment_id", "parent", "trial_id", "name", "tags", "params",
     "run_id"?, "search"?, "config"?, "spec_text"?}
        reopen ``run_id`` when given (an earlier attempt's run), else find the trial's child
        by its ``trial_id`` tag when ``search`` (default true), else create it
    {"op": "params", "params"}                                  the run's params, logged once
    {"op": "metrics", "metrics", "step", "timestamp"}                  one report, at its step
    {"op": "finish", "status", "tags", "traceback"}     tags, traceback.txt, FINISHED|FAILED
    {"op": "terminate", "status", "tags"}                 tags and FINISHED|FAILED|KILLED
    {"op": "artifact", "local_path", "artifact_path"} / {"op": "text", "text", "path"}
    {"op": "dict", "data", "path"} / {"op": "table", "data": {column: [values]}, "path"}

Every operation but ``start`` needs the run's id; ``start`` provides it. The thread sends
what has queued up together: the params, consecutive ``metrics`` operations and the ``finish``
after them go as one ``log_batch`` (then ``set_terminated``), so a short trial costs MLflow
three writes (create; params, metrics and tags; end) whatever its number of reports.

An operation that raises a transient error (the server unreachable, SQLite locked) stays at
the head of the queue and is tried again ``RETRY_EVERY_S`` later; one MLflow refuses outright
(HTTP 4xx: a bad value) is dropped and counted in ``dropped``, so one bad write never blocks
the rest.

What is still queued when a trial ends is written to ``RESULTS/<sweep>/mlflow_pending/<key>.json``
(``final`` true); the sweep's driver replays those files while it runs and at the end
(:func:`replay_pending`), and ``python -m orchestrator.backfill`` replays what is left.
"""

from __future__ import annotations

import contextlib
import json
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from typing import Any

#: seconds between two attempts while the server does not answer
RETRY_EVERY_S = 3.0
#: metric values per ``log_batch`` (MLflow's limit: 1,000 entries, tags included)
BATCH = 500
#: params per ``log_batch`` (MLflow's limit)
PARAMS_PER_BATCH = 100
#: where unsent operations are saved, relative to the sweep directory
PENDING_DIR = "mlflow_pending"
#: MLflow error codes that mean "this write is wrong", not "the server is away"
PERMANENT = frozenset(
    {"INVALID_PARAMETER_VALUE", "RESOURCE_ALREADY_EXISTS", "RESOURCE_DOES_NOT_EXIST",
     "BAD_REQUEST", "INVALID_STATE", "PERMISSION_DENIED", "UNAUTHENTICATED"}
)  # fmt: skip


def is_permanent(exc: BaseException) -> bool:
    """True for an MLflow refusal that repeating cannot fix (a 4xx answer)."""
    return getattr(exc, "error_code", None) in PERMANENT


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0] if text else ''}"[:300]


def apply(client: Any, op: Mapping[str, Any], run_id: str | None) -> str | None:
    """Apply one operation with ``client`` (an ``MlflowClient``); returns the run id after it."""
    from mlflow.entities import Metric, Param, RunTag

    kind = op["op"]
    if kind == "start":
        found = []
        if op.get("run_id"):  # recorded by an earlier attempt once its start was complete
            client.update_run(op["run_id"], status="RUNNING")
            return str(op["run_id"])
        if op.get("search", True):
            found = client.search_runs(
                [op["experiment_id"]],
                filter_string=(
                    f"tags.mlflow.parentRunId = '{op['parent']}' "
                    f"and tags.trial_id = '{op['trial_id']}'"
                ),
                max_results=1,
            )
        if found:
            run_id = found[0].info.run_id
            client.update_run(run_id, status="RUNNING")
            if found[0].data.params:
                return run_id
            # made by an attempt the server dropped half-way: finish what it began
        else:
            run = client.create_run(op["experiment_id"], run_name=op["name"], tags=op["tags"])
            run_id = run.info.run_id
        _log_params(client, run_id, op.get("params") or {})  # files saved before "params"
        if op.get("config") is not None:
            client.log_dict(run_id, op["config"], "trial_config.json")
        if op.get("spec_text") is not None:
            client.log_text(run_id, op["spec_text"], "spec.yaml")
        return run_id
    if run_id is None:
        raise RuntimeError(f"MLflow operation {kind!r} before the run exists")
    if kind == "params":
        _log_params(client, run_id, op["params"])
    elif kind in ("metrics", "finish", "terminate", "batch"):
        parts = op["ops"] if kind == "batch" else [op]
        params = [
            Param(k, str(v))
            for part in parts
            if part["op"] == "params"
            for k, v in sorted(part["params"].items())
        ]
        metrics = [
            Metric(k, float(v), int(part["timestamp"]), int(part["step"]))
            for part in parts
            if part["op"] == "metrics"
            for k, v in part["metrics"].items()
        ]
        end = parts[-1] if parts[-1]["op"] in ("finish", "terminate") else None
        tags = [RunTag(k, str(v)) for k, v in (end or {}).get("tags", {}).items()]
        for i in range(0, max(len(metrics), 1), BATCH):  # MLflow takes 1,000 values a batch
            chunk_tags = tags if i + BATCH >= len(metrics) else []
            chunk_params = params if i == 0 else []  # at most PARAMS_PER_BATCH (see _head)
            if metrics[i : i + BATCH] or chunk_tags or chunk_params:
                client.log_batch(
                    run_id, metrics=metrics[i : i + BATCH], tags=chunk_tags, params=chunk_params
                )
        if end is not None:
            if end.get("traceback"):
                client.log_text(run_id, end["traceback"], "traceback.txt")
            client.set_terminated(run_id, status=end["status"])
    elif kind == "tags":  # set on an ended run too: its status and end time stay
        client.log_batch(run_id, tags=[RunTag(k, str(v)) for k, v in op["tags"].items()])
    elif kind == "experiment_tag":
        client.set_experiment_tag(op["experiment_id"], op["key"], op["value"])
    elif kind == "artifact":
        client.log_artifact(run_id, op["local_path"], op.get("artifact_path"))
    elif kind == "text":
        client.log_text(run_id, op["text"], op["path"])
    elif kind == "dict":
        client.log_dict(run_id, op["data"], op["path"])
    elif kind == "table":  # {column: [values]}: the UI shows it as a table
        import pandas as pd

        client.log_table(run_id, data=pd.DataFrame(op["data"]), artifact_file=op["path"])
    else:
        raise ValueError(f"unknown MLflow operation {kind!r}")
    return run_id


def _log_params(client: Any, run_id: str, values: Mapping[str, Any]) -> None:
    from mlflow.entities import Param

    params = [Param(k, str(v)) for k, v in sorted(values.items())]
    for i in range(0, len(params), PARAMS_PER_BATCH):
        client.log_batch(run_id, params=params[i : i + PARAMS_PER_BATCH])


class Outbox:
    """The ordered MLflow writes of one run, sent by a daemon thread (see the module docstring).

    ``put`` never blocks on the server; ``drain(timeout)`` waits for the queue to empty;
    ``close(timeout)`` stops the thread and returns what was not sent.
    """

    #: seconds ``close`` waits for an operation in flight to return; one still in flight then
    #: is also among those returned as not sent (it may land later: the driver deletes the
    #: empty duplicate run a late ``start`` makes, ``tracking.delete_empty_duplicates``)
    JOIN_S = 60.0

    def __init__(
        self,
        make_client: Callable[[], Any],
        run_id: str | None = None,
        ops: Iterable[Mapping[str, Any]] = (),
        retry_every: float = RETRY_EVERY_S,
        on_run_id: Callable[[str], None] | None = None,
    ):
        self.make_client, self.run_id, self.retry_every = make_client, run_id, retry_every
        #: called (in the sending thread) once the run exists: the tracker records its id
        self.on_run_id = on_run_id
        self.queue: deque[dict[str, Any]] = deque(dict(op) for op in ops)
        self.cond = threading.Condition()
        self.closed = False
        self.busy = False
        self.thread: threading.Thread | None = None
        self.sent = 0
        self.dropped: list[str] = []
        self.down_since: float | None = None
        self.last_error: str | None = None

    def put(self, op: Mapping[str, Any]) -> None:
        with self.cond:
            self.queue.append(dict(op))
            self.cond.notify_all()
            if self.thread is None:
                self.thread = threading.Thread(target=self._loop, name="mlflow-outbox", daemon=True)
                self.thread.start()

    def pending(self) -> list[dict[str, Any]]:
        with self.cond:
            return list(self.queue)

    def drain(self, timeout: float) -> bool:
        """Wait up to ``timeout`` s for the queue to empty; True when nothing is left."""
        deadline = time.monotonic() + timeout
        with self.cond:
            while self.queue or self.busy:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self.cond.wait(min(left, 0.1))
        return True

    def close(self, timeout: float) -> list[dict[str, Any]]:
        """Send for up to ``timeout`` s, stop the thread, return the operations not sent."""
        self.drain(timeout)
        with self.cond:
            self.closed = True
            self.cond.notify_all()
        if self.thread is not None:
            self.thread.join(timeout=self.JOIN_S)
        return self.pending()

    def _head(self, single: bool) -> tuple[dict[str, Any], int]:
        """The next operation to send and how many queued ones it stands for: consecutive
        ``metrics`` and the ``finish``/``terminate`` after them as one ``batch`` (unless
        ``single``: a batch MLflow refused is sent again one operation at a time)."""
        head = self.queue[0]
        small = head["op"] != "params" or len(head["params"]) <= PARAMS_PER_BATCH
        if single or self.run_id is None or head["op"] not in ("params", "metrics") or not small:
            return head, 1
        parts = [head]
        for op in list(self.queue)[1:]:
            if op["op"] not in ("metrics", "finish", "terminate"):
                break
            parts.append(op)
            if op["op"] != "metrics":
                break
        return ({"op": "batch", "ops": parts}, len(parts)) if len(parts) > 1 else (head, 1)

    def _loop(self) -> None:
        client = None
        single = False
        while True:
            with self.cond:
                while not self.queue and not self.closed:
                    self.cond.wait()
                if self.closed:
                    return
                op, count = self._head(single)
                self.busy = True
            ok, single = False, False
            try:
                client = client or self.make_client()
                known = self.run_id
                self.run_id = apply(client, op, self.run_id)
                # a run made after close() is a late duplicate: its id must not replace the
                # record of the run the driver makes from the saved writes
                late = self.closed
                if known is None and self.run_id is not None and self.on_run_id and not late:
                    with contextlib.suppress(Exception):  # a record to skip a search; optional
                        self.on_run_id(self.run_id)
                ok = True
            except Exception as exc:
                if is_permanent(exc) and count > 1:
                    single = ok = True  # send them one by one: only the bad one is dropped
                    count = 0
                elif is_permanent(exc) and op["op"] != "start":
                    self.dropped.append(f"{op['op']}: {_one_line(exc)}")
                    ok = True
                else:
                    self.last_error = _one_line(exc)
                    if self.down_since is None:
                        self.down_since = time.time()
            with self.cond:
                self.busy = False
                if ok:
                    for _ in range(count):
                        self.queue.popleft()
                    self.sent += count
                    self.down_since = None
                self.cond.notify_all()
                if not ok:  # woken early only by close()
                    self.cond.wait_for(lambda: self.closed, timeout=self.retry_every)


# ----------------------------------------------------------------------------------------------
# unsent operations saved beside the results, replayed by the driver and by the backfill
# ----------------------------------------------------------------------------------------------


def save_pending(
    store: Any,
    key: str,
    run_id: str | None,
    ops: list[dict[str, Any]],
    *,
    final: bool,
    **extra: Any,
) -> None:
    """``mlflow_pending/<key>.json`` (atomic); removed when ``ops`` is empty."""
    relpath = f"{PENDING_DIR}/{key}.json"
    if not ops:
        if store.exists(relpath):
            store.fs.delete_file(store.join(relpath))
        return
    doc = {"key": key, "run_id": run_id, "final": final, "ops": ops, **extra}
    store.write_bytes(relpath, json.dumps(doc).encode())


def load_pending(store: Any, key: str) -> dict[str, Any] | None:
    data = store.read_bytes(f"{PENDING_DIR}/{key}.json")
    return None if data is None else json.loads(data)


def pending_keys(store: Any) -> list[str]:
    import posixpath

    import pyarrow.fs as pafs

    selector = pafs.FileSelector(store.join(PENDING_DIR), allow_not_found=True)
    return sorted(
        posixpath.basename(info.path)[: -len(".json")]
        for info in store.fs.get_file_info(selector)
        if info.path.endswith(".json") and not posixpath.basename(info.path).startswith(".")
    )


def replay_pending(
    store: Any, client: Any, *, final_only: bool = True
) -> tuple[int, int, dict[str, str]]:
    """Send every saved file's operations in order (``final_only``: only those whose trial has
    ended). Returns ``(files emptied, files left, {trial_id: run_id} of runs created)``; a file
    whose head fails transiently is kept with what is left; a permanently refused op is dropped."""
    done, left, created = 0, 0, {}
    for key in pending_keys(store):
        doc = load_pending(store, key)
        if doc is None or (final_only and not doc.get("final")):
            continue
        run_id, ops = doc.get("run_id"), list(doc["ops"])
        had_run = run_id is not None
        while ops:
            try:
                run_id = apply(client, ops[0], run_id)
            except Exception as exc:
                if not is_permanent(exc) or ops[0]["op"] == "start":
                    break
            ops.pop(0)
        if run_id is not None and not had_run and doc.get("trial_id"):
            created[str(doc["trial_id"])] = run_id
        extra = {k: v for k, v in doc.items() if k not in ("key", "run_id", "final", "ops")}
        save_pending(store, key, run_id, ops, final=bool(doc.get("final")), **extra)
        if ops:
            left += 1
        else:
            done += 1
    return done, left, created


def fill_run_ids(store: Any, created: Mapping[str, str]) -> int:
    """Rows written while the server was away have no ``mlflow_run_id``: fill it in from the
    runs the catch-up created (trial id -> run id). Returns how many rows changed."""
    filled = 0
    for trial_id, run_id in created.items():
        row = store.read_trial_row(trial_id)
        if row is not None and not row.get("mlflow_run_id"):
            row["mlflow_run_id"] = run_id
            store.write_trial_row(row)
            filled += 1
    return filled


def catch_up(store: Any, make_client: Callable[[], Any], wait_s: float) -> tuple[int, int]:
    """The driver at the end of a sweep: replay every saved file (ended trials, the parent's),
    trying again for up to ``wait_s`` seconds while the server is away. Returns (files still
    unsent (0: MLflow holds everything), rows whose ``mlflow_run_id`` was filled in)."""
    deadline = time.monotonic() + wait_s
    filled = 0
    while True:
        if not pending_keys(store):
            return 0, filled
        try:
            _, left, created = replay_pending(store, make_client(), final_only=False)
            filled += fill_run_ids(store, created)
        except Exception:
            left = len(pending_keys(store))
        if left == 0 or time.monotonic() >= deadline:
            return left, filled
        time.sleep(min(RETRY_EVERY_S, max(deadline - time.monotonic(), 0.0)))


#: the key of the parent run's queued MLflow writes (orchestrator.outbox)
PARENT_KEY = "_sweep"


def queue_parent(store: Any, parent: str, *ops: dict[str, Any]) -> None:
    """Writes to the parent run, sent with the trials' by :func:`_mlflow_catch_up`."""
    earlier = load_pending(store, PARENT_KEY) or {}
    queued = [*earlier.get("ops", []), *ops]
    save_pending(store, PARENT_KEY, parent, queued, final=True)
