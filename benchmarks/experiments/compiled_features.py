"""Experiment (timing only): the 20 features of ``bench_rules.py`` in flat arrays, read and
updated by one numba kernel per decision.

Not a store: its semantics are simplified (events in time order, dense 60-bucket rings per
key, distinct counts of at most 32 values and no sketch, no key expiry or ``max_keys``,
sums in integer cents instead of exact 1e-18 units, no snapshots). It measures what the
layout would cost per decision against the Python-object stores (``bench_rules.py
--per-feature``, "all 20 features"); ``docs/design/compiled-stores.md`` is the design it
informs.

Layout: one ``int64`` array for every feature. Feature ``f`` owns ``CAP[domain] * width[f]``
words from ``base[f]``; key id ``i`` of the feature's key field owns the ``width[f]`` words at
``base[f] + i * width[f]``:

* count / sum: ``[first, last, total, ring[60]]``, bucket ``b`` in ``ring[b % 60]``;
* max / min: ``[first, last, -, ring[60]]`` of per-bucket extrema (-1: empty bucket);
* distinct: ``[-, -, -, (value id, newest bucket) x 32]`` (value id -1: free);
* last: ``[-, bucket, value id]``.

Key values map to ids through one ``dict`` per key field (account, address, device, IP,
account+address, network, asset): 7 lookups per decision, then one kernel call.

    python benchmarks/experiments/compiled_features.py
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numba as nb
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from bench_rules import FEATURES, T0, requests

NEVER = -(2**62)
FAR = 2**62
RING = 60
DISTINCT = 32  # values per key
DOMAINS = ["account", "address", "device", "ip", "pair", "network", "asset"]
CAP = {
    "account": 8192,
    "address": 32768,
    "device": 16384,
    "ip": 262144,
    "pair": 262144,
    "network": 8,
    "asset": 8,
}
BUCKET_MS = {"1h": 60_000, "24h": 1_440_000, "7d": 10_080_000, "30d": 43_200_000}  # window / 60
KIND = {"count": 0, "sum": 1, "max": 2, "min": 3, "distinct": 4, "last": 5}

NAMES = list(FEATURES)
kind = np.zeros(len(NAMES), np.int64)
domain = np.zeros(len(NAMES), np.int64)
value_domain = np.zeros(len(NAMES), np.int64)
bucket_ms = np.zeros(len(NAMES), np.int64)
base = np.zeros(len(NAMES), np.int64)
width = np.zeros(len(NAMES), np.int64)
_words = 0
for _f, _name in enumerate(NAMES):
    _agg, _key, _value, _window = FEATURES[_name]
    kind[_f] = KIND[_agg]
    domain[_f] = DOMAINS.index("pair" if isinstance(_key, list) else _key)
    if _agg == "distinct":
        value_domain[_f] = DOMAINS.index(_value)
    elif _agg == "last":
        value_domain[_f] = DOMAINS.index("asset")
    bucket_ms[_f] = BUCKET_MS[_window]
    if _agg in ("count", "sum", "max", "min"):
        width[_f] = 3 + RING
    elif _agg == "distinct":
        width[_f] = 3 + 2 * DISTINCT
    else:
        width[_f] = 3
    base[_f] = _words
    _words += CAP[DOMAINS[domain[_f]]] * width[_f]
MEMORY = np.zeros(_words, np.int64)
for _f in range(len(NAMES)):
    _region = MEMORY[base[_f] : base[_f] + CAP[DOMAINS[domain[_f]]] * width[_f]]
    _rows = _region.reshape(-1, width[_f])
    _rows[:, 0] = FAR
    _rows[:, 1] = NEVER
    if kind[_f] == 4:
        _rows[:, 3::2] = -1


@nb.njit(nogil=True)
def decide_features(m, ids, ts, amount, out):
    """Read every feature for the event into ``out`` (before it), then fold the event in."""
    for f in range(len(kind)):
        k = kind[f]
        g = bucket_ms[f]
        o = base[f] + ids[domain[f]] * width[f]
        idx = ts // g
        cutoff = idx - RING
        if k <= 1:  # count, sum
            first = m[o]
            last = m[o + 1]
            if last <= cutoff:
                if last != NEVER:
                    b = first
                    while b <= last:
                        m[o + 3 + b % RING] = 0
                        b += 1
                m[o] = FAR
                m[o + 1] = NEVER
                m[o + 2] = 0
                last = NEVER
            elif first <= cutoff:
                total = m[o + 2]
                b = first
                while b <= cutoff:
                    total -= m[o + 3 + b % RING]
                    m[o + 3 + b % RING] = 0
                    b += 1
                while m[o + 3 + b % RING] == 0 and b < last:
                    b += 1
                m[o + 2] = total
                m[o] = b
            out[f] = m[o + 2]
            add = amount if k == 1 else 1
            if last == NEVER:
                m[o] = idx
            if idx > last:
                m[o + 1] = idx
            m[o + 3 + idx % RING] += add
            m[o + 2] += add
        elif k <= 3:  # max, min
            last = m[o + 1]
            best = -1
            if last > cutoff:
                b = max(m[o], cutoff + 1)
                while b <= last:
                    v = m[o + 3 + b % RING]
                    if v >= 0 and (best < 0 or (v > best if k == 2 else v < best)):
                        best = v
                    b += 1
                m[o] = max(m[o], cutoff + 1)
            else:
                m[o] = idx
            out[f] = best
            slot = o + 3 + idx % RING
            if last < idx:
                if last > cutoff:
                    b = last + 1
                    while b < idx:
                        m[o + 3 + b % RING] = -1
                        b += 1
                m[slot] = amount
                m[o + 1] = idx
            elif amount > m[slot] if k == 2 else amount < m[slot]:
                m[slot] = amount
        elif k == 4:  # distinct
            v = ids[value_domain[f]]
            n = 0
            free = -1
            found = -1
            for j in range(DISTINCT):
                p = o + 3 + 2 * j
                if m[p + 1] > cutoff:
                    n += 1
                    if m[p] == v:
                        found = p
                elif free < 0:
                    free = p
            out[f] = n
            if found >= 0:
                m[found + 1] = idx
            elif free >= 0:
                m[free] = v
                m[free + 1] = idx
        else:  # last
            out[f] = m[o + 2] if m[o + 1] > cutoff else -1
            m[o + 1] = idx
            m[o + 2] = ids[value_domain[f]]
    return 0


def run(events, tables, timed: bool) -> list[int]:
    ids = np.zeros(len(DOMAINS), np.int64)
    out = np.zeros(len(NAMES), np.int64)
    samples = []
    clock = time.perf_counter_ns
    accounts, addresses, devices, ips, pairs, networks, assets = tables
    for event in events:
        start = clock()
        account = event.account
        address = event.address
        pair = (account, address)
        ids[0] = accounts.setdefault(account, len(accounts))
        ids[1] = addresses.setdefault(address, len(addresses))
        ids[2] = devices.setdefault(event.device, len(devices))
        ids[3] = ips.setdefault(event.ip, len(ips))
        ids[4] = pairs.setdefault(pair, len(pairs))
        ids[5] = networks.setdefault(event.network, len(networks))
        ids[6] = assets.setdefault(event.asset, len(assets))
        cents = int(float(event.value_usd) * 100)
        decide_features(MEMORY, ids, event.ts, cents, out)
        out.tolist()
        if timed:
            samples.append(clock() - start)
    return samples


def main() -> None:
    tables: list[dict] = [{} for _ in DOMAINS]
    start = time.perf_counter()
    run(requests(1, 5000, T0, seed=1), tables, False)
    compiled_s = time.perf_counter() - start
    run(requests(100_000, 5000, T0, seed=1), tables, False)
    samples = sorted(run(requests(50_000, 5000, T0 + 100_000 * 500, seed=2), tables, True))

    def at(q: float) -> float:
        return samples[int(q * len(samples))] / 1000

    print(
        f"compiled features (experiment), 20 features per decision: p50 {at(0.5):.2f} us  "
        f"p99 {at(0.99):.2f} us  p99.9 {at(0.999):.2f} us; "
        f"arrays {MEMORY.nbytes / 1e6:.0f} MB, first call (compile) {compiled_s:.2f} s; "
        f"ids per key field {[len(t) for t in tables]}"
    )


if __name__ == "__main__":
    main()
