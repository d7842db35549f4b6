"""Market data and pricing: index and mark prices, funding, option Greeks, volatility surface.

Pure calculators live in their own modules (:mod:`~fengkong.market.index`,
:mod:`~fengkong.market.mark`, :mod:`~fengkong.market.funding`,
:mod:`~fengkong.market.options`, :mod:`~fengkong.market.surface`); the engine component that
feeds them from events is :mod:`~fengkong.market.component`. Importing the package registers
the market event kinds (:mod:`~fengkong.market.events`).
"""

from fengkong.market import events as events
