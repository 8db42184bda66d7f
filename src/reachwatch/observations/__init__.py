"""Observations: what a web_connectivity measurement saw, as flat typed records.

``flatten(measurement)`` accepts any web_connectivity measurement (ours, or a real OONI
probe's of any version) and never raises; what the observations *mean* is decided in
``reachwatch.verdict``.
"""

from reachwatch.observations.parse import flatten
from reachwatch.observations.records import (
    Control,
    ControlDNS,
    ControlHTTP,
    DNSLookup,
    HTTPTransaction,
    Observations,
    TCPConnect,
    TLSHandshake,
    endpoint,
)

__all__ = [
    "Control",
    "ControlDNS",
    "ControlHTTP",
    "DNSLookup",
    "HTTPTransaction",
    "Observations",
    "TCPConnect",
    "TLSHandshake",
    "endpoint",
    "flatten",
]
