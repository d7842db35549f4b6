"""docs/reason-codes.md is generated from the enums and must not drift from them."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from fengkong.gate.events import OrderRejectReason
from fengkong.ledger.loans import LoanRejectReason
from fengkong.model.events import RejectReason

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "scripts" / "gen_reason_codes.py"


def test_reason_codes_doc_is_up_to_date() -> None:
    done = subprocess.run(
        [sys.executable, str(SCRIPT), "--check"], capture_output=True, text=True, cwd=ROOT
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_every_code_of_every_enum_is_in_the_doc() -> None:
    text = (ROOT / "docs" / "reason-codes.md").read_text()
    for member in (*OrderRejectReason, *RejectReason, *LoanRejectReason):
        assert f"| `{member.value}` |" in text


def test_every_gate_reason_is_documented_in_its_enum() -> None:
    sys.path.insert(0, str(SCRIPT.parent))
    try:
        import gen_reason_codes
    finally:
        sys.path.remove(str(SCRIPT.parent))
    for enum in (OrderRejectReason, LoanRejectReason):
        docs = gen_reason_codes.member_docs(enum)
        assert [m.name for m in enum if not docs.get(m.name)] == []
