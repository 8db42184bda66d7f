"""The probe: measure URLs the way OONI's Web Connectivity does, one JSON measurement per URL.

Steps live in their own modules (dns, dnsudp, tcp, tls, http), composed per redirect hop (hop)
and per URL (measure); envelope adds the df-000 base keys and runner measures many URLs at once.
"""

from reachwatch.probe.config import ProbeConfig, Timeouts
from reachwatch.probe.measure import measure_url
from reachwatch.probe.runner import run

__all__ = ["ProbeConfig", "Timeouts", "measure_url", "run"]
