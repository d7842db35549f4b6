"""VaR and ES of many portfolios at once: holdings × per-contract scenario P&L, in chunks.

``P&L = H · Uᵀ`` with ``H`` the holdings (portfolios × instruments, contracts) and ``U`` the
P&L per contract under each scenario (scenarios × instruments,
:func:`fengkong.analytics.revaluation.unit_pnl`). Rows are processed ``chunk_rows`` at a
time so that the P&L block stays in cache and memory stays flat: 200,000 portfolios ×
1,000 scenarios would otherwise be a 1.6 GB matrix. Per chunk, the tail selection of
:mod:`fengkong.analytics.tail` after either one BLAS matrix product (dense holdings) or, when
at most a quarter of the holdings are non-zero (accounts hold a few instruments each), a
compiled loop over the non-zero holdings only (``q`` non-zeros per account cost ``q·S`` instead
of ``I·S`` multiply-adds). Both paths give the same VaR and ES up to the order of the
floating-point additions in the P&L.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from fengkong.analytics.tail import (
    smallest_sorted,
    sparse_pnl_smallest_sorted,
    tail_spec,
    var_es_from_tail,
)

__all__ = ["DEFAULT_CHUNK_ROWS", "book_var_es", "chunk_var_es", "prepare_inputs"]

DEFAULT_CHUNK_ROWS = 2048
SPARSE_DENSITY = 0.25
"""At or below this share of non-zero holdings a block skips the dense matrix product."""


def prepare_inputs(holdings: np.ndarray, unit_pnl: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Checked float64 holdings and the transposed, C-contiguous ``(instruments, S)`` P&L."""
    h = np.asarray(holdings, dtype=np.float64)
    u = np.ascontiguousarray(np.asarray(unit_pnl, dtype=np.float64).T)  # (instruments, S)
    if h.ndim != 2 or u.ndim != 2 or h.shape[1] != u.shape[0]:
        raise ValueError(
            f"holdings.shape={h.shape}, unit_pnl.shape={np.shape(unit_pnl)}: need "
            "(portfolios, instruments) and (scenarios, instruments)"
        )
    if not np.isfinite(h).all():
        raise ValueError("holdings: must be finite")
    if not np.isfinite(u).all():
        raise ValueError("unit_pnl: must be finite")
    return h, u


def chunk_var_es(
    holdings: np.ndarray, unit_pnl_t: np.ndarray, confidences: Sequence[float]
) -> np.ndarray:
    """VaR and ES of one block of portfolios: ``(rows, 2C)`` = ``[VaR per c…, ES per c…]``.

    ``unit_pnl_t`` is the transposed, C-contiguous ``(instruments, scenarios)`` matrix.
    """
    specs = [tail_spec(unit_pnl_t.shape[1], float(c)) for c in confidences]
    needed = max(spec.needed for spec in specs)
    if np.count_nonzero(holdings) <= SPARSE_DENSITY * holdings.size:
        tail = sparse_pnl_smallest_sorted(holdings, unit_pnl_t, needed)
    else:
        tail = smallest_sorted(holdings @ unit_pnl_t, needed)
    results = [var_es_from_tail(tail, spec) for spec in specs]
    return np.column_stack([r[0] for r in results] + [r[1] for r in results])


def book_var_es(
    holdings: np.ndarray,
    unit_pnl: np.ndarray,
    confidences: float | Sequence[float],
    chunk_rows: int = DEFAULT_CHUNK_ROWS,
    progress: Callable[[int], None] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """VaR and ES (positive = loss) of every portfolio: two ``(C, portfolios)`` arrays.

    ``progress`` is called with the number of portfolios finished after each chunk.
    """
    levels = [float(c) for c in np.atleast_1d(confidences)]
    for c in levels:
        tail_spec(np.shape(unit_pnl)[0], c)
    h, u = prepare_inputs(holdings, unit_pnl)
    out = np.empty((h.shape[0], 2 * len(levels)))
    for start in range(0, h.shape[0], chunk_rows):
        stop = min(start + chunk_rows, h.shape[0])
        out[start:stop] = chunk_var_es(h[start:stop], u, levels)
        if progress is not None:
            progress(stop - start)
    var, es = out[:, : len(levels)].T, out[:, len(levels) :].T
    return var, es
