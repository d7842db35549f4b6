"""Business events the rules decide on, rule-administration events, and decision outputs.

Input kinds owned by the rules component:

* decided on: :class:`Login`, :class:`SecurityChange`, :class:`ApiKeyCreated`,
  :class:`ApiKeyUsed`, :class:`WithdrawalRequest` (each answered by one :class:`Decision`);
* administration: :class:`RulePackLoaded`, :class:`RulePackRemoved`, :class:`ListEntryAdded`,
  :class:`ListEntryRemoved` (journaled like every event, so every rule and list change is
  part of the log and replays).

Events owned by other components (``Deposit``, ``Withdrawal``, ``Transfer``, ``Fill``,
``AccountOpened``, ...) are observed: they feed features and account facts.

``WithdrawalRequest`` is the request the rules decide on before the wallet pays; the
ledger's ``Withdrawal`` is the final debit. Amounts are decimal strings, as everywhere in
fengkong; rules judge them as floats (see ``docs/rules.md``), they never settle money.
"""

from __future__ import annotations

import enum

import msgspec

from fengkong.model.events import Event, Output, register_event, register_output
from fengkong.rules.outcomes import Outcome


class SecurityChangeKind(enum.StrEnum):
    """Which credential changed."""

    PASSWORD = "password"
    TWO_FACTOR = "two_factor"
    EMAIL = "email"
    PHONE = "phone"


# --- decided business events ----------------------------------------------------------------


@register_event
class Login(Event, tag=True):
    """A login attempt; ``success`` is false for a failed attempt."""

    account: str
    ip: str
    device: str
    country: str = ""
    success: bool = True


@register_event
class SecurityChange(Event, tag=True):
    """A credential change: password, 2FA, email or phone."""

    account: str
    change: SecurityChangeKind
    ip: str = ""
    device: str = ""


@register_event
class ApiKeyCreated(Event, tag=True):
    """A new API key with its permissions; ``ip_restricted`` when bound to an IP allow-list."""

    account: str
    key_id: str
    can_trade: bool = False
    can_withdraw: bool = False
    ip_restricted: bool = False
    ip: str = ""
    device: str = ""


@register_event
class ApiKeyUsed(Event, tag=True):
    """One authenticated API call; ``endpoint`` names the operation (``order``, ``withdraw``)."""

    account: str
    key_id: str
    ip: str
    endpoint: str


@register_event
class WithdrawalRequest(Event, tag=True):
    """A withdrawal the wallet asks permission for, before anything is paid.

    ``amount`` is in ``asset`` units; ``value_usd`` is the caller's valuation at request time
    (for judgement and cross-asset limits only). Both are positive decimal strings.
    """

    account: str
    asset: str
    amount: str
    value_usd: str
    address: str
    network: str
    ip: str = ""
    device: str = ""


# --- administration -------------------------------------------------------------------------


@register_event
class RulePackLoaded(Event, tag=True):
    """Load (or replace) the rule pack named inside ``pack_yaml``; it is compiled at once and
    becomes active between this event and the next, or is refused with every problem named."""

    pack_yaml: str
    author: str


@register_event
class RulePackRemoved(Event, tag=True):
    """Stop evaluating the named pack; its features are dropped, its lists' entries kept."""

    pack: str
    author: str


@register_event
class ListEntryAdded(Event, tag=True):
    """Add or replace ``value`` on a declared list; ``expires_ts`` 0 means no expiry."""

    list: str
    value: str
    reason: str
    author: str
    expires_ts: int = 0


@register_event
class ListEntryRemoved(Event, tag=True):
    """Remove ``value`` from a declared list (the journal keeps its history)."""

    list: str
    value: str
    reason: str
    author: str


# --- outputs --------------------------------------------------------------------------------


class FiredRule(msgspec.Struct, frozen=True, gc=False):
    """One rule that fired (or failed to evaluate), with the values it read.

    ``gc=False``: a record holds strings, numbers and lists of them, never a cycle, so the
    collector need not track the eight or so built per decision. Fields may be passed in
    order (the fused step does: no keyword matching).

    ``values`` are ``[name, value]`` pairs in the order the rule reads them, e.g.
    ``["event.amount", 12.5]``, ``["features.withdrawals_24h", 3]``. ``error`` is empty
    unless evaluating the rule raised (e.g. a division by zero); an erring active rule makes
    the decision at least ``review`` (fail closed).
    """

    pack: str
    rule: str
    mode: str
    outcome: Outcome
    score: int
    reason: str
    hold_hours: int
    values: list[list]
    error: str = ""


@register_output
class Decision(Output, tag=True):
    """The answer to one decided event.

    ``outcome`` is the most severe outcome of the active rules that fired (and of the score
    bands reached); ``hold_hours`` is the longest hold among them; ``score`` sums the active
    fired rules' scores; ``reasons`` lists their reason codes. ``shadow_outcome`` is what the
    decision would have been had the shadow rules been active. ``packs`` names every pack
    evaluated as ``name@version``; ``fired`` traces every active and shadow rule that fired.
    """

    event_type: str
    accounts: list[str]
    outcome: Outcome
    hold_hours: int
    score: int
    reasons: list[str]
    shadow_outcome: Outcome
    packs: list[str]
    fired: list[FiredRule]


@register_output
class RulePackActivated(Output, tag=True):
    """A pack version was compiled and is now active (``previous`` empty on first load)."""

    pack: str
    version: str
    previous: str
    digest: str
    rules: int
    features: int
    kept_features: list[str]


@register_output
class RulePackDeactivated(Output, tag=True):
    pack: str
    version: str


@register_output
class ListChanged(Output, tag=True):
    """A list entry was added, replaced or removed."""

    list: str
    value: str
    action: str
