"""Micro-benchmark: verdict engine speed (re-verdicting stored measurements), one core.

    .venv/bin/python benchmarks/verdict_speed.py [--data ../shared/data] [--n 50000] [--runs 3]

The sample is the shared OONI web_connectivity measurements (real and QA-emulated) plus
lab-like ones built by ``tests/verdict/verdict_builders.py`` (http and https, every technique
of ``tests/verdict/test_techniques.py``, at the first hop and after a redirect), replicated to
``--n``; and, apart, the templates ``benchmarks/analysis_pipeline.py`` stores (what
``reachwatch analyze`` judges there). Prints measurements/s for ``json.loads`` alone (the
baseline), ``json.loads`` + ``decide`` and ``decide`` alone (with its µs per measurement), and
their ratio to the baseline (machine-independent). It never asserts a time.
"""

from __future__ import annotations

import argparse
import gc
import json
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from reachwatch.verdict import decide

ROOT = Path(__file__).resolve().parents[1]
FILES = ("measurements_real.jsonl", "measurements_qa_emulated.jsonl")


def ooni_lines(data: Path) -> list[str]:
    lines = [line for name in FILES for line in (data / "ooni" / name).open() if line.strip()]
    # all of them: the 14 real (v0.0.1 ... v0.5.28, bodies up to 512 KB) and the 25 QA-emulated
    return [line for line in lines if json.loads(line).get("test_name") == "web_connectivity"]


def lab_lines() -> list[str]:
    sys.path.insert(0, str(ROOT / "tests" / "verdict"))
    from test_techniques import CENSORSHIP, NOT_CENSORSHIP
    from verdict_builders import redirected, single

    return [
        json.dumps(build(f"{scheme}://site.example/", probe, ctrl))
        for _, schemes, probe, ctrl, *_ in CENSORSHIP + NOT_CENSORSHIP
        for scheme in schemes
        for build in (single, redirected)
    ]


def analysis_lines() -> list[str]:
    sys.path.insert(0, str(ROOT / "benchmarks"))
    from analysis_pipeline import templates

    return [json.dumps(m) for m in templates(None)]


def rate(work: Callable[[], Any], count: int, runs: int) -> float:
    """Median measurements/s over ``runs`` runs, in CPU time of this process (one core)."""
    rates = []
    for _ in range(runs):
        gc.collect()
        start = time.process_time()
        work()
        rates.append(count / (time.process_time() - start))
    return statistics.median(rates)


def bench(label: str, sample: list[str], n: int, runs: int) -> None:
    # replicated by reference: the same few strings / parsed measurements, streamed n times
    lines = (sample * (n // len(sample) + 1))[:n]
    parsed = [json.loads(line) for line in sample]
    measurements = (parsed * (n // len(sample) + 1))[:n]
    loads = json.loads

    def loads_only() -> None:
        for line in lines:
            loads(line)

    def loads_and_decide() -> None:
        for line in lines:
            decide(loads(line))

    def decide_only() -> None:
        for m in measurements:
            decide(m)

    baseline = rate(loads_only, n, runs)
    both = rate(loads_and_decide, n, runs)
    alone = rate(decide_only, n, runs)
    mb = sum(map(len, lines)) / 1e6
    print(
        f"{label:14} {len(sample):4} distinct x{n / len(sample):6.0f} = {n} ({mb:6.0f} MB)  "
        f"json.loads {baseline:9,.0f}/s  loads+decide {both:9,.0f}/s ({both / baseline:4.2f}x)  "
        f"decide {alone:9,.0f}/s ({alone / baseline:4.2f}x, {1e6 / alone:5.1f} us)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data")
    parser.add_argument("--n", type=int, default=50000, help="measurements per run (the sample replicated)")
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    ooni, lab = ooni_lines(args.data), lab_lines()
    print("measurements/s on one core, median of", args.runs, "runs; (x) = ratio to json.loads alone")
    bench("ooni+lab", ooni + lab, args.n, args.runs)
    bench("ooni only", ooni, args.n, args.runs)
    bench("lab only", lab, args.n, args.runs)
    bench("analysis", analysis_lines(), args.n, args.runs)


if __name__ == "__main__":
    main()
