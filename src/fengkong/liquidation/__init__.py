"""Liquidation: the columnar position book, whole-book screening on every mark move, the
exact re-check of candidates, and auto-deleveraging ranks (docs/liquidation.md)."""
