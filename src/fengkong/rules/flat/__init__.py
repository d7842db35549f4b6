"""Window stores in flat arrays for compiled kernels (docs/design/compiled-stores.md)."""
