"""The fused executor (placeholder until the step kernels land)."""

from __future__ import annotations

from typing import Any


def unsupported(sampler: Any) -> str | None:
    return "no fused step kernel yet"
