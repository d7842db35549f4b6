"""Turn checked rule and filter code into Python functions, once per pack version.

The source compiled here is assembled from the checker's output only (hoisted reads,
operators, literals written with ``repr``, generated local names); it runs in a namespace
with no builtins, holding the feature stores, list views and helpers it needs by name.

An evaluator for one event kind returns ``(hits, errors, values)``: the indexes of the rules
that fired, ``None`` or a list of ``(index, exception)`` for rules whose evaluation raised,
and the tuple of every hoisted read (for traces). If a read itself raises, ``hits`` is
``None`` and ``errors`` is the exception. An updater folds one event into the features.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

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
    """``name(ev, now)`` folding the event into features.

    ``updates`` holds, per feature, ``(filter, guard, store, call)``: the filter code (or
    ``None``), a guard that skips empty keys or values, the store's global name and the
    arguments of its ``add``. Filters are evaluated before any update, so every filter reads
    the features as they were before this event.
    """
    lines = [f"def {name}(ev, now):", "    try:"]
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
