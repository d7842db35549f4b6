"""Builders shared by the rules tests: packs as text, events with filled-in ids, a runner."""

from __future__ import annotations

import itertools

import yaml

from fengkong.rules.component import RulesComponent
from fengkong.rules.events import Decision, Login, RulePackLoaded, SecurityChange, WithdrawalRequest

T0 = 1_767_225_600_000  # 2026-01-01T00:00:00Z
_ids = itertools.count(1)


def pack_text(
    rules: list[dict],
    features: dict | None = None,
    lists: dict | None = None,
    version: str = "1",
    name: str = "test",
    scoring: list | None = None,
) -> str:
    body = {"pack": name, "version": version, "rules": rules}
    if features:
        body["features"] = features
    if lists:
        body["lists"] = lists
    if scoring:
        body["scoring"] = scoring
    return yaml.safe_dump(body, sort_keys=False)


def rule(condition: str, on: str = "WithdrawalRequest", name: str = "r", **extra) -> dict:
    return {"name": name, "on": on, "if": condition, "outcome": "review", **extra}


def loaded(text: str, ts: int = T0) -> RulesComponent:
    component = RulesComponent()
    [output] = component.apply(
        RulePackLoaded(seq=0, id=f"p{next(_ids)}", ts=ts, pack_yaml=text, author="t")
    )
    assert output.__class__.__name__ == "RulePackActivated", output
    return component


def withdrawal(ts: int = T0, **fields) -> WithdrawalRequest:
    body = {
        "account": "u1",
        "asset": "BTC",
        "amount": "1.5",
        "value_usd": "90000",
        "address": "bc1qdest",
        "network": "BTC",
        "ip": "10.0.0.1",
        "device": "dev-1",
    }
    body.update(fields)
    return WithdrawalRequest(seq=0, id=f"w{next(_ids)}", ts=ts, **body)


def login(ts: int = T0, **fields) -> Login:
    body = {"account": "u1", "ip": "10.0.0.1", "device": "dev-1", "country": "SG"}
    body.update(fields)
    return Login(seq=0, id=f"l{next(_ids)}", ts=ts, **body)


def security_change(ts: int = T0, change: str = "password", **fields) -> SecurityChange:
    return SecurityChange(seq=0, id=f"s{next(_ids)}", ts=ts, account="u1", change=change, **fields)


def decide(component: RulesComponent, event) -> Decision:
    [output] = component.apply(event)
    assert isinstance(output, Decision), output
    return output


def fires(condition: str, event=None, on: str = "WithdrawalRequest", **pack) -> bool:
    """Whether a one-rule pack with ``condition`` fires on ``event``."""
    component = loaded(pack_text([rule(condition, on=on)], **pack))
    decision = decide(component, event if event is not None else withdrawal())
    assert all(not f.error for f in decision.fired), decision.fired
    return [f.rule for f in decision.fired] == ["r"]
