"""Feature declarations: validation, types, and the window store each one runs on."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from fengkong.rules.durations import DAY, SECOND, format_duration, parse_duration
from fengkong.rules.errors import Problem, ProblemCode
from fengkong.rules.flat.pool import FlatPool
from fengkong.rules.flat.windows import (
    FlatCountWindow,
    FlatDistinctWindow,
    FlatExtremumWindow,
    FlatLastWindow,
    FlatSumWindow,
)
from fengkong.rules.schema import NUMERIC, FieldType, Type, event_kind, fields_of
from fengkong.rules.windows import (
    DECIMAL_SCALE,
    ExtremumWindow,
    KeyedWindow,
    SumWindow,
)

AGGREGATIONS = ("count", "sum", "min", "max", "distinct", "last", "ratio")
MIN_WINDOW = SECOND
MAX_WINDOW = 30 * DAY
DEFAULT_BUCKETS = 60
MAX_BUCKETS = 10_000
DEFAULT_EXACT_LIMIT = 1_024
MAX_EXACT_LIMIT = 100_000
DEFAULT_MAX_KEYS = 1_000_000

_FEATURE_REF = re.compile(r"features\s*\.\s*([A-Za-z][A-Za-z0-9_]*)")
_NAME = re.compile(r"[a-z][a-z0-9_]{0,63}")


@dataclass(frozen=True, slots=True)
class FeatureSpec:
    """A validated feature declaration (``ratio`` features have no window of their own)."""

    name: str
    agg: str
    on: tuple[str, ...] = ()
    key: tuple[str, ...] = ()
    value: str | None = None
    window_ms: int = 0
    bucket_ms: int = 0
    where: str | None = None
    exact_limit: int = DEFAULT_EXACT_LIMIT
    max_keys: int = DEFAULT_MAX_KEYS
    default: Any = None
    ratio: tuple[str, str] | None = None
    value_type: Type = Type.INT
    value_field: FieldType | None = None
    key_types: tuple[Type, ...] = ()

    @property
    def buckets(self) -> int:
        return self.window_ms // self.bucket_ms if self.bucket_ms else 0

    def definition(self) -> dict:
        """The declaration as plain data (the basis of the feature's identity)."""
        return {
            "agg": self.agg,
            "on": list(self.on),
            "key": list(self.key),
            "value": self.value,
            "window": self.window_ms,
            "bucket": self.bucket_ms,
            "where": self.where,
            "exact_limit": self.exact_limit,
            "max_keys": self.max_keys,
            "default": self.default,
            "ratio": list(self.ratio) if self.ratio else None,
        }

    def referenced_features(self) -> list[str]:
        return sorted(set(_FEATURE_REF.findall(self.where or "")))


def fingerprint(name: str, specs: dict[str, FeatureSpec], _seen: frozenset = frozenset()) -> str:
    """Identity of a feature's state: its definition and those of the features its filter
    reads. A new pack version keeps the state of every feature whose fingerprint is equal."""
    spec = specs[name]
    nested = {
        ref: fingerprint(ref, specs, _seen | {name})
        for ref in spec.referenced_features()
        if ref in specs and ref not in _seen and ref != name
    }
    return json.dumps([spec.definition(), nested], sort_keys=True)


def parse_feature(name: str, raw: object, path: str, problems: list[Problem]) -> FeatureSpec | None:
    """Validate one ``features.NAME`` mapping; every problem goes to ``problems``."""
    start = len(problems)

    def bad(where: str, code: ProblemCode, message: str) -> None:
        problems.append(Problem(f"{path}.{where}" if where else path, code, message))

    if not _NAME.fullmatch(name):
        bad("", ProblemCode.BAD_VALUE, "a feature name is lower_snake_case, at most 64 chars")
    if not isinstance(raw, dict):
        bad("", ProblemCode.BAD_VALUE, "a feature is a mapping")
        return None
    allowed = {
        "agg",
        "on",
        "key",
        "value",
        "window",
        "bucket",
        "where",
        "exact_limit",
        "max_keys",
        "default",
        "ratio",
        "description",
    }
    for extra in sorted(set(raw) - allowed, key=str):
        bad(
            str(extra),
            ProblemCode.UNEXPECTED,
            f"unknown setting; known: {', '.join(sorted(allowed))}",
        )
    agg = raw.get("agg")
    if agg not in AGGREGATIONS:
        bad("agg", ProblemCode.BAD_VALUE, f"{agg!r}: one of {', '.join(AGGREGATIONS)}")
        return None
    if agg == "ratio":
        return _parse_ratio(name, raw, bad, problems, start)

    kinds = raw.get("on")
    kinds = [kinds] if isinstance(kinds, str) else kinds
    resolved = []
    if not isinstance(kinds, list) or not kinds:
        bad("on", ProblemCode.MISSING, "an event kind or a list of event kinds")
    else:
        for i, kind_name in enumerate(kinds):
            kind = event_kind(kind_name) if isinstance(kind_name, str) else None
            if kind is None:
                bad(f"on[{i}]", ProblemCode.UNKNOWN_EVENT, f"no event kind {kind_name!r}")
            else:
                resolved.append(kind)
    keys = raw.get("key")
    keys = [keys] if isinstance(keys, str) else keys
    if not isinstance(keys, list) or not 1 <= len(keys) <= 2:
        bad("key", ProblemCode.BAD_VALUE, "one event field or a pair of fields")
        keys = []
    key_types: list[Type] = []
    for i, key_field in enumerate(keys):
        types = _field_types(resolved, key_field, f"key[{i}]", bad)
        if types and types.type not in (Type.STR, Type.INT):
            bad(
                f"key[{i}]",
                ProblemCode.TYPE_MISMATCH,
                f"a key is a str or int field, not {types.type}",
            )
        key_types.append(types.type if types else Type.ERROR)

    value = raw.get("value")
    value_field: FieldType | None = None
    if agg == "count":
        if value is not None:
            bad("value", ProblemCode.UNEXPECTED, "count takes no value")
        value_type = Type.INT
    else:
        value_field = _field_types(resolved, value, "value", bad) if value is not None else None
        if value is None:
            bad("value", ProblemCode.MISSING, f"{agg} needs a value field")
        value_type = _value_type(agg, value_field, bad)

    window_ms = bucket_ms = 0
    try:
        window_ms = parse_duration(raw.get("window"))
        if not MIN_WINDOW <= window_ms <= MAX_WINDOW:
            bad("window", ProblemCode.BAD_VALUE, "from 1s to 30d")
    except ValueError as exc:
        bad("window", ProblemCode.BAD_VALUE, str(exc))
    if window_ms and "bucket" in raw:
        try:
            bucket_ms = parse_duration(raw["bucket"])
            if window_ms % bucket_ms or window_ms // bucket_ms > MAX_BUCKETS:
                bad(
                    "bucket",
                    ProblemCode.BAD_VALUE,
                    f"must divide the window into at most {MAX_BUCKETS} buckets",
                )
        except ValueError as exc:
            bad("bucket", ProblemCode.BAD_VALUE, str(exc))
    elif window_ms:
        count = max(n for n in range(1, DEFAULT_BUCKETS + 1) if window_ms % n == 0)
        bucket_ms = window_ms // count

    where = raw.get("where")
    if where is not None and not isinstance(where, str):
        bad("where", ProblemCode.BAD_VALUE, "a filter expression")
    exact_limit = _bounded_int(raw, "exact_limit", DEFAULT_EXACT_LIMIT, MAX_EXACT_LIMIT, bad)
    if "exact_limit" in raw and agg != "distinct":
        bad("exact_limit", ProblemCode.UNEXPECTED, "only distinct takes exact_limit")
    max_keys = _bounded_int(raw, "max_keys", DEFAULT_MAX_KEYS, 100 * DEFAULT_MAX_KEYS, bad)
    default = _default(agg, raw, value_type, bad)
    if len(problems) > start:
        return None
    return FeatureSpec(
        name=name,
        agg=agg,
        on=tuple(kind.__name__ for kind in resolved),
        key=tuple(keys),
        value=value,
        window_ms=window_ms,
        bucket_ms=bucket_ms,
        where=where,
        exact_limit=exact_limit,
        max_keys=max_keys,
        default=default,
        value_type=value_type,
        value_field=value_field,
        key_types=tuple(key_types),
    )


def _parse_ratio(name, raw, bad, problems, start) -> FeatureSpec | None:
    for extra in sorted(set(raw) - {"agg", "ratio", "description"}, key=str):
        bad(
            str(extra),
            ProblemCode.UNEXPECTED,
            "a ratio takes only 'ratio: [numerator, denominator]'",
        )
    pair = raw.get("ratio")
    if not (isinstance(pair, list) and len(pair) == 2 and all(isinstance(p, str) for p in pair)):
        bad("ratio", ProblemCode.BAD_VALUE, "[numerator_feature, denominator_feature]")
    if len(problems) > start:
        return None
    return FeatureSpec(name=name, agg="ratio", ratio=(pair[0], pair[1]), value_type=Type.NUMBER)


def _field_types(kinds, name, where, bad) -> FieldType | None:
    """The field ``name`` on every kind in ``kinds``; the same type is required on all."""
    if not isinstance(name, str):
        bad(where, ProblemCode.BAD_VALUE, "an event field name")
        return None
    found: FieldType | None = None
    for kind in kinds:
        field_type = fields_of(kind).get(name)
        if field_type is None:
            bad(where, ProblemCode.UNKNOWN_FIELD, f"{kind.__name__} has no readable field {name!r}")
            return None
        if found is not None and (found.type, found.decimal) != (
            field_type.type,
            field_type.decimal,
        ):
            bad(where, ProblemCode.TYPE_MISMATCH, f"{name!r} differs in type between event kinds")
            return None
        found = field_type
    return found


def _value_type(agg: str, field: FieldType | None, bad) -> Type:
    if field is None:
        return Type.ERROR
    if agg in ("sum", "min", "max"):
        if field.type not in NUMERIC:
            bad(
                "value", ProblemCode.TYPE_MISMATCH, f"{agg} needs a numeric field, not {field.type}"
            )
            return Type.ERROR
        return field.type
    if agg == "distinct":  # a decimal's values are its exact amounts: 1.50 is 1.5
        if field.type not in (Type.STR, Type.INT) and not field.decimal:
            bad(
                "value",
                ProblemCode.TYPE_MISMATCH,
                "distinct counts str, int or decimal-amount fields",
            )
        return Type.INT
    return field.type  # last


def _bounded_int(raw, name, default, maximum, bad) -> int:
    value = raw.get(name, default)
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= maximum:
        bad(name, ProblemCode.BAD_VALUE, f"an integer from 1 to {maximum}")
        return default
    return value


_ZERO = {Type.INT: 0, Type.NUMBER: 0.0, Type.STR: "", Type.BOOL: False}


def _default(agg, raw, value_type, bad) -> Any:
    if "default" not in raw:
        return _ZERO.get(value_type)
    if agg not in ("min", "max", "last"):
        bad("default", ProblemCode.UNEXPECTED, "only min, max and last take a default")
        return None
    value = raw["default"]
    expected = {Type.INT: (int,), Type.NUMBER: (int, float), Type.STR: (str,), Type.BOOL: (bool,)}
    ok = isinstance(value, expected.get(value_type, ())) and (
        value_type is Type.BOOL or not isinstance(value, bool)
    )
    if not ok:
        bad("default", ProblemCode.TYPE_MISMATCH, f"the default must be {value_type}")
        return None
    return float(value) if value_type is Type.NUMBER else value


def build_store(spec: FeatureSpec, pool: FlatPool | None = None) -> KeyedWindow:
    """A fresh window store for a (non-ratio) feature. Counts, distinct counts, last values,
    and sums, minimums and maximums of integer or decimal fields, keep their keys in
    ``pool`` (the pack's, see :mod:`fengkong.rules.flat`; a pool of their own if ``None``);
    sums, minimums and maximums of ``float`` fields stay Python objects. A distinct count's
    values share the pool's value table for their type (decimal amounts apart: their
    values are integers of 1e-18 units)."""
    decimal = spec.value_field is not None and spec.value_field.decimal
    scale = DECIMAL_SCALE if decimal else 1
    g, n, keys = spec.bucket_ms, spec.buckets, spec.max_keys
    if spec.agg == "count":
        return FlatCountWindow(g, n, keys, 1, pool or FlatPool(), spec.key)
    if spec.agg == "sum" and (decimal or spec.value_field.type is Type.INT):
        return FlatSumWindow(g, n, keys, scale, pool or FlatPool(), spec.key)
    if spec.agg == "sum":
        return SumWindow(g, n, keys, scale)
    if spec.agg in ("min", "max"):
        pick = min if spec.agg == "min" else max
        if decimal or spec.value_field.type is Type.INT:
            return FlatExtremumWindow(
                g, n, keys, scale, pick, spec.default, pool or FlatPool(), spec.key
            )
        return ExtremumWindow(g, n, keys, scale, pick, spec.default)
    if spec.agg == "distinct":
        kind = f"{spec.value_field.type}{'-decimal' if decimal else ''}"
        return FlatDistinctWindow(
            g, n, keys, spec.exact_limit, scale, pool or FlatPool(), spec.key, kind
        )
    return FlatLastWindow(g, n, keys, scale, spec.default, pool or FlatPool(), spec.key)


class RatioFeature:
    """``numerator / denominator`` of two features with the same key; 0.0 when the
    denominator is 0."""

    __slots__ = ("denominator", "numerator")

    def __init__(self, numerator: KeyedWindow, denominator: KeyedWindow) -> None:
        self.numerator = numerator
        self.denominator = denominator

    def read(self, key: Any, now: int) -> float:
        den = self.denominator.read(key, now)
        return self.numerator.read(key, now) / den if den else 0.0


def describe(spec: FeatureSpec) -> str:
    """One line for ``fengkong rules check``."""
    if spec.ratio:
        return f"ratio {spec.ratio[0]} / {spec.ratio[1]}"
    value = f"({spec.value})" if spec.value else ""
    return (
        f"{spec.agg}{value} of {'|'.join(spec.on)} by {', '.join(spec.key)} over "
        f"{format_duration(spec.window_ms)} in {spec.buckets} buckets of "
        f"{format_duration(spec.bucket_ms)}"
    )
