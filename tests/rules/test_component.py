"""The rules component in the engine: decisions, shadow mode, versions, lists, snapshots."""

from __future__ import annotations

from fengkong.engine import Engine
from fengkong.ledger.ledger import Ledger
from fengkong.model.events import Rejected, RejectReason
from fengkong.rules.component import RulesComponent
from fengkong.rules.events import (
    Decision,
    ListChanged,
    ListEntryAdded,
    ListEntryRemoved,
    RulePackActivated,
    RulePackLoaded,
    RulePackRemoved,
    WithdrawalRequest,
)
from tests.factories import Log
from tests.rules.kit import T0, decide, loaded, pack_text, rule, withdrawal

COUNT = {"n_24h": {"agg": "count", "on": "WithdrawalRequest", "key": "account", "window": "24h"}}


def test_no_loaded_pack_fails_closed_to_review():
    decision = decide(RulesComponent(), withdrawal())
    assert (decision.outcome, decision.reasons, decision.packs) == ("review", ["no_rule_pack"], [])


def test_decision_is_the_most_severe_active_outcome_with_a_trace_of_each_fired_rule():
    text = pack_text(
        [
            rule(
                "event.value_usd > 50000",
                name="large",
                outcome="hold_withdrawal",
                hold_hours=12,
                score=10,
            ),
            rule("event.asset == 'BTC'", name="btc", outcome="review", score=5, reason="btc_check"),
            rule("event.amount > 100", name="huge", outcome="block"),
            rule("event.amount > 1", name="shadowed", outcome="freeze_account", mode="shadow"),
            rule("event.amount > 1", name="off", outcome="freeze_account", mode="disabled"),
        ]
    )
    decision = decide(loaded(text), withdrawal(value_usd="90000"))
    assert decision.outcome == "review"
    assert decision.hold_hours == 12
    assert decision.score == 15
    assert decision.reasons == ["large", "btc_check"]
    assert decision.shadow_outcome == "freeze_account"
    assert decision.packs == ["test@1"]
    assert [(f.rule, f.mode) for f in decision.fired] == [
        ("large", "active"),
        ("btc", "active"),
        ("shadowed", "shadow"),
    ]
    assert decision.fired[0].values == [["event.value_usd", 90000.0]]
    assert decision.fired[1].values == [["event.asset", "BTC"]]


def test_rules_read_features_as_they_were_before_the_event():
    component = loaded(pack_text([rule("features.n_24h >= 2", name="third")], features=COUNT))
    outcomes = [decide(component, withdrawal(T0 + i)).outcome for i in range(3)]
    assert outcomes == ["allow", "allow", "review"]


def test_score_bands_raise_the_outcome():
    text = pack_text(
        [
            rule("True", name="a", outcome="allow", score=60),
            rule("True", name="b", outcome="allow", score=50),
        ],
        scoring=[{"min_score": 100, "outcome": "block"}],
    )
    decision = decide(loaded(text), withdrawal())
    assert (decision.outcome, decision.score) == ("block", 110)
    assert decision.reasons == ["a", "b", "score_at_least_100"]


def test_a_new_version_replaces_the_old_one_between_two_events_and_keeps_unchanged_features():
    component = loaded(pack_text([rule("features.n_24h >= 2", name="v1")], features=COUNT))
    for i in range(2):
        decide(component, withdrawal(T0 + i))
    features = {**COUNT, "fresh": {"agg": "count", "on": "Login", "key": "account", "window": "1h"}}
    [activated] = component.apply(
        RulePackLoaded(
            seq=0,
            id="v2",
            ts=T0 + 5,
            pack_yaml=pack_text(
                [rule("features.n_24h >= 2", name="v2")], features=features, version="2"
            ),
            author="ops",
        )
    )
    assert isinstance(activated, RulePackActivated)
    assert (activated.previous, activated.version, activated.kept_features) == ("1", "2", ["n_24h"])
    decision = decide(component, withdrawal(T0 + 6))
    assert [f.rule for f in decision.fired] == ["v2"]
    assert decision.packs == ["test@2"]


def test_a_refused_pack_leaves_the_active_version_in_place():
    component = loaded(pack_text([rule("True", name="keep")]))
    for bad in (
        pack_text([rule("event.nope")], version="2"),
        pack_text([rule("True", name="again")]),
    ):
        [refused] = component.apply(
            RulePackLoaded(seq=0, id="bad", ts=T0, pack_yaml=bad, author="x")
        )
        assert isinstance(refused, Rejected)
    assert refused.reason is RejectReason.ALREADY_EXISTS
    assert [f.rule for f in decide(component, withdrawal()).fired] == ["keep"]


def test_packs_combine_and_can_be_removed():
    component = loaded(pack_text([rule("True", name="a", outcome="review")], name="one"))
    component.apply(
        RulePackLoaded(
            seq=0,
            id="two",
            ts=T0,
            pack_yaml=pack_text([rule("True", name="b", outcome="block")], name="two"),
            author="x",
        )
    )
    decision = decide(component, withdrawal())
    assert (decision.outcome, decision.packs) == ("block", ["one@1", "two@1"])
    component.apply(RulePackRemoved(seq=0, id="rm", ts=T0, pack="two", author="x"))
    assert decide(component, withdrawal()).outcome == "review"


def test_list_entries_are_typed_journaled_and_expire():
    lists = {"bad": {"kind": "block", "type": "address"}}
    component = loaded(
        pack_text([rule("event.address in lists.bad", outcome="block")], lists=lists)
    )
    add = ListEntryAdded(
        seq=0,
        id="add",
        ts=T0,
        list="bad",
        value="bc1qdest",
        reason="case 1",
        author="a",
        expires_ts=T0 + 1000,
    )
    [changed] = component.apply(add)
    assert isinstance(changed, ListChanged)
    assert decide(component, withdrawal(T0 + 999)).outcome == "block"
    assert decide(component, withdrawal(T0 + 1000)).outcome == "allow"
    component.apply(
        ListEntryAdded(
            seq=0, id="add2", ts=T0 + 2000, list="bad", value="bc1qdest", reason="r", author="a"
        )
    )
    assert decide(component, withdrawal(T0 + 3000)).outcome == "block"
    component.apply(
        ListEntryRemoved(
            seq=0, id="rm", ts=T0 + 4000, list="bad", value="bc1qdest", reason="cleared", author="b"
        )
    )
    assert decide(component, withdrawal(T0 + 5000)).outcome == "allow"
    for bad in (
        ListEntryAdded(seq=0, id="x", ts=T0, list="nope", value="v", reason="r", author="a"),
        ListEntryAdded(seq=0, id="y", ts=T0, list="bad", value="has space", reason="r", author="a"),
        ListEntryAdded(
            seq=0,
            id="z",
            ts=T0 + 9000,
            list="bad",
            value="v",
            reason="r",
            author="a",
            expires_ts=T0,
        ),
        ListEntryAdded(seq=0, id="w", ts=T0, list="bad", value="v", reason="", author="a"),
    ):
        assert isinstance(component.apply(bad)[0], Rejected)


def test_malformed_requests_are_rejected_and_change_nothing():
    component = loaded(pack_text([rule("features.n_24h >= 1")], features=COUNT))
    for bad in (
        withdrawal(amount="1e5"),
        withdrawal(amount="-1"),
        withdrawal(value_usd="0"),
        withdrawal(ip="999.1.1.1"),
        withdrawal(account=""),
    ):
        assert isinstance(component.apply(bad)[0], Rejected)
    assert decide(component, withdrawal()).outcome == "allow"


def test_in_the_engine_fills_feed_features_and_snapshots_restore_the_same_decisions():
    features = {"fills_1h": {"agg": "count", "on": "Fill", "key": "buyer", "window": "1h"}}
    text = pack_text(
        [
            rule(
                "features.fills_1h[event.account] >= 1 and account.known "
                "and hours_since(account.opened_ts) < 1",
                name="fresh_trader",
            )
        ],
        features=features,
    )
    log = Log(start_seq=1, ts=T0)
    log.make(RulePackLoaded, pack_yaml=text, author="t")
    log.assets()
    log.listing("BTCUSDT")
    for account, asset, amount in (("alice", "USDT", "100000"), ("bob", "BTC", "2")):
        log.account(account)
        log.deposit(account, asset, amount)
    log.fill("BTCUSDT", "60000", "0.5", buyer="alice", seller="bob")
    engine = Engine(components=[Ledger(), RulesComponent()])
    for event in log.events:
        outputs = engine.process(event)
        assert not any(isinstance(o, Rejected) for o in outputs), outputs
    restored = Engine.restore(engine.snapshot(), components=[Ledger(), RulesComponent()])
    assert restored.state_hash() == engine.state_hash()
    request = log.make(WithdrawalRequest, **_request("alice"))
    for target in (engine, restored):
        [decision] = target.process(request)
        assert isinstance(decision, Decision)
        assert [f.rule for f in decision.fired] == ["fresh_trader"]
        assert decision.fired[0].values[:2] == [
            ["event.account", "alice"],
            ["features.fills_1h[event.account]", 1],
        ]
    assert restored.state_hash() == engine.state_hash()
    [other] = engine.process(log.make(WithdrawalRequest, **_request("bob")))
    assert other.outcome == "allow"


def _request(account: str) -> dict:
    return {
        "account": account,
        "asset": "BTC",
        "amount": "0.1",
        "value_usd": "6000",
        "address": "bc1qx",
        "network": "BTC",
    }


def test_two_identical_features_kept_across_versions_keep_one_store_each():
    """Two features with one definition: a new version keeps each one's history in its own
    store (one store shared by both would count every event twice)."""
    twin = {"a": COUNT["n_24h"], "b": COUNT["n_24h"]}
    rules = [rule("features.a >= 0", name="ra"), rule("features.b >= 0", name="rb")]
    component = loaded(pack_text(rules, features=twin))
    for i in range(2):
        decide(component, withdrawal(T0 + i))
    [activated] = component.apply(
        RulePackLoaded(
            seq=0, id="v2", ts=T0 + 5, author="ops",
            pack_yaml=pack_text(rules, features=twin, version="2"),
        )
    )  # fmt: skip
    assert activated.kept_features == ["a", "b"]
    pack = component.packs["test"]
    assert pack.stores["a"] is not pack.stores["b"]
    decision = decide(component, withdrawal(T0 + 6))
    read = {name: value for fired in decision.fired for name, value in fired.values}
    assert read["features.a"] == read["features.b"] == 2  # the two before
    decision = decide(component, withdrawal(T0 + 7))
    read = {name: value for fired in decision.fired for name, value in fired.values}
    assert read["features.a"] == read["features.b"] == 3  # one more, counted once in each
