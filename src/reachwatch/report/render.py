"""The jinja2 environment shared by the report and the dashboard: autoescape always on.

Templates live in ``report/templates`` (report, SVG macros) and ``web/templates`` (dashboard).
Autoescaping is forced for every template whatever its name: the data we show (network names,
domains, blockpage bodies and headers) is hostile input.
"""

from __future__ import annotations

import base64
import datetime as dt
import functools
import hashlib
from importlib import resources
from typing import Any
from urllib.parse import quote

import jinja2

from reachwatch.report.model import STATES
from reachwatch.report.text import STATE_INFO, day_span, pct, short_day, state_label, technique_phrase


def _fmt_day(value: dt.date | str) -> str:
    day = value if isinstance(value, dt.date) else dt.date.fromisoformat(value)
    return f"{short_day(day)} {day.year}"


def _seen_span(first: str | None, last: str | None) -> str:
    """The days of the first and last measurement (ISO times) as one short range; other text as given."""
    if not first or not last:
        return "–"
    try:
        return day_span(dt.date.fromisoformat(first[:10]), dt.date.fromisoformat(last[:10]))
    except ValueError:
        return f"{first} – {last}"


def _num(value: float) -> str:
    return f"{value:.1f}".rstrip("0").rstrip(".")


def _urlpart(value: str) -> str:
    return quote(value, safe="")


@functools.cache
def environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("reachwatch", "report/templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters.update(
        pct=pct,
        state_label=state_label,
        technique=technique_phrase,
        day=_fmt_day,
        seen_span=_seen_span,
        num=_num,
        urlpart=_urlpart,
    )
    env.globals.update(STATES=STATES, STATE_INFO=STATE_INFO)
    return env


def web_environment() -> jinja2.Environment:
    """The dashboard's environment: its own templates first, then the report's macros."""
    return _web_environment()


@functools.cache
def _web_environment() -> jinja2.Environment:
    base = environment()
    env = base.overlay(
        loader=jinja2.ChoiceLoader(
            [jinja2.PackageLoader("reachwatch", "web/templates"), base.loader]  # type: ignore[list-item]
        )
    )
    env.autoescape = True
    return env


def render(template: str, **context: Any) -> str:
    return environment().get_template(template).render(**context)


@functools.cache
def stylesheet(package: str, name: str) -> str:
    return resources.files(package).joinpath(name).read_text(encoding="utf-8")


def csp_hash(text: str) -> str:
    """The CSP source expression allowing exactly this inline ``<style>`` content."""
    digest = hashlib.sha256(text.encode("utf-8")).digest()
    return "'sha256-" + base64.b64encode(digest).decode("ascii") + "'"
