"""Simulation: a synthetic instrument universe and account population, crash price paths, and
a simulated venue that fills liquidation orders against a depth model."""
