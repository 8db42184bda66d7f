"""Known blocking fingerprints (blockpages, injected DNS answers): load, compile, match, update."""

from __future__ import annotations

from reachwatch.fingerprints.load import (
    append_fingerprints,
    default_dir,
    load_dir,
    load_fingerprints,
    read_fingerprints,
)
from reachwatch.fingerprints.match import DEFAULT_BODY_WINDOW, FingerprintMatcher, body_text
from reachwatch.fingerprints.model import Fingerprint, FingerprintMatch, is_confirmed

__all__ = [
    "DEFAULT_BODY_WINDOW",
    "Fingerprint",
    "FingerprintMatch",
    "FingerprintMatcher",
    "append_fingerprints",
    "body_text",
    "default_dir",
    "is_confirmed",
    "load_dir",
    "load_fingerprints",
    "read_fingerprints",
]
