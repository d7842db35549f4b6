"""Greeks from each option's mark IV and underlying price against the Greeks Deribit printed in
the same rows of the real chain snapshot (../shared/data/deribit-btc-options-snapshot-2026-03.csv,
source github.com/tessicin/volatility @ 7e9b111, collected from Deribit's public/ticker).

Conventions (fengkong.market.deribit): rate 0, 365-day year, USD delta N(d1) (−N(−d1) for puts),
gamma per USD, vega in USD per volatility point, theta in USD per calendar day.

"To the precision printed": the inputs are printed rounded too (mark IV to 0.01 points,
underlying to 0.01 USD) and the valuation time is known to the width of the window the rows
allows, so each Greek must agree within half a unit of its last printed digit plus what those
input roundings can move it (first-order sensitivities, by central differences).

Valuation time: the file does not record it. With rate 0, theta/vega = −100σ/(730t) for every
strike, so each row gives its own time to expiry (and an interval from the printed rounding);
the tickers were fetched one by one, so each row is valued at its own time. All 166 intervals
share a common window, 2026-03-01 13:48:55..13:49:00 UTC: the snapshot time. Because the row's
time comes from the ratio theta/vega, the check of theta and vega is a check of their level
(the ratio is used up); delta and gamma are independent of it.
"""

from __future__ import annotations

import datetime as dt

import numpy as np

from fengkong.feeds.deribit_options import iter_deribit_options
from fengkong.market.deribit import deribit_greeks, half_unit, time_to_expiry, valuation_window
from fengkong.model.enums import OptionKind

CHAIN = "deribit-btc-options-snapshot-2026-03.csv"


def _chain(shared_data):
    return list(iter_deribit_options(shared_data / CHAIN))


def test_valuation_time_is_derived_from_theta_over_vega_of_every_row(shared_data):
    """Every one of the 166 rows allows a valuation time within a common window: it is
    2026-03-01 13:48:55..13:49:00 UTC (inside the README's 2026-02-28 10:33 .. 2026-03-13 bound)."""
    rows = _chain(shared_data)
    assert len(rows) == 166
    window = valuation_window(
        (r.expiration_timestamp, r.values["mark_iv"], r.values["theta"], r.values["vega"])
        for r in rows
    )
    start = dt.datetime.fromtimestamp(window.earliest / 1000, dt.UTC)
    end = dt.datetime.fromtimestamp(window.latest / 1000, dt.UTC)
    assert start >= dt.datetime(2026, 3, 1, 13, 48, 50, tzinfo=dt.UTC)
    assert end <= dt.datetime(2026, 3, 1, 13, 49, 5, tzinfo=dt.UTC)
    assert window.latest - window.earliest < 10_000  # ms


def test_greeks_match_deribit_to_the_printed_precision_on_every_row(shared_data):
    rows = _chain(shared_data)
    f = np.array([r.f("underlying_price") for r in rows])
    k = np.array([r.f("strike") for r in rows])
    iv = np.array([r.f("mark_iv") / 100.0 for r in rows])
    call = np.array([r.kind is OptionKind.CALL for r in rows])
    times = [time_to_expiry(r.values["mark_iv"], r.values["theta"], r.values["vega"]) for r in rows]
    t = np.array([years for years, _ in times])
    t_rounding = np.array([spread for _, spread in times])
    ours = deribit_greeks(f, k, t, iv, call)
    inputs = {"underlying": f, "strike": k, "t": t, "mark_iv_fraction": iv}

    def moved_by_rounding(name: str, key: str, h: float, rounding) -> np.ndarray:
        up = deribit_greeks(is_call=call, **dict(inputs, **{key: inputs[key] + h}))
        down = deribit_greeks(is_call=call, **dict(inputs, **{key: inputs[key] - h}))
        return np.abs((getattr(up, name) - getattr(down, name)) / (2 * h)) * rounding

    for name in ("delta", "gamma", "vega", "theta"):
        printed = np.array([r.f(name) for r in rows])
        digit = np.array([half_unit(r.values[name]) for r in rows])
        allowance = (
            digit
            + moved_by_rounding(name, "underlying", 1e-3, 0.005)
            + moved_by_rounding(name, "mark_iv_fraction", 1e-6, 0.00005)
            + moved_by_rounding(name, "t", 1e-7, t_rounding)
        )
        error = np.abs(getattr(ours, name) - printed)
        worst = int(np.argmax(error / allowance))
        assert (error <= allowance).all(), (name, rows[worst].instrument_name, error[worst])


def test_deribit_delta_is_the_usd_delta_not_the_coin_delta(shared_data):
    """BTC-13MAR26-61000-C printed delta 0.78695: N(d1) = 0.78695, while the coin delta
    N(d1) − V/F would be 0.69188."""
    from fengkong.market.options import black76, to_coin

    row = _chain(shared_data)[0]
    assert row.instrument_name == "BTC-13MAR26-61000-C"
    t, _ = time_to_expiry(row.values["mark_iv"], row.values["theta"], row.values["vega"])
    quote = black76(row.f("underlying_price"), 61000.0, t, row.f("mark_iv") / 100, 0.0, "call")
    assert round(quote.delta, 5) == 0.78695
    assert round(to_coin(quote, row.f("underlying_price")).delta, 5) == 0.69188
