"""Rule packs: YAML text -> validated declarations -> checked code -> bound functions.

:func:`load_pack` validates a pack as a whole and raises :class:`PackError` listing every
problem with its path (``rules[3].if 1:17: unknown_field: ...``); on success it returns a
:class:`PackPlan`: the declarations and the generated code for each event kind. A plan is
bound (:meth:`PackPlan.bind`) to feature stores, list views and account facts, which
compiles its functions; the component does that once per loaded version, and again when a
snapshot is restored.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import yaml

from fengkong.model.fixed import parse_units
from fengkong.rules import codegen, fused
from fengkong.rules.decide import rule_row
from fengkong.rules.errors import PackError, Problem, ProblemCode
from fengkong.rules.features import (
    FeatureSpec,
    RatioFeature,
    build_store,
    fingerprint,
    parse_feature,
)
from fengkong.rules.flat.pool import FlatPool
from fengkong.rules.flat.windows import FlatCountWindow
from fengkong.rules.language import Checker, FeatureSig, ListSig, ReadTable, Scope, parse_expression
from fengkong.rules.lists import Entry, IpRanges, ListKind, value_problem
from fengkong.rules.outcomes import Outcome
from fengkong.rules.schema import VALUE_KINDS, Type, event_kind, fields_of
from fengkong.rules.windows import KeyedWindow

MAX_PACK_CHARS = 1_000_000
MAX_RULES = 2_000
MAX_FEATURES = 500
MAX_LISTS = 200
MAX_HOLD_HOURS = 720
MODES = ("active", "shadow", "disabled")

# Bind packs with fused steps (see :mod:`fengkong.rules.fused`); the tests turn it off to
# decide the same streams with the separate evaluator and updater, the step's reference.
FUSE = True

_PACK_NAME = re.compile(r"[a-z][a-z0-9_-]{0,63}")
_NAME = re.compile(r"[a-z][a-z0-9_]{0,63}")
_REASON = re.compile(r"[a-z][a-z0-9_.-]{0,63}")


@dataclass(frozen=True, slots=True)
class RuleSpec:
    name: str
    on: str
    condition: str
    outcome: Outcome
    score: int
    reason: str
    hold_hours: int
    mode: str
    description: str


@dataclass(frozen=True, slots=True)
class ListSpec:
    name: str
    kind: ListKind
    value_kind: str
    description: str
    entries: tuple[Entry, ...]


@dataclass(slots=True)
class KindPlan:
    """Generated code for one event kind: the evaluator's rules and the feature updates."""

    rules: list[RuleSpec] = field(default_factory=list)
    conditions: list[str] = field(default_factory=list)
    traces: list[list[str]] = field(default_factory=list)  # locals each rule read
    reads: ReadTable = field(default_factory=ReadTable)
    update_reads: ReadTable = field(default_factory=lambda: ReadTable(prefix="u"))
    updates: list[tuple[str | None, str, str, str]] = field(default_factory=list)
    # per update, in the same order: (feature, key code, value code), for the fused step
    update_specs: list[tuple[str, str, str]] = field(default_factory=list)


@dataclass(slots=True)
class PackPlan:
    name: str
    version: str
    description: str
    digest: str
    source: str
    lists: dict[str, ListSpec]
    features: dict[str, FeatureSpec]
    rules: list[RuleSpec]
    scoring: list[tuple[int, Outcome]]
    kinds: dict[str, KindPlan]

    @property
    def label(self) -> str:
        return f"{self.name}@{self.version}"

    def bind(
        self,
        stores: dict[str, KeyedWindow],
        list_views: dict[str, dict[str, int]],
        accounts: dict[str, int],
        list_ranges: dict[str, IpRanges] | None = None,
    ) -> CompiledPack:
        """Compile this plan's functions over the given stores (one per windowed feature),
        lists (live views, and the networks of ``ip`` lists) and accounts."""
        namespace: dict[str, Any] = {"ACCOUNTS": accounts, "_units": _units}
        readers: dict[str, Any] = dict(stores)
        for name, spec in self.features.items():
            if spec.ratio:
                readers[name] = RatioFeature(stores[spec.ratio[0]], stores[spec.ratio[1]])
        namespace.update({f"F_{name}": reader for name, reader in readers.items()})
        namespace.update({f"L_{name}": list_views[name] for name in self.lists})
        ranges = list_ranges or {}
        namespace.update({f"LR_{name}": ranges.get(name) or IpRanges() for name in self.lists})
        evaluators: dict[str, Callable] = {}
        updaters: dict[str, Callable] = {}
        tracers: dict[str, list[Callable]] = {}
        rows: dict[str, list[tuple]] = {}
        label = self.label
        for kind, plan in self.kinds.items():
            if plan.conditions:
                evaluators[kind] = codegen.evaluator(
                    f"evaluate_{kind}", plan.reads, plan.conditions, namespace
                )
                tracers[kind] = codegen.tracers(
                    f"trace_{kind}", label, plan.rules, plan.traces, plan.reads
                )
                rows[kind] = [rule_row(label, rule) for rule in plan.rules]
            if plan.updates:
                updaters[kind] = codegen.updater(
                    f"update_{kind}", plan.update_reads, plan.updates, namespace
                )
        steps: dict[str, Callable] = {}
        fast_updaters: dict[str, Callable] = {}
        if FUSE and fused.fusable(stores):
            namespace = {**namespace, "_OWED": {}}  # the stores owing a sweep (fused.py)
            for kind, plan in self.kinds.items():
                update = None
                if plan.updates:
                    update = fused.updater(f"update_{kind}", plan, self.features, stores, namespace)
                    fast_updaters[kind] = update
                if plan.conditions:
                    steps[kind] = fused.step(
                        f"step_{kind}",
                        plan,
                        self.features,
                        stores,
                        namespace,
                        update,
                        label,
                        self.scoring,
                    )
        return CompiledPack(self, stores, evaluators, updaters, tracers, rows, steps, fast_updaters)


@dataclass(slots=True)
class CompiledPack:
    """A plan bound to its stores. Per event kind: the evaluator, the updater, one tracer per
    rule (its ``FiredRule`` from the evaluator's values) and one decision row per rule (see
    :func:`fengkong.rules.decide.rule_row`), all built once per loaded version."""

    plan: PackPlan
    stores: dict[str, KeyedWindow]
    evaluators: dict[str, Callable]
    updaters: dict[str, Callable]
    tracers: dict[str, list[Callable]] = field(default_factory=dict)
    rows: dict[str, list[tuple]] = field(default_factory=dict)
    # the fused evaluator + updater per kind with rules, and the inline updater per kind
    # with updates (see :mod:`fengkong.rules.fused`); empty when the pack is not fused
    steps: dict[str, Callable] = field(default_factory=dict)
    fast_updaters: dict[str, Callable] = field(default_factory=dict)


class _Loader(yaml.SafeLoader):
    """Safe YAML with YAML 1.2 booleans: only ``true``/``false`` are booleans, so keys such
    as ``on:`` and values such as ``no`` stay strings."""


_Loader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:bool"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:bool", re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF")
)


def parse_yaml(text: str):
    """Parse YAML text with :class:`_Loader` (no arbitrary objects, YAML 1.2 booleans)."""
    return yaml.load(text, Loader=_Loader)


def _units(text: str) -> int:
    return parse_units(text, 18, field="value")


# --- loading ------------------------------------------------------------------------------


def load_pack(text: object) -> PackPlan:
    """Validate and check a pack; raise :class:`PackError` with every problem found."""
    problems: list[Problem] = []
    if not isinstance(text, str):
        raise PackError([Problem("pack", ProblemCode.BAD_VALUE, "a pack is YAML text")])
    if len(text) > MAX_PACK_CHARS:
        raise PackError([Problem("pack", ProblemCode.TOO_LONG, f"over {MAX_PACK_CHARS} chars")])
    try:
        raw = parse_yaml(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line, column = (mark.line + 1, mark.column + 1) if mark else (0, 0)
        reason = getattr(exc, "problem", None) or str(exc)
        raise PackError([Problem("pack", ProblemCode.SYNTAX, reason, line, column)]) from None
    except RecursionError:
        raise PackError([Problem("pack", ProblemCode.TOO_COMPLEX, "nested too deeply")]) from None
    if not isinstance(raw, dict):
        raise PackError([Problem("pack", ProblemCode.BAD_VALUE, "a pack is a YAML mapping")])
    for extra in sorted(
        set(raw) - {"pack", "version", "description", "lists", "features", "rules", "scoring"},
        key=str,
    ):
        problems.append(Problem(str(extra), ProblemCode.UNEXPECTED, "unknown top-level section"))
    name = raw.get("pack")
    if not isinstance(name, str) or not _PACK_NAME.fullmatch(name):
        problems.append(
            Problem("pack", ProblemCode.BAD_VALUE, "a pack name: lowercase, digits, - and _")
        )
    version = raw.get("version")
    if isinstance(version, int | float) and not isinstance(version, bool):
        version = str(version)
    if not isinstance(version, str) or not 1 <= len(version) <= 64:
        problems.append(Problem("version", ProblemCode.BAD_VALUE, "a version text of 1-64 chars"))
    description = raw.get("description", "")
    if not isinstance(description, str):
        problems.append(Problem("description", ProblemCode.BAD_VALUE, "a text"))
    lists = _parse_lists(raw.get("lists", {}), problems)
    features = _parse_features(raw.get("features", {}), problems)
    rules = _parse_rules(raw.get("rules", []), problems)
    scoring = _parse_scoring(raw.get("scoring", []), problems)
    kinds: dict[str, KindPlan] = {}
    if not problems:
        _check_code(lists, features, rules, kinds, problems)
    if problems:
        raise PackError(problems)
    return PackPlan(
        name=name,
        version=version,
        description=description,
        digest=hashlib.sha256(text.encode()).hexdigest(),
        source=text,
        lists=lists,
        features=features,
        rules=rules,
        scoring=scoring,
        kinds=kinds,
    )


def _mapping(raw: object, path: str, limit: int, problems: list[Problem]) -> dict:
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        problems.append(Problem(path, ProblemCode.BAD_VALUE, "a mapping of name: declaration"))
        return {}
    if len(raw) > limit:
        problems.append(Problem(path, ProblemCode.TOO_LONG, f"over {limit} entries"))
        return {}
    return raw


def _parse_lists(raw: object, problems: list[Problem]) -> dict[str, ListSpec]:
    lists: dict[str, ListSpec] = {}
    for name, decl in _mapping(raw, "lists", MAX_LISTS, problems).items():
        path = f"lists.{name}"
        start = len(problems)
        if not isinstance(name, str) or not _NAME.fullmatch(name):
            problems.append(Problem(path, ProblemCode.BAD_VALUE, "a list name is lower_snake_case"))
        if not isinstance(decl, dict):
            problems.append(Problem(path, ProblemCode.BAD_VALUE, "a list is a mapping"))
            continue
        for extra in sorted(set(decl) - {"kind", "type", "description", "entries"}, key=str):
            problems.append(Problem(f"{path}.{extra}", ProblemCode.UNEXPECTED, "unknown setting"))
        kind = decl.get("kind")
        if kind not in tuple(ListKind):
            problems.append(Problem(f"{path}.kind", ProblemCode.BAD_VALUE, "block, allow or grey"))
        value_kind = decl.get("type")
        if value_kind not in VALUE_KINDS:
            problems.append(
                Problem(f"{path}.type", ProblemCode.BAD_VALUE, f"one of {', '.join(VALUE_KINDS)}")
            )
        entries = []
        seeds = decl.get("entries", [])
        if not isinstance(seeds, list):
            problems.append(Problem(f"{path}.entries", ProblemCode.BAD_VALUE, "a list of entries"))
            seeds = []
        for i, seed in enumerate(seeds):
            entry_path = f"{path}.entries[{i}]"
            if not isinstance(seed, dict) or not {"value", "reason", "author"} <= set(seed):
                problems.append(
                    Problem(entry_path, ProblemCode.MISSING, "an entry has value, reason, author")
                )
                continue
            reason = value_problem(value_kind, seed["value"]) if value_kind in VALUE_KINDS else ""
            if reason:
                problems.append(Problem(f"{entry_path}.value", ProblemCode.BAD_VALUE, reason))
            expires = seed.get("expires_ts", 0)
            if isinstance(expires, bool) or not isinstance(expires, int) or expires < 0:
                problems.append(
                    Problem(f"{entry_path}.expires_ts", ProblemCode.BAD_VALUE, "ms >= 0")
                )
            if not all(isinstance(seed[k], str) and seed[k] for k in ("reason", "author")):
                problems.append(
                    Problem(entry_path, ProblemCode.BAD_VALUE, "reason and author are texts")
                )
            if len(problems) == start:
                entries.append(
                    Entry(
                        value=seed["value"],
                        reason=seed["reason"],
                        author=seed["author"],
                        created_ts=0,
                        expires_ts=expires,
                    )
                )
        if len(problems) == start:
            lists[name] = ListSpec(
                name, ListKind(kind), value_kind, str(decl.get("description", "")), tuple(entries)
            )
    return lists


def _parse_features(raw: object, problems: list[Problem]) -> dict[str, FeatureSpec]:
    features: dict[str, FeatureSpec] = {}
    for name, decl in _mapping(raw, "features", MAX_FEATURES, problems).items():
        spec = parse_feature(str(name), decl, f"features.{name}", problems)
        if spec is not None:
            features[spec.name] = spec
    for spec in features.values():
        if spec.ratio:
            for part in spec.ratio:
                other = features.get(part)
                if other is None or other.ratio:
                    problems.append(
                        Problem(
                            f"features.{spec.name}.ratio",
                            ProblemCode.UNKNOWN_FEATURE,
                            f"{part!r} is not a declared windowed feature",
                        )
                    )
            num, den = (features.get(p) for p in spec.ratio)
            if num and den and (num.key_types != den.key_types or num.key != den.key):
                problems.append(
                    Problem(
                        f"features.{spec.name}.ratio",
                        ProblemCode.TYPE_MISMATCH,
                        "numerator and denominator must have the same key",
                    )
                )
    return features


def _parse_rules(raw: object, problems: list[Problem]) -> list[RuleSpec]:
    if not isinstance(raw, list):
        problems.append(Problem("rules", ProblemCode.BAD_VALUE, "a list of rules"))
        return []
    if len(raw) > MAX_RULES:
        problems.append(Problem("rules", ProblemCode.TOO_LONG, f"over {MAX_RULES} rules"))
        return []
    rules: list[RuleSpec] = []
    seen: set[str] = set()
    known = {"name", "on", "if", "outcome", "score", "reason", "hold_hours", "mode", "description"}
    for i, decl in enumerate(raw):
        path = f"rules[{i}]"
        start = len(problems)
        if not isinstance(decl, dict):
            problems.append(Problem(path, ProblemCode.BAD_VALUE, "a rule is a mapping"))
            continue
        for extra in sorted(set(decl) - known, key=str):
            problems.append(Problem(f"{path}.{extra}", ProblemCode.UNEXPECTED, "unknown setting"))
        name = decl.get("name")
        if not isinstance(name, str) or not _NAME.fullmatch(name):
            problems.append(Problem(f"{path}.name", ProblemCode.BAD_VALUE, "lower_snake_case name"))
        elif name in seen:
            problems.append(Problem(f"{path}.name", ProblemCode.DUPLICATE, f"{name!r} again"))
        seen.add(name)
        on = decl.get("on")
        if not isinstance(on, str) or event_kind(on) is None:
            problems.append(
                Problem(f"{path}.on", ProblemCode.UNKNOWN_EVENT, f"no event kind {on!r}")
            )
        condition = decl.get("if")
        if not isinstance(condition, str):
            problems.append(Problem(f"{path}.if", ProblemCode.MISSING, "the rule's condition"))
        outcome = decl.get("outcome")
        if outcome not in tuple(Outcome):
            problems.append(
                Problem(f"{path}.outcome", ProblemCode.BAD_VALUE, f"one of {', '.join(Outcome)}")
            )
        score = decl.get("score", 0)
        if isinstance(score, bool) or not isinstance(score, int) or not 0 <= score <= 1_000_000:
            problems.append(Problem(f"{path}.score", ProblemCode.BAD_VALUE, "an integer 0-1000000"))
        reason = decl.get("reason", name)
        if not isinstance(reason, str) or not _REASON.fullmatch(reason):
            problems.append(Problem(f"{path}.reason", ProblemCode.BAD_VALUE, "a reason code"))
        hold = decl.get("hold_hours", 0)
        if outcome == Outcome.HOLD_WITHDRAWAL:
            if (
                isinstance(hold, bool)
                or not isinstance(hold, int)
                or not 1 <= hold <= MAX_HOLD_HOURS
            ):
                problems.append(
                    Problem(
                        f"{path}.hold_hours", ProblemCode.BAD_VALUE, f"1-{MAX_HOLD_HOURS} hours"
                    )
                )
        elif "hold_hours" in decl:
            problems.append(
                Problem(f"{path}.hold_hours", ProblemCode.UNEXPECTED, "only hold_withdrawal holds")
            )
        mode = decl.get("mode", "active")
        if mode not in MODES:
            problems.append(
                Problem(f"{path}.mode", ProblemCode.BAD_VALUE, "active, shadow or disabled")
            )
        if len(problems) == start:
            rules.append(
                RuleSpec(
                    name=name,
                    on=on,
                    condition=condition,
                    outcome=Outcome(outcome),
                    score=score,
                    reason=reason,
                    hold_hours=hold,
                    mode=mode,
                    description=str(decl.get("description", "")),
                )
            )
    return rules


def _parse_scoring(raw: object, problems: list[Problem]) -> list[tuple[int, Outcome]]:
    if not isinstance(raw, list):
        problems.append(Problem("scoring", ProblemCode.BAD_VALUE, "a list of {min_score, outcome}"))
        return []
    bands: list[tuple[int, Outcome]] = []
    for i, band in enumerate(raw):
        path = f"scoring[{i}]"
        ok = isinstance(band, dict) and set(band) == {"min_score", "outcome"}
        if ok:
            score, outcome = band["min_score"], band["outcome"]
            ok = isinstance(score, int) and not isinstance(score, bool) and score > 0
            ok = ok and outcome in (Outcome.REVIEW, Outcome.BLOCK, Outcome.FREEZE_ACCOUNT)
        if not ok:
            problems.append(
                Problem(
                    path,
                    ProblemCode.BAD_VALUE,
                    "{min_score: int > 0, outcome: review, block or freeze_account}",
                )
            )
            continue
        if bands and score <= bands[-1][0]:
            problems.append(
                Problem(f"{path}.min_score", ProblemCode.BAD_VALUE, "bands ascend by min_score")
            )
        bands.append((score, Outcome(outcome)))
    return bands


# --- expressions --------------------------------------------------------------------------


def _signatures(features: dict[str, FeatureSpec]) -> dict[str, FeatureSig]:
    sigs: dict[str, FeatureSig] = {}
    for name, spec in features.items():
        base = features[spec.ratio[0]] if spec.ratio else spec
        semantic = None
        if spec.agg == "last" and spec.value_field is not None:
            semantic = spec.value_field.semantic
        sigs[name] = FeatureSig(
            name=name,
            type=spec.value_type,
            key_fields=base.key,
            key_types=base.key_types,
            semantic=semantic,
            ref=f"F_{name}",
        )
    return sigs


def _check_code(
    lists: dict[str, ListSpec],
    features: dict[str, FeatureSpec],
    rules: list[RuleSpec],
    kinds: dict[str, KindPlan],
    problems: list[Problem],
) -> None:
    feature_sigs = _signatures(features)
    list_sigs = {n: ListSig(n, spec.value_kind, f"L_{n}") for n, spec in lists.items()}

    def scope(kind_name: str, reads: ReadTable) -> Scope:
        kind = event_kind(kind_name)
        return Scope(kind_name, fields_of(kind), feature_sigs, list_sigs, reads)

    for i, rule in enumerate(rules):
        path = f"rules[{i}].if (rule {rule.name!r})"
        plan = kinds.setdefault(rule.on, KindPlan())
        reads = plan.reads if rule.mode != "disabled" else ReadTable()
        tree = parse_expression(rule.condition, path, problems)
        if tree is None:
            continue
        reads.start_expression()
        checked = Checker(rule.condition, path, scope(rule.on, reads), problems).check_bool(tree)
        if checked.type is Type.ERROR or rule.mode == "disabled":
            continue
        plan.rules.append(rule)
        plan.conditions.append(checked.code)
        plan.traces.append(list(reads.used))

    for name, spec in features.items():
        if spec.ratio:
            continue
        for kind_name in spec.on:
            plan = kinds.setdefault(kind_name, KindPlan())
            condition = None
            if spec.where is not None:
                path = f"features.{name}.where"
                tree = parse_expression(spec.where, path, problems)
                if tree is None:
                    continue
                checker = Checker(spec.where, path, scope(kind_name, plan.update_reads), problems)
                checked = checker.check_bool(tree)
                if checked.type is Type.ERROR:
                    continue
                condition = checked.code
            guard, key_code, value_code = _update_call(spec, kind_name, plan.update_reads)
            call = f"{key_code}, {value_code}, ev.ts, now"
            plan.updates.append((condition, guard, f"F_{spec.name}", call))
            plan.update_specs.append((name, key_code, value_code))


def _update_call(spec: FeatureSpec, kind_name: str, reads: ReadTable) -> tuple[str, str, str]:
    """Guard, key code and value code folding one event into ``spec``. The guard skips an
    event whose key or value is empty (an empty string) or absent (an optional field)."""
    fields = fields_of(event_kind(kind_name))
    guards = [  # a string is tested for truth: neither empty nor absent
        f"ev.{k}" if fields[k].type is Type.STR else f"ev.{k} is not None"
        for k in spec.key
        if fields[k].type is Type.STR or fields[k].optional
    ]
    keys = [f"ev.{k}" for k in spec.key]
    key_code = keys[0] if len(keys) == 1 else f"_Pair({', '.join(keys)})"
    if spec.agg == "count":
        value_code = "None"
    else:
        field_type = fields[spec.value]
        if field_type.decimal:
            parse = f"_units(ev.{spec.value}) if units is None else units[{spec.value!r}]"
            if field_type.optional:
                guards.append(f"ev.{spec.value} is not None")
                parse = f"None if ev.{spec.value} is None else ({parse})"
            value_code = reads.read(("units", spec.value), f"units({spec.value})", parse)
        else:
            value_code = f"ev.{spec.value}"
            if field_type.type is Type.STR:
                guards.append(value_code)
            elif field_type.optional:
                guards.append(f"{value_code} is not None")
    return " and ".join(guards), key_code, value_code


def build_stores(
    plan: PackPlan, previous: CompiledPack | None
) -> tuple[dict[str, KeyedWindow], list[str]]:
    """Window stores for ``plan``: the previous version's store for every feature whose
    fingerprint is unchanged (its history is kept), a fresh one otherwise. Features with one
    fingerprint take the old stores of that fingerprint one each, in order: a store shared by
    two features would count every event twice."""
    stores: dict[str, KeyedWindow] = {}
    kept: list[str] = []
    old: dict[object, list[KeyedWindow]] = {}  # fingerprint -> stores, in the old pack's order
    pool = None  # the flat stores' rows: the previous version's pool, kept with its stores
    if previous is not None:
        old_specs = previous.plan.features
        for n, store in previous.stores.items():
            old.setdefault(fingerprint(n, old_specs), []).append(store)
            pool = getattr(store, "pool", pool)
    pool = pool or FlatPool()
    for name, spec in plan.features.items():
        if spec.ratio:
            continue
        same = old.get(fingerprint(name, plan.features))
        store = same.pop(0) if same else None  # each old store serves one feature
        if store is not None:
            store.settle()  # the old version's queue of owed sweeps goes with it
            kept.append(name)
        stores[name] = store if store is not None else build_store(spec, pool)
    return stores, kept


def retire(previous: CompiledPack, stores: dict[str, KeyedWindow]) -> None:
    """Once ``stores`` replaced ``previous``'s: give the flat stores it did not keep back to
    their pool (their rows, and the key ids only they held)."""
    kept = {id(store) for store in stores.values()}
    for store in previous.stores.values():
        if isinstance(store, FlatCountWindow) and id(store) not in kept:
            store.close()
