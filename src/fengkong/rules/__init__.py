"""Risk-control rules: a compiled rule language over real-time features, lists and decisions.

See ``docs/rules.md`` for the language reference and :mod:`fengkong.rules.component` for how
the component sits in the engine.
"""

from fengkong.rules.component import RulesComponent
from fengkong.rules.errors import PackError, Problem, ProblemCode
from fengkong.rules.events import (
    ApiKeyCreated,
    ApiKeyUsed,
    Decision,
    FiredRule,
    ListEntryAdded,
    ListEntryRemoved,
    Login,
    RulePackLoaded,
    RulePackRemoved,
    SecurityChange,
    SecurityChangeKind,
    WithdrawalRequest,
)
from fengkong.rules.outcomes import Outcome
from fengkong.rules.pack import PackPlan, load_pack

__all__ = [
    "ApiKeyCreated",
    "ApiKeyUsed",
    "Decision",
    "FiredRule",
    "ListEntryAdded",
    "ListEntryRemoved",
    "Login",
    "Outcome",
    "PackError",
    "PackPlan",
    "Problem",
    "ProblemCode",
    "RulePackLoaded",
    "RulePackRemoved",
    "RulesComponent",
    "SecurityChange",
    "SecurityChangeKind",
    "WithdrawalRequest",
    "load_pack",
]
