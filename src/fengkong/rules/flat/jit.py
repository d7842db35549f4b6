"""The decorator of every flat-store kernel.

``kernel`` is numba's ``njit`` with its cache on disk (a machine compiles each kernel once)
and without numba's reference counting (``_nrt=False``): the kernels allocate nothing, and
with it every array argument got a reference-counted wrapper made as the call took it, and
its count moved at each call of a helper it was passed to. Without it the benchmark's kernel
call (12 flat features, ``benchmarks/experiments/kernel_call.py``) takes 3.8-4.1 µs instead
of 5.8-7.1 µs, its fixed cost (the arrays taken, no read) 0.67 µs instead of 1.1 µs. A
kernel that allocated (an array, a list) would not compile: the flag cannot be forgotten
silently.
"""

from __future__ import annotations

import numba as nb

kernel = nb.njit(cache=True, _nrt=False)
