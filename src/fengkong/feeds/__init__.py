"""Adapters that read public market data (Binance and others) into the system's shapes."""
