"""``parse_format``: a format string to its :class:`Format`, in plain Python (no torch), with
errors that name the string and the accepted spellings, so that a bad format is refused before
torch loads.
"""

from __future__ import annotations

import functools
import re

from lowprec.formats.base import Format
from lowprec.formats.classic import FP32, BlockFloat, FixedPoint, SmallFloat
from lowprec.formats.ocp import ELEMENTS, element
from lowprec.formats.scaled import NVFP4, SCALE_RULES, MXFormat, ScaledInt

_SPELLINGS = (
    "fixed<wl,fl>, block<wl>, block<wl,k>, float<exp,man>, fp32, an OCP element "
    "(fp8_e4m3, fp8_e5m2, fp6_e2m3, fp6_e3m2, fp4_e2m1), mx<E> or mx<E,K> (E an element or int8), "
    "nvfp4, nvfp4<t>, int<B> or int<B,gK>"
)
_MX_FORMS = (
    "mx<E>, mx<E,K> or mx<E,K,rule> with E one of fp8_e4m3, fp8_e5m2, fp6_e2m3, fp6_e3m2, "
    "fp4_e2m1, int8, K >= 1 (default 32) and rule floor (default), rceil or even"
)
_INT_FORMS = "int<B> (per row) or int<B,gK> (groups of K along the last dim), 2 <= B <= 24, K >= 1"
_PATTERN = re.compile(r"^([a-z0-9_]+)(?:<([^<>]*)>)?$")


def parse_format(spec: str | Format) -> Format:
    """The :class:`Format` a string names (a Format is returned as it is).

    Canonical strings round-trip: ``str(parse_format(s)) == s`` for ``fixed<8,3>``, ``block<8>``,
    ``block<8,32>``, ``float<5,2>`` and ``fp32``. Spaces and upper case are tolerated.
    Raises ``ValueError`` naming the string and what is wrong.
    """
    if isinstance(spec, Format):
        return spec
    if not isinstance(spec, str):
        raise ValueError(f"format {spec!r}: expected a string such as {_SPELLINGS}")
    return _parse(spec)


@functools.lru_cache(maxsize=256)
def _parse(spec: str) -> Format:
    text = spec.replace(" ", "").lower()
    match = _PATTERN.match(text)
    if match is None:
        raise ValueError(f"format {spec!r} does not parse; expected {_SPELLINGS}")
    family, args = match.group(1), match.group(2)
    if family in ELEMENTS:
        if args is not None:
            raise ValueError(f"format {spec!r}: {family} takes no parameters; write {family}")
        return element(family)
    if family in ("mx", "nvfp4", "int"):
        return _parse_scaled(spec, family, args)
    params: list[int] = []
    if args is not None:
        try:
            params = [int(a) for a in args.split(",")]
        except ValueError:
            raise ValueError(
                f"format {spec!r}: parameters must be integers, got <{args}>; expected {_SPELLINGS}"
            ) from None
    try:
        if family in ("fp32", "float32"):
            if args is not None:
                raise ValueError(f"format {spec!r}: fp32 takes no parameters; write fp32")
            return FP32()
        if family == "fixed":
            if len(params) != 2:
                raise ValueError(
                    f"format {spec!r}: fixed point needs two parameters fixed<wl,fl> "
                    "(word length, fractional bits), e.g. fixed<8,3>"
                )
            return FixedPoint(params[0], params[1])
        if family == "block":
            if len(params) not in (1, 2):
                raise ValueError(
                    f"format {spec!r}: block floating point is block<wl> (one exponent per "
                    "slice along dim 0) or block<wl,k> (per k values), e.g. block<8,32>"
                )
            return BlockFloat(*params)
        if family == "float":
            if len(params) != 2:
                raise ValueError(
                    f"format {spec!r}: a small float needs two parameters float<exp,man> "
                    "(exponent bits, mantissa bits), e.g. float<5,10>"
                )
            return SmallFloat(params[0], params[1])
    except ValueError as err:
        if str(err).startswith(f"format {spec!r}"):
            raise
        raise ValueError(f"format {spec!r}: {str(err).split(': ', 1)[-1]}") from None
    raise ValueError(f"format {spec!r}: unknown family {family!r}; expected {_SPELLINGS}")


def _parse_scaled(spec: str, family: str, args: str | None) -> Format:
    """``mx<...>``, ``nvfp4[<t>]`` and ``int<...>``; ``ValueError`` naming the accepted forms."""
    parts = [] if args is None else args.split(",")
    if family == "nvfp4":
        if args is None or parts == ["t"]:
            return NVFP4(per_tensor=args is not None)
        raise ValueError(
            f"format {spec!r}: expected nvfp4 (block scales only) or nvfp4<t> (with a float32 "
            "scale per tensor)"
        )
    if family == "mx":
        if not 1 <= len(parts) <= 3 or parts[0] not in (*ELEMENTS, "int8"):
            raise ValueError(f"format {spec!r}: expected {_MX_FORMS}")
        k, rule = 32, "floor"
        for part in parts[1:]:
            if part.isdigit() and k == 32 and rule == "floor":
                k = int(part)
            elif part in SCALE_RULES and rule == "floor":
                rule = part
            else:
                raise ValueError(f"format {spec!r}: expected {_MX_FORMS}")
        if k < 1:
            raise ValueError(f"format {spec!r}: block size K must be >= 1; expected {_MX_FORMS}")
        return MXFormat(parts[0], k, rule)
    # int
    if not 1 <= len(parts) <= 2 or not parts[0].isdigit():
        raise ValueError(f"format {spec!r}: expected {_INT_FORMS}")
    group = None
    if len(parts) == 2:
        if not (parts[1].startswith("g") and parts[1][1:].isdigit()):
            raise ValueError(f"format {spec!r}: expected {_INT_FORMS}")
        group = int(parts[1][1:])
    bits = int(parts[0])
    if not 2 <= bits <= 24:
        raise ValueError(f"format {spec!r}: integer bits B must be in 2..24; expected {_INT_FORMS}")
    if group is not None and group < 1:
        raise ValueError(f"format {spec!r}: group size K must be >= 1; expected {_INT_FORMS}")
    return ScaledInt(bits, group)
