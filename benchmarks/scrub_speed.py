"""Micro-benchmark: scrubbing the probe's addresses from real OONI measurements of 6-7 KB.

    .venv/bin/python benchmarks/scrub_speed.py [--data ../shared/data] [--n 5000]

Prints, for each measurement of ``measurements_real.jsonl`` between 6,000 and 7,000 bytes (a
web_connectivity one and a tor one, with two certificates in base64) and each scrubber (an IPv4
submitter, it and another IPv4 probe_ip, an IPv6 submitter), the best of 9 runs of ``--n`` calls
of ``Scrubber.json`` in µs a call: on the measurement as it is (nearly all: no spelling in it),
and with the submitter's address in a body. Set ``REACHWATCH_MYPYC=0`` for plain Python. It never
asserts a time.
"""

from __future__ import annotations

import argparse
import timeit
from pathlib import Path

import orjson

from reachwatch.collector.privacy import Scrubber

CASES = {
    "ipv4": ("203.0.113.77", "127.0.0.1"),
    "ipv4+ipv4": ("203.0.113.77", "81.2.69.160"),
    "ipv6": ("2a02:8109:1140:c3d::5", "127.0.0.1"),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=Path(__file__).resolve().parents[2] / "shared" / "data")
    parser.add_argument("--n", type=int, default=5000, help="calls per run")
    args = parser.parse_args()
    lines = (args.data / "ooni" / "measurements_real.jsonl").read_bytes().splitlines()
    for line in lines:
        if not 6000 < len(line) < 7000:
            continue
        measurement = orjson.loads(line)
        for name, addresses in CASES.items():
            scrubber = Scrubber(addresses)
            row = []
            for holding in (False, True):
                if holding:
                    measurement["test_keys"]["x_seen"] = f"your address is {addresses[0]}"
                data = orjson.dumps(measurement)
                assert (scrubber.json(data) is data) != holding
                runs = timeit.repeat(lambda: scrubber.json(data), number=args.n, repeat=9)  # noqa: B023
                row.append(f"{min(runs) / args.n * 1e6:7.2f}")
                measurement["test_keys"].pop("x_seen", None)
            print(
                f"{measurement['test_name']:17} {len(line):5} B  {name:10} none {row[0]} µs  one {row[1]} µs"
            )


if __name__ == "__main__":
    main()
