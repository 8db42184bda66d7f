"""Micro-benchmark: the rate limiter's cost per request against the number of networks it holds.

    .venv/bin/python benchmarks/ratelimit.py [--held 1000,10000,150000] [--requests 20000] [--runs 3]

For each count of buckets held (all recent: none full again, the clock stands still), prints the
µs per request of a refused request (a network past its burst), of a request from a network not
held (which adds a bucket), and the buckets looked at per request to drop full ones; once with
room for every bucket, once at the default cap (``MAX_BUCKETS``: each new network then evicts the
least recently seen). An outside check (session 17) timed the limiter before: a refused request
cost 57 ms with 150,000 buckets held, rebuilding the whole table. It never asserts a time.
"""

from __future__ import annotations

import argparse
import statistics
import time

from reachwatch.collector.ratelimit import MAX_BUCKETS, RateLimiter


def _key(i: int) -> str:
    return f"2001:{(i >> 16) + 1:x}:{i & 0xFFFF:x}::/48"


def measure(held: int, requests: int, max_buckets: int) -> tuple[float, float, float]:
    """(µs a refused request, µs a new network's request, buckets examined per request)."""
    limiter = RateLimiter(rate=5, burst=20, clock=lambda: 0.0, exempt="", max_buckets=max_buckets)
    for i in range(held):
        limiter.take(_key(i))
    for _ in range(20):
        limiter.take("busy")
    before = limiter.statistics().examined
    start = time.perf_counter()
    for _ in range(requests):
        limiter.take("busy")
    refused = (time.perf_counter() - start) / requests * 1e6
    new_keys = [_key(held + i) for i in range(requests)]
    start = time.perf_counter()
    for key in new_keys:
        limiter.take(key)
    new = (time.perf_counter() - start) / requests * 1e6
    examined = (limiter.statistics().examined - before) / (2 * requests)
    return refused, new, examined


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--held", default="1000,10000,150000", help="bucket counts, comma-separated")
    parser.add_argument("--requests", type=int, default=20_000)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    counts = [int(n) for n in args.held.split(",")]
    print(f"{'held':>8} {'cap':>8} {'refused µs':>11} {'new net µs':>11} {'examined/req':>13}")
    for held in counts:
        for cap in (held + args.requests + 1, MAX_BUCKETS):
            runs = [measure(held, args.requests, cap) for _ in range(args.runs)]
            refused = statistics.median(r[0] for r in runs)
            new = statistics.median(r[1] for r in runs)
            print(f"{held:>8} {cap:>8} {refused:>11.2f} {new:>11.2f} {runs[0][2]:>13.2f}")


if __name__ == "__main__":
    main()
