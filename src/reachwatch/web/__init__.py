"""The dashboard: pages rendered from the report's models, served by Starlette routes."""

from __future__ import annotations

from reachwatch.web.memory import MemorySource
from reachwatch.web.pages import (
    CSP,
    SECURITY_HEADERS,
    asn_page,
    country_page,
    domain_page,
    error_page,
    measurement_page,
    overview_page,
)
from reachwatch.web.routes import DataSource, mount, routes

__all__ = [
    "CSP",
    "SECURITY_HEADERS",
    "DataSource",
    "MemorySource",
    "asn_page",
    "country_page",
    "domain_page",
    "error_page",
    "measurement_page",
    "mount",
    "overview_page",
    "routes",
]
