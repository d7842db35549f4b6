"""The rules engine component: packs, features, lists and decisions inside the core.

Processing one decided event (``Login``, ``SecurityChange``, ``ApiKeyCreated``,
``ApiKeyUsed``, ``WithdrawalRequest``):

1. validate it (refused with a ``Rejected`` output, and nothing changed, if malformed);
2. advance the clock ``now`` to ``max(now, event.ts)``;
3. evaluate every active pack's rules for the kind: they read features *as they were before
   this event*, lists and account facts at ``now``;
4. fold the event into the packs' features;
5. answer with one :class:`~fengkong.rules.events.Decision`.

Events owned by other components are observed: they advance the clock and feed features
(and account facts, from ``AccountOpened``) only when a loaded pack uses their kind; for any
other kind the observer is a single dict lookup. Rules may be declared on observed kinds
(e.g. ``Fill`` for wash-trading surveillance); their decisions are returned by
:meth:`RulesComponent.apply` (backtests, ``rules test``) and by the observer.

Pack loads, removals and list changes are events, so they are journaled and replay. The
canonical state holds each pack's YAML source and its feature windows; restoring compiles
the packs again and reinstalls the windows, so a restored engine decides exactly as the
original would have.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable, Mapping
from operator import attrgetter
from typing import Any

from fengkong.engine.component import RejectError
from fengkong.model.events import AccountOpened, Event, Output, Rejected, RejectReason, event_types
from fengkong.model.fixed import FixedPointError, parse_units
from fengkong.rules.decide import assemble, fired_row, trace
from fengkong.rules.errors import PackError
from fengkong.rules.events import (
    ApiKeyCreated,
    ApiKeyUsed,
    Decision,
    ListChanged,
    ListEntryAdded,
    ListEntryRemoved,
    Login,
    RulePackActivated,
    RulePackDeactivated,
    RulePackLoaded,
    RulePackRemoved,
    SecurityChange,
    WithdrawalRequest,
)
from fengkong.rules.lists import Entry, ListStore, canonical, value_problem
from fengkong.rules.pack import CompiledPack, KindPlan, build_stores, load_pack, retire
from fengkong.rules.schema import fields_of, user_fields

DECIDED_KINDS: tuple[type[Event], ...] = (
    Login,
    SecurityChange,
    ApiKeyCreated,
    ApiKeyUsed,
    WithdrawalRequest,
)

# (pack, kind plan, evaluator, updater, tracers, rows): see CompiledPack
Route = tuple[CompiledPack, KindPlan | None, Callable | None, Callable | None, list, list]


class RulesComponent:
    """Engine component ``rules`` (see the module docstring)."""

    name = "rules"

    def __init__(self) -> None:
        self.packs: dict[str, CompiledPack] = {}
        self.lists = ListStore()
        self.accounts: dict[str, int] = {}  # account -> opened_ts
        self.now = 0
        self._routes: dict[type[Event], list[Route]] = {}
        self._solo: dict[type[Event], Callable] = {}  # kind -> the step of its only route
        self._scoring: dict[str, list] = {}
        self._labels: list[str] = []
        self._handlers = self.handlers()

    # --- component protocol ---------------------------------------------------------------

    def handlers(self) -> Mapping[type[Event], Callable[[Any], list[Output]]]:
        decided = dict.fromkeys(DECIDED_KINDS, self._decide)
        return {
            **decided,
            RulePackLoaded: self._load,
            RulePackRemoved: self._remove_pack,
            ListEntryAdded: self._add_entry,
            ListEntryRemoved: self._remove_entry,
        }

    def observers(self) -> Mapping[type[Event], Callable[[Any], Any]]:
        owned = set(self.handlers())
        observed = {kind: self._observe for kind in event_types() if kind not in owned}
        observed[AccountOpened] = self._account_opened
        return observed

    def canonical_state(self) -> Any:
        return {
            "now": self.now,
            "accounts": sorted(self.accounts.items()),
            "lists": self.lists.state(),
            "packs": [
                [
                    name,
                    pack.plan.source,
                    [[feature, store.state()] for feature, store in pack.stores.items()],
                ]
                for name, pack in sorted(self.packs.items())
            ],
        }

    def restore_state(self, data: Any) -> None:
        self.__init__()
        self.now = data["now"]
        self.accounts.update((account, ts) for account, ts in data["accounts"])
        self.lists.restore(data["lists"])
        for name, source, features in data["packs"]:
            plan = load_pack(source)
            stores, _ = build_stores(plan, None)
            for feature, state in features:
                stores[feature].restore(state)
            self.packs[name] = plan.bind(stores, self.lists.live, self.accounts, self.lists.ranges)
        self._reroute()

    # --- standalone use -------------------------------------------------------------------

    def apply(self, event: Event) -> list[Output]:
        """Process one event of any kind as the engine would, without the other components:
        owned kinds go to their handler (a refusal becomes a ``Rejected`` output), observed
        kinds to the observer, whose decisions are returned. Used by backtests and tests."""
        handler = self._handlers.get(type(event))
        if handler is None:
            if type(event) is AccountOpened:
                return self._account_opened(event)
            return self._observe(event)
        try:
            return handler(event)
        except RejectError as refusal:
            return [
                Rejected(
                    seq=event.seq,
                    id=event.id,
                    event_type=type(event).__name__,
                    reason=refusal.reason,
                    field=refusal.field,
                    value=str(refusal.value),
                    message=refusal.message,
                )
            ]

    # --- decisions ------------------------------------------------------------------------

    def _decide(self, event: Event) -> list[Output]:
        kind = type(event)
        info = _KINDS.get(kind) or _kind_info(kind)
        units = info.validate(event)  # see _validate
        if event.ts > self.now:
            self.now = event.ts
        solo = self._solo.get(kind)
        if solo is None:
            return [self._evaluate(event, self._routes.get(kind, ()), units, info)]
        # one pack decides this kind, with a fused step that resolved its own decision
        hits, errors, values, fired, result = solo(event, self.now, units)
        if errors is None and hits is not None:
            outcome, hold, score, reasons, shadow = result
            return [
                Decision(
                    seq=event.seq,
                    id=event.id,
                    event_type=info.name,
                    accounts=info.accounts(event),
                    outcome=outcome,
                    hold_hours=hold,
                    score=score,
                    reasons=reasons,
                    shadow_outcome=shadow,
                    packs=self._labels,
                    fired=fired,
                )
            ]
        pack, plan = self._routes[kind][0][:2]
        records = trace(pack, plan, hits, errors, values)
        rows = list(map(fired_row, records))
        return [
            assemble(
                event.seq,
                event.id,
                info.name,
                info.accounts(event),
                self._labels,
                records,
                rows,
                self._scoring,
            )
        ]

    def _observe(self, event: Event) -> list[Output]:
        kind = type(event)
        routes = self._routes.get(kind)
        if routes is None:
            return []
        if event.ts > self.now:
            self.now = event.ts
        if any(route[2] is not None for route in routes):
            return [self._evaluate(event, routes, None, _KINDS.get(kind) or _kind_info(kind))]
        self._update(event, routes, None)
        return []

    def _account_opened(self, event: AccountOpened) -> list[Output]:
        self.accounts.setdefault(event.account, event.ts)
        return self._observe(event)

    def _evaluate(
        self, event: Event, routes: list[Route], units: dict | None, info: _KindInfo
    ) -> Decision:
        """Evaluate every pack's rules for the event, fold it into the features, decide.
        A rule that fired without error costs its prebuilt tracer and row; only a failed
        evaluation goes through the generic :func:`trace`."""
        now = self.now
        fired: list = []
        rows: list = []
        for pack, plan, evaluate, _, tracers, rule_rows in routes:
            if evaluate is not None:
                hits, errors, values, records, _ = evaluate(event, now, units)
                if errors is None and hits is not None:
                    if records is not None:  # a fused step traced the rules that fired
                        fired.extend(records)
                        rows.extend([rule_rows[index] for index in hits])
                        continue
                    for index in hits:
                        fired.append(tracers[index](values))
                        rows.append(rule_rows[index])
                else:
                    records = trace(pack, plan, hits, errors, values)
                    fired.extend(records)
                    rows.extend(map(fired_row, records))
        for route in routes:
            update = route[3]
            if update is not None:
                update(event, now, units)
        return assemble(
            event.seq,
            event.id,
            info.name,
            info.accounts(event),
            self._labels,
            fired,
            rows,
            self._scoring,
        )

    def _update(self, event: Event, routes: list[Route], units: dict | None) -> None:
        now = self.now
        for route in routes:
            update = route[3]
            if update is not None:
                update(event, now, units)

    # --- packs ----------------------------------------------------------------------------

    def _load(self, event: RulePackLoaded) -> list[Output]:
        try:
            plan = load_pack(event.pack_yaml)
        except PackError as exc:
            raise RejectError(
                RejectReason.INVALID_PARAMETER, "pack_yaml", "", "; ".join(map(str, exc.problems))
            ) from None
        previous = self.packs.get(plan.name)
        if previous is not None and previous.plan.version == plan.version:
            raise RejectError(
                RejectReason.ALREADY_EXISTS,
                "version",
                plan.version,
                f"pack {plan.name!r} is already at version {plan.version!r}; versions are "
                "immutable, load a new one",
            )
        for name, spec in plan.lists.items():
            held = self.lists.value_kinds.get(name)
            if held not in (None, spec.value_kind) and self.lists.entries[name]:
                raise RejectError(
                    RejectReason.INVALID_PARAMETER,
                    f"lists.{name}.type",
                    spec.value_kind,
                    f"list {name!r} holds {len(self.lists.entries[name])} {held} entries",
                )
            other = self._list_declarer(name, exclude=plan.name)
            if other is not None and other.kind != spec.kind:
                raise RejectError(
                    RejectReason.INVALID_PARAMETER,
                    f"lists.{name}.kind",
                    spec.kind,
                    f"list {name!r} is declared {other.kind} by another pack",
                )
        if event.ts > self.now:
            self.now = event.ts
        stores, kept = build_stores(plan, previous)
        for name, spec in plan.lists.items():
            self.lists.declare(name, spec.value_kind)
            for seed in spec.entries:
                entry = Entry(
                    value=canonical(spec.value_kind, seed.value),
                    reason=seed.reason,
                    author=seed.author,
                    created_ts=event.ts,
                    expires_ts=seed.expires_ts,
                )
                self.lists.put(name, entry, self.now)
        self.packs[plan.name] = plan.bind(stores, self.lists.live, self.accounts, self.lists.ranges)
        self.packs = dict(sorted(self.packs.items()))
        self._reroute()
        if previous is not None:
            retire(previous, stores)
        return [
            RulePackActivated(
                seq=event.seq,
                id=event.id,
                pack=plan.name,
                version=plan.version,
                previous=previous.plan.version if previous else "",
                digest=plan.digest,
                rules=sum(1 for r in plan.rules if r.mode != "disabled"),
                features=len(plan.features),
                kept_features=kept,
            )
        ]

    def _remove_pack(self, event: RulePackRemoved) -> list[Output]:
        pack = self.packs.get(event.pack)
        if pack is None:
            raise RejectError(RejectReason.INVALID_PARAMETER, "pack", event.pack, "not loaded")
        del self.packs[event.pack]
        self._reroute()
        return [
            RulePackDeactivated(
                seq=event.seq, id=event.id, pack=event.pack, version=pack.plan.version
            )
        ]

    def _list_declarer(self, name: str, exclude: str = ""):
        for pack_name, pack in self.packs.items():
            if pack_name != exclude and name in pack.plan.lists:
                return pack.plan.lists[name]
        return None

    def _reroute(self) -> None:
        routes: dict[type[Event], list[Route]] = {}
        for pack in self.packs.values():
            plan = pack.plan
            for kind_name, kind_plan in plan.kinds.items():
                evaluate = pack.evaluators.get(kind_name)
                update = pack.updaters.get(kind_name)
                if evaluate is None and update is None:
                    continue
                step = pack.steps.get(kind_name)
                if step is not None:  # evaluates and updates
                    evaluate, update = step, None
                else:
                    update = pack.fast_updaters.get(kind_name, update)
                    if evaluate is not None:
                        evaluate = _ignoring_units(evaluate)
                kind = next(k for k in event_types() if k.__name__ == kind_name)
                tracers = pack.tracers.get(kind_name, [])
                rows = pack.rows.get(kind_name, [])
                routes.setdefault(kind, []).append(
                    (pack, kind_plan, evaluate, update, tracers, rows)
                )
        self._routes = routes
        self._solo = {
            kind: pack.steps[kind.__name__]
            for kind, [(pack, *_)] in ((k, r) for k, r in routes.items() if len(r) == 1)
            if kind.__name__ in pack.steps
        }
        self._scoring = {p.plan.label: p.plan.scoring for p in self.packs.values()}
        self._labels = [p.plan.label for p in self.packs.values()]

    # --- lists ----------------------------------------------------------------------------

    def _declared(self, event: ListEntryAdded | ListEntryRemoved):
        spec = self._list_declarer(event.list)
        if spec is None:
            raise RejectError(
                RejectReason.INVALID_PARAMETER, "list", event.list, "no loaded pack declares it"
            )
        for name in ("reason", "author"):
            if not getattr(event, name):
                raise RejectError(RejectReason.INVALID_PARAMETER, name, "", "required")
        return spec

    def _add_entry(self, event: ListEntryAdded) -> list[Output]:
        spec = self._declared(event)
        problem = value_problem(spec.value_kind, event.value)
        if problem:
            raise RejectError(RejectReason.INVALID_PARAMETER, "value", event.value, problem)
        if event.expires_ts < 0 or (event.expires_ts and event.expires_ts <= event.ts):
            raise RejectError(
                RejectReason.INVALID_PARAMETER,
                "expires_ts",
                event.expires_ts,
                "0 (never) or later than the event time",
            )
        if event.ts > self.now:
            self.now = event.ts
        value = canonical(spec.value_kind, event.value)
        entry = Entry(
            value=value,
            reason=event.reason,
            author=event.author,
            created_ts=event.ts,
            expires_ts=event.expires_ts,
        )
        self.lists.put(event.list, entry, self.now)
        return [
            ListChanged(seq=event.seq, id=event.id, list=event.list, value=value, action="added")
        ]

    def _remove_entry(self, event: ListEntryRemoved) -> list[Output]:
        spec = self._declared(event)
        value = event.value
        if not value_problem(spec.value_kind, value):  # an entry is kept in canonical text
            value = canonical(spec.value_kind, value)
        if value not in self.lists.entries[event.list]:
            raise RejectError(
                RejectReason.INVALID_PARAMETER, "value", event.value, "not on the list"
            )
        self.lists.remove(event.list, value)
        return [
            ListChanged(seq=event.seq, id=event.id, list=event.list, value=value, action="removed")
        ]


def _ignoring_units(evaluate: Callable) -> Callable:
    """An evaluator (``(ev, now)``) called as a step is (``(ev, now, units)``)."""

    def call(event: Event, now: int, units: dict | None) -> tuple:
        return (*evaluate(event, now), None, None)

    return call


class _KindInfo:
    """What deciding an event of one kind needs, worked out once per kind: its name, the
    fields to validate (decimal amounts and IP addresses, in declaration order) and the
    accounts it concerns."""

    __slots__ = ("accounts", "checks", "name", "needs_address", "validate")

    def __init__(self, kind: type[Event]) -> None:
        fields = fields_of(kind)
        self.name = kind.__name__
        self.checks = tuple(
            (name, field_type.decimal, field_type.optional)
            for name, field_type in fields.items()
            if field_type.decimal or field_type.semantic == "ip"
        )
        self.needs_address = issubclass(kind, WithdrawalRequest)
        self.validate = _validator(self)
        names = user_fields(kind)
        if not names:
            self.accounts = _no_accounts
        elif len(names) == 1:
            one = attrgetter(names[0])
            self.accounts = lambda event: [one(event)]
        else:
            many = attrgetter(*names)
            self.accounts = lambda event: list(many(event))


def _validator(info: _KindInfo) -> Callable[[Event], dict[str, int]]:
    """``validate(event) -> units`` for one kind: :func:`_validate_reference` unrolled over
    the kind's fields (field names come from the event schema, not from user text)."""
    lines = [
        "def validate(ev):",
        "    if not ev.account:",
        "        raise _RejectError(_INVALID, 'account', '', 'required')",
    ]
    decimals = []
    for name, decimal, optional in info.checks:
        if decimal:
            decimals.append(name)
            parse = f"_units({name!r}, ev.{name})"
            if optional:  # absent: None, as the update reads it (see pack._update_call)
                parse = f"None if ev.{name} is None else {parse}"
            lines.append(f"    d_{name} = {parse}")
        else:
            lines += [
                f"    value = ev.{name}",
                "    if value and not (type(value) is str and _ipv4(value)):",
                f"        _ip({name!r}, value)",
            ]
    if info.needs_address:
        lines += [
            "    if not ev.address:",
            "        raise _RejectError(_INVALID, 'address', '', 'required')",
        ]
    lines.append("    return {" + ", ".join(f"{n!r}: d_{n}" for n in decimals) + "}")
    namespace = {
        "_RejectError": RejectError,
        "_INVALID": RejectReason.INVALID_PARAMETER,
        "_units": _positive_units,
        "_ipv4": _IPV4.fullmatch,
        "_ip": _check_ip,
    }
    exec(
        compile("\n".join(lines) + "\n", f"<fengkong-rules:validate_{info.name}>", "exec"),
        namespace,
    )
    return namespace["validate"]


def _check_ip(name: str, value: object) -> None:
    try:
        ipaddress.ip_address(value)
    except ValueError:
        raise RejectError(
            RejectReason.INVALID_PARAMETER, name, value, "not an IP address"
        ) from None


def _no_accounts(event: Event) -> list[str]:
    return []


_KINDS: dict[type[Event], _KindInfo] = {}


def _kind_info(kind: type[Event]) -> _KindInfo:
    info = _KINDS[kind] = _KindInfo(kind)
    return info


def _validate(event: Event, info: _KindInfo) -> dict[str, int]:
    """Refuse a decided event with a missing account, a malformed amount or IP address;
    return its decimal fields parsed to 1e-18 units (the features' exact amounts).

    Runs the kind's generated validator (:func:`_validator`), the same checks in the same
    order as :func:`_validate_reference`, written out per field."""
    return info.validate(event)


def _validate_reference(event: Event, info: _KindInfo) -> dict[str, int]:
    """:func:`_validate` as a loop over the kind's checks (the generated validator's
    definition; a test compares the two)."""
    if not event.account:
        raise RejectError(RejectReason.INVALID_PARAMETER, "account", "", "required")
    units: dict[str, int] = {}
    for name, decimal, optional in info.checks:
        value = getattr(event, name)
        if decimal:
            units[name] = None if optional and value is None else _positive_units(name, value)
        elif value and not (type(value) is str and _IPV4.fullmatch(value)):
            try:
                ipaddress.ip_address(value)
            except ValueError:
                raise RejectError(
                    RejectReason.INVALID_PARAMETER, name, value, "not an IP address"
                ) from None
    if info.needs_address and not event.address:
        raise RejectError(RejectReason.INVALID_PARAMETER, "address", "", "required")
    return units


# A dotted-quad IPv4 address exactly as ``ipaddress.ip_address`` accepts it (ASCII digits,
# 0-255, no leading zeros): the common case, checked without ``ipaddress``; anything else
# (IPv6, or an invalid text) goes to ``ipaddress``, which decides.
_OCTET = r"(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])"
_IPV4 = re.compile(rf"{_OCTET}(?:\.{_OCTET}){{3}}")
# A positive-or-zero decimal text as ``parse_units`` accepts it; anything else (a sign, an
# exponent, a non-ASCII digit, a text over 40 characters) goes to ``parse_units``.
_DECIMAL = re.compile(r"(0|[1-9][0-9]*)(?:\.([0-9]+))?")
_SCALE = 18


def _positive_units(name: str, value: object) -> int:
    """``value`` in 1e-18 units, refused unless a decimal text above zero. The same result
    and refusals as ``parse_units(value, 18)`` followed by the sign check, with the common
    case parsed by one regular expression."""
    if type(value) is str and len(value) <= 40 and value.isascii():
        # ``_DECIMAL`` without the regular expression engine: on ASCII text ``isdigit`` is
        # ``[0-9]+`` (and false on ""), ``partition`` splits at the first dot (a second one
        # makes the fraction fail ``isdigit``)
        whole, dot, fraction = value.partition(".")
        if whole.isdigit() and (whole[0] != "0" or len(whole) == 1):
            if not dot:
                units = int(whole) * 10**_SCALE
            elif fraction.isdigit():
                fraction = fraction.rstrip("0")
                if len(fraction) > _SCALE:
                    return _positive_units_slow(name, value)
                units = int(whole + fraction.ljust(_SCALE, "0"))
            else:
                return _positive_units_slow(name, value)
            if units > 0:
                return units
            raise RejectError(RejectReason.NON_POSITIVE_AMOUNT, name, value, "must be > 0")
    return _positive_units_slow(name, value)


def _positive_units_slow(name: str, value: object) -> int:
    try:
        units = parse_units(value, _SCALE, field=name)
    except FixedPointError as exc:
        raise RejectError(RejectReason.INVALID_NUMBER, name, value, exc.reason) from None
    if not any(ch in "123456789" for ch in value) or value.startswith("-"):
        raise RejectError(RejectReason.NON_POSITIVE_AMOUNT, name, value, "must be > 0")
    return units
