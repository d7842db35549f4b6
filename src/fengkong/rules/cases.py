"""Rule-pack unit tests: event sequences with the decisions a rule author expects.

A cases file is YAML::

    cases:
      - name: password change then withdrawal to a new address is frozen
        events:
          - {type: Login, at: 0s, account: u1, ip: 10.0.0.1, device: d-new}
          - type: WithdrawalRequest
            at: 20m
            account: u1
            ...
            expect: {outcome: freeze_account, fired: [ato_sequence]}

Each case runs on a fresh component with the pack loaded. ``at`` is a duration after the
case's ``start_ts`` (default :data:`DEFAULT_START_TS`); ``ts`` may be given instead.
``seq`` and ``id`` are filled in. ``expect`` may name ``outcome``, ``fired`` (the exact set
of fired rule names, active and shadow), ``hold_hours``, ``shadow_outcome`` and
``rejected: true``. Every event without ``expect`` is still processed.

``repeat: N`` (1 to :data:`MAX_REPEAT`) processes the event N times, ``every`` (a duration,
default 0) apart, for velocity and ratio rules that need thousands of events; ``{n}`` in a
string field of an event with ``repeat`` becomes the repetition's number (0 to N - 1), so
that ``order_id: o{n}`` names N orders. An ``expect`` applies to the last repetition.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import msgspec

from fengkong.model.events import Rejected, json_event_decoder
from fengkong.rules.component import RulesComponent
from fengkong.rules.durations import parse_duration
from fengkong.rules.events import Decision, RulePackLoaded
from fengkong.rules.pack import parse_yaml

DEFAULT_START_TS = 1_767_225_600_000  # 2026-01-01T00:00:00Z
_EXPECT_KEYS = {"outcome", "fired", "hold_hours", "shadow_outcome", "rejected"}
MAX_REPEAT = 100_000


class CasesError(ValueError):
    """A cases file that cannot be run (its problem is named with its path)."""


@dataclass
class CaseResult:
    name: str
    checked: int = 0
    failures: list[str] = field(default_factory=list)
    # (rule, fired) pairs confirmed by an exact ``fired`` expectation that held
    fired: set[tuple[str, bool]] = field(default_factory=set)

    @property
    def passed(self) -> bool:
        return not self.failures


def load_cases(text: str) -> list[dict]:
    raw = parse_yaml(text)
    if not isinstance(raw, dict) or not isinstance(raw.get("cases"), list):
        raise CasesError("cases: a mapping with a 'cases' list")
    for i, case in enumerate(raw["cases"]):
        if not isinstance(case, dict) or not isinstance(case.get("events"), list):
            raise CasesError(f"cases[{i}]: a mapping with 'name' and an 'events' list")
    return raw["cases"]


def run_cases(pack_text: str, cases: list[dict]) -> list[CaseResult]:
    """Run every case; a malformed case is reported as that case's failure."""
    return [_run_case(pack_text, i, case) for i, case in enumerate(cases)]


def _run_case(pack_text: str, index: int, case: dict) -> CaseResult:
    result = CaseResult(str(case.get("name", f"cases[{index}]")))
    component = RulesComponent()
    start = case.get("start_ts", DEFAULT_START_TS)
    loaded = component.apply(
        RulePackLoaded(seq=1, id="pack", ts=start, pack_yaml=pack_text, author="cases")
    )
    if isinstance(loaded[0], Rejected):
        result.failures.append(f"pack refused: {loaded[0].message}")
        return result
    decoder = json_event_decoder()
    seq = 1
    for i, raw in enumerate(case["events"]):
        path = f"cases[{index}].events[{i}]"
        try:
            body = dict(raw)
            expect = body.pop("expect", None)
            numbered = "repeat" in body
            repeat = body.pop("repeat", 1)
            every = _offset(body.pop("every", 0))
            if type(repeat) is not int or not 1 <= repeat <= MAX_REPEAT:
                raise ValueError(f"repeat={repeat!r}: an integer from 1 to {MAX_REPEAT}")
            if "at" in body:
                body["ts"] = start + _offset(body.pop("at"))
            body.setdefault("ts", start)
            events = [
                decoder.decode(msgspec.json.encode(b))
                for b in _repeated(body, repeat, every, seq, f"{index}-{i}", numbered)
            ]
        except (TypeError, ValueError, msgspec.ValidationError) as exc:
            result.failures.append(f"{path}: not an event: {exc}")
            return result
        seq += repeat
        for event in events:
            outputs = component.apply(event)
        event = events[-1]
        if expect is not None:
            result.checked += 1
            kind = type(event).__name__
            rules = {
                rule.name
                for pack in component.packs.values()
                for rule in pack.plan.rules
                if rule.on == kind and rule.mode != "disabled"
            }
            _check(path, expect, outputs, rules, result)
    return result


def _repeated(
    body: dict, repeat: int, every: int, seq: int, id_: str, numbered: bool
) -> list[dict]:
    """The event ``body`` ``repeat`` times, ``every`` ms apart from its ``ts``; when the case
    gave ``repeat`` (``numbered``), ``{n}`` in its string fields is the repetition's number
    (see the module docstring)."""
    if not numbered:
        return [{"seq": seq + 1, "id": id_, **body}]
    return [
        {
            "seq": seq + 1 + n,
            "id": f"{id_}-{n}",
            **{k: v.replace("{n}", str(n)) if isinstance(v, str) else v for k, v in body.items()},
            "ts": body["ts"] + n * every,
        }
        for n in range(repeat)
    ]


def _offset(value: object) -> int:
    """``at`` as milliseconds; zero may be written ``0``, ``0s``, ``0m`` ..."""
    if value == 0 or (isinstance(value, str) and re.fullmatch(r"0+(ms|s|m|h|d)?", value)):
        return 0
    return parse_duration(value)


def _check(path: str, expect: object, outputs: list, rules: set[str], result: CaseResult) -> None:
    if not isinstance(expect, dict) or not set(expect) <= _EXPECT_KEYS:
        result.failures.append(f"{path}.expect: keys among {', '.join(sorted(_EXPECT_KEYS))}")
        return
    rejected = [o for o in outputs if isinstance(o, Rejected)]
    if expect.get("rejected"):
        if not rejected:
            result.failures.append(f"{path}: expected a rejection, got {outputs}")
        return
    if rejected:
        result.failures.append(f"{path}: rejected: {rejected[0].reason}: {rejected[0].message}")
        return
    decisions = [o for o in outputs if isinstance(o, Decision)]
    if len(decisions) != 1:
        result.failures.append(f"{path}: expected one decision, got {outputs}")
        return
    decision = decisions[0]
    for key in ("outcome", "hold_hours", "shadow_outcome"):
        if key in expect and getattr(decision, key) != expect[key]:
            result.failures.append(
                f"{path}: {key} is {getattr(decision, key)!s}, expected {expect[key]}"
            )
    if "fired" in expect:
        fired = {rule.rule for rule in decision.fired}
        wanted = set(expect["fired"] or [])
        if fired != wanted:
            result.failures.append(f"{path}: fired {sorted(fired)}, expected {sorted(wanted)}")
        if fired == wanted:
            result.fired |= {(name, True) for name in wanted}
            result.fired |= {(name, False) for name in rules - wanted}
