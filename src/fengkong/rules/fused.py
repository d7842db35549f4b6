"""The fused step: one function per pack and event kind that evaluates the rules and folds
the event into the features, with the window operations written inline.

The separate evaluator and updater (:mod:`fengkong.rules.codegen`) call each feature store's
``read`` and ``add``: per feature and event, two method calls, two dictionary lookups and the
bucket arithmetic twice. The step does the same operations, in the same order and with the
same effect on the stores, written into the generated code:

* the bucket index ``ts // g`` and the cutoff ``now // g - n`` are computed once per bucket
  width and window, not once per feature; the bucket's integer object is kept (``B_q*``) and
  reused while the bucket lasts, so that every key updated in it holds that one object, which
  stays in cache (a new object per event left each key's bucket numbers scattered: reading
  one, and writing its reference count, missed the cache);
* a feature read inlines the store's ``read`` and keeps the key's state in a local, and the
  update of the same feature with the same key later in the step reuses that state (no
  second lookup): between the two, nothing but that update can insert or remove the key;
* the reads' lookups come first, one after another, before any read uses a state: a lookup
  misses the cache two or three times (the table's index, its entry, the state), and
  lookups that do not wait on each other's results let the processor overlap those misses
  (8 of 10 alternating runs faster, the time against a fixed loop down 7 % in the last six:
  ``docs/benchmarks.md``); a lookup cannot raise or change a store, so its place does not
  change the result (a key computed from a read's value is looked up where the read is);
* the common cases of an update (a new key, the newest bucket again, a newer bucket) are
  inline; late events and full stores call the store's helpers, which are the ones its
  ``add`` uses;
* the flat stores (:mod:`fengkong.rules.flat`: counts, distinct counts, last values, and
  integer and decimal sums, minimums and maximums) are read and updated in one kernel
  call (:func:`~fengkong.rules.flat.keyed.decide`): the step passes each key's id and
  each amount or distinct value's id once, and after the call reads what the kernel left
  to it (a last value's value, a sketch).

Rules still read every feature as it was before the event (the updates come after every
rule), and filters (``where``) are evaluated before any update, as in the updater. If a
hoisted read raises, the step does what the evaluator and updater do: it answers
``(None, exc, ())`` and folds the event with the updater. A pack whose features share a
store object (a new version keeping one old store for two equal features) is not fused.

The reference for the step is the evaluator followed by the updater: a property test
(``tests/rules/test_fused.py``) decides random streams both ways and compares every
decision and the canonical state after every event.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import numba as nb
import numpy as np

from fengkong.rules.codegen import _compile
from fengkong.rules.events import FiredRule
from fengkong.rules.features import FeatureSpec
from fengkong.rules.flat import keyed, tally
from fengkong.rules.flat.windows import (
    FlatCountWindow,
    FlatDistinctWindow,
    FlatExtremumWindow,
    FlatLastWindow,
)
from fengkong.rules.outcomes import SEVERITY, Outcome
from fengkong.rules.windows import (
    _NEVER,
    CountWindow,
    ExtremumWindow,
    KeyedWindow,
    SumWindow,
    _append_queue,
    _expire_queue,
    _expire_tally,
    _insert_tally,
    _pop_newest,
    _Queue,
    _Tally,
    drain_owed,
)

HELPERS: dict[str, Any] = {
    "_NEVER": _NEVER,
    "_expire_tally": _expire_tally,
    "_insert_tally": _insert_tally,
    "_Tally": _Tally,
    "_expire_queue": _expire_queue,
    "_pop_newest": _pop_newest,
    "_append_queue": _append_queue,
    "_Queue": _Queue,
    "_drain_owed": drain_owed,
    "_divmod": divmod,
}


_HOISTED = re.compile(r"(?<![.\w'\"])v[0-9]+\b")
_KEY_LOCAL = re.compile(r"k[0-9]+")

# Every step and updater of a pack starts with the event's share of the sweeps the pack's
# stores owe (``_OWED``, one per pack: see ``KeyedWindow.defer``), before any read.
_OWING = ["    if _OWED:", "        _drain_owed(_OWED, now)"]


def fusable(stores: dict[str, KeyedWindow]) -> bool:
    """Whether every feature has its own store object (see the module docstring), and the
    flat stores one pool (one kernel call reaches them all)."""
    pools = {id(store.pool) for store in stores.values() if isinstance(store, FlatCountWindow)}
    return len({id(store) for store in stores.values()}) == len(stores) and len(pools) <= 1


class _Writer:
    """Accumulates the step's code; names the per-window and per-key locals."""

    def __init__(self, specs: dict[str, FeatureSpec], stores: dict[str, KeyedWindow]) -> None:
        self.specs = specs
        self.stores = stores
        self.head: list[str] = []
        self._quot: dict[int, str] = {}
        self._cut: dict[tuple[int, int], str] = {}
        self._idx: dict[int, str] = {}
        self._span: dict[tuple[int, int], str] = {}
        self._keys: dict[str, str] = {}
        self.namespace: dict[str, Any] = {}
        # flat stores (see _flat_collect, _flat_call): the key id locals per (table, key),
        # then (feature, id local, value local) per read and (feature, key local, tests,
        # amount) per update
        self.gids: dict[tuple[int, str], str] = {}
        self.flat_reads: list[tuple[str, str, str]] = []
        self.flat_updates: list[tuple[str, str, list[str], str]] = []
        self.flat_values: dict[int, str] = {}  # a last value's update -> its value's code
        self.flat_distinct: dict[int, str] = {}  # a distinct count's update -> its value's

    def store(self, name: str) -> tuple[str, str, KeyedWindow]:
        """Globals ``S_name`` (the store), ``D_name`` (its keys), and ``D_name_get`` /
        ``D_name_move`` bound to them: an ``OrderedDict`` has an instance ``__dict__``, so
        ``keys.get(...)`` cannot take the interpreter's fast method path; a bound method
        global is one load."""
        store = self.stores[name]
        self.namespace[f"S_{name}"] = store
        self.namespace[f"D_{name}"] = store.keys
        self.namespace[f"D_{name}_get"] = store.keys.get
        self.namespace[f"D_{name}_move"] = store.keys.move_to_end
        return f"S_{name}", f"D_{name}", store

    def cutoff(self, store: KeyedWindow) -> str:
        key = (store.g, store.n)
        local = self._cut.get(key)
        if local is None:
            quot = self._quot.get(store.g)
            if quot is None:
                quot = self._quot[store.g] = f"q{len(self._quot)}"
                shared = f"B_{quot}"
                self.namespace[shared] = [None]
                self.head += [
                    f"{quot} = now // {store.g!r}",
                    f"if {quot} == {shared}[0]:",
                    f"    {quot} = {shared}[0]",
                    "else:",
                    f"    {shared}[0] = {quot}",
                ]
            local = self._cut[key] = f"c{len(self._cut)}"
            self.head.append(f"{local} = {quot} - {store.n!r}")
        return local

    def index(self, store: KeyedWindow) -> str:
        """The event's bucket: ``now``'s when the event is not late (one division less)."""
        local = self._idx.get(store.g)
        if local is None:
            local = self._idx[store.g] = f"i{len(self._idx)}"
            quot = self._quot.get(store.g)
            if quot is None:
                self.head.append(f"{local} = ts // {store.g!r}")
            else:
                self.head.append(f"{local} = {quot} if ts == now else ts // {store.g!r}")
        return local

    def span(self, store: KeyedWindow) -> str:
        """The span of the event's bucket (``i // span``, see ``KeyedWindow``): a key whose
        newest bucket is in an earlier span moves to the back of the update order."""
        key = (store.g, store.span)
        local = self._span.get(key)
        if local is None:
            local = self._span[key] = f"o{len(self._span)}"
            self.head.append(f"{local} = {self.index(store)} // {store.span!r}")
        return local

    def flat(self, name: str) -> FlatCountWindow | None:
        store = self.stores[name]
        if not isinstance(store, FlatCountWindow):
            return None
        self.namespace["FP"] = store.pool
        return store

    def gid(self, store: FlatCountWindow, key: str) -> tuple[str, str | None]:
        """The local holding the id of ``key`` in ``store``'s key table, and the line that
        looks it up (``None``: an earlier line did)."""
        table = f"T{store.table.index}"
        local = self.gids.get((store.table.index, key))
        if local is not None:
            return local, None
        local = self.gids[(store.table.index, key)] = f"g{len(self.gids)}"
        self.namespace[table] = store.table
        self.namespace[f"{table}_get"] = store.table.ids.get
        return local, f"{local} = {table}_get({key}, -1)"

    def key(self, code: str) -> str:
        """A local holding the key ``code`` evaluates to (event fields, a pair, a literal),
        or the code itself when it reads a hoisted local (computed later, in order)."""
        if _HOISTED.search(code):
            return code
        local = self._keys.get(code)
        if local is None:
            local = self._keys[code] = f"k{len(self._keys)}"
            self.head.append(f"{local} = {code}")
        return local


def _scaled(code: str, scale: int) -> str:
    return f"{code} / {scale!r}" if scale != 1 else code


def _read(w: _Writer, name: str, key: str, out: str, state: str) -> list[str]:
    """Inline ``store.read(key, now)`` into ``out``, leaving the key's state in ``state``."""
    _, d_name, store = w.store(name)
    c = w.cutoff(store)
    lines = [f"{state} = {d_name}_get({key})"]
    if isinstance(store, CountWindow):  # count and sum
        empty = repr(0 / store.scale) if store.scale != 1 else "0"
        lines += [
            f"if {state} is None:",
            f"    {out} = {empty}",
            "else:",
            f"    if {state}.first <= {c}:",
            f"        _expire_tally({state}, {c})",
            f"    {out} = {_scaled(f'{state}.total', store.scale)}",
        ]
    elif isinstance(store, ExtremumWindow):  # a monotone queue: the oldest live pair
        w.namespace[f"X_{name}"] = store.default
        lines += [
            f"if {state} is None:",
            f"    {out} = X_{name}",
            "else:",
            f"    if {state}.first <= {c}:",
            f"        _expire_queue({state}, {c})",
            f"    if {state}.last == _NEVER:",
            f"        {out} = X_{name}",
            "    else:",
            f"        {out} = {_scaled(f'{state}.best', store.scale)}",
        ]
    else:  # pragma: no cover - every Python store class is handled above
        raise TypeError(type(store).__name__)
    return lines


def _settled(w: _Writer, name: str, state: str, key: str) -> list[str]:
    """After a fresh lookup (no read of the key in this step) in a store whose sweep may be
    owed: settle the store if the key may be one the sweep dropped (see
    ``KeyedWindow.defer``), and look again."""
    s_name, d_name, _ = w.store(name)
    return [
        f"if {state} is not None and {s_name}._owed and {s_name}.stale({state}):",
        f"    {s_name}.settle()",
        f"    {state} = {d_name}_get({key})",
    ]


def _update(w: _Writer, name: str, key: str, value: str, state: str, fresh: bool) -> list[str]:
    """Inline ``store.add(key, value, ts, now)`` for an event inside the window (the caller
    tests ``i > c``, and sweeps), given the key's state in ``state`` as the step's read of
    this feature left it (looked up here when ``fresh``: no read in this step)."""
    s_name, d_name, store = w.store(name)
    c = w.cutoff(store)
    i = w.index(store)
    room = [
        f"    if _len({d_name}) >= {store.max_keys!r}:",
        f"        {s_name}._make_room({c})",
    ]
    lines = [f"{state} = {d_name}_get({key})", *_settled(w, name, state, key)] if fresh else []
    o = w.span(store)
    if isinstance(store, CountWindow):  # CountWindow._fold, _push_tally inline
        amount = "1" if not isinstance(store, SumWindow) else value
        first = "1" if not isinstance(store, SumWindow) else f"0 + {value}"
        lines += [
            f"if {state} is None:",
            *room,
            f"    {d_name}[{key}] = _Tally({first}, {i}, {i}, {amount})",
            "else:",
            f"    n_ = {state}.last",
            f"    if n_ == {i}:",
            f"        {state}.amount += {amount}",
            f"    elif n_ > {i}:",
            f"        _insert_tally({state}, {i}, {amount})",
            "    else:",
            f"        if n_ // {store.span!r} < {o}:",
            f"            {d_name}_move({key})",
            "        if n_ == _NEVER:",
            f"            {state}.first = {i}",
            f"        elif {state}.older is None:",
            f"            {state}.older = {{n_: {state}.amount}}",
            "        else:",
            f"            {state}.older[n_] = {state}.amount",
            f"        {state}.last = {i}",
            f"        {state}.amount = {amount}",
            f"    {state}.total += {amount}",
        ]
    elif isinstance(store, ExtremumWindow):  # ExtremumWindow.add
        beats = "<=" if store.lowest else ">="
        lines += [
            f"if {state} is None:",
            *room,
            f"    {d_name}[{key}] = _Queue({i}, {i}, {value}, {value})",
            f"elif {state}.last > {i}:",
            f"    {s_name}._insert({state}, {i}, {value})",
            "else:",
            f"    if {state}.last // {store.span!r} < {o}:",
            f"        {d_name}_move({key})",
            f"    while {state}.last != _NEVER and {value} {beats} {state}.worst:",
            f"        _pop_newest({state})",
            f"    _append_queue({state}, {i}, {value})",
        ]
    else:  # pragma: no cover
        raise TypeError(type(store).__name__)
    return lines


def _indent(lines: list[str], spaces: int) -> list[str]:
    pad = " " * spaces
    return [pad + line for line in lines]


def step(
    name: str,
    plan: Any,
    specs: dict[str, FeatureSpec],
    stores: dict[str, KeyedWindow],
    namespace: dict[str, Any],
    fallback: Callable | None,
    label: str,
    scoring: list,
) -> Callable:
    """``name(ev, now, units=None) -> (hits, errors, values, fired, result)``: the evaluator
    of ``plan`` (a :class:`~fengkong.rules.pack.KindPlan`) followed by its updater, fused (see
    the module docstring); ``fallback`` is the updater, called when a hoisted read raises.

    ``fired`` holds the :class:`~fengkong.rules.events.FiredRule` of each rule in ``hits``
    (what the pack's tracers build), and ``result`` is ``(outcome, hold_hours, score,
    reasons, shadow_outcome)``: the decision had this pack (``label``, with its score bands
    ``scoring``) been the only one evaluated, meaningful when ``errors`` is ``None``."""
    w = _Writer(specs, stores)
    _flat_collect(w, plan)
    reads = plan.reads
    captured: dict[str, str] = {}  # feature -> local holding its state (own-key reads only)
    body: list[str] = []
    lookups: list[str] = []
    own_reads: list[str] = []  # features read with the store's own read (see _settled_first)
    for line, local in zip(reads.lines, reads.labels, strict=True):
        meta = reads.features.get(local)
        if meta is None or specs[meta[0]].ratio:
            own_reads += [meta[0]] if meta else []
            body.append(line)
            continue
        feature, key_code, own_key = meta
        state = f"s{local}"
        key = w.key(key_code)
        flat = w.flat(feature)
        if flat is not None and _KEY_LOCAL.fullmatch(key):  # read in the kernel call
            gid, lookup = w.gid(flat, key)
            lookups += [lookup] if lookup else []
            w.flat_reads.append((feature, gid, local))
            continue
        if flat is not None:  # a key computed from a read: the store's own read
            s_name, _, _ = w.store(feature)
            body.append(f"{local} = {s_name}.read({key}, now)")
            own_reads.append(feature)
            continue
        read = _read(w, feature, key, local, state)
        if _KEY_LOCAL.fullmatch(key):
            lookups.append(read.pop(0))
        body += read
        if own_key:
            captured.setdefault(feature, state)
    body[:0] = lookups
    # the flat stores' kernel call, after every read that may raise (its fallback, the
    # updater, folds the event): with the updates when no filter reads a feature
    early = bool(w.flat_reads) and not plan.update_reads.features
    if early:
        body += _early_inputs(w, plan)
        body += _flat_call(w, keyed.READS | keyed.UPDATES | keyed.FIRST)
    elif w.flat_reads:
        body += _flat_call(w, keyed.READS | keyed.FIRST)
    lines = [f"def {name}(ev, now, units=None):", "    ts = ev.ts", None, *_OWING]
    filters = [feature for feature, _, _ in plan.update_reads.features.values()]
    lines += _settled_first(w, [*own_reads, *filters])
    lines.append("    try:")
    lines += _indent(body, 8) or ["        pass"]
    lines += ["    except _Error as exc:"]
    if fallback is not None:
        lines.append("        _FALLBACK(ev, now, units)")
    lines += [
        "        return None, exc, (), None, None",
        "    hits = []",
        "    hit = hits.append",
        "    errors = None",
        "    fired = []",
        "    fire = fired.append",
        "    reasons = []",
        "    ra = rs = sa = ss = hold = 0",
    ]
    rule_code, rule_names = _rules(plan, label)
    lines += rule_code
    labels = list(reads.labels)
    result = "hits, errors, values, fired, result"
    lines.append(f"    values = ({', '.join(labels)}{',' if labels else ''})")
    lines += _resolution(scoring)
    lines += _update_section(w, plan, captured, result, early)
    lines.append(f"    return {result}")
    lines[2] = "\n".join(_indent(w.head, 4)) if w.head else "    pass"
    _flat_plan(w)
    namespace = {**namespace, **reads.constants, **plan.update_reads.constants, **rule_names}
    namespace.update(HELPERS)
    namespace.update(w.namespace)
    namespace["_FALLBACK"] = fallback
    return _compile(name, lines, namespace)


def _settled_first(w: _Writer, features: list[str]) -> list[str]:
    """Settle, before the key ids are looked up, the owed sweeps of the flat stores among
    ``features`` (those the step reads with the store's own ``read``, or through a ratio):
    such a read settles its store first (as the Python stores' reads do), which lets go of
    ids, and the ids the step looked up before it would be stale in the kernel call after
    it."""
    parts = [part for feature in features for part in w.specs[feature].ratio or (feature,)]
    lines = []
    for part in dict.fromkeys(parts):
        store = w.flat(part)
        if store is not None:
            w.namespace[f"S_{part}"] = store
            lines += [
                f"    if FP.st.item({store.slot!r}, {keyed.OWED!r}):",
                f"        S_{part}.settle()",
            ]
    return lines


def _rules(plan: Any, label: str) -> tuple[list[str], dict[str, Any]]:
    """Each rule's test; a rule that fired is listed in ``hits``, traced into ``fired`` and
    folded into the running resolution (as :func:`fengkong.rules.decide._resolve` would
    fold its row): ``ra``/``rs`` the most severe active/shadow rank, ``sa``/``ss`` the
    active/all scores, ``hold`` the longest active hold, ``reasons`` the active reasons."""
    reads = plan.reads
    names: dict[str, Any] = {"_FR": FiredRule, "_OUTCOMES": list(Outcome)}
    active_reasons = [r.reason for r in plan.rules if r.mode == "active"]
    lines, conditions = _shared_atoms(plan.conditions, reads.optional)
    for index, (rule, condition) in enumerate(zip(plan.rules, conditions, strict=True)):
        names[f"_RO{index}"] = rule.outcome
        pairs = ", ".join(f"[{reads.labels[local]!r}, {local}]" for local in plan.traces[index])
        record = (  # positional, in FiredRule's field order
            f"_FR({label!r}, {rule.name!r}, {rule.mode!r}, _RO{index}, {int(rule.score)!r}, "
            f"{rule.reason!r}, {int(rule.hold_hours)!r}, [{pairs}])"
        )
        rank = SEVERITY[rule.outcome]
        body = [f"hit({index})", f"fire({record})"]
        if rule.score:
            body.append(f"ss += {int(rule.score)!r}")
        if rule.mode == "active":
            if rule.score:
                body.append(f"sa += {int(rule.score)!r}")
            if rank:
                body += [f"if ra < {rank}:", f"    ra = {rank}"]
            if rule.outcome is Outcome.HOLD_WITHDRAWAL:
                body += [
                    f"if hold < {int(rule.hold_hours)!r}:",
                    f"    hold = {int(rule.hold_hours)!r}",
                ]
            if active_reasons.count(rule.reason) > 1:
                body += [
                    f"if {rule.reason!r} not in reasons:",
                    f"    reasons.append({rule.reason!r})",
                ]
            else:
                body.append(f"reasons.append({rule.reason!r})")
        elif rank:
            body += [f"if rs < {rank}:", f"    rs = {rank}"]
        lines += [
            "    try:",
            f"        if {condition}:",
            *_indent(body, 12),
            "    except _Error as exc:",
            f"        errors = (errors or []) + [({index}, exc)]",
        ]
    return lines, names


# A comparison of a hoisted read with a literal or a literal set: it cannot raise (the
# checker admits ordering comparisons of numbers only, ``==`` of like with like, membership
# of a string in a set of strings) and has no effect, so computing it once before the rules
# is the same as computing it in each rule that contains it. Not for the read of an optional
# field: it is None where the field is absent, and only the rule's own guard keeps a
# comparison from seeing that.
_ATOM = re.compile(
    r"\((v[0-9]+) (==|!=|<=|>=|<|>|in|not in) "
    r"(K[0-9]+|'[^'\\()]*'|-?[0-9]+(?:\.[0-9]+)?(?:e[+-]?[0-9]+)?)\)"
)


def _shared_atoms(conditions: list[str], optional: set[str]) -> tuple[list[str], list[str]]:
    """Lines computing each atom (see ``_ATOM``) that two or more conditions contain into a
    local ``b<n>``, and the conditions reading those locals; ``optional``: the locals of
    optional fields, whose atoms are left in place."""
    counts: dict[str, int] = {}
    for condition in conditions:
        found = {m.group(0) for m in _ATOM.finditer(condition) if m.group(1) not in optional}
        for atom in found:
            counts[atom] = counts.get(atom, 0) + 1
    shared = {atom: f"b{i}" for i, atom in enumerate(a for a, n in counts.items() if n > 1)}
    if not shared:
        return [], list(conditions)
    pattern = re.compile("|".join(map(re.escape, sorted(shared, key=len, reverse=True))))
    lines = [f"    {local} = {atom}" for atom, local in shared.items()]
    return lines, [pattern.sub(lambda m: shared[m.group(0)], c) for c in conditions]


def _resolution(scoring: list) -> list[str]:
    """``result`` from the running resolution, with the pack's score bands (highest first:
    the first band reached raises the outcome and adds its reason)."""
    lines = ["    if ra > rs:", "        rs = ra"]
    for total, rank_name, reason in (("sa", "ra", True), ("ss", "rs", False)):
        keyword = "if"
        for min_score, band in reversed(scoring):
            rank = SEVERITY[band]
            lines += [
                f"    {keyword} {total} >= {int(min_score)!r}:",
                f"        if {rank_name} < {rank}:",
                f"            {rank_name} = {rank}",
            ]
            if reason:
                lines.append(f"        reasons.append('score_at_least_{int(min_score)}')")
            keyword = "elif"
    lines += [
        "    if ra > rs:",
        "        rs = ra",
        "    result = (_OUTCOMES[ra], hold, sa, reasons, _OUTCOMES[rs])",
    ]
    return lines


def updater(
    name: str,
    plan: Any,
    specs: dict[str, FeatureSpec],
    stores: dict[str, KeyedWindow],
    namespace: dict[str, Any],
) -> Callable:
    """``name(ev, now, units=None)``: the updater of ``plan`` with the window operations
    inline (for kinds that feed features and have no rules)."""
    w = _Writer(specs, stores)
    _flat_collect(w, plan)
    lines = [f"def {name}(ev, now, units=None):", "    ts = ev.ts", None, *_OWING]
    lines += _update_section(w, plan, {}, "", False)
    lines[2] = "\n".join(_indent(w.head, 4)) if w.head else "    pass"
    _flat_plan(w)
    namespace = {**namespace, **plan.update_reads.constants}
    namespace.update(HELPERS)
    namespace.update(w.namespace)
    return _compile(name, lines, namespace)


def _update_section(
    w: _Writer, plan: Any, captured: dict[str, str], result: str, early: bool
) -> list[str]:
    """The updater's reads and filters (as :func:`codegen.updater` orders them), then the
    updates grouped by window (the adds touch one store each, so their order is free), then
    the sweeps: the reference sweeps a store at the end of each of its adds when the cutoff
    passed its last sweep; here, per window, a cell ``G`` holds a lower bound of the group's
    last sweeps, so the common case is one comparison per window, and a store is swept, as
    in the reference, only if its add ran in this step: owed, its keys popped over the next
    events (``KeyedWindow.defer``). With ``early``, the reads and
    filters were evaluated before the rules (see :func:`_early_inputs`), and the flat
    stores' updates made there."""
    if early:
        lines = ["    if _skip:", f"        return {result}".rstrip()]
    else:
        lines = _update_inputs(plan, f"return {result}".rstrip(), 4)
    # per window (bucket and cutoff locals): (tests, store global, update lines)
    groups: dict[tuple[str, str], list[tuple[list[str], str, list[str]]]] = {}
    for index, ((condition, guard, _, _), (feature, key_code, value_code)) in enumerate(
        zip(plan.updates, plan.update_specs, strict=True)
    ):
        tests = [f"p{index}"] if condition else []
        tests += [w.key(term.strip()) for term in guard.split(" and ") if term.strip()]
        if value_code.startswith("ev."):
            value_code = w.key(value_code)
        key = w.key(key_code)
        if w.flat(feature) is not None:  # folded in the kernel call (_flat_collect)
            continue
        state = captured.get(feature)
        fresh = state is None
        if fresh:
            state = "s_"
        _, _, store = w.store(feature)
        body = _update(w, feature, key, value_code, state, fresh)
        window = (w.index(store), w.cutoff(store))
        groups.setdefault(window, []).append((tests, f"S_{feature}", body))
    for (i, c), updates in groups.items():
        lines.append(f"    if {i} > {c}:")
        for tests, _, body in updates:
            if tests:
                lines.append(f"        if {' and '.join(tests)}:")
                lines += _indent(body, 12)
            else:
                lines += _indent(body, 8)
    if w.flat_updates and not early:
        lines += _indent(_flat_inputs(w), 4)
        lines += _indent(_flat_call(w, keyed.UPDATES | (0 if w.flat_reads else keyed.FIRST)), 4)
    for (i, c), updates in groups.items():
        cell = f"G_{c}"
        w.namespace[cell] = [_NEVER]
        lines.append(f"    if {c} > {cell}[0]:")
        for tests, store, _ in updates:
            ran = " and ".join([*tests, f"{i} > {c}", f"{c} > {store}._swept"])
            lines.append(f"        if {ran}:")
            lines.append(f"            _OWED[{store}] = {store}.defer({c})")
        swept = [f"{store}._swept" for _, store, _ in updates]
        lowest = swept[0] if len(swept) == 1 else f"_min({', '.join(swept)})"
        lines.append(f"        {cell}[0] = {lowest}")
    return lines


# --- flat stores (fengkong.rules.flat): one kernel call for the reads and updates ---------


def _update_inputs(plan: Any, on_error: str, indent: int) -> list[str]:
    """The updater's reads (``on_error`` runs if one raises) and filters, in its order."""
    pad = " " * indent
    lines = [f"{pad}try:"]
    lines += [f"{pad}    {line}" for line in plan.update_reads.lines] or [f"{pad}    pass"]
    lines += [f"{pad}except _Error:", f"{pad}    {on_error}"]
    for index, (condition, _, _, _) in enumerate(plan.updates):
        if condition is not None:
            lines += [
                f"{pad}try:",
                f"{pad}    p{index} = {condition}",
                f"{pad}except _Error:",
                f"{pad}    p{index} = False",
            ]
    return lines


def _flat_collect(w: _Writer, plan: Any) -> None:
    """The flat features' updates of ``plan``: (feature, key local, tests, amount code)."""
    for index, ((condition, guard, _, _), (feature, key_code, value_code)) in enumerate(
        zip(plan.updates, plan.update_specs, strict=True)
    ):
        store = w.flat(feature)
        if store is None:
            continue
        tests = [f"p{index}"] if condition else []
        tests += [w.key(term.strip()) for term in guard.split(" and ") if term.strip()]
        if value_code.startswith("ev."):
            value_code = w.key(value_code)
        amount = value_code
        if type(store) is FlatCountWindow or isinstance(store, FlatLastWindow):
            amount = "1"
        if isinstance(store, FlatLastWindow):  # kept by the step if the row takes the event
            w.flat_values[len(w.flat_updates)] = value_code
        if isinstance(store, FlatDistinctWindow):  # passed as its id; a sketch's, after
            w.flat_distinct[len(w.flat_updates)] = value_code
        w.flat_updates.append((feature, w.key(key_code), tests, amount))


def _early_inputs(w: _Writer, plan: Any) -> list[str]:
    """Before the rules, for one kernel call with the reads: the updater's reads and filters
    (``_skip`` when a read raised: no update runs, as when the updater stops there) and the
    flat updates' inputs. Both depend on the event alone (no filter reads a feature)."""
    lines = ["_skip = True", *_update_inputs(plan, "pass", 0)[:-2]]
    lines += ["    _skip = False", "except _Error:", "    pass"]
    if not w.flat_updates:
        return lines
    runs, words, vids, _ = _flat_names(w)
    return [
        *lines,
        "if _skip:",
        f"    {' = '.join([*runs, *vids])} = -1",
        *[f"    {hi} = {lo} = 0" for hi, lo in words.values()],
        "else:",
        *_indent(_flat_inputs(w), 4),
    ]


def _flat_names(
    w: _Writer,
) -> tuple[
    dict[str, tuple[str, str]],
    dict[str, tuple[str, str]],
    dict[str, tuple[int, str]],
    list[tuple[str, str, str]],
]:
    """The locals the flat updates' arguments are in, each computed once however many
    updates share it: per distinct (key, filter and guard), the key's id if the update runs,
    else -1 (``fu<n>``: its id expression and its tests); per distinct amount, its two words
    (``fh<n>``, ``fl<n>``); per distinct count's value (and value table), its id (``fv<n>``:
    the table's index and the value's code); and per update, its three arguments (a count's
    amount is 1; a distinct count's value id has no second word)."""
    runs: dict[str, tuple[str, str]] = {}
    by_run: dict[tuple[str, str], str] = {}
    words: dict[str, tuple[str, str]] = {}
    vids: dict[str, tuple[int, str]] = {}
    by_value: dict[tuple[int, str], str] = {}
    arguments = []
    for j, (feature, key, tests, amount) in enumerate(w.flat_updates):
        when = " and ".join(tests)
        run = by_run.get((key, when))
        if run is None:
            run = by_run[(key, when)] = f"fu{len(runs)}"
            runs[run] = (key, when)
        if j in w.flat_distinct:
            value = (w.stores[feature].values.index, amount)
            if value not in by_value:
                by_value[value] = f"fv{len(vids)}"
                vids[by_value[value]] = value
            arguments.append((run, by_value[value], ""))
        elif amount == "1":
            arguments.append((run, "0", "1"))
        else:
            if amount not in words:
                words[amount] = (f"fh{len(words)}", f"fl{len(words)}")
            arguments.append((run, *words[amount]))
    return runs, words, vids, arguments


def _flat_inputs(w: _Writer) -> list[str]:
    """The flat updates' arguments (:func:`_flat_names`): the key ids (a fresh id for a key
    no table holds, when an update of it runs), then each run's id or -1, then each amount's
    two words and each distinct count's value id (a fresh id for a value its table does not
    hold), when an update that uses it runs."""
    runs, words, vids, arguments = _flat_names(w)
    lookups = []
    gids: dict[str, str] = {}  # key -> its id local
    for feature, key, _, _ in w.flat_updates:
        if key not in gids:
            gids[key], lookup = w.gid(w.stores[feature], key)
            lookups += [lookup] if lookup else []
    when_of: dict[str, list[str]] = {}  # id local -> when an update of it runs ("": always)
    lines = []
    for run, (key, when) in runs.items():
        when_of.setdefault(gids[key], []).append(when)
        lines.append(f"{run} = {gids[key]} if {when} else -1" if when else f"{run} = {gids[key]}")
    for amount, (hi, lo) in words.items():
        using = " or ".join(dict.fromkeys(f"{a[0]} >= 0" for a in arguments if a[1] == hi))
        lines.append(f"{hi}, {lo} = _divmod({amount}, {tally.BASE!r}) if {using} else (0, 0)")
    for vid, (index, value) in vids.items():
        table = next(t for t in w.namespace["FP"].tables.values() if t.index == index)
        w.namespace[f"V{index}"] = table
        w.namespace[f"V{index}_get"] = table.ids.get
        using = " or ".join(dict.fromkeys(f"{a[0]} >= 0" for a in arguments if a[1] == vid))
        lines += [
            f"if {using}:",
            f"    {vid} = V{index}_get({value}, -1)",
            f"    if {vid} < 0:",
            f"        {vid} = FP_fresh(V{index}, {value})",
            "else:",
            f"    {vid} = -1",
        ]
    fresh = []
    for (table, key), gid in w.gids.items():
        whens = when_of.get(gid)
        if whens is None:
            continue
        test = "" if "" in whens else " or ".join(f"({when})" for when in dict.fromkeys(whens))
        fresh += [
            f"if {gid} < 0{f' and ({test})' if test else ''}:",
            f"    {gid} = FP_fresh(T{table}, {key})",
        ]
    w.namespace["FP_fresh"] = w.namespace["FP"].fresh
    return [*lookups, *fresh, *lines]


def _flat_layout(w: _Writer) -> tuple[list[str], set[str], set[str]]:
    """The kernel's arguments after ``now, ts, what``: each read's key id local (once per
    id), then the updates' run and amount locals (:func:`_flat_names`); and which of them
    the reads and the updates need."""
    read_ids = list(dict.fromkeys(gid for _, gid, _ in w.flat_reads))
    runs, words, vids, _ = _flat_names(w)
    updating = [*runs, *(name for pair in words.values() for name in pair), *vids]
    return [*read_ids, *updating], set(read_ids), set(updating)


def _flat_call(w: _Writer, what: int) -> list[str]:
    """The kernel call (:func:`keyed.decide`; ``what`` it does), the pool grown and the call
    made again if it needs room, the dead ids reaped, and the reads' values. Its arguments
    are the layout's locals (:func:`_flat_layout`), a placeholder for those of a part it does
    not do (they may not be computed yet; the kernel does not look at them)."""
    pool = w.namespace["FP"]
    layout, reading, updating = _flat_layout(w)
    args = ["now", "ts", str(what)]
    for name in layout:
        if name in reading and not what & keyed.READS:
            args.append("-1")
        elif name in updating and not what & keyed.UPDATES:
            args.append("-1" if name.startswith("fu") else "0")
        else:
            args.append(name)
    size = keyed.padded(len(args), 8)
    w.namespace["FK"] = _entry(w, size)
    args = ", ".join(args + ["0"] * (size - len(args)))
    w.namespace["FO"] = np.zeros(max(1, 3 * len(w.flat_reads) + len(w.flat_updates)), np.int64)
    w.namespace["FP_grow"] = pool.grow
    w.namespace["FP_reap"] = pool.reap
    call = f"FK(FP.heads, FP.slab, FP.meta, FP.st, FP.ctl, FP.dead, FPLAN, FO, ({args},))"
    lines = [f"_d = {call}", "while _d < 0:", "    FP_grow(_d)", f"    _d = {call}"]
    if what & keyed.READS or (what & keyed.UPDATES and (w.flat_values or w.flat_distinct)):
        lines.append("fo_ = FO.tolist()")
    # the reads, before the ids the call let go are reaped (a last value, a sketch go with them)
    for j, (feature, gid, local) in enumerate(w.flat_reads if what & keyed.READS else ()):
        store = w.stores[feature]
        value = f"fo_[{3 * j + 2}]"  # (present, hi, lo): keyed.decide
        if isinstance(store, FlatDistinctWindow):  # present is 2 for a sketch
            w.namespace[f"S_{feature}_sketch"] = store.sketch_read
            value = (
                f"{value} if fo_[{3 * j}] == 1 else S_{feature}_sketch({gid}, {w.cutoff(store)})"
            )
        elif isinstance(store, FlatLastWindow):
            w.namespace[f"LV_{feature}"] = store.values
            value = _scaled(f"LV_{feature}[{gid}]", store.scale)
        elif type(store) is not FlatCountWindow:
            value = _scaled(f"(fo_[{3 * j + 1}] * {tally.BASE!r} + {value})", store.scale)
        if isinstance(store, (FlatExtremumWindow, FlatLastWindow)):
            w.namespace[f"X_{feature}"] = store.default
            value = f"{value} if fo_[{3 * j}] else X_{feature}"
        lines.append(f"{local} = {value}")
    lines += ["if _d:", "    FP_reap(_d)"]
    if not what & keyed.UPDATES and w.flat_updates:  # ids died: look the updates' up again
        lines += [f"    {gid} = T{table}_get({key}, -1)" for (table, key), gid in w.gids.items()]
    if what & keyed.UPDATES:  # after the reads: a read is of the state before the event
        runs = _flat_names(w)[3]
        for j, value_code in w.flat_values.items():
            feature = w.flat_updates[j][0]
            w.namespace[f"LV_{feature}"] = w.stores[feature].values
            lines += [
                f"if fo_[{3 * len(w.flat_reads) + j}]:",
                f"    LV_{feature}[{runs[j][0]}] = {value_code}",
            ]
        for j, value_code in w.flat_distinct.items():
            feature = w.flat_updates[j][0]
            w.namespace[f"S_{feature}_after"] = w.stores[feature].after_update
            out = f"fo_[{3 * len(w.flat_reads) + j}]"
            lines += [
                f"if {out}:",
                f"    S_{feature}_after({out}, {runs[j][0]}, {value_code}, ts, now)",
            ]
    return lines


def _flat_plan(w: _Writer) -> None:
    """``FPLAN`` (see :func:`keyed.decide`): per read its store slot and its id's place in the
    arguments, per update its slot, its run's place and its amount's (-1: a count)."""
    layout = _flat_layout(w)[0]
    place = {name: 3 + i for i, name in enumerate(layout)}
    plan = [len(w.flat_reads)]
    for feature, gid, _ in w.flat_reads:
        plan += [w.stores[feature].slot, place[gid]]
    plan.append(len(w.flat_updates))
    for (feature, _, _, _), (run, hi, _) in zip(w.flat_updates, _flat_names(w)[3], strict=True):
        plan += [w.stores[feature].slot, place[run], place.get(hi, -1)]
    w.namespace["FPLAN"] = np.array(plan, np.int64)


def _entry(w: _Writer, args: int) -> Any:
    """The compiled entry point of :func:`keyed.decide` for the pool's arrays, the plan, the
    output and a tuple of ``args`` integers (the dispatcher would type every argument on
    every call)."""
    vector = nb.typeof(np.zeros(1, np.int64))
    types = [nb.typeof(a) for a in w.namespace["FP"].arrays]
    return keyed.decide.compile((*types, vector, vector, nb.types.UniTuple(nb.int64, args)))
