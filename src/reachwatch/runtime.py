"""Settings of the long, busy processes: the collector and its workers, the probe, the control helper."""

from __future__ import annotations

import gc

#: Python's default is 700 allocations. Each measurement (parsed, built or fetched) is hundreds of
#: short-lived containers, so the youngest generation is scanned several times per measurement
#: at the default, and each scan walks every object imported before.
GC_THRESHOLD = 20_000


def settle_gc(threshold: int = GC_THRESHOLD) -> None:
    """Move everything alive now (the imported modules) out of the collector's scans, and let the
    youngest generation fill up before it is scanned. Called once, after the imports and before
    any fork (the frozen objects are then not written to, so forked children keep sharing them)."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(threshold, 20, 20)
