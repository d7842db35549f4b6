"""Load-time problems of a rule pack: typed codes, a path, a position and a reason.

Every problem found while loading a pack is collected; :class:`PackError` carries them all
and is the only exception the loader raises for bad input (the documented error type).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass


class ProblemCode(enum.StrEnum):
    """Why a pack, a rule or an expression was refused."""

    SYNTAX = "syntax"
    TOO_LONG = "too_long"
    TOO_COMPLEX = "too_complex"
    DISALLOWED_CONSTRUCT = "disallowed_construct"
    DUNDER_NAME = "dunder_name"
    UNKNOWN_NAME = "unknown_name"
    UNKNOWN_FIELD = "unknown_field"
    UNKNOWN_FUNCTION = "unknown_function"
    UNKNOWN_FEATURE = "unknown_feature"
    UNKNOWN_LIST = "unknown_list"
    UNKNOWN_EVENT = "unknown_event"
    TYPE_MISMATCH = "type_mismatch"
    MAYBE_ABSENT = "maybe_absent"  # an optional field read where has() did not prove it
    BAD_LITERAL = "bad_literal"
    BAD_ARGUMENTS = "bad_arguments"
    BAD_VALUE = "bad_value"
    MISSING = "missing"
    UNEXPECTED = "unexpected"
    DUPLICATE = "duplicate"


@dataclass(frozen=True, slots=True)
class Problem:
    """One problem: ``path`` is where in the pack (``rules[3].if``), ``line``/``column`` the
    1-based position inside an expression (0 when the problem is not in an expression)."""

    path: str
    code: ProblemCode
    message: str
    line: int = 0
    column: int = 0

    def __str__(self) -> str:
        where = f" {self.line}:{self.column}" if self.line else ""
        return f"{self.path}{where}: {self.code.value}: {self.message}"


class PackError(ValueError):
    """A pack (or a lone expression) that cannot be loaded; ``problems`` lists every one."""

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = problems
        lines = "\n".join(str(p) for p in problems)
        super().__init__(f"{len(problems)} problem(s):\n{lines}")
