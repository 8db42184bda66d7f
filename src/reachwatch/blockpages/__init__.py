"""Unknown blockpages: cluster the bodies of blocked measurements and propose fingerprints."""

from __future__ import annotations

from reachwatch.blockpages.cluster import Cluster, Clusterer, Collected, Member, collect
from reachwatch.blockpages.normalise import normalise, words
from reachwatch.blockpages.propose import Candidate, propose, propose_pattern

__all__ = [
    "Candidate",
    "Cluster",
    "Clusterer",
    "Collected",
    "Member",
    "collect",
    "normalise",
    "propose",
    "propose_pattern",
    "words",
]
