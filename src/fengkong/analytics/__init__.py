"""Risk measurement: VaR and expected shortfall, VaR backtests, stress and scenario analysis.

Floats throughout: these numbers are judgement, not settlement (architecture principle 3).
See ``docs/analytics.md`` for the methods, conventions and recorded results.
"""
