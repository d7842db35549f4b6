"""The decision hot path's shortcuts agree with the reference code they stand in for.

Request validation parses dotted-quad IPv4 addresses and plain decimals with regular
expressions and leaves everything else to ``ipaddress`` and ``parse_units``; these tests
check, on hypothesis-generated and hand-picked texts, that the refusals (field, reason,
message) and the parsed units are exactly those of the reference checks. Exact distinct
counts keep their values in bucket order; late events reorder them, which is checked against
a brute-force count.
"""

from __future__ import annotations

import ipaddress
import string

from hypothesis import given, settings
from hypothesis import strategies as st

from fengkong.engine.component import RejectError
from fengkong.model.events import RejectReason
from fengkong.model.fixed import FixedPointError, parse_units
from fengkong.rules.component import _kind_info, _validate
from fengkong.rules.events import WithdrawalRequest
from fengkong.rules.windows import DistinctWindow
from tests.rules.kit import withdrawal

TRICKY_IPS = [
    "10.0.0.1",
    "0.0.0.0",
    "255.255.255.255",
    "256.1.1.1",
    "01.2.3.4",
    "1.2.3",
    "1.2.3.4.5",
    "1.2.3.4/8",
    " 1.2.3.4",
    "1.2.3.4 ",
    "1.2.3.4\n",
    "١.2.3.4",
    "1.2.3.٤",
    "::1",
    "2001:db8::1",
    "fe80::1%eth0",
    "::ffff:1.2.3.4",
    "a.b.c.d",
    "1..2.3",
    "0x1.2.3.4",
    "1.2.3.04",
    "1.2.3.400",
]
TRICKY_AMOUNTS = [
    "1",
    "0",
    "0.0",
    "-0",
    "-1",
    "1.",
    ".5",
    "1e3",
    "01",
    "00.1",
    "0.000000000000000001",
    "0.0000000000000000001",
    "1." + "1" * 18,
    "1." + "1" * 19,
    "5.000000000000000000000",
    "9" * 40,
    "9" * 41,
    "٣",
    "1 ",
    "+1",
    "",
    "12.50",
]


def reference(event) -> tuple:
    """What the validation of the original implementation returned or raised, as data."""
    try:
        if not event.account:
            raise RejectError(RejectReason.INVALID_PARAMETER, "account", "", "required")
        units = {}
        for name in ("amount", "value_usd"):
            value = getattr(event, name)
            try:
                units[name] = parse_units(value, 18, field=name)
            except FixedPointError as exc:
                raise RejectError(RejectReason.INVALID_NUMBER, name, value, exc.reason) from None
            if not any(ch in "123456789" for ch in value) or value.startswith("-"):
                raise RejectError(RejectReason.NON_POSITIVE_AMOUNT, name, value, "must be > 0")
        if event.ip:
            try:
                ipaddress.ip_address(event.ip)
            except ValueError:
                raise RejectError(
                    RejectReason.INVALID_PARAMETER, "ip", event.ip, "not an IP address"
                ) from None
        if not event.address:
            raise RejectError(RejectReason.INVALID_PARAMETER, "address", "", "required")
    except RejectError as refusal:
        return ("refused", refusal.reason, refusal.field, refusal.value, refusal.message)
    return ("ok", units)


def fast(event) -> tuple:
    try:
        units = _validate(event, _kind_info(WithdrawalRequest))
    except RejectError as refusal:
        return ("refused", refusal.reason, refusal.field, refusal.value, refusal.message)
    return ("ok", units)


def test_hand_picked_amounts_and_addresses_validate_as_the_reference_does():
    for text in TRICKY_AMOUNTS:
        for event in (withdrawal(amount=text), withdrawal(value_usd=text)):
            assert fast(event) == reference(event), text
    for text in TRICKY_IPS:
        event = withdrawal(ip=text)
        assert fast(event) == reference(event), text


decimal_texts = st.one_of(
    st.sampled_from(TRICKY_AMOUNTS),
    st.from_regex(r"-?[0-9]{1,25}(\.[0-9]{0,22})?", fullmatch=True),
    st.text(alphabet="0123456789.-e+ ٣", max_size=45),
)
octet = st.one_of(st.integers(0, 300).map(str), st.text(alphabet="0123456789٤x", max_size=4))
ip_texts = st.one_of(
    st.sampled_from(TRICKY_IPS),
    st.lists(octet, min_size=3, max_size=5).map(".".join),
    st.text(alphabet=string.hexdigits + ":.%/ ", max_size=20),
)


@settings(max_examples=400, deadline=None)
@given(decimal_texts, decimal_texts, ip_texts)
def test_generated_requests_validate_as_the_reference_does(amount, value_usd, ip):
    event = withdrawal(amount=amount, value_usd=value_usd, ip=ip)
    assert fast(event) == reference(event)


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.tuples(st.integers(-6, 3), st.sampled_from("abcdef"), st.booleans()),
        min_size=1,
        max_size=60,
    )
)
def test_exact_distinct_counts_with_late_events_equal_a_brute_force_count(steps):
    g, n = 2, 4
    store = DistinctWindow(g, n, 100, 1_000)
    now, seen = 100, []
    for step, value, read in steps:
        if step > 0:
            now += step
        ts = now + min(step, 0)  # a negative step is a late event
        store.add("k", value, ts, now)
        seen.append((ts, value))
        if read:
            live = {v for t, v in seen if t // g > now // g - n}
            assert store.read("k", now) == len(live)
    restored = DistinctWindow(g, n, 100, 1_000)
    restored.restore(store.state())
    assert restored.state() == store.state()
