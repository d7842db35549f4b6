"""The rule language: every construct, its types, and the sandbox-escape corpus."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fengkong.gate.events import OrderRequest  # registers the kind: rules may decide it
from fengkong.model.events import Fill
from fengkong.rules.errors import PackError, ProblemCode
from fengkong.rules.language import MAX_SOURCE_CHARS
from fengkong.rules.pack import load_pack
from tests.rules.kit import T0, fires, login, pack_text, rule, security_change, withdrawal

FEATURES = {
    "withdrawals_24h": {
        "agg": "count",
        "on": "WithdrawalRequest",
        "key": "account",
        "window": "24h",
    },
    "by_pair": {
        "agg": "count",
        "on": "WithdrawalRequest",
        "key": ["account", "address"],
        "window": "30d",
    },
    "last_device": {
        "agg": "last",
        "on": "Login",
        "key": "account",
        "value": "device",
        "window": "7d",
    },
}
LISTS = {"bad_addresses": {"kind": "block", "type": "address"}}


# --- every construct, firing and not firing --------------------------------------------------

CONSTRUCTS = [
    # literals and comparisons
    ("event.amount > 1", True),
    ("event.amount > 1.5", False),
    ("event.amount >= 1.5", True),
    ("event.amount < 2", True),
    ("event.amount <= 1.49", False),
    ("event.amount == 1.5", True),
    ("event.amount != 1.5", False),
    ("1 < event.amount < 2", True),
    ("1 < event.amount < 1.4", False),
    ("event.asset == 'BTC'", True),
    ("event.asset != 'BTC'", False),
    ("event.ts == 1767225600000", True),
    # boolean operators
    ("event.amount > 1 and event.asset == 'BTC'", True),
    ("event.amount > 1 and event.asset == 'ETH'", False),
    ("event.amount > 9 or event.asset == 'BTC'", True),
    ("event.amount > 9 or event.asset == 'ETH'", False),
    ("not event.amount > 9", True),
    ("not (event.amount > 1)", False),
    # arithmetic
    ("event.amount + 1 == 2.5", True),
    ("event.amount - 0.5 == 1", True),
    ("event.amount * 2 == 3", True),
    ("event.amount / 3 == 0.5", True),
    ("event.ts // 1000 == 1767225600", True),
    ("event.ts % 1000 == 0", True),
    ("-event.amount == -1.5", True),
    ("+event.amount == 1.5", True),
    ("event.value_usd / event.amount > 60000", False),
    # in / not in
    ("event.asset in ['BTC', 'ETH']", True),
    ("event.asset in ('ETH', 'SOL')", False),
    ("event.asset not in ['ETH']", True),
    ("event.amount in [1.5, 2]", True),
    ("'dest' in event.address", True),
    ("'zzz' in event.address", False),
    ("event.address in lists.bad_addresses", False),
    ("event.address not in lists.bad_addresses", True),
    ("in_list('bad_addresses', event.address)", False),
    # conditional expression
    ("(event.amount if event.asset == 'BTC' else 0) > 1", True),
    ("('a' if event.amount > 2 else 'b') == 'a'", False),
    # functions
    ("abs(-event.amount) == 1.5", True),
    ("min(event.amount, 1) == 1", True),
    ("max(event.amount, 1, 2) == 2", True),
    ("len(event.asset) == 3", True),
    ("hours_since(event.ts) == 0", True),
    ("minutes_since(event.ts - 120000) == 2", True),
    ("days_since(event.ts - 86400000) == 1", True),
    ("safe_div(event.amount, 0) == 0", True),
    ("safe_div(event.amount, 3) == 0.5", True),
    ("lower(event.asset) == 'btc'", True),
    ("startswith(event.address, 'bc1')", True),
    ("endswith(event.address, 'xyz')", False),
    # namespaces
    ("features.withdrawals_24h == 0", True),
    ("features.by_pair[event.account, event.address] == 0", True),
    ("features.by_pair['u1', 'bc1qdest'] > 0", False),
    ("features.last_device[event.account] == ''", True),
    ("account.known", False),
    ("account.opened_ts == 0", True),
    # booleans as values
    ("True", True),
    ("False", False),
]


@pytest.mark.parametrize(("condition", "expected"), CONSTRUCTS)
def test_each_construct_evaluates_to_its_python_meaning(condition, expected):
    assert fires(condition, features=FEATURES, lists=LISTS) is expected


def test_enum_fields_compare_with_their_values():
    assert fires("event.change == 'password'", security_change(), on="SecurityChange")
    assert not fires("event.change in ['email', 'phone']", security_change(), on="SecurityChange")


def test_boolean_fields_are_booleans():
    assert fires("event.success and event.country == 'SG'", login(), on="Login")
    assert not fires("not event.success", login(), on="Login")


def test_division_by_zero_at_run_time_is_a_traced_error_that_fails_closed():
    from tests.rules.kit import decide, loaded

    component = loaded(
        pack_text([rule("event.amount / (event.ts - event.ts) > 1", outcome="block")])
    )
    decision = decide(component, withdrawal())
    assert decision.outcome == "review"
    assert decision.reasons == ["rule_error"]
    assert decision.fired[0].error == "ZeroDivisionError: float division by zero"


# --- load-time errors name the rule, the position and the reason -----------------------------


def problems(condition: str, on: str = "WithdrawalRequest", **pack) -> list:
    with pytest.raises(PackError) as caught:
        load_pack(pack_text([rule(condition, on=on)], **pack))
    return caught.value.problems


@pytest.mark.parametrize(
    ("condition", "code", "fragment", "column"),
    [
        ("event.amout > 1", ProblemCode.UNKNOWN_FIELD, "did you mean 'amount'", 1),
        ("event.amount > 'x'", ProblemCode.TYPE_MISMATCH, "compares numbers", 1),
        ("event.amount and True", ProblemCode.TYPE_MISMATCH, "'and' takes booleans", 1),
        ("event.amount", ProblemCode.TYPE_MISMATCH, "expected bool", 1),
        ("event.asset + 'x' == 'y'", ProblemCode.TYPE_MISMATCH, "takes numbers", 1),
        ("event.asset == 1", ProblemCode.TYPE_MISMATCH, "like with like", 1),
        ("features.nope > 1", ProblemCode.UNKNOWN_FEATURE, "no feature 'nope'", 1),
        ("event.address in lists.nope", ProblemCode.UNKNOWN_LIST, "no list 'nope'", 18),
        ("amount > 1", ProblemCode.UNKNOWN_NAME, "unknown name 'amount'", 1),
        ("True and sqrt(2) > 1", ProblemCode.UNKNOWN_FUNCTION, "no function 'sqrt'", 10),
        ("abs('x') > 1", ProblemCode.BAD_ARGUMENTS, "abs takes one number", 1),
        ("event.amount ** 2 > 1", ProblemCode.DISALLOWED_CONSTRUCT, "'**'", 1),
        ("event.amount is 1", ProblemCode.DISALLOWED_CONSTRUCT, "'Is' is not allowed", 1),
        ("event.amount > None", ProblemCode.BAD_LITERAL, "None literals", 16),
        ("event.amount > 10**30", ProblemCode.DISALLOWED_CONSTRUCT, "'**'", 16),
        ("event.amount > 1" + "0" * 30, ProblemCode.BAD_LITERAL, "out of range", 16),
        ("event.amount > 1e400", ProblemCode.BAD_LITERAL, "out of range", 16),
        ("event.amount >", ProblemCode.SYNTAX, "invalid syntax", 15),
        (
            "features.by_pair == 0 and event.account in lists.bad_addresses",
            ProblemCode.TYPE_MISMATCH,
            "holds address values; event.account is a user",
            27,
        ),
    ],
)
def test_errors_name_the_rule_the_position_and_the_reason(condition, code, fragment, column):
    [problem] = problems(condition, features=FEATURES, lists=LISTS)
    assert problem.path == "rules[0].if (rule 'r')"
    assert problem.code is code
    assert fragment in problem.message
    assert (problem.line, problem.column) == (1, column)


def test_misspelt_enum_value_is_a_load_error():
    [problem] = problems("event.change == 'pasword'", on="SecurityChange")
    assert problem.code is ProblemCode.TYPE_MISMATCH
    assert "'pasword' is not a value of event.change" in problem.message


def test_every_problem_of_a_pack_is_reported_at_once_with_its_path():
    text = pack_text(
        [
            rule("event.amout > 1", name="a"),
            rule("event.amount > 1", name="a"),
            {"name": "c", "on": "Nope", "if": "True", "outcome": "maybe"},
            rule("True", name="d", outcome="hold_withdrawal"),
        ],
        features={"f": {"agg": "count", "on": "Login", "key": "nope", "window": "45d"}},
    )
    with pytest.raises(PackError) as caught:
        load_pack(text)
    paths = sorted(p.path for p in caught.value.problems)
    assert paths == [
        "features.f.key[0]",
        "features.f.window",
        "rules[1].name",
        "rules[2].on",
        "rules[2].outcome",
        "rules[3].hold_hours",
    ]
    text = pack_text([rule("event.amout > 1", name="a"), rule("event.nope == 1", name="b")])
    with pytest.raises(PackError) as caught:
        load_pack(text)
    assert [p.path for p in caught.value.problems] == [
        "rules[0].if (rule 'a')",
        "rules[1].if (rule 'b')",
    ]


def test_yaml_one_one_booleans_do_not_eat_the_on_key():
    plan = load_pack(
        "pack: p\nversion: 1\nrules:\n- {name: r, on: Login, if: 'True', outcome: allow}\n"
    )
    assert plan.rules[0].on == "Login"


# --- the sandbox-escape corpus -----------------------------------------------------------------

ESCAPES = [
    "__import__('os').system('id')",
    "event.__class__.__mro__[1].__subclasses__()",
    "event.__class__",
    "event.__init__.__globals__",
    "().__class__.__bases__[0].__subclasses__()",
    "''.__class__.__mro__[1]",
    "[].__class__",
    "abs.__self__.__import__('os')",
    "abs.__self__",
    "len.__call__('x') > 0",
    "min.__module__ == 'builtins'",
    "features.__dict__",
    "lists.__class__",
    "account.__dict__",
    "event._fields",
    "__builtins__",
    "globals()['__builtins__']",
    "getattr(event, '__class__')",
    "eval('1+1') == 2",
    "exec('import os')",
    "open('/etc/passwd')",
    "'{0.__class__}'.format(event)",
    "'%s' % event.asset == 'x'",
    "f'{event.__class__}' == ''",
    "f'{event.amount}' == '1.5'",
    "(lambda: 1)() == 1",
    "(lambda x: x)(1) == 1",
    "[x for x in [1, 2]] == [1, 2]",
    "{x for x in [1]}",
    "{'a': 1}['a'] == 1",
    "(x for x in [1]).gi_frame.f_back",
    "(g := 1) == 1",
    "event.address.upper() == 'X'",
    "event.asset.startswith('B')",
    "'x'.join(['a']) == 'a'",
    "event.amount.__class__(1) == 1",
    "(yield 1)",
    "await event",
    "[*[1, 2]]",
    "min(*[1, 2]) == 1",
    "abs(x=1) == 1",
    "event.asset[0] == 'B'",
    "features.withdrawals_24h[::-1]",
    "'a' * 10**9 == ''",
    "9 ** 9 ** 9 > 0",
    "event.amount > 1" + "0" * 5000,
    "(" * 250 + "True" + ")" * 250,
    "[" * 100 + "]" * 100 + " == 1",
    "not " * 500 + "True",
    "-" * 1000 + "1 > 0",
    " and ".join(["True"] * 600),
    "'" + "a" * 300 + "' == event.asset",
    "b'x' == b'x'",
    "... == ...",
    "1j == 1j",
    "True if True else __import__('os')",
    "event.amount > 1\x00",
    "event.amount > 1; import os",
    "import os",
    "del event",
    "event.amount = 1",
]


@pytest.mark.parametrize("expression", ESCAPES)
def test_known_sandbox_escapes_are_rejected_at_load_with_a_clear_error(expression):
    with pytest.raises(PackError) as caught:
        load_pack(pack_text([rule(expression)], features=FEATURES, lists=LISTS))
    assert caught.value.problems
    for problem in caught.value.problems:
        assert problem.path.startswith("rules[0].if")
        assert problem.message


def test_the_compiled_code_has_no_builtins_to_reach():
    plan = load_pack(pack_text([rule("event.amount > 1")]))
    compiled = plan.bind({}, {}, {})
    function = compiled.evaluators["WithdrawalRequest"]
    assert function.__globals__["__builtins__"] == {}
    assert "event.amount" in function.source or "ev.amount" in function.source


def test_an_overlong_expression_is_refused_before_parsing():
    [problem] = problems("True or " * (MAX_SOURCE_CHARS // 8 + 1) + "True")
    assert problem.code is ProblemCode.TOO_LONG


_atoms = st.sampled_from(
    [
        "event.amount",
        "event.asset",
        "event.ts",
        "features.withdrawals_24h",
        "lists.bad_addresses",
        "account.known",
        "1",
        "2.5",
        "'BTC'",
        "True",
        "None",
        "__import__",
        "abs",
        "x",
        "event",
        "event.__class__",
        "[1, 2]",
        "(1,)",
        "{}",
        "lambda: 0",
        "f'{1}'",
        "hours_since",
    ]
)
_ops = st.sampled_from(
    [
        " and ",
        " or ",
        " + ",
        " - ",
        " * ",
        " / ",
        " // ",
        " % ",
        " ** ",
        " == ",
        " != ",
        " < ",
        " >= ",
        " in ",
        " not in ",
        " if ",
        " else ",
        ".",
        "(",
        ")",
        "[",
        "]",
        ", ",
        "not ",
        "-",
    ]
)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.one_of(_atoms, _ops), min_size=1, max_size=25))
def test_random_expressions_are_accepted_or_raise_the_documented_error(parts):
    expression = "".join(parts)
    try:
        plan = load_pack(pack_text([rule(expression)], features=FEATURES, lists=LISTS))
    except PackError as exc:
        assert exc.problems
        return
    from tests.rules.kit import decide, loaded

    decision = decide(loaded(plan.source), withdrawal(T0))
    assert decision.outcome in ("allow", "review")


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=200))
def test_arbitrary_text_is_accepted_or_raises_the_documented_error(text):
    try:
        load_pack(pack_text([rule(text)]))
    except PackError as exc:
        assert exc.problems


@pytest.mark.parametrize("text", ["1if event.amount else 2", '"\\d" == "x"'])
def test_compiler_warnings_are_syntax_problems_not_stderr_noise(text: str) -> None:
    """A text the compiler only warns about ("invalid decimal literal", an invalid escape) is
    refused like any syntax error, and nothing is printed."""
    import warnings

    from fengkong.rules.language import parse_expression

    problems: list = []
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert parse_expression(text, "rules[0].if", problems) is None
    assert [p.code.value for p in problems] == ["syntax"]


# --- optional fields: read only where proved present ------------------------------------------


def order(price: str | None = "101.5", **fields):
    """A new limit order (``price=None``: a market order, which carries no price)."""
    body = {"action": "new", "order_id": "o1", "account": "u1", "symbol": "BTCUSDT", "qty": "2"}
    body.update(fields)
    if price is None:
        body["order_type"] = "market"
    return OrderRequest(seq=0, id=f"o-{price}-{sorted(fields.items())}", ts=T0, price=price, **body)


OPTIONAL_CONSTRUCTS = [
    # (condition, fires on the limit order at 101.5, fires on the market order)
    ("has(event.price)", True, False),
    ("not has(event.price)", False, True),
    ("has(event.price) and event.price > 100", True, False),
    ("has(event.price) and event.qty > 1 and event.price < 101", False, False),
    ("not has(event.price) or event.price < 200", True, True),
    ("not has(event.price) or event.price < 100", False, True),
    ("(event.price if has(event.price) else 0.0) > 100", True, False),
    ("(0.0 if not has(event.price) else event.price) > 100", True, False),
    ("has(event.price) and (event.price > 1000 or event.price * event.qty > 200)", True, False),
    ("coalesce(event.price, 0.0) > 100", True, False),
    ("coalesce(event.price, 1e9) > 1000", False, True),
    ("coalesce(event.price, event.qty) == 2", False, True),
    ("has(event.price) and has(event.price) and event.price == 101.5", True, False),
]


@pytest.mark.parametrize(("condition", "on_limit", "on_market"), OPTIONAL_CONSTRUCTS)
def test_an_optional_field_reads_where_has_proved_it_present(condition, on_limit, on_market):
    assert fires(condition, order(), on="OrderRequest") is on_limit
    assert fires(condition, order(price=None), on="OrderRequest") is on_market


def test_a_trace_shows_the_presence_test_and_an_absent_field_as_none():
    from tests.rules.kit import decide, loaded

    component = loaded(
        pack_text([rule("not has(event.price) or event.price < 5", on="OrderRequest")])
    )
    [fired] = decide(component, order(price=None)).fired
    assert fired.values == [["has(event.price)", False], ["event.price", None]]


def test_optional_string_fields_narrow_too():
    fill = Fill(
        seq=0,
        id="f1",
        ts=T0,
        symbol="BTCUSDT",
        price="100",
        qty="1",
        buyer="u1",
        seller="u2",
        taker_side="buy",
        buy_order_id="ord-7",
    )
    condition = "has(event.buy_order_id) and startswith(event.buy_order_id, 'ord-')"
    assert fires(condition, fill, on="Fill")
    assert fires("coalesce(event.sell_order_id, 'none') == 'none'", fill, on="Fill")


@pytest.mark.parametrize(
    ("condition", "code", "fragment", "column"),
    [
        ("event.price > 100", ProblemCode.MAYBE_ABSENT, "has(event.price) and", 1),
        ("has(event.price) or event.price > 1", ProblemCode.MAYBE_ABSENT, "may be absent", 21),
        ("event.price > 1 and has(event.price)", ProblemCode.MAYBE_ABSENT, "optional", 1),
        ("not has(event.price) and event.price > 1", ProblemCode.MAYBE_ABSENT, "absent", 26),
        ("has(event.price) == True and event.price > 1", ProblemCode.MAYBE_ABSENT, "absent", 30),
        ("(event.price if True else 0.0) > 1", ProblemCode.MAYBE_ABSENT, "absent", 2),
        ("has(event.qty)", ProblemCode.BAD_ARGUMENTS, "always present in OrderRequest", 5),
        ("has(event.prce)", ProblemCode.UNKNOWN_FIELD, "did you mean 'price'", 5),
        ("has(event.__class__)", ProblemCode.DUNDER_NAME, "'__class__'", 5),
        ("has(1)", ProblemCode.BAD_ARGUMENTS, "has(event.NAME): an event field", 1),
        ("has(event.price, event.price)", ProblemCode.BAD_ARGUMENTS, "one argument", 1),
        ("has", ProblemCode.DISALLOWED_CONSTRUCT, "has must be called", 1),
        ("coalesce(event.price, 'x') == 'x'", ProblemCode.TYPE_MISMATCH, "fallback is str", 1),
        ("coalesce(event.price) > 1", ProblemCode.BAD_ARGUMENTS, "two arguments", 1),
        ("coalesce(event.qty, 1) > 1", ProblemCode.BAD_ARGUMENTS, "always present", 10),
    ],
)
def test_an_optional_field_read_without_proof_is_a_load_error(condition, code, fragment, column):
    [problem] = problems(condition, on="OrderRequest")
    assert problem.code is code
    assert fragment in problem.message
    assert (problem.line, problem.column) == (1, column)


def test_has_on_a_kind_without_optional_fields_says_so():
    [problem] = problems("has(event.amount)")
    assert problem.code is ProblemCode.BAD_ARGUMENTS
    assert "the kind has none" in problem.message


_numbers = st.recursive(
    st.sampled_from(
        [
            "event.price",
            "event.qty",
            "coalesce(event.price, 0.0)",
            "coalesce(event.price, 7)",
            "100",
            "2.5",
        ]
    ),
    lambda inner: st.one_of(
        st.tuples(inner, st.sampled_from([" + ", " - ", " * "]), inner).map(
            "({0[0]}{0[1]}{0[2]})".format
        ),
        st.tuples(inner, st.deferred(lambda: _conditions), inner).map(
            "({0[0]} if {0[1]} else {0[2]})".format
        ),
    ),
    max_leaves=6,
)
_conditions = st.recursive(
    st.one_of(
        st.just("has(event.price)"),
        st.just("True"),
        st.tuples(_numbers, st.sampled_from([" > ", " <= ", " == "]), _numbers).map(
            "({0[0]}{0[1]}{0[2]})".format
        ),
    ),
    lambda inner: st.one_of(
        inner.map("(not {})".format),
        st.lists(inner, min_size=2, max_size=3).map(lambda xs: "(" + " and ".join(xs) + ")"),
        st.lists(inner, min_size=2, max_size=3).map(lambda xs: "(" + " or ".join(xs) + ")"),
        st.tuples(inner, inner, inner).map("({0[0]} if {0[1]} else {0[2]})".format),
    ),
    max_leaves=8,
)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_conditions)
def test_an_accepted_expression_never_meets_an_absent_field(expression):
    """Soundness of the narrowing: whatever the checker accepts evaluates without error on an
    order with a price and on one without (no ``None`` reaches a comparison or arithmetic)."""
    from tests.rules.kit import decide, loaded

    try:
        plan = load_pack(pack_text([rule(expression, on="OrderRequest")]))
    except PackError as exc:
        assert exc.problems
        return
    for event in (order(), order(price=None)):
        decision = decide(loaded(plan.source), event)
        assert all(not fired.error for fired in decision.fired), (expression, decision.fired)
