"""The whole-book VaR / ES of :mod:`fengkong.analytics.book` on a Dask cluster.

For books larger than one machine holds: holdings are a Dask array chunked by accounts (rows),
the per-contract scenario P&L ``U`` (scenarios × instruments, small) is scattered once to
every worker, and each task computes its accounts' VaR and ES with the same kernel as the
single-process path (:func:`fengkong.analytics.book.chunk_var_es`). Tasks hold a whole
number of ``chunk_rows`` blocks, so every BLAS product sees the same rows as in
:func:`fengkong.analytics.book.book_var_es` and both paths give bit-identical numbers (a
matrix product's rounding can depend on how many rows it is given).
Dask (``dask[distributed]``) is imported only here.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from fengkong.analytics.book import DEFAULT_CHUNK_ROWS, chunk_var_es, prepare_inputs
from fengkong.analytics.tail import tail_spec

__all__ = ["DEFAULT_ACCOUNTS_PER_TASK", "book_var_es_dask"]

DEFAULT_ACCOUNTS_PER_TASK = 5 * DEFAULT_CHUNK_ROWS


def _block_var_es(
    holdings: np.ndarray, unit_pnl_t: np.ndarray, confidences: Sequence[float], chunk_rows: int
) -> np.ndarray:
    out = np.empty((holdings.shape[0], 2 * len(confidences)))
    for start in range(0, holdings.shape[0], chunk_rows):
        stop = start + chunk_rows
        out[start:stop] = chunk_var_es(holdings[start:stop], unit_pnl_t, confidences)
    return out


def book_var_es_dask(
    client,
    holdings,
    unit_pnl: np.ndarray,
    confidences: float | Sequence[float],
    accounts_per_task: int = DEFAULT_ACCOUNTS_PER_TASK,
    chunk_rows: int = DEFAULT_CHUNK_ROWS,
) -> tuple[np.ndarray, np.ndarray]:
    """VaR and ES of every account on ``client``'s cluster: two ``(C, accounts)`` arrays.

    ``holdings`` is a numpy array (split into blocks of ``accounts_per_task`` rows that are
    scattered to the workers) or a Dask array already chunked by rows, for books loaded on
    the workers themselves (its column chunk must span all instruments).
    """
    import dask
    import dask.array as da

    levels = [float(c) for c in np.atleast_1d(confidences)]
    for c in levels:
        tail_spec(np.shape(unit_pnl)[0], c)
    if accounts_per_task < 1 or accounts_per_task % chunk_rows:
        raise ValueError(
            f"accounts_per_task={accounts_per_task}: must be a multiple of chunk_rows={chunk_rows}"
        )
    if isinstance(holdings, da.Array):
        if holdings.numblocks[1] != 1 or any(n % chunk_rows for n in holdings.chunks[0][:-1]):
            raise ValueError(
                f"holdings: chunk by accounts only, in multiples of chunk_rows={chunk_rows}"
            )
        blocks = holdings
        _, unit_t = prepare_inputs(np.zeros((0, holdings.shape[1])), unit_pnl)
    else:
        h, unit_t = prepare_inputs(holdings, unit_pnl)
    shared = client.scatter(unit_t, broadcast=True, hash=False)  # own key per call
    if isinstance(holdings, da.Array):
        tasks = [
            dask.delayed(_block_var_es)(block, shared, levels, chunk_rows)
            for block in blocks.to_delayed().ravel()
        ]
        parts = client.gather(client.compute(tasks))
    else:
        pieces = [h[i : i + accounts_per_task] for i in range(0, h.shape[0], accounts_per_task)]
        scattered = client.scatter(pieces, hash=False)  # data to workers, not into the graph
        futures = client.map(
            _block_var_es, scattered, unit_pnl_t=shared, confidences=levels,
            chunk_rows=chunk_rows, pure=False,
        )  # fmt: skip
        parts = client.gather(futures)
    out = np.concatenate(parts) if parts else np.empty((0, 2 * len(levels)))
    return out[:, : len(levels)].T, out[:, len(levels) :].T
