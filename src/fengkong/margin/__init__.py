"""Pure margin calculators: tiers, linear and inverse margin and liquidation, venue models,
spot cross margin, short-option standard margin. No state, no clock (see docs/margin.md)."""
