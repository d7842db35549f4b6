"""Rule-pack cases: repeated events (``repeat``, ``every``, ``{n}``) and their refusals."""

from __future__ import annotations

from fengkong.rules.cases import MAX_REPEAT, _repeated, run_cases
from tests.rules.kit import pack_text, rule

PACK = pack_text(
    [rule("features.n_1h >= 3", name="third")],
    features={
        "n_1h": {"agg": "count", "on": "WithdrawalRequest", "key": "account", "window": "1h"}
    },
)
BODY = {
    "type": "WithdrawalRequest",
    "account": "u{n}",
    "asset": "BTC",
    "amount": "1",
    "value_usd": "10",
    "address": "a",
    "network": "BTC",
}


def _run(*events: dict):
    [result] = run_cases(PACK, [{"name": "c", "events": list(events)}])
    return result


def test_repeat_numbers_the_copies_and_spaces_them_every_apart():
    # three copies for u0, u1, u2 ("{n}"): nobody reaches three; then three for one account
    spread = _run(
        {**BODY, "at": "0s", "repeat": 3},
        {**BODY, "account": "v", "at": "1m", "repeat": 3, "every": "10m"},
        {**BODY, "account": "v", "at": "30m", "expect": {"fired": ["third"]}},
        {**BODY, "account": "u1", "at": "31m", "expect": {"fired": []}},
    )
    assert spread.failures == [] and spread.checked == 2
    # v's copies at 1m, 11m, 21m leave the 1 h window by 1h22m: a fourth event there is alone
    expired = _run(
        {**BODY, "account": "v", "at": "1m", "repeat": 3, "every": "10m"},
        {**BODY, "account": "v", "at": "1h22m", "expect": {"fired": []}},
    )
    assert expired.failures == []


def test_n_is_numbered_only_in_an_event_that_gives_repeat():
    body = {"account": "x{n}", "ts": 5}
    assert _repeated(body, 1, 0, 1, "c", numbered=False) == [
        {"seq": 2, "id": "c", "account": "x{n}", "ts": 5}
    ]
    assert _repeated(body, 2, 7, 1, "c", numbered=True) == [
        {"seq": 2, "id": "c-0", "account": "x0", "ts": 5},
        {"seq": 3, "id": "c-1", "account": "x1", "ts": 12},
    ]


def test_an_expect_on_a_repeated_event_checks_its_last_copy():
    result = _run({**BODY, "account": "w", "repeat": 4, "expect": {"fired": ["third"]}})
    assert result.failures == [] and result.checked == 1


def test_a_bad_repeat_is_the_case_failure_naming_the_event():
    for bad in (0, -1, "3", 2.0, MAX_REPEAT + 1):
        result = _run({**BODY, "repeat": bad})
        assert len(result.failures) == 1
        assert result.failures[0].startswith("cases[0].events[0]: not an event: repeat=")
