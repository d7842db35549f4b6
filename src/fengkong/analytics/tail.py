"""Empirical VaR and expected shortfall of scenario P&L, one row per portfolio.

Convention (documented in ``docs/analytics.md``; the tests use it as the reference). For a
portfolio with ``n`` scenario P&Ls sorted ascending, ``x_(1) ≤ … ≤ x_(n)``, confidence ``c``,
tail probability ``α = 1 − c`` and ``m = ⌊nα⌋``::

    VaR_c = −x_(m+1)
    ES_c  = −( Σ_{i=1..m} x_(i) + (nα − m) · x_(m+1) ) / (nα)

VaR is the lower ``c``-quantile of the loss ``L = −x``, ``inf{l : F_L(l) ≥ c}`` (numpy's
``quantile(..., method="inverted_cdf")``); with ``n = 1000`` and ``c = 0.99`` it is the 11th
largest loss. ES is the Acerbi–Tasche estimator (Acerbi & Tasche 2002, "On the coherence of
expected shortfall", J. Banking & Finance 26, eq. 3.3): the mean of the worst ``nα`` outcomes,
the boundary one weighted by its fraction. With ``nα`` whole (1000 × 1%) it is the mean of the
10 worst losses. ``nα`` is rounded to 9 decimals so that ``1000 × (1 − 0.99)`` is exactly 10.

The selection of the ``m + 1`` smallest P&Ls is one pass per row with an insertion buffer
(compiled by numba): most values fail one comparison with the buffer's largest entry. It
releases the GIL, so threads (Dask workers) run it in parallel.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numba
import numpy as np

__all__ = [
    "TailSpec",
    "smallest_sorted",
    "sparse_pnl_smallest_sorted",
    "tail_spec",
    "var_es",
    "var_es_from_tail",
]


@dataclass(frozen=True)
class TailSpec:
    """Where the ``c``-tail of ``n`` sorted scenarios sits (see the module docstring)."""

    scenarios: int
    confidence: float
    tail_mass: float  # nα
    whole: int  # m = ⌊nα⌋
    fraction: float  # nα − m

    @property
    def needed(self) -> int:
        """How many of the smallest P&Ls the estimators read (``m + 1``, at most ``n``)."""
        return min(self.whole + 1, self.scenarios)


def tail_spec(scenarios: int, confidence: float) -> TailSpec:
    """The :class:`TailSpec` for ``scenarios`` P&Ls at ``confidence``; validates both."""
    if not (0.0 < confidence < 1.0):
        raise ValueError(f"confidence={confidence!r}: must be strictly between 0 and 1")
    if scenarios < 1:
        raise ValueError(f"scenarios={scenarios!r}: need at least one scenario")
    tail_mass = round(scenarios * (1.0 - confidence), 9)
    whole = math.floor(tail_mass)
    if whole >= scenarios:
        raise ValueError(
            f"confidence={confidence!r}: tail holds every one of {scenarios} scenarios"
        )
    return TailSpec(scenarios, confidence, tail_mass, whole, tail_mass - whole)


@numba.njit(cache=True, nogil=True)
def _keep_smallest(row, buffer):  # pragma: no cover - compiled; tested through callers
    """Fill ``buffer`` (length k) with the k smallest values of ``row``, ascending."""
    k = buffer.size
    for j in range(k):
        buffer[j] = np.inf
    largest = np.inf
    for j in range(row.size):
        value = row[j]
        if value < largest:
            position = k - 1
            while position > 0 and buffer[position - 1] > value:
                buffer[position] = buffer[position - 1]
                position -= 1
            buffer[position] = value
            largest = buffer[k - 1]


@numba.njit(cache=True, nogil=True)
def _smallest_sorted_rows(pnl, out):  # pragma: no cover - compiled; tested through callers
    for i in range(pnl.shape[0]):
        _keep_smallest(pnl[i], out[i])


@numba.njit(cache=True, nogil=True)
def _sparse_pnl_smallest_rows(indptr, columns, quantities, unit_t, out):  # pragma: no cover
    """Per portfolio: P&L = Σ q_j · unit_t[column_j] in stored order, then its k smallest."""
    row = np.empty(unit_t.shape[1])
    for i in range(indptr.size - 1):
        row[:] = 0.0
        for entry in range(indptr[i], indptr[i + 1]):
            q = quantities[entry]
            per_contract = unit_t[columns[entry]]
            for j in range(row.size):
                row[j] += q * per_contract[j]
        _keep_smallest(row, out[i])


def _check_k(k: int, scenarios: int) -> None:
    if not (1 <= k <= scenarios):
        raise ValueError(f"k={k}: must be between 1 and the {scenarios} scenarios")


def smallest_sorted(pnl: np.ndarray, k: int) -> np.ndarray:
    """The ``k`` smallest values of each row of ``pnl`` (2-D), ascending: shape ``(rows, k)``.

    Values must be finite (NaN never enters the buffer); callers validate their inputs.
    """
    if pnl.ndim != 2:
        raise ValueError(f"pnl.ndim={pnl.ndim}: expected a (portfolios, scenarios) matrix")
    _check_k(k, pnl.shape[1])
    out = np.empty((pnl.shape[0], k), dtype=np.float64)
    _smallest_sorted_rows(np.ascontiguousarray(pnl, dtype=np.float64), out)
    return out


def sparse_pnl_smallest_sorted(holdings: np.ndarray, unit_pnl_t: np.ndarray, k: int) -> np.ndarray:
    """The ``k`` smallest scenario P&Ls of each portfolio, without forming the P&L matrix.

    For books where each account holds few instruments: the P&L row of a portfolio is
    accumulated from its non-zero holdings only (``Σ_j q_j · U[:, j]``, in column order) in a
    buffer that stays in L1 cache, then reduced to its tail. ``unit_pnl_t`` is the
    C-contiguous ``(instruments, scenarios)`` matrix.
    """
    _check_k(k, unit_pnl_t.shape[1])
    rows, columns = np.nonzero(holdings)
    indptr = np.zeros(holdings.shape[0] + 1, dtype=np.int64)
    np.cumsum(np.bincount(rows, minlength=holdings.shape[0]), out=indptr[1:])
    out = np.empty((holdings.shape[0], k), dtype=np.float64)
    _sparse_pnl_smallest_rows(
        indptr, columns.astype(np.int64), holdings[rows, columns], unit_pnl_t, out
    )
    return out


def var_es_from_tail(tail: np.ndarray, spec: TailSpec) -> tuple[np.ndarray, np.ndarray]:
    """VaR and ES (positive = loss) from the ascending smallest P&Ls of each row."""
    boundary = tail[:, spec.whole]
    worst_sum = tail[:, : spec.whole].sum(axis=1)
    if spec.tail_mass < 1.0:
        es = -boundary
    else:
        es = -(worst_sum + spec.fraction * boundary) / spec.tail_mass
    return -boundary, es


def var_es(pnl: np.ndarray, confidences: float | Sequence[float]) -> tuple[np.ndarray, np.ndarray]:
    """VaR and ES of scenario P&L ``pnl`` (``(scenarios,)`` or ``(portfolios, scenarios)``).

    Returns two arrays of shape ``(len(confidences), portfolios)`` (scalars squeezed out for a
    single confidence and a 1-D ``pnl``).
    """
    levels = np.atleast_1d(np.asarray(confidences, dtype=float))
    matrix = np.atleast_2d(np.asarray(pnl, dtype=np.float64))
    if not np.isfinite(matrix).all():
        row, column = np.argwhere(~np.isfinite(matrix))[0]
        raise ValueError(f"pnl[{row}, {column}]={float(matrix[row, column])!r}: must be finite")
    specs = [tail_spec(matrix.shape[1], float(c)) for c in levels]
    tail = smallest_sorted(matrix, max(spec.needed for spec in specs))
    results = [var_es_from_tail(tail, spec) for spec in specs]
    var = np.stack([r[0] for r in results])
    es = np.stack([r[1] for r in results])
    if np.ndim(confidences) == 0:
        var, es = var[0], es[0]
    if np.asarray(pnl).ndim == 1:
        var, es = var[..., 0], es[..., 0]
    return var, es
