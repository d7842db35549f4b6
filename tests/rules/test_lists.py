"""Lists: IP lists hold addresses and CIDR networks in canonical text; membership is exact
for other kinds. Membership is compared with :mod:`ipaddress` on random entries."""

from __future__ import annotations

import ipaddress

import msgspec
from hypothesis import given, settings
from hypothesis import strategies as st

from fengkong.model.events import Rejected
from fengkong.rules.component import RulesComponent
from fengkong.rules.events import ListChanged, ListEntryAdded, ListEntryRemoved
from fengkong.rules.lists import IpRanges, ip_member
from tests.rules.kit import T0, decide, loaded, pack_text, rule, withdrawal

LISTS = {"blocked_ips": {"kind": "block", "type": "ip"}}
BLOCK_IPS = pack_text([rule("event.ip in lists.blocked_ips", outcome="block")], lists=LISTS)


def add(value: str, ts: int = T0, expires_ts: int = 0, list_: str = "blocked_ips"):
    return ListEntryAdded(
        seq=0,
        id=f"add-{value}-{ts}",
        ts=ts,
        list=list_,
        value=value,
        reason="r",
        author="a",
        expires_ts=expires_ts,
    )


def remove(value: str, ts: int = T0):
    return ListEntryRemoved(
        seq=0, id=f"rm-{value}-{ts}", ts=ts, list="blocked_ips", value=value, reason="r", author="a"
    )


def outcome(component: RulesComponent, ip: str, ts: int = T0) -> str:
    return decide(component, withdrawal(ts, ip=ip)).outcome


def test_a_network_blocks_the_addresses_inside_it_and_no_other():
    component = loaded(BLOCK_IPS)
    component.apply(add("203.0.113.0/24"))
    component.apply(add("2001:db8::/32"))
    assert outcome(component, "203.0.113.7") == "block"
    assert outcome(component, "203.0.113.255") == "block"
    assert outcome(component, "203.0.114.1") == "allow"
    assert outcome(component, "2001:db8:ffff::1") == "block"
    assert outcome(component, "2001:db9::1") == "allow"
    assert outcome(component, "::ffff:203.0.113.9") == "block"  # IPv4-mapped


def test_entries_are_kept_in_canonical_text_and_found_however_written():
    component = loaded(BLOCK_IPS)
    [changed] = component.apply(add("2001:DB8:0:0::0001"))
    assert isinstance(changed, ListChanged) and changed.value == "2001:db8::1"
    assert outcome(component, "2001:db8::1") == "block"
    assert outcome(component, "2001:0db8::0:1") == "block"
    [changed] = component.apply(add("2001:0DB8:AB00::/40"))
    assert changed.value == "2001:db8:ab00::/40"
    [changed] = component.apply(remove("2001:db8:0::1"))
    assert changed.value == "2001:db8::1" and changed.action == "removed"
    assert outcome(component, "2001:db8::1") == "allow"
    assert outcome(component, "2001:db8:ab12::5") == "block"
    component.apply(remove("2001:db8:ab00:0::/40"))
    assert outcome(component, "2001:db8:ab12::5") == "allow"


def test_a_network_with_host_bits_set_or_a_bad_address_is_refused_by_name():
    component = loaded(BLOCK_IPS)
    for value, fragment in (
        ("203.0.113.7/24", "has host bits set"),
        ("10.0.0.0/33", "not an IP address or network"),
        ("10.0.0.256", "not an IP address or network"),
        ("example.com", "not an IP address or network"),
    ):
        [refused] = component.apply(add(value))
        assert isinstance(refused, Rejected)
        assert (refused.field, refused.value) == ("value", value)
        assert fragment in refused.message
    [refused] = component.apply(remove("10.0.0.0/8"))
    assert isinstance(refused, Rejected) and "not on the list" in refused.message


def test_a_network_entry_expires_and_survives_a_restore():
    component = loaded(BLOCK_IPS)
    component.apply(add("198.51.100.0/25", expires_ts=T0 + 1_000))
    component.apply(add("192.0.2.0/24"))
    restored = RulesComponent()
    state = msgspec.msgpack.encode(component.canonical_state())
    restored.restore_state(msgspec.msgpack.decode(state))
    for made in (component, restored):
        assert outcome(made, "198.51.100.3", T0 + 999) == "block"
        assert outcome(made, "198.51.100.3", T0 + 1_000) == "allow"
        assert outcome(made, "192.0.2.200", T0 + 2_000) == "block"
    assert msgspec.msgpack.encode(restored.canonical_state()) == msgspec.msgpack.encode(
        component.canonical_state()
    )


def test_a_pack_may_seed_an_ip_list_with_networks():
    lists = {"office": {"kind": "allow", "type": "ip", "entries": [
        {"value": "10.20.0.0/16", "reason": "office", "author": "secops"},
    ]}}  # fmt: skip
    component = loaded(
        pack_text([rule("event.ip not in lists.office", outcome="review")], lists=lists)
    )
    assert outcome(component, "10.20.3.4") == "allow"
    assert outcome(component, "10.21.3.4") == "review"


def test_other_list_kinds_match_exactly():
    lists = {"bad": {"kind": "block", "type": "address"}}
    component = loaded(
        pack_text([rule("event.address in lists.bad", outcome="block")], lists=lists)
    )
    component.apply(add("bc1q/dest", list_="bad"))  # a slash is a character of an address
    assert decide(component, withdrawal(address="bc1q/dest")).outcome == "block"
    assert decide(component, withdrawal(address="bc1q")).outcome == "allow"


_v4 = st.integers(0, 2**32 - 1).map(lambda n: ipaddress.IPv4Address(n))
_v6 = st.integers(0, 2**128 - 1).map(lambda n: ipaddress.IPv6Address(n))


def _network(address, prefix: int) -> str:
    return str(ipaddress.ip_network(f"{address}/{prefix}", strict=False))


_entries = st.lists(
    st.one_of(
        _v4.map(str),
        _v6.map(str),
        st.tuples(_v4, st.integers(0, 32)).map(lambda p: _network(*p)),
        st.tuples(_v6, st.integers(0, 128)).map(lambda p: _network(*p)),
        # networks near the probed addresses, so that some contain them
        st.tuples(st.sampled_from(["10.1.2.3", "2001:db8::7"]), st.integers(8, 128)).map(
            lambda p: _network(p[0], min(p[1], 32 if "." in p[0] else 128))
        ),
    ),
    max_size=12,
)
_probes = st.lists(
    st.one_of(
        _v4.map(str),
        _v6.map(str),
        st.sampled_from(["10.1.2.3", "10.1.2.4", "2001:db8::7", "::ffff:10.1.2.3", "nonsense"]),
    ),
    min_size=1,
    max_size=8,
)


@settings(max_examples=200, deadline=None)
@given(_entries, _probes, st.integers(0, 3))
def test_membership_equals_ipaddress_containment(entries, probes, expired):
    """An address is on the list exactly when a live entry (an address, or a network) holds
    it, by :mod:`ipaddress`; entries past their expiry hold nothing."""
    live: dict[str, int] = {}
    ranges = IpRanges()
    now = 100
    networks = []
    for i, entry in enumerate(entries):
        expiry = now if i < expired else now + 1  # the first ones expired (expiry <= now)
        if "/" in entry:
            ranges.put(entry, expiry)
        else:
            live[entry] = expiry
        if expiry > now:
            networks.append(ipaddress.ip_network(entry))
    for probe in probes:
        try:
            address = ipaddress.ip_address(probe)
        except ValueError:
            assert not ip_member(live, ranges, probe, now)
            continue
        candidates = [address]
        if getattr(address, "ipv4_mapped", None) is not None:
            candidates.append(address.ipv4_mapped)
        expected = any(a.version == n.version and a in n for a in candidates for n in networks)
        assert ip_member(live, ranges, probe, now) is expected, (probe, entries)
