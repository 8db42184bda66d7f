"""How long a measurement's text takes to become what staging reads, each way a store can read it.

    .venv/bin/python benchmarks/measurement_load.py [--file FILE.jsonl] [--repeat 7]

For every line of a JSON-lines file of measurements (by default OONI's real and QA measurements in
``../shared/data/ooni``), in one process, alternately, the best of ``--repeat`` rounds of:

- ``compact``: a new store's reading (``measurement_json.load``: simdjson validates, test_keys its
  text made compact by ``json_text``, the other keys by orjson);
- ``simdjson``: a store of sessions 10-19 (``load_simdjson_form``: test_keys written back by
  simdjson, the other keys from its proxies);
- ``orjson``: the baseline, ``orjson.loads`` of the whole line (Python objects for everything);
- ``test_keys text``: ``json_text.object_member`` alone, the compaction the first one includes.

It prints the median line's time for each and the ratio to the baseline. Never asserted: the
figures move with the machine's hour; the ratios much less.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson

from reachwatch.collector import json_text, measurement_json

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data" / "ooni"


def best(f: Callable[[bytes], Any], line: bytes, repeat: int, number: int) -> float:
    out = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        for _ in range(number):
            f(line)
        out = min(out, (time.perf_counter() - t0) / number)
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--file", type=Path, action="append", help="a JSON-lines file of measurements")
    ap.add_argument("--repeat", type=int, default=7)
    args = ap.parse_args()
    files = args.file or [SHARED / "measurements_real.jsonl", SHARED / "measurements_qa_emulated.jsonl"]
    missing = [str(f) for f in files if not f.is_file()]
    if missing:
        print(f"no such file: {', '.join(missing)} (give measurements with --file)", file=sys.stderr)
        return 2
    lines = [line for f in files for line in f.read_bytes().splitlines() if line.strip()]
    ways: dict[str, Callable[[bytes], Any]] = {
        "compact": measurement_json.load,
        "simdjson": measurement_json.load_simdjson_form,
        "orjson": orjson.loads,
        "test_keys text": lambda line: json_text.object_member(line, 0, b"test_keys", True),
    }
    times: dict[str, list[float]] = {name: [] for name in ways}
    for line in lines:
        number = max(1, 200_000 // len(line))
        for name, f in ways.items():
            times[name].append(best(f, line, args.repeat, number))
    sizes = sorted(len(line) for line in lines)
    print(
        f"{len(lines)} measurements, median {sizes[len(sizes) // 2]} bytes; "
        f"json_text in {'C' if json_text.compact is not json_text.py_compact else 'Python'}"
    )
    base = statistics.median(times["orjson"])
    for name, ts in times.items():
        median = statistics.median(ts)
        print(f"{name:15} median line {median * 1e6:8.2f} us   ratio to orjson {median / base:5.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
