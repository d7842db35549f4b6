"""Rule-engine benchmark: a 100-rule pack with 20 features deciding withdrawal requests.

Measures, in one process run:

1. fengkong: one full decision (validate, 20 feature reads, 100 rules, feature updates,
   the Decision with its trace: the pack's fused step, see ``fengkong.rules.fused``) per
   WithdrawalRequest, timed one at a time: p50 / p99 / p99.9, throughput and the garbage
   collector's runs (and the percentiles of the decisions no collection ran in), after
   warming the features with a history of requests; each decision is freed after its
   sample (the consumer's work once the decision is out), timed apart and printed;
   and, right after, the machine's own tail: a fixed pure-Python loop sized to the decisions'
   p50, timed the same way as many times (what the machine adds to any computation's p99);
2. the cost of one simple comparison rule: (evaluator with 101 rules - evaluator with 1
   rule) / 100, in a bulk loop; a max store's add and read for one busy key (a 24 h
   window in one-minute buckets, a new value every 5 s); and the pauses of a store's key
   table under churn (``--table-keys N``: its size);
3. the same 100 rules (features given as precomputed values, so the peers do less work
   than fengkong) and the same simple rule in ``rule-engine`` and ``cel-python`` from the
   ``bench`` extra, when installed, and the ratios.

    python benchmarks/bench_rules.py           # full run
    python benchmarks/bench_rules.py --smoke   # a few seconds
    python benchmarks/bench_rules.py --accounts 20 --ips 40   # every store fits in cache

Comparing two versions on a machine whose speed drifts: ``--interleaved`` times blocks of 500
decisions alternated with a fixed loop of 600,000 iterations and prints the median of the
blocks' ratios (decision time / loop time), which the machine's drift moves far less than
the percentiles; run it alternately for each version (``PYTHONPATH`` to a ``git worktree``).

Instruction counts (deterministic, unlike wall-clock percentiles on a shared machine):
``--callgrind`` warms the pack with 20,000 requests over 1,000 accounts, then decides
2,000 more inside ``functools.reduce``, so that callgrind counts only those decisions:

    PYTHONHASHSEED=0 valgrind --tool=callgrind --collect-atstart=no \
        --toggle-collect=functools_reduce python benchmarks/bench_rules.py --callgrind

and the ``I refs`` total / 2,000 is the instruction count of one full decision.

Where the time goes: ``--per-feature`` decides the same requests with the benchmark's pack
cut to one feature at a time, then to all 20, each with one rule that never fires, and
prints each pack's median above the median of a pack with no feature.
"""

from __future__ import annotations

import argparse
import functools
import gc
import platform
import random
import statistics
import time

import yaml

from fengkong.rules.component import RulesComponent
from fengkong.rules.events import RulePackLoaded, WithdrawalRequest
from fengkong.rules.windows import CountWindow, ExtremumWindow, _queue_flat, _Tally

T0 = 1_767_225_600_000
ASSETS = ["BTC", "ETH", "USDT", "SOL"]
NETWORKS = ["BTC", "ETH", "TRX", "SOL"]

FEATURES = {
    "n_1h": ("count", "account", None, "1h"),
    "n_24h": ("count", "account", None, "24h"),
    "n_7d": ("count", "account", None, "7d"),
    "usd_1h": ("sum", "account", "value_usd", "1h"),
    "usd_24h": ("sum", "account", "value_usd", "24h"),
    "usd_30d": ("sum", "account", "value_usd", "30d"),
    "max_usd_30d": ("max", "account", "value_usd", "30d"),
    "min_usd_7d": ("min", "account", "value_usd", "7d"),
    "addrs_24h": ("distinct", "account", "address", "24h"),
    "addrs_7d": ("distinct", "account", "address", "7d"),
    "nets_7d": ("distinct", "account", "network", "7d"),
    "ips_24h": ("distinct", "account", "ip", "24h"),
    "devices_7d": ("distinct", "account", "device", "7d"),
    "to_addr_30d": ("count", ["account", "address"], None, "30d"),
    "addr_users_7d": ("distinct", "address", "account", "7d"),
    "addr_n_24h": ("count", "address", None, "24h"),
    "ip_users_24h": ("distinct", "ip", "account", "24h"),
    "device_users_7d": ("distinct", "device", "account", "7d"),
    "last_asset": ("last", "account", "asset", "7d"),
    "ip_n_1h": ("count", "ip", None, "1h"),
}
INT_FEATURES = {name for name, (agg, *_rest) in FEATURES.items() if agg in ("count", "distinct")}


def lit(name: str, value: int) -> str:
    """A threshold literal for feature ``name``: counts as ints, USD amounts scaled up."""
    return str(value) if name in INT_FEATURES else f"{float(value * 20_000)!r}"


def make_rules(seed: int = 5) -> list[dict]:
    """100 rules of four shapes, each as fengkong, rule-engine and CEL text."""
    rng = random.Random(seed)
    numeric = [n for n in FEATURES if n != "last_asset"]
    rules = []
    for i in range(100):
        f = rng.choice(numeric)
        g = rng.choice(numeric)
        k = rng.randint(20, 200)
        usd = float(rng.randint(100, 1000) * 1000)
        shape = i % 4
        if shape == 0:
            ours = f"features.{f} > {lit(f, k)}"
            peer = f"{f} > {lit(f, k)}"
            cel = peer
        elif shape == 1:
            ours = f"event.value_usd > {usd!r} and features.{g} >= {lit(g, k)}"
            peer = f"event_value_usd > {usd!r} and {g} >= {lit(g, k)}"
            cel = f"event_value_usd > {usd!r} && {g} >= {lit(g, k)}"
        elif shape == 2:
            asset = rng.choice(ASSETS)
            amount = float(k)
            ours = f"event.asset == '{asset}' and event.amount > {amount!r}"
            peer = f"event_asset == '{asset}' and event_amount > {amount!r}"
            cel = f"event_asset == '{asset}' && event_amount > {amount!r}"
        else:
            either = f"features.{f} > {lit(f, k)} or features.{g} > {lit(g, 2 * k)}"
            ours = f"event.network in ['ETH', 'TRX'] and ({either})"
            peer = (
                f"event_network in ['ETH', 'TRX'] and ({f} > {lit(f, k)} or {g} > {lit(g, 2 * k)})"
            )
            cel = f"event_network in ['ETH', 'TRX'] && ({f} > {lit(f, k)} || {g} > {lit(g, 2 * k)})"
        rules.append({"ours": ours, "rule_engine": peer, "cel": cel, "name": f"r{i:03d}"})
    return rules


def pack_yaml(conditions: list[str], with_features: bool = True) -> str:
    features = {}
    if with_features:
        for name, (agg, key, value, window) in FEATURES.items():
            body = {"agg": agg, "on": "WithdrawalRequest", "key": key, "window": window}
            if value:
                body["value"] = value
            features[name] = body
    rules = [
        {"name": f"r{i:03d}", "on": "WithdrawalRequest", "if": c, "outcome": "review", "score": 1}
        for i, c in enumerate(conditions)
    ]
    return yaml.safe_dump({"pack": "bench", "version": "1", "features": features, "rules": rules})


def requests(
    count: int, accounts: int, start_ts: int, seed: int, ips: int | None = None
) -> list[WithdrawalRequest]:
    """``count`` requests 500 ms apart over ``accounts`` accounts, 3x as many addresses, 2x as
    many devices, and IP addresses from 10.0.0.0/10 (``ips``: from a pool of that many)."""
    rng = random.Random(seed)
    out = []
    for i in range(count):
        account = f"u{rng.randrange(accounts)}"
        out.append(
            WithdrawalRequest(
                seq=i,
                id=f"w{seed}-{i}",
                ts=start_ts + i * 500,
                account=account,
                asset=rng.choice(ASSETS),
                amount=f"{rng.randint(1, 90)}.{rng.randint(0, 99):02d}",
                value_usd=f"{rng.randint(100, 400_000)}.50",
                address=f"addr{rng.randrange(accounts * 3)}",
                network=rng.choice(NETWORKS),
                ip=_ip(rng, ips),
                device=f"dev{rng.randrange(accounts * 2)}",
            )
        )
    return out


def _ip(rng: random.Random, pool: int | None) -> str:
    if pool is None:
        return f"10.{rng.randrange(40)}.{rng.randrange(250)}.{rng.randrange(250)}"
    x = rng.randrange(pool)
    return f"10.{x // 62_500}.{x // 250 % 250}.{x % 250}"


def percentiles(samples_ns: list[int]) -> dict[str, float]:
    ordered = sorted(samples_ns)

    def at(q: float) -> float:
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))] / 1000

    return {
        "p50": at(0.50),
        "p99": at(0.99),
        "p999": at(0.999),
        "mean": sum(ordered) / len(ordered) / 1000,
    }


def bulk_us(function, argument, loops: int) -> float:
    """Mean microseconds of ``function(argument)`` over a tight loop (best of 3)."""
    best = float("inf")
    for _ in range(3):
        start = time.perf_counter_ns()
        for _ in range(loops):
            function(argument)
        best = min(best, (time.perf_counter_ns() - start) / loops / 1000)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--smoke", action="store_true", help="a few seconds, for CI")
    parser.add_argument(
        "--callgrind", action="store_true", help="the fixed workload for instruction counts"
    )
    parser.add_argument(
        "--accounts", type=int, help="accounts (default 5,000; 1,000 with --callgrind)"
    )
    parser.add_argument(
        "--ips", type=int, help="IP addresses drawn from a pool of this many (default: ~2.5 M)"
    )
    parser.add_argument(
        "--table-keys",
        type=int,
        help="keys of the churned store key table (default 100,000; 10,000 with --smoke)",
    )
    parser.add_argument(
        "--per-feature",
        action="store_true",
        help="each feature's median cost alone, then all 20 together",
    )
    parser.add_argument(
        "--interleaved",
        action="store_true",
        help="decision blocks alternated with a fixed loop: the median ratio, for A/B runs",
    )
    parser.add_argument(
        "--distinct-window",
        help="every distinct count's window (e.g. 1h: the 13.9 h of history reach a steady "
        "state, keys and values expiring every bucket; default: the pack's 24h and 7d)",
    )
    args = parser.parse_args()
    if args.distinct_window:
        for name, (agg, key, value, _window) in FEATURES.items():
            if agg == "distinct":
                FEATURES[name] = (agg, key, value, args.distinct_window)
    if args.interleaved:
        _interleaved(accounts=args.accounts or 5_000, ips=args.ips)
        return
    if args.per_feature:
        _per_feature(accounts=args.accounts or 5_000, ips=args.ips)
        return
    if args.callgrind:
        _callgrind_workload(accounts=args.accounts or 1_000, ips=args.ips)
        return
    history, measured, accounts = (5_000, 3_000, 500) if args.smoke else (100_000, 50_000, 5_000)
    accounts = args.accounts or accounts
    loops = 2_000 if args.smoke else 50_000
    peer_loops = 100 if args.smoke else 2_000

    rules = make_rules()
    component = RulesComponent()
    component.apply(
        RulePackLoaded(
            seq=0, id="pack", ts=T0, pack_yaml=pack_yaml([r["ours"] for r in rules]), author="bench"
        )
    )
    for event in requests(history, accounts, T0, seed=1, ips=args.ips):
        component.apply(event)
    events = requests(measured, accounts, T0 + history * 500, seed=2, ips=args.ips)
    # the samples are allocated before the timed loop: a young collection does not walk
    # the benchmark's own list of timings
    samples = [0] * measured
    freeing = [0] * measured  # the time to free each decision, after its sample
    collections = [0, 0, 0]  # collector runs per generation during the timed loop
    current = [0]  # the decision being timed
    collected = bytearray(measured)  # 1 where a collection started during the decision

    pauses: list[list[int]] = [[], [], []]  # each collection's duration, per generation
    started = [0]

    def count_collections(phase: str, info: dict) -> None:
        if phase == "start":
            collections[info["generation"]] += 1
            collected[current[0]] = 1
            started[0] = time.perf_counter_ns()
        else:
            pauses[info["generation"]].append(time.perf_counter_ns() - started[0])

    gc.collect()
    # what a full collection of the warmed heap costs: it visits every tracked object and
    # every entry of the stores' key tables. Nothing is frozen: GC runs as in an engine whose
    # embedder leaves the collector alone (the stores' states are untracked, see windows.py)
    tracked = len(gc.get_objects())
    start = time.perf_counter_ns()
    gc.collect()
    full_ms = (time.perf_counter_ns() - start) / 1e6
    gc.callbacks.append(count_collections)
    fired = 0
    clock = time.perf_counter_ns
    wall = clock()
    for i, event in enumerate(events):
        current[0] = i
        start = clock()
        [decision] = component.apply(event)
        samples[i] = clock() - start
        fired += len(decision.fired)
        # the consumer frees the decision once it is out (journaled, published): timed
        # apart, not charged to the next decision's sample (rebinding ``decision`` would)
        start = clock()
        del decision
        freeing[i] = clock() - start
    wall = (clock() - wall) / 1e9
    gc.callbacks.remove(count_collections)
    stats = percentiles(samples)
    print(
        f"machine: {platform.processor() or platform.machine()}, Python {platform.python_version()}"
    )
    print(
        f"fengkong full decision, 100 rules / 20 features, {measured} requests after "
        f"{history} of history:"
    )
    print(
        f"  p50 {stats['p50']:.1f} us  p99 {stats['p99']:.1f} us  p99.9 {stats['p999']:.1f} us  "
        f"mean {stats['mean']:.1f} us  throughput {measured / wall:,.0f} decisions/s  "
        f"(avg {fired / measured:.1f} rules fired)"
    )
    print(
        f"  collector runs while timed: {collections[0]} young, {collections[1]} middle, "
        f"{collections[2]} full ({sum(collected) / measured:.2%} of decisions); "
        + ", ".join(
            f"{name} median {statistics.median(runs) / 1000:.0f} us"
            for name, runs in zip(("young", "middle", "full"), pauses, strict=True)
            if runs
        )
    )
    print(
        f"  a full collection of the warmed heap, before the timed decisions: {full_ms:.0f} ms "
        f"({tracked:,} tracked objects; see docs/rules.md, Known limits)"
    )
    freed = percentiles(freeing)
    print(
        f"  freeing each decision afterwards (not in the samples above): p50 {freed['p50']:.2f} us"
        f"  p99 {freed['p99']:.2f} us"
    )
    quiet = percentiles([t for t, ran in zip(samples, collected, strict=True) if not ran])
    print(
        f"  the {measured - sum(collected)} decisions no collection ran in: "
        f"p50 {quiet['p50']:.1f} us  p99 {quiet['p99']:.1f} us  p99.9 {quiet['p999']:.1f} us"
    )
    iterations, floor = _machine_floor(stats["p50"], measured)
    print(
        f"  machine floor, right after: a fixed pure-Python loop ({iterations} iterations, "
        f"about the decisions' p50) timed the same way {measured} times: p50 "
        f"{floor['p50']:.1f} us  p99 {floor['p99']:.1f} us  p99.9 {floor['p999']:.1f} us  "
        f"(p99/p50 {floor['p99'] / floor['p50']:.2f}; "
        f"the decisions' {stats['p99'] / stats['p50']:.2f})"
    )

    # evaluator only (the pack's separate evaluator, the fused step's reference: 19 feature
    # reads and the 100 rules, no updates, no traces)
    evaluate = component.packs["bench"].evaluators["WithdrawalRequest"]
    now = component.now
    probe = events[-1]
    ours_100 = bulk_us(lambda e: evaluate(e, now), probe, loops)

    # one simple comparison rule: marginal cost
    simple = [f"event.amount > {1000.0 + i}" for i in range(101)]
    one = _evaluator(pack_yaml(simple[:1], with_features=False))
    many = _evaluator(pack_yaml(simple, with_features=False))
    t1 = bulk_us(lambda e: one(e, now), probe, loops)
    t101 = bulk_us(lambda e: many(e, now), probe, loops)
    per_rule = (t101 - t1) / 100
    print(f"fengkong evaluator only, 100 rules: {ours_100:.2f} us")
    print(
        f"fengkong one simple comparison rule: {per_rule:.3f} us marginal; "
        f"{t1:.2f} us for a 1-rule evaluator call"
    )
    pairs, busy_us = _busy_extremum(2_000 if args.smoke else 20_000)
    print(
        f"fengkong 24 h max in one-minute buckets, a key with an event every 5 s: "
        f"{busy_us:.2f} us per add and read ({pairs} pairs held)"
    )
    table_keys = args.table_keys or (10_000 if args.smoke else 100_000)
    median_us, worst = _key_table_churn(table_keys)
    print(
        f"fengkong store key table at {table_keys:,} keys, one key out and one in per event: "
        f"p50 {median_us:.2f} us; the {len(worst)} slowest: "
        + ", ".join(f"{us / 1000:.1f} ms" for us, _ in worst)
        + f" (events {', '.join(str(at) for _, at in worst)})"
    )

    # peers over the same rules with the feature values given
    context = {f"event_{name}": value for name, value in _event_values(probe).items()}
    values = evaluate(probe, now)[2]
    labels = list(component.packs["bench"].plan.kinds["WithdrawalRequest"].reads.labels.values())
    for label, value in zip(labels, values, strict=True):
        if label.startswith("features."):
            context[label.removeprefix("features.")] = value
    _peer_rule_engine(rules, context, peer_loops, ours_100, stats["p50"], per_rule)
    _peer_cel(rules, context, peer_loops, ours_100, stats["p50"], per_rule)


def _busy_extremum(count: int) -> tuple[int, float]:
    """A max store's add and read for one busy key (a new value every 5 s in a 24 h window of
    1,440 one-minute buckets), after a day of history: the pairs the key holds, and the mean
    microseconds of one add and one read."""
    store = ExtremumWindow(60_000, 1_440, 10, 1, max, 0)
    rng = random.Random(1)
    ts = T0
    for _ in range(20_000):
        ts += 5_000
        store.add("k", rng.randrange(10**6), ts, ts)
    values = [rng.randrange(10**6) for _ in range(count)]
    start = time.perf_counter_ns()
    for value in values:
        ts += 5_000
        store.add("k", value, ts, ts)
        store.read("k", ts)
    return len(_queue_flat(store.keys["k"])) // 2, (time.perf_counter_ns() - start) / count / 1000


def _key_table_churn(keys: int) -> tuple[float, list[tuple[float, int]]]:
    """A store's key table (``KeyedWindow.keys``, an ``OrderedDict`` in update order) holding
    ``keys`` keys, each event popping the front key (a sweep) and inserting a new one (a store
    keyed by IP address in its steady state), for 3 x ``keys`` events: the median
    microseconds of one pop and insert, and the slowest three (microseconds, event number).

    The pauses among the slowest are the table's rebuilds: popped keys leave holes that
    inserts do not reuse, so the dictionary under the ordered dict is rebuilt when its free
    slots run out (about every ``keys`` inserts), and the ordered dict then relinks every
    key, one lookup each; with fewer than three rebuilds in the run the rest are ordinary."""
    store = CountWindow(60_000, 60, 1 << 62, 1)
    table = store.keys
    for i in range(keys):
        store.add(f"10.{i >> 16}.{(i >> 8) & 255}.{i & 255}", None, 0, 0)
    fresh = [f"11.{i >> 16}.{(i >> 8) & 255}.{i & 255}" for i in range(3 * keys)]
    states = [_Tally(1, i, i, 1) for i in range(len(fresh))]  # the states a count makes
    clock = time.perf_counter_ns
    samples = [0] * len(fresh)
    for i, key in enumerate(fresh):
        start = clock()
        table.popitem(False)
        table[key] = states[i]
        samples[i] = clock() - start
    slowest = sorted(range(len(samples)), key=samples.__getitem__)[-3:]
    return (
        sorted(samples)[len(samples) // 2] / 1000,
        [(samples[i] / 1000, i) for i in sorted(slowest)],
    )


def _floor_loop(iterations: int) -> int:
    """Fixed work: no memory beyond a few small objects, the same on every call."""
    total = 0
    for i in range(iterations):
        total ^= i
    return total


def _machine_floor(target_us: float, count: int) -> tuple[int, dict[str, float]]:
    """Percentiles of :func:`_floor_loop` sized to take about ``target_us``, timed ``count``
    times as the decisions are: what the machine alone (interrupts, neighbours, frequency)
    adds to the tail of a computation that never varies."""
    clock = time.perf_counter_ns
    iterations = 1_000
    for _ in range(3):  # sized, then resized at that size (a first guess was off by 45 %)
        probe = []
        for _ in range(500):
            start = clock()
            _floor_loop(iterations)
            probe.append(clock() - start)
        median_us = sorted(probe)[250] / 1000
        iterations = max(1, round(iterations * target_us / median_us))
    samples = [0] * count
    for i in range(count):
        start = clock()
        _floor_loop(iterations)
        samples[i] = clock() - start
    return iterations, percentiles(samples)


def _per_feature(accounts: int, ips: int | None) -> None:
    """The median decision of the pack cut to each feature alone and to all of them, above
    the median of the same pack with no feature (60,000 requests of history, 20,000 timed);
    one rule that never fires, so that the features' reads are hoisted but nothing is traced."""
    history = requests(60_000, accounts, T0, seed=1, ips=ips)
    timed = requests(20_000, accounts, T0 + 60_000 * 500, seed=2, ips=ips)
    never = {"name": "never", "on": "WithdrawalRequest", "outcome": "review", "score": 1}

    def median_us(names: list[str]) -> float:
        features = {}
        for name in names:
            agg, key, value, window = FEATURES[name]
            body = {"agg": agg, "on": "WithdrawalRequest", "key": key, "window": window}
            if value:
                body["value"] = value
            features[name] = body
        reads = " or ".join(
            f"features.{n} == '~'" if FEATURES[n][0] == "last" else f"features.{n} < -1"
            for n in names
        )
        pack = {"pack": "bench", "version": "1", "features": features}
        pack["rules"] = [{**never, "if": f"event.amount > 1e15 and ({reads or 'False'})"}]
        component = RulesComponent()
        [loaded] = component.apply(
            RulePackLoaded(seq=0, id="p", ts=T0, pack_yaml=yaml.safe_dump(pack), author="b")
        )
        assert type(loaded).__name__ == "RulePackActivated", loaded
        for event in history:
            component.apply(event)
        gc.collect()
        gc.freeze()
        clock = time.perf_counter_ns
        samples = []
        for event in timed:
            start = clock()
            component.apply(event)
            samples.append(clock() - start)
        gc.unfreeze()
        return statistics.median(samples) / 1000

    base = median_us([])
    print(f"no feature: p50 {base:.2f} us; each feature above it:")
    for name, (agg, key, _, window) in FEATURES.items():
        cost = median_us([name]) - base
        print(f"  {name:16s} {agg:8s} by {key!s:22s} {window:>3s}: +{cost:.2f} us")
    print(f"  all {len(FEATURES)} features: +{median_us(list(FEATURES)) - base:.2f} us")


def _interleaved(accounts: int, ips: int | None, block: int = 500, blocks: int = 100) -> None:
    """Warm up as the main run does, then ``blocks`` blocks of ``block`` decisions, each
    followed by :func:`_floor_loop` of 1,200 iterations per decision; prints the median of
    the blocks' decision-to-loop time ratios and the median block's mean decision time."""
    component = RulesComponent()
    rules = make_rules()
    component.apply(
        RulePackLoaded(
            seq=0, id="pack", ts=T0, pack_yaml=pack_yaml([r["ours"] for r in rules]), author="bench"
        )
    )
    for event in requests(100_000, accounts, T0, seed=1, ips=ips):
        component.apply(event)
    events = requests(block * blocks, accounts, T0 + 100_000 * 500, seed=2, ips=ips)
    gc.collect()
    gc.freeze()
    clock = time.perf_counter_ns
    apply = component.apply
    ratios, means = [], []
    for start in range(0, len(events), block):
        t0 = clock()
        for event in events[start : start + block]:
            apply(event)
        t1 = clock()
        _floor_loop(block * 1_200)
        t2 = clock()
        ratios.append((t1 - t0) / (t2 - t1))
        means.append((t1 - t0) / block / 1000)
    ratios.sort()
    means.sort()
    print(
        f"interleaved: median ratio {ratios[len(ratios) // 2]:.3f} (decisions / fixed loop), "
        f"median block mean {means[len(means) // 2]:.2f} us per decision, {blocks} blocks"
    )


def _callgrind_workload(
    history: int = 20_000, accounts: int = 1_000, decided: int = 2_000, ips: int | None = None
):
    """Warm up outside ``functools.reduce``, then decide ``decided`` requests inside it (see
    the module docstring); prints the number of rules fired, as a check of the workload."""
    component = RulesComponent()
    rules = make_rules()
    component.apply(
        RulePackLoaded(
            seq=0, id="pack", ts=T0, pack_yaml=pack_yaml([r["ours"] for r in rules]), author="bench"
        )
    )
    for event in requests(history, accounts, T0, seed=1, ips=ips):
        component.apply(event)
    events = requests(decided, accounts, T0 + history * 500, seed=2, ips=ips)
    gc.collect()
    gc.freeze()
    apply = component.apply
    fired = functools.reduce(lambda n, event: n + len(apply(event)[0].fired), events, 0)
    print(f"{decided} decisions, {fired} rules fired")


def _evaluator(text: str):
    component = RulesComponent()
    component.apply(RulePackLoaded(seq=0, id="p", ts=T0, pack_yaml=text, author="bench"))
    return component.packs["bench"].evaluators["WithdrawalRequest"]


def _event_values(event: WithdrawalRequest) -> dict:
    return {
        "amount": float(event.amount),
        "value_usd": float(event.value_usd),
        "asset": event.asset,
        "network": event.network,
    }


def _report_peer(name, all_us, simple_us, ours_100, ours_p50, ours_rule) -> None:
    print(f"{name}: 100 rules {all_us:.1f} us, one simple rule {simple_us:.2f} us")
    print(
        f"  ratios: 100-rule evaluation {all_us / ours_100:.0f}x slower than fengkong's evaluator, "
        f"{all_us / ours_p50:.1f}x slower than a full fengkong decision (p50); "
        f"simple rule {simple_us / ours_rule:.0f}x"
    )


def _peer_rule_engine(rules, context, loops, ours_100, ours_p50, ours_rule) -> None:
    try:
        import rule_engine
    except ImportError:
        print("rule-engine: not installed (pip install 'fengkong[bench]')")
        return
    compiled = [rule_engine.Rule(r["rule_engine"]) for r in rules]
    assert all(isinstance(r.matches(context), bool) for r in compiled)
    all_us = bulk_us(lambda ctx: [r.matches(ctx) for r in compiled], context, loops)
    simple = rule_engine.Rule("event_amount > 1000.0")
    simple_us = bulk_us(simple.matches, context, loops * 20)
    _report_peer("rule-engine", all_us, simple_us, ours_100, ours_p50, ours_rule)


def _peer_cel(rules, context, loops, ours_100, ours_p50, ours_rule) -> None:
    try:
        import celpy
    except ImportError:
        print("cel-python: not installed (pip install 'fengkong[bench]')")
        return
    env = celpy.Environment()
    programs = [env.program(env.compile(r["cel"])) for r in rules]
    activation = celpy.json_to_cel(context)
    results = [p.evaluate(activation) for p in programs]
    assert all(isinstance(r, celpy.celtypes.BoolType) for r in results), results
    loops = max(5, loops // 10)
    all_us = bulk_us(lambda a: [p.evaluate(a) for p in programs], activation, loops)
    simple = env.program(env.compile("event_amount > 1000.0"))
    simple_us = bulk_us(simple.evaluate, activation, loops * 20)
    _report_peer("cel-python", all_us, simple_us, ours_100, ours_p50, ours_rule)


if __name__ == "__main__":
    main()
