"""fengkong (风控): real-time risk control for a cryptocurrency exchange."""

__version__ = "0.1.0"
