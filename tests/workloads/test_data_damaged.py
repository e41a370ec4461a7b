"""Damaged data files name the file (workloads/data.py): gzip bombs and corrupt streams, forged
IDX headers, wrong magic numbers, CIFAR batches whose arrays are not numbers, and pickles that
carry code inside an object array. Each raises ``DataUnavailable`` naming the file; none runs
anything or escapes as another exception."""

from __future__ import annotations

import gzip
import os
import pickle
from pathlib import Path

import numpy as np
import pytest

from tests.workloads.test_data import fake_cifar, fake_mnist, write_cifar, write_idx, write_mnist
from workloads import data
from workloads.base import DataUnavailable


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
