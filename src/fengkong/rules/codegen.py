"""Turn checked rule and filter code into Python functions, once per pack version.

The source compiled here is assembled from the checker's output only (hoisted reads,
operators, literals written with ``repr``, generated local names); it runs in a namespace
with no builtins, holding the feature stores, list views and helpers it needs by name.

An evaluator for one event kind returns ``(hits, errors, values)``: the indexes of the rules
that fired, ``None`` or a list of ``(index, exception)`` for rules whose evaluation raised,
and the tuple of every hoisted read (for traces). If a read itself raises, ``hits`` is
``None`` and ``errors`` is the exception. An updater folds one event into the features; it
takes the event's decimal fields already parsed (``units``, when the caller validated the
event) so that each amount is parsed once per event. A tracer builds the
:class:`~fengkong.rules.events.FiredRule` of one rule from the evaluator's values, with every
constant of the record written into its code.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fengkong.rules.events import FiredRule
from fengkong.rules.functions import RUNTIME_GLOBALS
from fengkong.rules.language import ReadTable


def _compile(name: str, lines: list[str], namespace: dict[str, Any]) -> Callable:
    source = "\n".join(lines) + "\n"
    env = dict(RUNTIME_GLOBALS)
    env.update(namespace)
    exec(compile(source, f"<fengkong-rules:{name}>", "exec"), env)
    function = env[name]
    function.source = source
    return function


def evaluator(name: str, reads: ReadTable, conditions: list[str], namespace: dict) -> Callable:
    """``name(ev, now) -> (hits, errors, values)`` over the conditions, in order."""
    lines = [f"def {name}(ev, now):", "    try:"]
    lines += [f"        {line}" for line in reads.lines] or ["        pass"]
    lines += [
        "    except _Error as exc:",
        "        return None, exc, ()",
        "    hits = []",
        "    hit = hits.append",
        "    errors = None",
    ]
    for index, condition in enumerate(conditions):
        lines += [
            "    try:",
            f"        if {condition}:",
            f"            hit({index})",
            "    except _Error as exc:",
            f"        errors = (errors or []) + [({index}, exc)]",
        ]
    locals_ = ", ".join(reads.labels)
    lines.append(f"    return hits, errors, ({locals_}{',' if reads.labels else ''})")
    return _compile(name, lines, {**namespace, **reads.constants})


def updater(
    name: str, reads: ReadTable, updates: list[tuple[str | None, str, str, str]], namespace: dict
) -> Callable:
    """``name(ev, now, units=None)`` folding the event into features; ``units`` maps the
    event's decimal fields to their parsed 1e-18 units (``None``: parse them here).

    ``updates`` holds, per feature, ``(filter, guard, store, call)``: the filter code (or
    ``None``), a guard that skips empty keys or values, the store's global name and the
    arguments of its ``add``. Filters are evaluated before any update, so every filter reads
    the features as they were before this event.
    """
    lines = [f"def {name}(ev, now, units=None):", "    try:"]
    lines += [f"        {line}" for line in reads.lines] or ["        pass"]
    lines += ["    except _Error:", "        return"]
    for index, (condition, _, _, _) in enumerate(updates):
        if condition is None:
            continue
        lines += [
            "    try:",
            f"        p{index} = {condition}",
            "    except _Error:",
            f"        p{index} = False",
        ]
    for index, (condition, guard, store, call) in enumerate(updates):
        tests = [t for t in (f"p{index}" if condition else "", guard) if t]
        indent = "    "
        if tests:
            lines.append(f"    if {' and '.join(tests)}:")
            indent = "        "
        lines.append(f"{indent}{store}.add({call})")
    return _compile(name, lines, {**namespace, **reads.constants})


def tracers(name: str, pack_label: str, rules: list, traces: list, reads: ReadTable) -> list:
    """One function per rule, ``tracer(values) -> FiredRule``, over the evaluator's values
    tuple: the record's constants are literals, its ``values`` the ``[label, value]`` pairs
    of the reads the rule made, in the order it made them."""
    position = {local: i for i, local in enumerate(reads.labels)}
    namespace: dict[str, Any] = {"_FR": FiredRule}
    lines: list[str] = []
    for index, rule in enumerate(rules):
        pairs = ", ".join(
            f"[{reads.labels[local]!r}, v[{position[local]}]]" for local in traces[index]
        )
        namespace[f"_O{index}"] = rule.outcome
        lines += [
            f"def _t{index}(v):",
            f"    return _FR(pack={pack_label!r}, rule={rule.name!r}, mode={rule.mode!r}, "
            f"outcome=_O{index}, score={int(rule.score)!r}, reason={rule.reason!r}, "
            f"hold_hours={int(rule.hold_hours)!r}, values=[{pairs}])",
        ]
    lines.append(f"{name} = [{', '.join(f'_t{i}' for i in range(len(rules)))}]")
    source = "\n".join(lines) + "\n"
    env = dict(RUNTIME_GLOBALS)
    env.update(namespace)
    exec(compile(source, f"<fengkong-rules:{name}>", "exec"), env)
    return env[name]
