"""Generate docs/reason-codes.md from the reject-reason enums (one per decision point).

Usage: ``python scripts/gen_reason_codes.py`` rewrites the text between the generated markers;
``--check`` exits 1, changing nothing, when the file is out of date (run by the test suite).
A member's meaning is the docstring written under it in the enum's source (read with ``ast``).
"""

from __future__ import annotations

import argparse
import ast
import enum
import inspect
import sys
from itertools import pairwise
from pathlib import Path

from fengkong.gate.events import OrderRejectReason
from fengkong.ledger.loans import LoanRejectReason
from fengkong.model.events import RejectReason

DOC = Path(__file__).resolve().parents[1] / "docs" / "reason-codes.md"
BEGIN = "<!-- BEGIN GENERATED: reason-codes (scripts/gen_reason_codes.py) -->"
END = "<!-- END GENERATED: reason-codes -->"
DECISION_POINTS: list[tuple[str, type[enum.Enum]]] = [
    ("Pre-trade gate: `OrderRejected.reason`", OrderRejectReason),
    ("Core (ledger, market, admin events): `Rejected.reason`", RejectReason),
    ("Spot-margin loans (ledger): `LoanRejected.reason`", LoanRejectReason),
]
HEADER = """# Reason codes

Every refusal names one code from the enum of its decision point, with the field and the value
that caused it. The tables below are generated from the enums; edit the enums, then run
`python scripts/gen_reason_codes.py` (a test fails while this file is out of date).

"""


def member_docs(cls: type[enum.Enum]) -> dict[str, str]:
    """Docstrings written directly under each member assignment in ``cls``'s source."""
    tree = ast.parse(inspect.getsource(cls))
    body = tree.body[0].body  # type: ignore[attr-defined]
    docs: dict[str, str] = {}
    for node, following in pairwise(body):
        if (
            isinstance(node, ast.Assign)
            and isinstance(node.targets[0], ast.Name)
            and isinstance(following, ast.Expr)
            and isinstance(following.value, ast.Constant)
            and isinstance(following.value.value, str)
        ):
            docs[node.targets[0].id] = " ".join(following.value.value.split())
    return docs


def render() -> str:
    lines = [BEGIN, ""]
    for title, cls in DECISION_POINTS:
        docs = member_docs(cls)
        lines += [
            f"## {title}",
            "",
            f"`{cls.__module__}.{cls.__qualname__}`, in the order the checks run"
            if cls is OrderRejectReason
            else f"`{cls.__module__}.{cls.__qualname__}`",
            "",
            "| # | code | meaning |",
            "|---|---|---|",
        ]
        for i, member in enumerate(cls, 1):
            meaning = docs.get(member.name, "").replace("|", "\\|")
            lines.append(f"| {i} | `{member.value}` | {meaning} |")
        lines.append("")
    lines.append(END)
    return "\n".join(lines)


def updated(text: str) -> str:
    """``text`` with the generated block replaced (or the whole page when it has none)."""
    if BEGIN in text and END in text:
        head, _, rest = text.partition(BEGIN)
        _, _, tail = rest.partition(END)
        return head + render() + tail
    return HEADER + render() + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="exit 1 if the file is stale")
    args = parser.parse_args(argv)
    current = DOC.read_text() if DOC.exists() else ""
    fresh = updated(current)
    if args.check:
        if fresh != current:
            print(f"{DOC} is out of date: run python scripts/gen_reason_codes.py")
            return 1
        return 0
    DOC.write_text(fresh)
    return 0


if __name__ == "__main__":
    sys.exit(main())
