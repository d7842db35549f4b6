"""The fused step decides exactly as its reference, the evaluator followed by the updater.

Random streams (late events, empty keys, pair keys, explicit and literal keys, filters that
read features, ratios, tiny ``max_keys`` and ``exact_limit`` so that stores fill up and keys
switch to sketches, rule errors, a read that raises on an observed kind, two packs, a new
version keeping some features, a mid-stream snapshot and restore) are decided by a component
whose packs are fused and by one whose packs are not; every output and the canonical state
after every event must be equal.
"""

from __future__ import annotations

import msgspec
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from fengkong.model.events import AccountOpened, Deposit
from fengkong.rules import pack as pack_module
from fengkong.rules import windows
from fengkong.rules.component import RulesComponent
from fengkong.rules.events import Login, RulePackLoaded, WithdrawalRequest
from fengkong.rules.windows import (
    _FAR,
    _HI,
    _LO,
    _NEVER,
    CountWindow,
    DistinctWindow,
    ExtremumWindow,
    LastWindow,
    SumWindow,
    _Last,
    _Queue,
    _Tally,
)
from tests.rules.kit import T0, pack_text, rule, withdrawal

SECOND = 1_000

FEATURES = {
    "n_10s": {"agg": "count", "on": "WithdrawalRequest", "key": "account", "window": "10s"},
    "n_ip_6s": {
        "agg": "count",
        "on": ["WithdrawalRequest", "Login"],
        "key": "ip",
        "window": "6s",
        "bucket": "2s",
        "max_keys": 2,
    },
    "usd_20s": {
        "agg": "sum",
        "on": "WithdrawalRequest",
        "key": "account",
        "value": "value_usd",
        "window": "20s",
        "bucket": "2s",
    },
    "dep_30s": {
        "agg": "sum",
        "on": "Deposit",
        "key": "account",
        "value": "amount",
        "window": "30s",
        "bucket": "3s",
    },
    "min_amt_12s": {
        "agg": "min",
        "on": "WithdrawalRequest",
        "key": "account",
        "value": "amount",
        "window": "12s",
        "bucket": "3s",
        "default": -1,
    },
    "max_usd_12s": {
        "agg": "max",
        "on": "WithdrawalRequest",
        "key": ["account", "address"],
        "value": "value_usd",
        "window": "12s",
        "bucket": "2s",
        "max_keys": 3,
    },
    "addrs_8s": {
        "agg": "distinct",
        "on": "WithdrawalRequest",
        "key": "account",
        "value": "address",
        "window": "8s",
        "bucket": "2s",
        "exact_limit": 2,
    },
    "users_8s": {
        "agg": "distinct",
        "on": ["WithdrawalRequest", "Login"],
        "key": "device",
        "value": "account",
        "window": "8s",
        "bucket": "1s",
        "max_keys": 2,
    },
    "last_dev_9s": {
        "agg": "last",
        "on": ["Login", "WithdrawalRequest"],
        "key": "account",
        "value": "device",
        "window": "9s",
        "bucket": "3s",
        "default": "none",
    },
    "pair_6s": {
        "agg": "count",
        "on": "WithdrawalRequest",
        "key": ["account", "address"],
        "window": "6s",
        "bucket": "2s",
    },
    "big_10s": {
        "agg": "count",
        "on": "WithdrawalRequest",
        "key": "account",
        "window": "10s",
        "where": "event.value_usd > 500 and features.n_10s < 4 and event.network in ['BTC']",
    },
    "logins_10s": {"agg": "count", "on": "Login", "key": "account", "window": "10s"},
    # fed by logins without a read (a fresh lookup in their step), read by withdrawals
    # without an update (reads at cutoffs past the store's last sweep)
    "ip_logins_9s": {
        "agg": "count",
        "on": "Login",
        "key": "ip",
        "window": "9s",
        "bucket": "3s",
    },
    "per_login": {"agg": "ratio", "ratio": ["n_10s", "logins_10s"]},
}

RULES = [
    rule("features.n_10s >= 2", name="count"),
    rule("features.usd_20s > 1500.0 and features.min_amt_12s < 400", name="sums", score=20),
    rule("features.addrs_8s >= 2 or features.users_8s > 1", name="distinct", mode="shadow"),
    rule("features.last_dev_9s != event.device", name="device", score=5),
    rule("features.pair_6s > 0 and features.max_usd_12s > 100.0", name="pair"),
    rule("features.n_10s[event.account] + features.pair_6s[event.account, 'x1'] > 2", name="k"),
    rule("features.n_ip_6s > 1", name="ip", outcome="block"),
    rule("features.ip_logins_9s > 1", name="ip_logins", score=2),
    rule("features.per_login > 1.0", name="ratio", score=7),
    rule("event.value_usd / (features.big_10s - 1) > 100.0", name="errs"),
    rule("features.users_8s > 0", on="Login", name="login_users"),
    rule("features.dep_30s > 100.0 or event.amount > 500.0", on="Deposit", name="deposits"),
    rule("event.amount > 1.0", name="amount", mode="disabled"),
    rule(
        "features.n_10s >= 1",
        name="hold_a",
        outcome="hold_withdrawal",
        hold_hours=4,
        reason="velocity",
    ),
    rule(
        "features.usd_20s > 100.0",
        name="hold_b",
        outcome="hold_withdrawal",
        hold_hours=12,
        reason="velocity",
        score=3,
    ),
    rule("features.n_10s >= 3", name="shadow_block", outcome="block", mode="shadow", score=30),
    # a literal set in a rule and another in a filter (one namespace in the step); the same
    # test in two rules (computed once in the step)
    rule("event.asset in ['SOL', 'ETH'] or features.n_10s > 5", name="sets"),
    rule("event.asset in ['ETH', 'SOL'] and features.n_10s > 1", name="sets_again"),
]
SCORING = [{"min_score": 25, "outcome": "block"}]
PACK = pack_text(RULES, features=FEATURES, name="fused", scoring=SCORING)
# a second version: some features changed (start empty), the rest keep their windows
PACK_V2 = PACK.replace("'10s'", "'11s'").replace("version: '1'", "version: '2'")
SECOND_PACK = pack_text(
    [rule("features.n_acc_5s > 1", name="other")],
    features={
        "n_acc_5s": {
            "agg": "count",
            "on": "WithdrawalRequest",
            "key": "account",
            "window": "5s",
            "bucket": "1s",
        }
    },
    name="second",
)
ACCOUNTS = ["a", "b", "c", ""]
ADDRESSES = ["x1", "x2", "x3", "x4", "x5"]
DEVICES = ["d1", "d2", "d3", ""]
IPS = ["10.0.0.1", "10.0.0.2", "10.0.0.3", "::1", ""]

steps = st.lists(
    st.tuples(
        st.sampled_from(["w", "w", "w", "l", "d", "o"]),
        st.integers(-4 * SECOND, 3 * SECOND),  # negative steps are late events
        st.integers(0, 3),
        st.integers(0, 4),
        st.integers(0, 3),
        st.integers(0, 4),
        st.integers(1, 900),
    ),
    min_size=1,
    max_size=120,
)


def build_events(raw) -> list:
    events, ts = [], T0
    for i, (kind, step, account, address, device, ip, amount) in enumerate(raw, start=10):
        ts = max(T0, ts + step)
        if kind == "w":
            events.append(
                withdrawal(
                    ts=ts,
                    account=ACCOUNTS[account] or "a",
                    address=ADDRESSES[address],
                    device=DEVICES[device],
                    ip=IPS[ip],
                    amount=f"{amount}.5",
                    value_usd=str(amount * 3),
                )
            )
        elif kind == "l":
            events.append(
                Login(
                    seq=i,
                    id=f"l{i}",
                    ts=ts,
                    account=ACCOUNTS[account] or "b",
                    ip=IPS[ip] or "10.0.0.9",
                    device=DEVICES[device],
                )
            )
        elif kind == "d":  # observed, never validated: a malformed amount makes reads raise
            text = "oops" if amount % 5 == 0 else f"{amount}.25"
            events.append(
                Deposit(
                    seq=i, id=f"d{i}", ts=ts, account=ACCOUNTS[account], asset="BTC", amount=text
                )
            )
        else:
            events.append(AccountOpened(seq=i, id=f"o{i}", ts=ts, account=ACCOUNTS[account]))
    return events


def component(fuse: bool, two: bool, monkeypatch) -> RulesComponent:
    monkeypatch.setattr(pack_module, "FUSE", fuse)
    made = RulesComponent()
    made.apply(RulePackLoaded(seq=1, id="p1", ts=T0, pack_yaml=PACK, author="t"))
    if two:
        made.apply(RulePackLoaded(seq=2, id="p2", ts=T0, pack_yaml=SECOND_PACK, author="t"))
    return made


def encode(outputs) -> bytes:
    return msgspec.msgpack.encode(outputs)


def state(made: RulesComponent) -> bytes:
    return msgspec.msgpack.encode(made.canonical_state())


# a key whose buckets all left the window before its store swept it, read (its state is
# then the total alone) and updated again
EXPIRED = [("w", 0, 0, 0, 0, 0, 900), *[("l", 3_000, 0, 0, 0, 0, 1)] * 5, ("w", 0, 0, 0, 0, 0, 9)]


@settings(max_examples=120, deadline=None)
@given(raw=steps, cut=st.integers(0, 10**6), upgrade=st.integers(0, 10**6), two=st.booleans())
@example(raw=[*EXPIRED, ("w", 0, 0, 0, 0, 0, 10)], cut=9, upgrade=9, two=False)
def test_the_fused_step_decides_and_stores_exactly_as_evaluator_then_updater(
    raw, cut, upgrade, two
):
    """With one pack, withdrawals take the step's own resolution; with two, the generic one."""
    with pytest.MonkeyPatch.context() as patch:
        compare(build_events(raw), cut, upgrade, two, patch)


# ip_logins_9s: logins from three IPs expire together; while their sweep is owed, a login
# from the last of them (not popped yet) is counted afresh
OWED_FRESH = [("l", 0, 0, 0, 0, ip, 1) for ip in (0, 1, 2)] + [
    ("l", 9_000, 0, 0, 0, 3, 1),
    ("l", 0, 0, 0, 0, 2, 1),
]
# ip_logins_9s: two IPs expire, a third is live; withdrawals read the third at the next
# cutoff (it has no live bucket then) before its store sweeps again
OWED_READ = [
    ("l", 0, 0, 0, 0, 0, 1),
    ("l", 0, 0, 0, 0, 1, 1),
    ("l", 3_000, 0, 0, 0, 2, 1),
    ("l", 6_000, 0, 0, 0, 3, 1),
    ("w", 3_000, 0, 0, 0, 2, 5),
    *[("w", 0, 0, 0, 0, 0, 5)] * 3,
]


# pair_6s: (b, x5) is its only key in a sweep it owes; a withdrawal of (b, x5) looks its id
# up, then reads pair_6s for another key (the store's own read, before the kernel call):
# had that read settled the sweep, the id would have been let go before the call used it
OWED_LOOKED_UP = [
    ("w", 0, 0, 0, 0, 0, 1),
    ("w", 0, 1, 4, 0, 0, 1),
    *[("w", 0, 0, 0, 0, 0, 1)] * 10,
    ("w", 3_000, 0, 0, 0, 0, 1),
    ("w", -241, 0, 0, 0, 0, 1),
    ("w", 0, 0, 0, 0, 0, 1),
    ("w", 3_000, 0, 0, 0, 0, 1),
    ("w", 0, 0, 0, 0, 0, 1),
    ("w", 0, 0, 1, 0, 0, 1),
    ("w", 0, 0, 0, 0, 0, 1),
    ("w", 0, 0, 2, 0, 0, 1),
    ("l", 2_859, 0, 0, 0, 0, 1),
    ("d", 0, 0, 0, 0, 0, 1),
    ("w", 0, 0, 0, 0, 0, 1),
    ("d", 0, 0, 0, 0, 0, 165),
    ("w", 0, 1, 4, 0, 0, 1),
]


@settings(max_examples=150, deadline=None)
@given(raw=steps, cut=st.integers(0, 10**6), upgrade=st.integers(0, 10**6), two=st.booleans())
@example(raw=[*EXPIRED, ("w", 0, 0, 0, 0, 0, 10)], cut=9, upgrade=9, two=False)
@example(raw=OWED_FRESH, cut=5, upgrade=5, two=False)
@example(raw=OWED_READ, cut=8, upgrade=8, two=False)
@example(raw=OWED_LOOKED_UP, cut=0, upgrade=0, two=False)
def test_keys_an_owed_sweep_has_not_popped_yet_change_no_decision_and_no_state(
    raw, cut, upgrade, two
):
    """One key popped per event (``DRAIN`` 1), and the canonical state (which settles every
    owed sweep) taken only at the snapshot and at the end: in between, the fused stores hold
    keys their sweeps dropped, and every decision and the final state are still the
    reference's."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(windows, "DRAIN", 1)
        compare(build_events(raw), cut, upgrade, two, patch, every_state=False)


def compare(
    events: list,
    cut: int,
    upgrade: int,
    two: bool,
    patch: pytest.MonkeyPatch,
    every_state: bool = True,
) -> None:
    cut %= len(events) + 1
    upgrade %= len(events) + 1
    fused = component(True, two, patch)
    reference = component(False, two, patch)
    assert fused.packs["fused"].steps and not reference.packs["fused"].steps
    assert (WithdrawalRequest in fused._solo) is not two
    for position, event in enumerate(events):
        if position == upgrade:
            load = RulePackLoaded(seq=5, id="v2", ts=event.ts, pack_yaml=PACK_V2, author="t")
            patch.setattr(pack_module, "FUSE", True)
            out_fused = fused.apply(load)
            patch.setattr(pack_module, "FUSE", False)
            assert encode(reference.apply(load)) == encode(out_fused)
        if position == cut:
            patch.setattr(pack_module, "FUSE", True)
            restored = RulesComponent()
            restored.restore_state(fused.canonical_state())
            assert state(restored) == state(fused)
            fused = restored
        out_fused = fused.apply(event)
        out_reference = reference.apply(event)
        assert encode(out_fused) == encode(out_reference), (position, event)
        if every_state:
            assert state(fused) == state(reference), (position, event)
    assert state(fused) == state(reference)


def reference_sweep(store, cutoff: int) -> None:
    """The sweep as a loop (the definition): pop keys, oldest update first, up to the first
    whose newest bucket is in the window."""
    store._swept = cutoff
    keys = store.keys
    while keys:
        key, state = keys.popitem(False)
        if store._newest(state) > cutoff:
            keys[key] = state
            keys.move_to_end(key, False)
            return


def make_store(agg: str):
    """A store of one bucket width (1) and 10 buckets, for the sweep tests."""
    if agg == "count":
        return CountWindow(1, 10, 100, 1)
    if agg == "sum":
        return SumWindow(1, 10, 100, 1)
    if agg == "max":
        return ExtremumWindow(1, 10, 100, 1, max, 0)
    if agg == "last":
        return LastWindow(1, 10, 100, 1, "")
    return DistinctWindow(1, 10, 100, 5)


def key_state(agg: str, bucket: int | None):
    """A key's state whose newest bucket is ``bucket`` (``None``: no live bucket at all: an
    empty tally, queue or distinct)."""
    if agg in ("count", "sum"):
        if bucket is None:
            return _Tally(0, _FAR, _NEVER, 0)
        oldest = max(0, bucket - 2)
        return _Tally(3, oldest, bucket, 2, {oldest: 1} if oldest < bucket else None)
    if agg == "max":
        return _Queue(_FAR, _NEVER, None, None) if bucket is None else _Queue(bucket, bucket, 5, 5)
    if agg == "last":
        return _Last(bucket if bucket is not None else -5, 0, "x")
    if bucket is None:
        return {_LO: _FAR, _HI: _NEVER}
    return {_LO: bucket, _HI: bucket, "v": bucket}


def filled(agg: str, newest: list) -> tuple:
    """Two stores holding the same keys, in order, with the newest buckets ``newest``."""
    one, two = make_store(agg), make_store(agg)
    for i, bucket in enumerate(newest):
        one.keys[f"k{i}"] = key_state(agg, bucket)
        two.keys[f"k{i}"] = key_state(agg, bucket)
    return one, two


@settings(max_examples=200, deadline=None)
@given(
    agg=st.sampled_from(["count", "sum", "max", "last", "distinct"]),
    newest=st.lists(st.one_of(st.none(), st.integers(0, 12)), max_size=30),
    cutoff=st.integers(-1, 13),
)
def test_the_sweep_at_c_speed_drops_what_the_loop_drops(agg, newest, cutoff):
    """Keys in any order, some with no live bucket at all (an empty tally, queue or
    distinct), the cutoff anywhere: the same keys remain, in the same order."""
    fast, slow = filled(agg, newest)
    fast._sweep(cutoff)
    reference_sweep(slow, cutoff)
    assert list(fast.keys) == list(slow.keys)
    assert fast._swept == slow._swept == cutoff


@settings(max_examples=200, deadline=None)
@given(
    agg=st.sampled_from(["count", "sum", "max", "last"]),
    newest=st.lists(st.one_of(st.none(), st.integers(0, 12)), max_size=30),
    cutoff=st.integers(-1, 13),
    limits=st.lists(st.integers(1, 4), min_size=1, max_size=12),
)
def test_an_owed_sweep_drained_a_few_keys_at_a_time_drops_what_the_sweep_drops(
    agg, newest, cutoff, limits
):
    """While owed, the store holds the keys the sweep keeps behind some of those it drops
    (each stale); drained in chunks and then settled, it holds exactly the sweep's keys."""
    owed, swept = filled(agg, newest)
    owed.defer(cutoff)
    reference_sweep(swept, cutoff)
    kept = list(swept.keys)
    for limit in limits:
        assert owed.drain(limit) <= limit
        keys = list(owed.keys)
        assert keys[len(keys) - len(kept) :] == kept
        assert all(owed.stale(owed.keys[k]) for k in keys[: len(keys) - len(kept)])
    owed.settle()
    assert list(owed.keys) == kept
    assert not owed._owed and owed._swept == cutoff


def test_a_comparison_two_rules_share_stays_behind_the_guard_of_an_optional_field():
    """The step computes a comparison that several rules contain once, before the rules; not
    one that reads an optional field, which is None where the guard would have stopped it."""
    from fengkong.gate.events import OrderRequest

    guarded = "has(event.price) and event.price > 100"
    text = pack_text([rule(guarded, on="OrderRequest", name=n) for n in ("a", "b")], name="orders")
    made = RulesComponent()
    made.apply(RulePackLoaded(seq=1, id="p", ts=T0, pack_yaml=text, author="t"))
    assert "OrderRequest" in made.packs["orders"].steps
    market = OrderRequest(
        seq=2, id="m", ts=T0, action="new", order_id="m", account="a", symbol="X",
        order_type="market", qty="1",
    )  # fmt: skip
    limit = OrderRequest(
        seq=3, id="l", ts=T0, action="new", order_id="l", account="a", symbol="X", qty="1",
        price="101",
    )  # fmt: skip
    [decision] = made.apply(market)
    assert decision.fired == [] and decision.outcome == "allow"
    [decision] = made.apply(limit)
    assert [f.rule for f in decision.fired] == ["a", "b"]
