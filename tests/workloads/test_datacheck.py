"""Is a trial's data here (workloads.datacheck), checked on the driver before a sweep starts:
files present with the right IDX headers pass; a missing directory, a wrong header, labels that
do not match the images, an empty CIFAR batch or an archive that is not gzip are refused naming
the key to change; the synthetic workloads and downloads are not checked."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from tests.workloads.test_data import fake_cifar, fake_mnist, write_cifar, write_mnist
from workloads.datacheck import MissingData, check_data, data_needs


def _mnist(data_dir: Path, **keys: object) -> dict:
    return {"workload": "mnist_mlp", "dataset": "mnist", "data_dir": str(data_dir), **keys}


def test_idx_files_with_their_headers_pass(tmp_path: Path) -> None:
    write_mnist(tmp_path, fake_mnist(), gz=True)
    check_data(_mnist(tmp_path))


def test_missing_idx_files_name_the_data_dir(tmp_path: Path) -> None:
    with pytest.raises(MissingData) as refused:
        check_data(_mnist(tmp_path / "nowhere"))
    assert refused.value.key == "data_dir" and str(refused.value).startswith("key 'data_dir': ")


def test_labels_that_do_not_match_the_images_are_refused(tmp_path: Path) -> None:
    arrays = fake_mnist()
    arrays["t10k-labels-idx1-ubyte"] = np.zeros(3, dtype=np.uint8)  # 7 test images, 3 labels
    write_mnist(tmp_path, arrays, gz=False)
    with pytest.raises(MissingData, match=r"t10k images have shape \[7, 28, 28\] and labels \[3\]"):
        check_data(_mnist(tmp_path))


def test_a_file_that_is_not_idx_is_refused_naming_it(tmp_path: Path) -> None:
    write_mnist(tmp_path, fake_mnist(), gz=False)
    (tmp_path / "train-labels-idx1-ubyte").write_bytes(b"GIF89a....")
    with pytest.raises(MissingData, match=r"train-labels-idx1-ubyte: not an IDX file"):
        check_data(_mnist(tmp_path))


def test_torchvisions_layout_is_found(tmp_path: Path) -> None:
    write_mnist(tmp_path / "MNIST" / "raw", fake_mnist(), gz=False)
    check_data(_mnist(tmp_path))


def test_cifar_batches_or_their_archive(tmp_path: Path) -> None:
    write_cifar(tmp_path / "dir", "cifar10", fake_cifar("cifar10"), as_tar=False)
    cifar = {"workload": "cifar_resnet18", "dataset": "cifar10"}
    check_data({**cifar, "data_dir": str(tmp_path / "dir")})
    write_cifar(tmp_path / "tar", "cifar10", fake_cifar("cifar10"), as_tar=True)
    check_data({**cifar, "data_dir": str(tmp_path / "tar")})
    (tmp_path / "dir" / "cifar-10-batches-py" / "data_batch_1").write_bytes(b"")
    with pytest.raises(MissingData, match="data_batch_1 empty; replace them"):
        check_data({**cifar, "data_dir": str(tmp_path / "dir")})
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "cifar-10-python.tar.gz").write_bytes(b"not gzip")
    with pytest.raises(MissingData, match="is not a gzip file"):
        check_data({**cifar, "data_dir": str(tmp_path / "bad")})
    with pytest.raises(MissingData, match="cifar10: not set"):
        check_data({**cifar, "data_dir": None})
    check_data({**cifar, "data_dir": None, "download": True})  # the trial fetches it


def test_what_a_trial_reads_groups_the_checks() -> None:
    assert data_needs({"workload": "gaussian", "data_dir": "/x"}) is None
    assert data_needs({"workload": "logreg", "dataset": "breast_cancer", "lr": 0.1}) == (
        "logreg", "breast_cancer"
    )  # fmt: skip
    a = _mnist(Path("/d"), lr=0.1, download=False, ood=False)
    assert data_needs(a) == data_needs({**a, "lr": 0.2, "seed": 3})
    assert data_needs(a) != data_needs({**a, "ood": True})
