"""``reachwatch analyze``: stored measurements become findings (verdicts, fingerprints, cells)."""

from __future__ import annotations

from reachwatch.analyze.run import AnalyzeStats, analyze_file, analyze_store
from reachwatch.analyze.work import fingerprints_version, rules_version

__all__ = ["AnalyzeStats", "analyze_file", "analyze_store", "fingerprints_version", "rules_version"]
