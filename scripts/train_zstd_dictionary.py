"""Train the zstd dictionary of stored measurements (``reachwatch/store/dictionaries/``), reproducibly.

The training set is every line of OONI's shared ``measurements_real.jsonl`` that comes from the
ooni/backend or ooni/explorer repositories (test fixtures of measurements taken by real probes;
both BSD-licensed, see the data's ``SOURCES.md`` and ``licenses/``), re-serialised as compact JSON.
The benchmark's measurements (``measurements_qa_emulated.jsonl``) and ooni/probe-cli's are left out,
so figures measured on them are out of sample. zstd's COVER training with fixed parameters on one
thread gives the same bytes on every run with the same zstd release (see :data:`TRAINED_WITH`).

    .venv/bin/python scripts/train_zstd_dictionary.py [--data ../shared/data/ooni] [--out FILE]
"""

from __future__ import annotations

import argparse
import csv
import sys
from pathlib import Path

import orjson
import zstandard

from reachwatch.store.compression import COVER_D, COVER_K, DICTIONARY_FILES, DICTIONARY_ID, DICTIONARY_SIZE

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_DATA = ROOT.parent / "shared" / "data" / "ooni"
DEFAULT_OUT = ROOT / "src" / "reachwatch" / "store" / "dictionaries" / DICTIONARY_FILES[DICTIONARY_ID]
SOURCES = ("ooni/backend", "ooni/explorer")
#: The zstd release that trained the shipped dictionary (another may train other bytes)
TRAINED_WITH = (1, 5, 7)


def samples(data: Path) -> list[bytes]:
    """The training measurements, as compact JSON, in the file's order."""
    lines = [line for line in (data / "measurements_real.jsonl").read_bytes().splitlines() if line.strip()]
    with (data / "index.csv").open(newline="") as index:
        wanted = [
            int(row["line"])
            for row in csv.DictReader(index)
            if row["file"] == "measurements_real.jsonl" and row["source_repo"] in SOURCES
        ]
    return [orjson.dumps(orjson.loads(lines[n - 1])) for n in wanted]


def train(training: list[bytes]) -> bytes:
    items: list[bytes | bytearray | memoryview] = list(training)
    trained = zstandard.train_dictionary(
        DICTIONARY_SIZE, items, dict_id=DICTIONARY_ID, k=COVER_K, d=COVER_D, threads=1
    )
    return bytes(trained.as_bytes())


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument(
        "--data", type=Path, default=DEFAULT_DATA, help="OONI shared data (index.csv and the .jsonl files)"
    )
    ap.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = ap.parse_args()
    if not (args.data / "index.csv").is_file():
        print(f"error: no index.csv in {args.data}: pass --data DIR, the shared OONI data", file=sys.stderr)
        return 2
    training = samples(args.data)
    args.out.write_bytes(train(training))
    print(
        f"{args.out}: dictionary {DICTIONARY_ID}, {DICTIONARY_SIZE} bytes, from {len(training)} measurements "
        f"({sum(map(len, training))} bytes), zstd {'.'.join(map(str, zstandard.ZSTD_VERSION))}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
