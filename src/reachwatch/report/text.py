"""Words for people: state names and meanings, techniques in plain language, dates, percentages."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class StateInfo:
    state: str
    label: str
    meaning: str


STATE_INFO: dict[str, StateInfo] = {
    s.state: s
    for s in (
        StateInfo(
            "blocked",
            "blocked",
            "Blocking is certain: a known blockpage or a forged DNS answer was seen, or the same "
            "blocking technique was reported by at least three different probes.",
        ),
        StateInfo(
            "likely_blocked",
            "likely blocked",
            "Most measurements (at least half, with the interval's lower end at 20% or more) failed "
            "in a way the control did not, but no artefact proves it.",
        ),
        StateInfo(
            "impaired",
            "impaired",
            "A fifth or more of the measurements were blocked or throttled, short of 'likely blocked'.",
        ),
        StateInfo(
            "down",
            "down",
            "The site failed from the control too: it was unreachable everywhere, not blocked.",
        ),
        StateInfo("ok", "reachable", "Most measurements reached the site just as the control did."),
        StateInfo(
            "insufficient",
            "insufficient data",
            "Too few probes (fewer than two) or measurements without a control answer: nothing can be "
            "said. Never read as 'reachable'.",
        ),
    )
}
NO_DATA_MEANING = "No measurement at all on that day, from that network."

TECHNIQUE_PHRASE: dict[str, str] = {
    "dns-hijack": "DNS hijacking",
    "dns-nxdomain": "forged 'no such domain' DNS answers",
    "dns-timeout": "suppressed DNS answers",
    "dns-bogon": "DNS answers pointing to private addresses",
    "tcp-timeout": "dropping connections to the site's addresses",
    "tcp-reset": "resetting connections to the site's addresses",
    "tls-reset": "TLS SNI filtering",
    "tls-timeout": "TLS SNI filtering",
    "http-blockpage": "serving a blockpage",
    "http-reset": "HTTP filtering (connection reset)",
    "throttled": "throttling",
}

COUNTRY_NAMES: dict[str, str] = {
    "AE": "the United Arab Emirates", "AF": "Afghanistan", "AZ": "Azerbaijan", "BD": "Bangladesh",
    "BH": "Bahrain", "BR": "Brazil", "BY": "Belarus", "CD": "the DR Congo", "CM": "Cameroon",
    "CN": "China", "CU": "Cuba", "DE": "Germany", "EG": "Egypt", "ET": "Ethiopia", "FR": "France",
    "GB": "the United Kingdom", "ID": "Indonesia", "IN": "India", "IQ": "Iraq", "IR": "Iran",
    "IT": "Italy", "JO": "Jordan", "KE": "Kenya", "KZ": "Kazakhstan", "LB": "Lebanon", "LK": "Sri Lanka",
    "MA": "Morocco", "MM": "Myanmar", "MX": "Mexico", "MY": "Malaysia", "NG": "Nigeria", "NI": "Nicaragua",
    "NP": "Nepal", "OM": "Oman", "PH": "the Philippines", "PK": "Pakistan", "QA": "Qatar", "RU": "Russia",
    "SA": "Saudi Arabia", "SD": "Sudan", "SY": "Syria", "TH": "Thailand", "TJ": "Tajikistan",
    "TM": "Turkmenistan", "TR": "Türkiye", "TZ": "Tanzania", "UA": "Ukraine", "UG": "Uganda",
    "US": "the United States", "UZ": "Uzbekistan", "VE": "Venezuela", "VN": "Vietnam", "YE": "Yemen",
    "ZW": "Zimbabwe", "ZZ": "an unknown country",
}  # fmt: skip


def state_label(state: str | None) -> str:
    if state is None:
        return "no data"
    info = STATE_INFO.get(state)
    return info.label if info else state


def technique_phrase(technique: str | None) -> str:
    if not technique:
        return "an undetermined technique"
    return TECHNIQUE_PHRASE.get(technique, technique)


def country_name(cc: str) -> str:
    return COUNTRY_NAMES.get(cc, cc)


def country_title(cc: str) -> str:
    return country_name(cc).removeprefix("the ")


def pct(share: float) -> str:
    return f"{round(share * 100)}%"


def short_day(day: dt.date) -> str:
    return f"{day.day} {day:%b}"


def long_day(day: dt.date) -> str:
    return f"{day.day} {day:%B %Y}"


def day_range(first: dt.date, last: dt.date) -> str:
    """'between 2 and 28 July 2018' style, without repeating the month or year."""
    if first == last:
        return f"on {long_day(first)}"
    if (first.year, first.month) == (last.year, last.month):
        return f"between {first.day} and {long_day(last)}"
    if first.year == last.year:
        return f"between {first.day} {first:%B} and {long_day(last)}"
    return f"between {long_day(first)} and {long_day(last)}"


def day_span(first: dt.date, last: dt.date) -> str:
    """'10–19 Nov 2026' style, short, for table cells."""
    if first == last:
        return f"{short_day(first)} {first.year}"
    if (first.year, first.month) == (last.year, last.month):
        return f"{first.day}–{short_day(last)} {last.year}"
    if first.year == last.year:
        return f"{short_day(first)} – {short_day(last)} {last.year}"
    return f"{short_day(first)} {first.year} – {short_day(last)} {last.year}"


def join_words(items: list[str]) -> str:
    if len(items) <= 2:
        return " and ".join(items)
    return ", ".join(items[:-1]) + " and " + items[-1]
