"""Assets: a code and a fixed decimal scale for every balance held in it."""

from __future__ import annotations

import msgspec

MAX_SCALE = 18


class Asset(msgspec.Struct, frozen=True, kw_only=True):
    """An asset whose balances are integers counting ``10**-scale`` units.

    ``scale`` is the number of decimals an amount of this asset may carry (USDT 8, BTC 8).
    """

    code: str
    scale: int
