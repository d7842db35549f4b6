"""A seeded synthetic account population over a :class:`~fengkong.sim.universe.Universe`.

Distributions (every one a field of :class:`PopulationParams`, defaults below):

* position legs per account: 0..4 with probabilities 2 / 10 / 23 / 30 / 35 % (mean 2.86
  before de-duplication, about 2.6 after);
* instrument of each leg: Zipf-like popularity ``p_k ∝ 1/(k+1)^0.8`` (BTCUSDT the most held);
  a one-way account holds one position per instrument (repeats are dropped), an account in
  hedge mode (5 % of accounts) one leg per instrument and direction, so it may hold both;
* direction: long with probability 55 %;
* account leverage: lognormal, median 10, σ 0.8, clipped to [1, 100], and per position to
  the maximum leverage of the bracket of its notional;
* position notional (USDT, or USD face for inverse contracts): lognormal, median 2,000,
  σ 1.2, clipped to [10, half the last bracket cap] (an inverse cap in coin valued at the mark);
* entry price: the initial mark × exp(N(0, 2 %)) — positions opened over a recent range;
* margin mode: isolated for 20 % of (account, instrument) pairs, cross otherwise;
* isolated margin: initial margin × (1 + Exp(mean 0.2)); cross wallet per settlement asset:
  the cross positions' initial margin × (1 + Exp(mean 0.5)); an account with no position holds
  a lognormal 1,000 USDT (σ 1).

Initial margin = notional at entry / leverage. Positions are not netted against one
another: the population is the book of the users whose risk is screened, the counterparties
being outside it (market makers, the liquidation clearing account). Deterministic for a seed.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import msgspec
import numpy as np

from fengkong.ledger.contracts import ContractMath
from fengkong.ledger.ledger import Ledger
from fengkong.model.enums import MarginMode, PositionMode, PositionSide
from fengkong.sim.universe import Universe

__all__ = ["Population", "PopulationParams", "make_population"]

_SIDES = (PositionSide.BOTH.value, PositionSide.LONG.value, PositionSide.SHORT.value)


@dataclass(frozen=True)
class PopulationParams:
    """The distributions of the module docstring."""

    leg_weights: tuple[float, ...] = (0.02, 0.10, 0.23, 0.30, 0.35)
    popularity: float = 0.8
    hedge_share: float = 0.05
    long_share: float = 0.55
    leverage_median: float = 10.0
    leverage_sigma: float = 0.8
    notional_median: float = 2_000.0
    notional_sigma: float = 1.2
    entry_spread: float = 0.02
    isolated_share: float = 0.2
    isolated_buffer: float = 0.2
    cross_buffer: float = 0.5
    idle_wallet_median: float = 1_000.0


@dataclass
class Population:
    """Per position (sorted by account): ``account``, ``inst``, ``leg`` (0 one-way, 1 long,
    2 short), signed ``qty`` and ``entry_price`` (integer units), ``isolated``, isolated
    ``margin`` (settlement units), ``leverage``, ``notional``; per account: ``hedge`` and
    ``wallet`` (accounts × assets, integer units, asset order of ``assets``)."""

    universe: Universe
    assets: list[str]
    account: np.ndarray
    inst: np.ndarray
    leg: np.ndarray
    qty: np.ndarray
    entry_price: np.ndarray
    isolated: np.ndarray
    margin: np.ndarray
    leverage: np.ndarray
    notional: np.ndarray
    hedge: np.ndarray
    wallet: np.ndarray
    ids: list[str] = field(default_factory=list)

    @property
    def accounts(self) -> int:
        return int(self.hedge.size)

    def to_ledger(self) -> Ledger:
        """A ledger holding exactly this population (built through ``restore_state``)."""
        u = self.universe
        scales = {a.code: a.scale for a in u.assets}
        maths = [ContractMath(x, scales[x.settle]) for x in u.instruments]
        symbols = u.symbols
        bounds = np.searchsorted(self.account, np.arange(self.accounts + 1))
        qty, price, inst = self.qty.tolist(), self.entry_price.tolist(), self.inst.tolist()
        leg, iso, margin = self.leg.tolist(), self.isolated.tolist(), self.margin.tolist()
        wallet = self.wallet.tolist()
        accounts = []
        for a in range(self.accounts):
            modes: dict[str, str] = {}
            positions = []
            for k in range(bounds[a], bounds[a + 1]):
                symbol = symbols[inst[k]]
                mode = MarginMode.ISOLATED.value if iso[k] else MarginMode.CROSS.value
                if iso[k]:
                    modes[symbol] = mode
                value = maths[inst[k]].open_value(qty[k], price[k])
                positions.append(
                    [symbol, _SIDES[leg[k]], mode, str(qty[k]), str(value), "0", str(margin[k])]
                )
            balances = [[c, str(w), "0"] for c, w in zip(self.assets, wallet[a], strict=True) if w]
            mode = PositionMode.HEDGE if self.hedge[a] else PositionMode.ONE_WAY
            accounts.append([self.ids[a], mode.value, sorted(modes.items()), balances, positions])
        ledger = Ledger()
        ledger.restore_state(
            {
                "assets": [[a.code, a.scale] for a in u.assets],
                "instruments": [msgspec.to_builtins(x) for x in u.instruments],
                "accounts": accounts,
            }
        )
        return ledger


def make_population(
    universe: Universe, accounts: int, seed: int = 0, params: PopulationParams | None = None
) -> Population:
    """``accounts`` synthetic accounts over ``universe`` (module docstring), seeded."""
    p = params or PopulationParams()
    rng = np.random.default_rng(seed)
    n_inst = len(universe.instruments)
    legs = rng.choice(len(p.leg_weights), size=accounts, p=np.asarray(p.leg_weights))
    account = np.repeat(np.arange(accounts), legs)
    weights = 1.0 / np.arange(1, n_inst + 1) ** p.popularity
    inst = rng.choice(n_inst, size=account.size, p=weights / weights.sum())
    hedge = rng.random(accounts) < p.hedge_share
    side = np.where(rng.random(account.size) < p.long_share, 1, -1)
    leg = np.where(hedge[account], np.where(side > 0, 1, 2), 0)
    _, first = np.unique((account * n_inst + inst) * 3 + leg, return_index=True)
    keep = np.sort(first)
    account, inst, side, leg = account[keep], inst[keep], side[keep], leg[keep]
    n = account.size

    columns = _columns(universe)
    inverse, marks, caps, max_lev, price_scale, qty_scale = columns
    last_cap = np.where(inverse[inst], caps[inst, -1] * marks[inst], caps[inst, -1])  # USD(T)
    notional = np.clip(
        rng.lognormal(np.log(p.notional_median), p.notional_sigma, size=n), 10.0, last_cap / 2
    )
    entry = marks[inst] * np.exp(rng.normal(0.0, p.entry_spread, size=n))
    entry_units = np.maximum(1, np.rint(entry * 10.0 ** price_scale[inst])).astype(np.int64)
    entry = entry_units / 10.0 ** price_scale[inst]
    face_contracts = np.maximum(1, np.rint(notional / 100.0))
    base_units = np.maximum(1, np.rint(notional / entry * 10.0 ** qty_scale[inst]))
    size = np.where(inverse[inst], face_contracts, base_units).astype(np.int64)
    notional = np.where(inverse[inst], size * 100.0, size / 10.0 ** qty_scale[inst] * entry)
    settle_notional = np.where(inverse[inst], notional / entry, notional)
    tier = np.minimum((settle_notional[:, None] > caps[inst]).sum(axis=1), caps.shape[1] - 1)
    account_leverage = np.clip(
        rng.lognormal(np.log(p.leverage_median), p.leverage_sigma, size=accounts), 1.0, 100.0
    )
    leverage = np.minimum(account_leverage[account], max_lev[inst, tier])
    initial = settle_notional / leverage

    pair = account * n_inst + inst
    pair_ids, pair_of = np.unique(pair, return_inverse=True)
    isolated = (rng.random(pair_ids.size) < p.isolated_share)[pair_of]
    settle_index = np.where(inverse[inst], 1, 0)
    unit = 1e8  # USDT and BTC both at 8 decimals in the universe
    margin = np.where(
        isolated,
        np.rint(initial * (1.0 + rng.exponential(p.isolated_buffer, size=n)) * unit),
        0,
    ).astype(np.int64)
    cross_im = np.zeros((accounts, 2))
    np.add.at(cross_im, (account[~isolated], settle_index[~isolated]), initial[~isolated])
    wallet = np.rint(
        cross_im * (1.0 + rng.exponential(p.cross_buffer, size=(accounts, 1))) * unit
    ).astype(np.int64)
    idle = np.bincount(account, minlength=accounts) == 0
    idle_wallet = rng.lognormal(np.log(p.idle_wallet_median), 1.0, size=accounts) * unit
    wallet[idle, 0] = np.rint(idle_wallet[idle]).astype(np.int64)
    return Population(
        universe=universe,
        assets=["USDT", "BTC"],
        account=account,
        inst=inst,
        leg=leg,
        qty=size * side,
        entry_price=entry_units,
        isolated=isolated,
        margin=margin,
        leverage=leverage,
        notional=notional,
        hedge=hedge,
        wallet=wallet,
        ids=[f"u{a:07d}" for a in range(accounts)],
    )


def _columns(universe: Universe):
    """Per-instrument arrays: inverse, float mark, caps and max leverage per bracket (settle
    units), price and quantity scales."""
    xs = universe.instruments
    inverse = np.array([x.is_inverse for x in xs])
    marks = universe.mark_floats()
    caps = np.array(
        [[t.cap / 10 ** universe.tables[x.symbol].scale for t in universe.tables[x.symbol].tiers]
         for x in xs]
    )  # fmt: skip
    max_lev = np.array(
        [[t.max_leverage for t in universe.tables[x.symbol].tiers] for x in xs], dtype=float
    )
    price_scale = np.array([x.price_scale for x in xs])
    qty_scale = np.array([x.qty_scale for x in xs])
    return inverse, marks, caps, max_lev, price_scale, qty_scale
