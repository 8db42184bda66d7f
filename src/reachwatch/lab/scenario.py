"""The scenario file (TOML): sites, ISPs and what each ISP blocks, validated before anything is built.

Every mistake (an unknown key, technique or host, a bad address) becomes a
:class:`~reachwatch.errors.UserError` naming the file, the entry and the key.
"""

from __future__ import annotations

import ipaddress
import re
import tomllib
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import urljoin

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, ValidationError, field_validator

from reachwatch.errors import UserError
from reachwatch.lab.addressing import BLOCKPAGE, SITE_POOLS
from reachwatch.lab.techniques import TECHNIQUES, rate_bytes_per_second
from reachwatch.testlists import Target, read_testlist
from reachwatch.urls import ascii_host, is_https, is_ip_literal, split_url

_HOST = re.compile(
    r"^(?=.{1,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)+$"
)
# addresses the lab itself uses (links, ISPs, services) or that cannot be a site
_LAB_NET = ipaddress.ip_network("100.64.0.0/10")  # the lab's own links, ISPs and services
_RESERVED = [ipaddress.ip_network(n) for n in ("0.0.0.0/8", "127.0.0.0/8", "224.0.0.0/3")] + [_LAB_NET]
_POOLS = [ipaddress.ip_network(n) for n in SITE_POOLS]


def _hostname(value: str) -> str:
    """The host as the lab serves it: lower case, no final dot, an IDN in its IDNA (xn--) form."""
    value = value.strip().lower().rstrip(".")
    try:
        value = ascii_host(value).lower()
    except UnicodeError:
        raise ValueError(
            f"{value!r} is not a host name like news.example (an empty or too long label?)"
        ) from None
    if is_ip_literal(value):
        raise ValueError(f"{value!r} is an IP address: a site needs a host name (its address goes in 'ip')")
    if not _HOST.match(value):
        raise ValueError(f"{value!r} is not a host name like news.example")
    return value


def _site_ip(value: str) -> str:
    addr = ipaddress.IPv4Address(value)
    if any(addr in net for net in _RESERVED):
        raise ValueError(f"{value} is reserved by the lab (0/8, 100.64/10, 127/8, multicast)")
    if str(addr) == BLOCKPAGE:
        raise ValueError(f"{value} is the lab's blockpage server")
    return str(addr)


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Site(_Model):
    host: str
    https: bool = False
    ip: str | None = None
    down: bool = False
    nxdomain: bool = False
    cert: Literal["expired", "wrong-host", "untrusted"] | None = None
    status: Annotated[int, Field(ge=100, le=599)] | None = None
    redirect_to: str | None = None

    @field_validator("host")
    @classmethod
    def _check_host(cls, value: str) -> str:
        return _hostname(value)

    @field_validator("ip")
    @classmethod
    def _check_ip(cls, value: str | None) -> str | None:
        return None if value is None else _site_ip(value)

    @field_validator("redirect_to")
    @classmethod
    def _check_redirect(cls, value: str | None) -> str | None:
        if value is not None and (not value.isascii() or not value.strip() or value != value.strip()):
            raise ValueError(
                f"redirect_to {value!r} must be a URL in ASCII without surrounding spaces "
                "(write an IDN host as xn--...)"
            )
        return value

    @property
    def url(self) -> str:
        return f"{'https' if self.https else 'http'}://{self.host}/"


class Block(_Model):
    technique: str
    host: str
    to: str | None = None
    rate: str | None = None

    @field_validator("host")
    @classmethod
    def _check_host(cls, value: str) -> str:
        return _hostname(value)

    @field_validator("technique")
    @classmethod
    def _check_technique(cls, value: str) -> str:
        if value not in TECHNIQUES:
            raise ValueError(f"unknown technique {value!r}; known: {', '.join(sorted(TECHNIQUES))}")
        return value

    @field_validator("to")
    @classmethod
    def _check_to(cls, value: str | None) -> str | None:
        return None if value is None else str(ipaddress.IPv4Address(value))

    @field_validator("rate")
    @classmethod
    def _check_rate(cls, value: str | None) -> str | None:
        if value is not None:
            rate_bytes_per_second(value)  # ValueError names the problem
        return value


class Isp(_Model):
    name: str = Field(min_length=1, max_length=80)
    asn: Annotated[int, Field(ge=1, le=4294967295)]
    cc: Annotated[str, Field(pattern=r"^[A-Z]{2}$")]
    probes: Annotated[int, Field(ge=1, le=200)] = 1
    block: list[Block] = []


class Control(_Model):
    name: str = "Lab control"
    asn: Annotated[int, Field(ge=1, le=4294967295)] = 64496
    cc: Annotated[str, Field(pattern=r"^[A-Z]{2}$")] = "ZZ"


class Scenario(_Model):
    targets: str | None = None
    site: list[Site] = []
    isp: list[Isp] = Field(min_length=1, max_length=250)
    control: Control = Control()
    source: str = ""  # the file it came from, for messages
    #: rows of the targets list the lab cannot host, each with its file, line and why (not TOML)
    _skipped: list[str] = PrivateAttr(default_factory=list)

    @property
    def skipped(self) -> list[str]:
        return self._skipped


def _where(path: Path, loc: tuple[int | str, ...], raw: dict[str, Any]) -> str:
    parts: list[str] = []
    node: Any = raw
    for item in loc:
        if isinstance(item, int):
            entry = node[item] if isinstance(node, list) and item < len(node) else None
            label = entry.get("host") or entry.get("name") if isinstance(entry, dict) else None
            parts[-1] += f"[{item}]" + (f" ({label})" if label else "")
            node = entry
        else:
            parts.append(str(item))
            node = node.get(item) if isinstance(node, dict) else None
    return f"{path}: " + ".".join(parts) if parts else str(path)


def _validation_error(path: Path, exc: ValidationError, raw: dict[str, Any]) -> UserError:
    err = exc.errors()[0]
    loc = tuple(err["loc"])
    if err["type"] == "extra_forbidden":
        return UserError(
            f"unknown key {loc[-1]!r}",
            where=_where(path, loc[:-1], raw) or str(path),
            fix="see docs/lab.md for the keys a scenario may use",
        )
    if err["type"] == "missing":
        return UserError(
            f"missing key {loc[-1]!r}",
            where=_where(path, loc[:-1], raw) or str(path),
            fix="see docs/lab.md for the keys a scenario must have (at least one [[isp]])",
        )
    msg = err["msg"].removeprefix("Value error, ")
    return UserError(msg, where=_where(path, loc, raw), fix="see docs/lab.md for the scenario format")


def _check_blocks(path: Path, scenario: Scenario, sites: list[Site]) -> None:
    hosts = {s.host for s in sites}
    fixed = {s.ip for s in sites if s.ip}
    for i, isp in enumerate(scenario.isp):
        layers: dict[tuple[str, str], int] = {}
        for j, block in enumerate(isp.block):
            where = f"{path}: isp[{i}] ({isp.name}).block[{j}]"
            if block.host not in hosts:
                raise UserError(
                    f"host {block.host!r} is not a site of this scenario",
                    where=where + ".host",
                    fix="add a [[site]] with that host or list it in the targets file",
                )
            technique = TECHNIQUES[block.technique]
            for key in ("to", "rate"):
                if getattr(block, key) is not None and key not in technique.params:
                    raise UserError(
                        f"technique {block.technique!r} takes no {key!r}", where=where + "." + key
                    )
            for key in technique.required:
                if getattr(block, key) is None:
                    raise UserError(f"technique {block.technique!r} needs {key!r}", where=where)
            if block.to is not None:
                _check_to(block.technique, block.to, fixed, where + ".to")
            # two techniques of one layer (dns-*, tcp-*, tls-*, http-*) for one host contradict each
            # other: only one rule could apply, silently
            layer = block.technique.split("-")[0]
            earlier = layers.setdefault((layer, block.host), j)
            if earlier != j:
                raise UserError(
                    f"{block.host!r} already has {isp.block[earlier].technique!r} (block[{earlier}]); "
                    f"one {layer} technique per host and ISP",
                    where=where,
                    fix="keep one of them, or put the other in another [[isp]]",
                )


def _check_to(technique: str, to: str, fixed: set[str], where: str) -> None:
    """``to`` must be somewhere the lab's clients reach (dns-hijack) or never reach (dns-bogon)."""
    addr = ipaddress.IPv4Address(to)
    routed = to in fixed or to == BLOCKPAGE or any(addr in net for net in _POOLS)
    lab_own = addr in _LAB_NET
    if technique == "dns-hijack" and (lab_own or not routed):
        what = (
            "one of the lab's own addresses (links, ISPs, services)"
            if lab_own
            else "outside the lab's internet"
        )
        raise UserError(
            f"{to} is {what}: no site or blockpage answers there",
            where=where,
            fix=f"leave 'to' out (the blockpage server), or use a site's address or one of {', '.join(SITE_POOLS)}; "
            "for an answer that leads nowhere use dns-bogon",
        )
    if technique == "dns-bogon" and (lab_own or routed or addr.is_global):
        raise UserError(
            f"{to} is not a bogon the lab leaves unrouted",
            where=where,
            fix="use a private, loopback or unspecified address, e.g. 10.10.34.35 (the default) or 127.0.0.1",
        )


def _check_redirects(path: Path, sites: list[Site]) -> None:
    """Each redirect_to leads to a site of this scenario, on the port the lab serves."""
    hosts = {s.host for s in sites}
    for i, site in enumerate(sites):
        if site.redirect_to is None:
            continue
        where = f"{path}: site[{i}] ({site.host}).redirect_to"
        try:
            target = urljoin(site.url, site.redirect_to)  # a relative Location is allowed, as on the web
        except ValueError:
            target = site.redirect_to  # split_url names the problem
        parts, problem = split_url(target)
        if parts is None:
            raise UserError(
                problem or "not a URL", where=where, fix='e.g. redirect_to = "https://other.example/"'
            )
        host = (parts.hostname or "").rstrip(".")
        if host not in hosts:
            raise UserError(
                f"{site.redirect_to!r} leads to {host!r}, which is not a site of this scenario",
                where=where,
                fix="add a [[site]] with that host or list it in the targets file",
            )
        if parts.port not in (None, 80 if parts.scheme == "http" else 443):
            raise UserError(
                f"{site.redirect_to!r} names port {parts.port}; the lab serves http on 80 and https on 443",
                where=where,
            )


def _target_host(target: Target) -> tuple[str | None, str]:
    """The site host of a test-list row, or None and why the lab cannot host it (an IP-literal
    URL, a name that is not a host name such as one with '_'), naming the list's file and line."""
    where = f"{target.source}:{target.line}"
    if is_ip_literal(target.hostname):
        return None, f"{where}: {target.url!r}: the lab cannot host a site at an IP-literal URL"
    try:
        return _hostname(target.hostname), ""
    except ValueError as exc:
        return None, f"{where}: {target.url!r}: {exc}"


def _merge_targets(path: Path, scenario: Scenario) -> tuple[list[Site], list[str]]:
    """The scenario's sites and the targets list's, and why rows of the list were skipped: a real
    list has rows the lab cannot host (https://1.1.1.1/ in the global list), and those must not
    stop every other site from being measured."""
    sites = {s.host: s for s in scenario.site}
    if len(sites) != len(scenario.site):
        dup = next(h for h in sites if [s.host for s in scenario.site].count(h) > 1)
        raise UserError(f"site {dup!r} is listed twice", where=f"{path}: site")
    if scenario.targets is None:
        return list(sites.values()), []
    listed: dict[str, bool] = {}  # host -> https; bücher.example and xn--bcher-kva.example are one
    skipped: list[str] = []
    for target in read_testlist(path.parent / scenario.targets):
        host, why = _target_host(target)
        if host is None:
            skipped.append(why)
            continue
        # a host listed with http and with https gets https
        listed[host] = listed.get(host, False) or is_https(target.url)
    merged = dict(sites)
    for host, https in listed.items():
        merged.setdefault(host, Site(host=host, https=https))
    return list(merged.values()), skipped


def load_scenario(path: Path) -> Scenario:
    """Read and validate a scenario; sites from the ``targets`` list are merged into ``site``."""
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise UserError("no such file", where=str(path), fix="check the path of the scenario") from None
    except UnicodeDecodeError as exc:
        raise UserError(f"not UTF-8 text ({exc.reason})", where=str(path), fix="save it as UTF-8") from None
    except OSError as exc:
        raise UserError(f"cannot read: {exc.strerror}", where=str(path)) from None
    except tomllib.TOMLDecodeError as exc:
        raise UserError(f"not valid TOML: {exc}", where=str(path)) from None
    try:
        scenario = Scenario.model_validate(raw)
    except ValidationError as exc:
        raise _validation_error(path, exc, raw) from None
    sites, skipped = _merge_targets(path, scenario)
    names = [isp.name for isp in scenario.isp]
    if len(set(names)) != len(names):
        raise UserError("two ISPs have the same name", where=f"{path}: isp", fix="give each ISP its own name")
    _check_blocks(path, scenario, sites)
    _check_redirects(path, sites)
    loaded = scenario.model_copy(update={"site": sites, "source": str(path)})
    loaded._skipped = skipped
    return loaded
