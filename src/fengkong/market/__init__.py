"""Market data and pricing: index and mark prices, funding, option Greeks, volatility surface.

Pure calculators live in their own modules (:mod:`~fengkong.market.options`, ...); the engine
components that feed them from events are in :mod:`~fengkong.market.component`.
"""
