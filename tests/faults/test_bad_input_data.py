"""Damaged data files: IDX files (raw and gzipped) and CIFAR python
batches cut short, with bytes flipped or junk appended. Every load either reads the data or
raises ``DataUnavailable`` naming the damaged file; never another exception (a traceback),
never a hang. The specific cases (gzip bombs, forged headers, pickles carrying code) are in
tests/workloads/test_data_damaged.py."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.workloads.test_data import fake_cifar, fake_mnist, write_cifar, write_mnist
from workloads import data
from workloads.base import DataUnavailable

pytestmark = pytest.mark.faults

IDX = ["train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-labels-idx1-ubyte"]
CIFAR = ["data_batch_1", "test_batch"]


@st.composite
def damage(draw: st.DrawFn) -> tuple[str, Callable[[bytes], bytes]]:
    kind = draw(st.sampled_from(["truncate", "flip", "append", "zero-prefix"]))
    fraction = draw(st.floats(0.0, 1.0))
    junk = draw(st.binary(min_size=1, max_size=16))

    def apply(raw: bytes) -> bytes:
        at = int(fraction * max(len(raw) - 1, 0))
        if kind == "truncate":
            return raw[:at]
        if kind == "flip":
            return raw[:at] + bytes([raw[at] ^ junk[0] or 1]) + raw[at + 1 :]
        if kind == "append":
            return raw + junk
        return bytes(len(junk)) + raw[len(junk) :]

    return kind, apply


def test_damaged_idx_and_cifar_files_load_or_name_the_file(
    tmp_path: Path, fault_log: Callable[..., None]
) -> None:
    counts: Counter[str] = Counter()
    mnist_dir, cifar_dir = tmp_path / "mnist", tmp_path / "cifar"
    arrays, batches = fake_mnist(), fake_cifar("cifar10")

    @settings(
        max_examples=150,
        deadline=None,
        derandomize=True,
        database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
    )
    @given(
        st.sampled_from(["mnist", "cifar10"]),
        st.booleans(),
        st.sampled_from(range(len(IDX))),
        damage(),
    )
    def check(name: str, packed: bool, which: int, how: tuple[str, Callable]) -> None:
        if name == "mnist":
            write_mnist(mnist_dir, arrays, gz=packed)
            path = mnist_dir / (IDX[which] + (".gz" if packed else ""))
            root = mnist_dir
        else:
            write_cifar(cifar_dir, name, batches, as_tar=False)
            path = cifar_dir / "cifar-10-batches-py" / CIFAR[which % len(CIFAR)]
            root = cifar_dir
        path.write_bytes(how[1](path.read_bytes()))
        counts["tried"] += 1
        start = time.perf_counter()
        try:
            data.load_dataset(name, root)
        except DataUnavailable as exc:
            assert str(path) in str(exc) or str(root) in str(exc), str(exc)
            counts["refused"] += 1
        else:
            counts["loaded"] += 1
        assert time.perf_counter() - start < 5.0
        for p in (mnist_dir, cifar_dir):  # fresh files for the next example
            for f in p.rglob("*"):
                if f.is_file():
                    f.unlink()

    check()
    assert counts["refused"] > 0 and counts["loaded"] > 0
    fault_log(
        "bad input: damaged IDX / CIFAR files (cut, flipped, padded)",
        tried=counts["tried"],
        tracebacks=0,
        outcome=f"{counts['loaded']} still read, {counts['refused']} refused naming the file",
    )
