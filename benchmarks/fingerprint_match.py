"""Micro-benchmark: fingerprint matching speed over the real OONI measurements, replicated.

    .venv/bin/python benchmarks/fingerprint_match.py [--data ../shared/data] [--n 20000]

Prints measurements matched per second (one core). It never asserts a time.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

from reachwatch.fingerprints import FingerprintMatcher, load_dir

FILES = ("measurements_real.jsonl", "measurements_qa_emulated.jsonl")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=Path(__file__).resolve().parents[2] / "shared" / "data")
    parser.add_argument("--n", type=int, default=20000, help="measurements per run (the sample replicated)")
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()

    t0 = time.perf_counter()
    fps = load_dir(args.data / "fingerprints")
    t1 = time.perf_counter()
    sample = [
        json.loads(line) for name in FILES for line in (args.data / "ooni" / name).open() if line.strip()
    ]
    web = [m for m in sample if m.get("test_name") == "web_connectivity"]
    print(f"{len(fps)} fingerprints loaded in {(t1 - t0) * 1e3:.0f} ms; sample: {len(sample)} measurements")
    for label, measurements in (("all measurements", sample), ("web_connectivity only", web)):
        batch = (measurements * (args.n // len(measurements) + 1))[: args.n]
        for window in (65536, None):
            t2 = time.perf_counter()
            matcher = FingerprintMatcher(fps, body_window=window)
            compile_ms = (time.perf_counter() - t2) * 1e3
            rates = []
            hits = 0
            for _ in range(args.runs):
                start = time.perf_counter()
                hits = sum(1 for m in batch if matcher.match(m))
                rates.append(len(batch) / (time.perf_counter() - start))
            print(
                f"{label:22} body_window={window!s:6} compile {compile_ms:5.1f} ms  "
                f"{statistics.median(rates):9,.0f} measurements/s  "
                f"({1e6 / statistics.median(rates):6.1f} µs each; {hits}/{len(batch)} with a match)"
            )


if __name__ == "__main__":
    main()
