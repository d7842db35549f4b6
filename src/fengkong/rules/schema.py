"""What the rule language knows about event kinds: field names, value types, semantics.

Types come from the event Structs themselves (every registered kind, including kinds other
components register later). A ``str`` field whose name is in :data:`DECIMAL_FIELDS` is a
decimal amount and has type ``number`` in rules (read as ``float``); an enum field has type
``str`` and its values are known, so a comparison with a misspelt value is a load error.
Fields named in :data:`SEMANTICS` carry a value kind (``user``, ``ip``, ``device``,
``address``, ``country``) that list membership is checked against. An optional field
(``T | None``, e.g. ``OrderRequest.price``, absent on a market order) has the type of ``T``
and ``optional`` set: a rule reads it only where ``has(event.NAME)`` proved it present, or
through ``coalesce`` (see :mod:`fengkong.rules.language`).
"""

from __future__ import annotations

import enum
import types
import typing
from dataclasses import dataclass

import msgspec

from fengkong.model.events import Event, event_types


class Type(enum.Enum):
    """Static types of rule expressions."""

    BOOL = "bool"
    INT = "int"
    NUMBER = "number"
    STR = "str"
    LIST = "list"  # a literal list, only as the right operand of ``in``
    LIST_REF = "list_ref"  # ``lists.NAME``, only as the right operand of ``in``
    ERROR = "error"  # an expression already reported; suppresses follow-on problems

    def __str__(self) -> str:
        return self.value


NUMERIC = frozenset({Type.INT, Type.NUMBER})

DECIMAL_FIELDS = frozenset(
    {
        "amount",
        "value_usd",
        "price",
        "qty",
        "rate",
        "mark_price",
        "maker_fee_rate",
        "taker_fee_rate",
    }
)

SEMANTICS: dict[str, str] = {
    "account": "user",
    "buyer": "user",
    "seller": "user",
    "from_account": "user",
    "to_account": "user",
    "ip": "ip",
    "device": "device",
    "address": "address",
    "country": "country",
}

VALUE_KINDS = ("user", "ip", "device", "address", "country")


@dataclass(frozen=True, slots=True)
class FieldType:
    """The rule-language view of one event field."""

    name: str
    type: Type
    decimal: bool = False
    enum_values: frozenset[str] | None = None
    semantic: str | None = None
    optional: bool = False  # ``T | None``: absent on some events of the kind


def _field_type(name: str, annotation: object) -> FieldType | None:
    inner = _optional(annotation)
    if inner is not None:
        field_type = _field_type(name, inner)
        if field_type is None:
            return None
        return FieldType(
            name,
            field_type.type,
            field_type.decimal,
            field_type.enum_values,
            field_type.semantic,
            optional=True,
        )
    semantic = SEMANTICS.get(name)
    if annotation is bool:
        return FieldType(name, Type.BOOL)
    if annotation is int:
        return FieldType(name, Type.INT)
    if annotation is float:
        return FieldType(name, Type.NUMBER)
    if isinstance(annotation, type) and issubclass(annotation, enum.StrEnum):
        values = frozenset(member.value for member in annotation)
        return FieldType(name, Type.STR, enum_values=values, semantic=semantic)
    if annotation is str:
        if name in DECIMAL_FIELDS:
            return FieldType(name, Type.NUMBER, decimal=True)
        return FieldType(name, Type.STR, semantic=semantic)
    return None  # container or other fields are not readable by rules


def _optional(annotation: object) -> object:
    """``T`` for an annotation ``T | None`` (or ``Optional[T]``), else ``None``."""
    if typing.get_origin(annotation) not in (typing.Union, types.UnionType):
        return None
    args = [a for a in typing.get_args(annotation) if a is not type(None)]
    if len(args) != 1 or len(typing.get_args(annotation)) != 2:
        return None
    return args[0]


def event_kind(name: str) -> type[Event] | None:
    """The registered event kind called ``name``."""
    for kind in event_types():
        if kind.__name__ == name:
            return kind
    return None


def event_kind_names() -> list[str]:
    return [kind.__name__ for kind in event_types()]


_FIELDS: dict[type, dict[str, FieldType]] = {}


def fields_of(kind: type[Event]) -> dict[str, FieldType]:
    """Readable fields of ``kind`` (``seq`` and ``id`` excluded; ``ts`` is an ``int``)."""
    cached = _FIELDS.get(kind)
    if cached is None:
        cached = {}
        for info in msgspec.structs.fields(kind):
            if info.name in ("seq", "id"):
                continue
            field_type = _field_type(info.name, info.type)
            if field_type is not None:
                cached[info.name] = field_type
        _FIELDS[kind] = cached
    return cached


def user_fields(kind: type[Event]) -> list[str]:
    """Fields naming accounts, in declaration order (the accounts a decision concerns)."""
    return [name for name, ft in fields_of(kind).items() if ft.semantic == "user"]
