"""The precision of one trial (ALGORITHMS.md §3) derived from the flat config keys of
``workloads/config/resolve.py``: the config layer's side of ``lowprec.PrecisionSpec`` (a typed
value).

Derivation (:func:`precision_from_config`):

- ``format`` is a family combined with ``bits`` or a full format string (then ``bits``,
  ``frac_bits``, ``exp_bits`` and ``block_size`` are not read):
  ``fixed``  -> ``fixed<bits, frac_bits>``, frac_bits default bits - 2 (range [-2, 2));
  ``block``  -> ``block<bits>`` (per slice along dim 0) or ``block<bits, block_size>``;
  ``float``  -> ``float<exp_bits, bits - 1 - exp_bits>``, exp_bits default 2 if bits <= 5,
  3 if bits <= 6, 4 if bits <= 9, 5 if bits <= 16, else 8;
  ``mx``     -> ``mx<fp4_e2m1>`` at bits 4, ``mx<fp6_e2m3>`` at 6, ``mx<fp8_e4m3>`` at 8 (blocks
  of 32; other elements, K and scale rules as a full string such as ``mx<fp8_e5m2,16>``);
  ``int``    -> ``int<bits>`` (a float32 scale per row; groups as ``int<4,g32>``);
  ``fp32``   -> ``fp32``.
  The OCP elements (``fp8_e4m3`` ...) and ``nvfp4`` are full format strings.
- ``tensors`` (default ``WG``) names the kinds that get that format: W weights, G gradients,
  A activations, E errors, M momentum. The others are ``fp32``, except momentum, which takes the
  weight format when ``accumulator`` is ``low`` or ``vc`` (the stored momentum is low precision
  like the stored weights).
- ``weight_format``, ``grad_format``, ``act_format``, ``error_format``, ``momentum_format``
  (full format strings) override per kind.
- ``scale_rule`` (``floor``, OCP's; ``rceil``; ``even``: torchao's names, ALGORITHMS.md §11)
  sets how every MX format of the trial takes its power-of-two scale (``mx<E>`` whichever kind
  it quantizes). A format string that names its own rule (``mx<fp8_e4m3,32,rceil>``) keeps it;
  a ``scale_rule`` other than ``floor`` that contradicts it is refused.
- ``accumulator`` ``low`` or ``vc`` needs low-precision weights (``PrecisionSpec`` checks).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

from lowprec.formats import (
    FP32,
    SCALE_RULES,
    BlockFloat,
    FixedPoint,
    Format,
    MXFormat,
    ScaledInt,
    SmallFloat,
    parse_format,
)
from lowprec.precision import ACCUMULATORS, ROUNDINGS, PrecisionSpec
from workloads.config.keyspec import FAMILIES, TENSOR_KINDS  # the keys' vocabulary, torch-free

__all__ = [
    "FAMILIES",
    "TENSOR_KINDS",
    "default_exp_bits",
    "precision_config",
    "precision_from_config",
]

#: the element of the ``mx`` family at ``bits`` (OCP's MXFP4, MXFP6 with E2M3, MXFP8 with E4M3)
MX_BY_BITS = {4: "fp4_e2m1", 6: "fp6_e2m3", 8: "fp8_e4m3"}

#: the defaults of the keys read here, for configs that leave them out (as keys.COMMON_KEYS)
DEFAULTS: dict[str, Any] = {
    "format": "fp32",
    "bits": 8,
    "tensors": "WG",
    "accumulator": "full",
    "rounding": "stochastic",
    "scale_rule": "floor",
}


def _key_error(key: str, value: Any, why: str) -> ValueError:
    return ValueError(f"key {key!r}: {value!r} {why}")


def default_exp_bits(bits: int) -> int:
    """Exponent bits of the ``float`` family at ``bits``: 2 up to 5 bits, 3 up to 6, 4 up to 9
    (float<4,3> at 8 bits, the FP8 E4M3 split), 5 up to 16 (half), else 8 (bfloat16 and up)."""
    if bits <= 5:
        return 2
    if bits <= 6:
        return 3
    if bits <= 9:
        return 4
    if bits <= 16:
        return 5
    return 8


def derived_format(config: Mapping[str, Any]) -> Format:
    """The format that ``format`` (+ ``bits`` and the family's keys) names."""
    family = config.get("format", DEFAULTS["format"])
    if isinstance(family, Format):
        return family
    if not isinstance(family, str):
        raise _key_error("format", family, f"is not a format family ({', '.join(FAMILIES)})")
    name = family.strip().lower()
    if name not in FAMILIES:
        try:
            return parse_format(family)
        except ValueError as err:
            raise ValueError(
                f"key 'format': {err}; or give a family ({', '.join(FAMILIES)}) with `bits`"
            ) from None
    if name == "fp32":
        return FP32()
    bits = config.get("bits", DEFAULTS["bits"])
    if isinstance(bits, bool) or not isinstance(bits, int) or bits < 2:
        raise _key_error("bits", bits, "must be an integer >= 2")
    if name == "fixed":
        frac = config.get("frac_bits")
        frac = bits - 2 if frac is None else frac
        try:
            return FixedPoint(bits, frac)
        except ValueError as err:
            raise _key_error(
                "frac_bits", frac, f"makes no format with bits={bits}: {err}"
            ) from None
    if name == "block":
        size = config.get("block_size")
        try:
            return BlockFloat(bits, size)
        except ValueError as err:
            raise _key_error("bits", bits, f"makes no block format: {err}") from None
    if name == "mx":
        if bits not in MX_BY_BITS:
            raise _key_error(
                "bits", bits, "makes no mx format: mx takes bits 4 (mx<fp4_e2m1>), "
                "6 (mx<fp6_e2m3>) or 8 (mx<fp8_e4m3>); other elements as a full format string, "
                "e.g. format: mx<fp8_e5m2>",
            )  # fmt: skip
        return MXFormat(MX_BY_BITS[bits])
    if name == "int":
        try:
            return ScaledInt(bits)
        except ValueError as err:
            raise _key_error("bits", bits, f"makes no int format: {err}") from None
    exp = config.get("exp_bits")
    exp = default_exp_bits(bits) if exp is None else exp
    man = bits - 1 - exp
    if man < 0:
        raise _key_error(
            "exp_bits", exp, f"leaves no mantissa: bits={bits} holds 1 sign + exp + man bits"
        )
    if exp > 8 or man > 23:
        raise _key_error(
            "bits",
            bits,
            f"with exp_bits={exp} gives float<{exp},{man}>, wider than float32 "
            "(at most 8 exponent and 23 mantissa bits)",
        )
    try:
        return SmallFloat(exp, man)
    except ValueError as err:
        raise _key_error("exp_bits", exp, f"makes no format with bits={bits}: {err}") from None


def precision_from_config(config: Mapping[str, Any]) -> PrecisionSpec:
    """The spec that the flat keys of ``config`` describe (module docstring); missing keys
    take their defaults. Raises ``ValueError`` naming the key."""

    def get(key: str) -> Any:
        return config.get(key, DEFAULTS.get(key))

    accumulator, rounding = get("accumulator"), get("rounding")
    if accumulator not in ACCUMULATORS:
        raise _key_error("accumulator", accumulator, f"is not one of {', '.join(ACCUMULATORS)}")
    if rounding not in ROUNDINGS:
        raise _key_error("rounding", rounding, f"is not one of {', '.join(ROUNDINGS)}")
    tensors = get("tensors")
    if not isinstance(tensors, str):
        raise _key_error("tensors", tensors, "must be a string of the letters W, G, A, E, M")
    bad = sorted(set(tensors) - set(TENSOR_KINDS))
    if bad:
        raise _key_error(
            "tensors",
            tensors,
            f"has unknown letter(s) {', '.join(bad)}; use W (weights), G (gradients), "
            "A (activations), E (errors), M (momentum), e.g. 'WG' or 'WGAE'",
        )
    derived = derived_format(config)
    formats: dict[str, Format] = {}
    for letter, (kind, key) in TENSOR_KINDS.items():
        override = config.get(key)
        if override is not None:
            try:
                formats[kind] = parse_format(override)
            except ValueError as err:
                raise ValueError(f"key {key!r}: {err}") from None
        elif letter in tensors:
            formats[kind] = derived
        elif letter == "M" and accumulator in ("low", "vc"):
            formats[kind] = formats["weight"]  # stored like the weights (W comes first)
        else:
            formats[kind] = FP32()
    rule = get("scale_rule")
    if rule not in SCALE_RULES:
        raise _key_error("scale_rule", rule, f"is not one of {', '.join(SCALE_RULES)}")
    for kind, fmt in formats.items():
        formats[kind] = with_scale_rule(fmt, rule)
    return PrecisionSpec(**formats, accumulator=accumulator, rounding=rounding)


def with_scale_rule(fmt: Format, rule: str) -> Format:
    """``fmt`` with the MX scale rule ``rule`` when it is an MX format that names none of its
    own (its rule is ``floor``, the default); other formats as they are. ``ValueError`` naming
    the key when ``fmt`` names a rule other than ``floor`` and ``rule`` another one."""
    if not isinstance(fmt, MXFormat) or fmt.scale_rule == rule:
        return fmt
    if fmt.scale_rule == "floor":
        return dataclasses.replace(fmt, scale_rule=rule)
    if rule == "floor":  # the format's own rule stands (floor is also the key's default)
        return fmt
    raise _key_error(
        "scale_rule",
        rule,
        f"contradicts the rule {fmt.scale_rule!r} that format {fmt} names; write the rule "
        "in one place",
    )


def precision_config(spec: PrecisionSpec) -> dict[str, str]:
    """The per-tensor override keys and the accumulator/rounding that rebuild ``spec``."""
    out = {key: str(getattr(spec, kind)) for kind, key in TENSOR_KINDS.values()}
    return {**out, "accumulator": spec.accumulator, "rounding": spec.rounding}


def precision_of(config: Mapping[str, Any]) -> PrecisionSpec:
    """The ``lowprec.PrecisionSpec`` of a filled or resolved config (irrelevant keys None);
    ``ValueError`` naming the key for a bad format or an impossible combination. Imports no
    torch."""
    return precision_from_config(derivation_view(config))


def derivation_view(c: Mapping[str, Any]) -> dict[str, Any]:
    """``c`` with the precision keys set to None (irrelevant) replaced by values that derive the
    same formats: no format taker -> fp32, nothing rounded -> stochastic, no MX format that
    takes a scale rule -> floor. Missing keys take
    their defaults."""
    view = {k: v for k, v in c.items() if not (k == "bits" and v is None)}
    for key, stands_in in (
        ("format", "fp32"),
        ("tensors", ""),
        ("rounding", "stochastic"),
        ("scale_rule", "floor"),  # no mx format takes it: floor changes none
    ):
        if key in view and view[key] is None:
            view[key] = stands_in
    return view
