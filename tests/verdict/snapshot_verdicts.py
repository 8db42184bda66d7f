"""Freeze the verdict engine's outputs on the equivalence corpus into verdict_snapshot.json.

    .venv/bin/python tests/verdict/snapshot_verdicts.py

Run it only with an engine whose verdicts you trust: ``test_equivalence.py`` then checks that
every later engine gives exactly the same ``as_test_keys()`` on every case. The snapshot was made
with the engine of commit 1600593 (flatten + records, before the one-pass reader), taken from git
so that the corpus of the working tree is judged by the old code:

    git archive 1600593 src/reachwatch | tar -x -C /tmp/old
    PYTHONPATH=/tmp/old/src .venv/bin/python tests/verdict/snapshot_verdicts.py

Regenerate it only when the corpus changes or a verdict change is intended (say so in the commit).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
SNAPSHOT = HERE / "verdict_snapshot.json"


def main() -> None:
    sys.path.insert(0, str(HERE))
    from equivalence_corpus import corpus

    from reachwatch.verdict import decide

    keys: list[str] | None = None
    cases: dict[str, list[object]] = {}
    for case_id, group, digest, m in corpus():
        out = decide(m).as_test_keys()
        keys = keys or list(out)
        cases[case_id] = [group, digest, [out[k] for k in keys]]
    groups = {g: sum(1 for c in cases.values() if c[0] == g) for g in ("builders", "ooni")}
    with SNAPSHOT.open("w", encoding="utf-8") as handle:
        handle.write('{"keys": ' + json.dumps(keys) + ',\n"cases": {\n')  # one case a line: diffable
        handle.write(",\n".join(f"{json.dumps(k)}: {json.dumps(v)}" for k, v in cases.items()))
        handle.write("\n}}\n")
    print(f"{SNAPSHOT.name}: {len(cases)} cases {groups}, {SNAPSHOT.stat().st_size / 1e3:.0f} kB")


if __name__ == "__main__":
    main()
