"""The registry of functions a rule may call, with their types and inline code.

``in_list("name", value)`` is a special form of the checker (its first argument names a
list), not an entry here.

Each entry checks its argument types at load time and returns the Python code it compiles
to. Only the helpers in :data:`RUNTIME_GLOBALS` exist in compiled rule code; the compiled
module has no builtins at all.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from fengkong.rules.durations import DAY, HOUR, MINUTE
from fengkong.rules.lists import ip_member
from fengkong.rules.schema import NUMERIC, Type
from fengkong.rules.windows import Pair


def _safe_div(a: float, b: float) -> float:
    return a / b if b else 0.0


RUNTIME_GLOBALS: dict[str, object] = {
    "__builtins__": {},
    "_float": float,
    "_Error": Exception,
    "_abs": abs,
    "_min": min,
    "_max": max,
    "_len": len,
    "_safe_div": _safe_div,
    "_ip_member": ip_member,
    "_Pair": Pair,
}


@dataclass(frozen=True, slots=True)
class Arg:
    """A checked argument: its code, type and, for a string literal, its value."""

    code: str
    type: Type
    literal: object = None


Signature = Callable[[list[Arg]], "tuple[str, Type] | str"]


@dataclass(frozen=True, slots=True)
class Function:
    name: str
    synopsis: str
    doc: str
    compile: Signature


def _numeric_type(args: list[Arg]) -> Type:
    return Type.INT if all(a.type is Type.INT for a in args) else Type.NUMBER


def _abs(args: list[Arg]) -> tuple[str, Type] | str:
    if len(args) != 1 or args[0].type not in NUMERIC:
        return "abs takes one number"
    return f"_abs({args[0].code})", args[0].type


def _extremum(name: str) -> Signature:
    def compile_(args: list[Arg]) -> tuple[str, Type] | str:
        if len(args) < 2 or any(a.type not in NUMERIC for a in args):
            return f"{name} takes two or more numbers"
        return f"_{name}({', '.join(a.code for a in args)})", _numeric_type(args)

    return compile_


def _len(args: list[Arg]) -> tuple[str, Type] | str:
    if len(args) != 1 or args[0].type is not Type.STR:
        return "len takes one string"
    return f"_len({args[0].code})", Type.INT


def _since(unit_ms: int, name: str) -> Signature:
    def compile_(args: list[Arg]) -> tuple[str, Type] | str:
        if len(args) != 1 or args[0].type is not Type.INT:
            return f"{name} takes one integer timestamp in milliseconds"
        return f"((now - {args[0].code}) / {unit_ms})", Type.NUMBER

    return compile_


def _safe_div_sig(args: list[Arg]) -> tuple[str, Type] | str:
    if len(args) != 2 or any(a.type not in NUMERIC for a in args):
        return "safe_div takes two numbers"
    return f"_safe_div({args[0].code}, {args[1].code})", Type.NUMBER


def _lower(args: list[Arg]) -> tuple[str, Type] | str:
    if len(args) != 1 or args[0].type is not Type.STR:
        return "lower takes one string"
    return f"{args[0].code}.lower()", Type.STR


def _affix(method: str) -> Signature:
    def compile_(args: list[Arg]) -> tuple[str, Type] | str:
        if len(args) != 2 or any(a.type is not Type.STR for a in args):
            return f"{method} takes two strings"
        return f"{args[0].code}.{method}({args[1].code})", Type.BOOL

    return compile_


FUNCTIONS: dict[str, Function] = {
    f.name: f
    for f in (
        Function("abs", "abs(x)", "absolute value of a number", _abs),
        Function("min", "min(x, y, ...)", "smallest of two or more numbers", _extremum("min")),
        Function("max", "max(x, y, ...)", "largest of two or more numbers", _extremum("max")),
        Function("len", "len(s)", "length of a string", _len),
        Function(
            "minutes_since",
            "minutes_since(ts)",
            "minutes from timestamp ts (ms) to now",
            _since(MINUTE, "minutes_since"),
        ),
        Function(
            "hours_since",
            "hours_since(ts)",
            "hours from timestamp ts (ms) to now",
            _since(HOUR, "hours_since"),
        ),
        Function(
            "days_since",
            "days_since(ts)",
            "days from timestamp ts (ms) to now",
            _since(DAY, "days_since"),
        ),
        Function("safe_div", "safe_div(x, y)", "x / y, or 0.0 when y is 0", _safe_div_sig),
        Function("lower", "lower(s)", "s in lower case", _lower),
        Function(
            "startswith", "startswith(s, prefix)", "s begins with prefix", _affix("startswith")
        ),
        Function("endswith", "endswith(s, suffix)", "s ends with suffix", _affix("endswith")),
    )
}
