"""Small exact ledgers for screening tests, built through ``Ledger.restore_state``."""

from __future__ import annotations

from dataclasses import dataclass

import msgspec

from fengkong.ledger.ledger import Ledger
from fengkong.sim.universe import Universe


@dataclass(frozen=True)
class Held:
    """One position: signed ``qty`` contracts opened at ``entry_price`` (integer units)."""

    account: str
    symbol: str
    qty: int
    entry_price: int
    side: str = "both"
    isolated_margin: int | None = None  # None: cross


def ledger_of(
    universe: Universe,
    positions: list[Held],
    wallets: dict[str, dict[str, int]],
    hedge: frozenset[str] = frozenset(),
) -> Ledger:
    """A ledger with exactly these positions (entry values by the ledger's own arithmetic)
    and cross wallets (integer units)."""
    probe = Ledger()
    probe.restore_state(
        {
            "assets": [[a.code, a.scale] for a in universe.assets],
            "instruments": [msgspec.to_builtins(x) for x in universe.instruments],
            "accounts": [],
        }
    )
    accounts: dict[str, list] = {}
    for name in sorted({p.account for p in positions} | set(wallets)):
        balances = [[c, str(v), "0"] for c, v in sorted(wallets.get(name, {}).items())]
        mode = "hedge" if name in hedge else "one_way"
        accounts[name] = [name, mode, [], balances, []]
    for p in positions:
        value = probe.contract_math(p.symbol).open_value(p.qty, p.entry_price)
        isolated = p.isolated_margin is not None
        if isolated:
            accounts[p.account][2].append([p.symbol, "isolated"])
        accounts[p.account][4].append(
            [p.symbol, p.side, "isolated" if isolated else "cross", str(p.qty), str(value), "0",
             str(p.isolated_margin or 0)]
        )  # fmt: skip
    ledger = Ledger()
    ledger.restore_state(
        {
            "assets": [[a.code, a.scale] for a in universe.assets],
            "instruments": [msgspec.to_builtins(x) for x in universe.instruments],
            "accounts": list(accounts.values()),
        }
    )
    return ledger
