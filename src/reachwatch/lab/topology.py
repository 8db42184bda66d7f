"""Bring a lab up from a scenario, and take it down again.

``up`` validates everything first, records what it is about to create in ``DIR/lab.json``
(so ``down`` can always undo it), builds namespaces and links with batched ``ip`` commands,
loads the router's and the internet's rules, then starts the servers and waits until each
reports ready. ``down`` kills the recorded processes, whatever else runs in the namespaces,
and deletes the namespaces; it is safe to run twice.
"""

from __future__ import annotations

import csv
import json
import shutil
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from reachwatch.errors import UserError
from reachwatch.lab import addressing as a
from reachwatch.lab import netns, rules
from reachwatch.lab.ca import write_pki
from reachwatch.lab.collector import write_mmdb
from reachwatch.lab.control import start_control
from reachwatch.lab.scenario import Scenario, load_scenario
from reachwatch.lab.servers.pages import PAGE_SIZE
from reachwatch.lab.state import LabState, Process, Vantage, by_prefix, load, registered
from reachwatch.lab.techniques import IspRules, rate_bytes_per_second, throttle_burst
from reachwatch.probe.config import BODY_LIMIT, Timeouts
from reachwatch.testlists import HEADER


def _is_up(state: LabState) -> bool:
    return bool(set(state.namespaces) & netns.list_netns())


def _check_free(out: Path, layout: a.Layout) -> None:
    for state in (load(out), by_prefix(layout.prefix)):
        if state is not None and _is_up(state):
            raise UserError(
                f"a lab with prefix {state.prefix!r} is already up (state in {state.out})",
                fix=f"run `reachwatch lab down --out {state.out}` or pick another --prefix",
            )
    taken = set(layout.namespaces) & netns.list_netns()
    if taken:
        raise UserError(
            f"namespaces {', '.join(sorted(taken))} already exist",
            fix="pick another --prefix or run `reachwatch lab down --all`",
        )


MAX_THROTTLED_PAGE = 4 * 1024 * 1024


def throttled_page_sizes(scenario: Scenario) -> dict[str, int]:
    """Pages of throttled sites are big enough to take ~30 s at the throttled rate.

    Throttling shows on bulk transfers: a 6 KB page at 16 kbit/s still loads within a probe's
    timeout, and then neither OONI nor we could tell it from a slow link. The policer's burst
    passes at once, so 30 s worth comes on top of it: at 1kbit a page of 30 s worth (3,750
    bytes, so the 6 KB minimum) fitted in the 6,000-byte burst and loaded in a second or two.
    """
    sizes: dict[str, int] = {}
    for isp in scenario.isp:
        for block in isp.block:
            if block.technique == "throttle" and block.rate:
                bps = rate_bytes_per_second(block.rate)
                size = min(max(throttle_burst(bps) + bps * 30, PAGE_SIZE), MAX_THROTTLED_PAGE)
                sizes[block.host] = max(size, sizes.get(block.host, 0))
    return sizes


def _write_files(out: Path, scenario: Scenario, layout: a.Layout, isp_rules: list[IspRules]) -> None:
    pki = out / "pki"
    shutil.rmtree(pki, ignore_errors=True)
    shutil.copy(write_pki(pki), out / "ca.pem")
    with (out / "targets.csv").open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(HEADER)
        writer.writerows([s.url, "MISC", "Miscellaneous", "", "reachwatch-lab", ""] for s in scenario.site)
    sites = {s.host: {**s.model_dump(exclude_none=True), "ip": layout.sites[s.host]} for s in scenario.site}
    for host, size in throttled_page_sizes(scenario).items():
        sites[host]["page_size"] = size
    isps = [
        {"name": isp.name, "asn": isp.asn, "cc": isp.cc, "ns": addr.ns, "ip": addr.ip, "net": addr.net,
         "probes": [{"ns": addr.ns, "ip": addr.ip}, *({"ns": p.ns, "ip": p.ip} for p in addr.extra_probes())],
         "blocks": [b.model_dump(exclude_none=True) for b in isp.block]}
        for isp, addr in zip(scenario.isp, layout.isps, strict=True)
    ]  # fmt: skip
    resolved = {
        "scenario": scenario.source,
        "prefix": layout.prefix,
        "resolver": a.RESOLVER,
        "blockpage": a.BLOCKPAGE,
        "control": {**scenario.control.model_dump(), "ns": layout.control_ns, "ip": a.CONTROL},
        "sites": sites,
        "isps": isps,
    }
    (out / "scenario.json").write_text(json.dumps(resolved, indent=2))
    internet = {"resolver": a.RESOLVER, "blockpage": a.BLOCKPAGE, "pki": str(pki.resolve()), "sites": sites}
    router: dict[str, Any] = {"censor": a.CENSOR, "upstream": a.RESOLVER, "isps": []}
    for addr, r in zip(layout.isps, isp_rules, strict=True):
        router["isps"].append(
            {"resolver_port": addr.resolver_port, "proxy_port": addr.proxy_port, "dns": r.dns,
             "proxy_hosts": sorted(r.proxy_hosts)}
        )  # fmt: skip
    write_mmdb(out, scenario, layout)
    (out / "internet.json").write_text(json.dumps(internet))
    (out / "router.json").write_text(json.dumps(router))


def _build_network(scenario: Scenario, layout: a.Layout, isp_rules: list[IspRules]) -> None:
    netns.ip_batch([f"netns add {ns}" for ns in layout.namespaces])
    netns.ip_batch(rules.links(layout))
    batches = [
        (layout.router_ns, rules.router_batch(layout)),
        (layout.internet_ns, rules.internet_batch(layout)),
    ]
    batches += [(layout.control_ns, rules.control_batch(layout))]
    batches += [(isp.ns, rules.isp_batch(layout, isp)) for isp in layout.isps]
    batches += [(p.ns, rules.probe_batch(layout, isp, p)) for isp in layout.isps for p in isp.extra_probes()]
    with ThreadPoolExecutor(max_workers=8) as pool:
        list(pool.map(lambda job: netns.ip_batch(job[1], ns=job[0]), batches))
    for ns in (layout.router_ns, layout.internet_ns):
        netns.sysctl(ns, net__ipv4__ip_forward="1")
    for ns in [layout.control_ns, *(isp.ns for isp in layout.isps)]:
        netns.write_resolv_conf(ns, a.RESOLVER)
    for p in (p for isp in layout.isps for p in isp.extra_probes()):
        netns.write_resolv_conf(p.ns, a.RESOLVER)  # the ISP's resolver, as its subscribers get it
    down = [layout.sites[s.host] for s in scenario.site if s.down]
    netns.nft_load(rules.internet_nft(down), ns=layout.internet_ns)
    netns.nft_load(rules.router_nft(layout, isp_rules), ns=layout.router_ns)
    netns.iptables_load(rules.router_iptables(isp_rules), ns=layout.router_ns)


def _start_servers(out: Path, state: LabState, layout: a.Layout) -> None:
    logs = out / "logs"
    shutil.rmtree(logs, ignore_errors=True)
    logs.mkdir()
    pending = []
    for role, ns in (("internet", layout.internet_ns), ("router", layout.router_ns)):
        argv = [sys.executable, "-m", "reachwatch.lab.servers", role, str(out / f"{role}.json")]
        started, fd = netns.spawn(role, ns, argv, logs / f"{role}.log")
        state.processes.append(Process(name=role, ns=ns, pid=started.pid))
        pending.append((started, fd))
    state.save()
    for started, fd in pending:
        netns.wait_ready(started, fd)


#: How many skipped rows of a targets list a warning names (then only how many more)
SKIPPED_NAMED = 10


def skipped_targets(skipped: list[str]) -> list[str]:
    """The warnings for rows of the targets list the lab cannot host."""
    if not skipped:
        return []
    more = len(skipped) - SKIPPED_NAMED
    return [
        f"targets: {len(skipped)} row(s) skipped, the lab cannot host them",
        *(f"  {why}" for why in skipped[:SKIPPED_NAMED]),
        *([f"  ... and {more} more"] if more > 0 else []),
    ]


def unseen_throttles(scenario: Scenario, http_timeout: float = Timeouts().http) -> list[str]:
    """Warnings for throttles too fast for a probe to see: it reads at most BODY_LIMIT of a page
    within its HTTP timeout, so at a rate that delivers that much in time (1mbit: 512 KiB in
    ~4 s) the page simply loads. No client, ours or OONI's, can tell such a link from a slow one."""
    sizes = throttled_page_sizes(scenario)
    out = []
    for isp in scenario.isp:
        for block in isp.block:
            if block.technique != "throttle" or not block.rate:
                continue
            bps = rate_bytes_per_second(block.rate)
            read = min(sizes[block.host], BODY_LIMIT)
            if throttle_burst(bps) + bps * http_timeout >= read:
                out.append(
                    f"{isp.name}: throttle {block.host} at {block.rate}: a probe reads at most {read} bytes "
                    f"of the page, which arrive within its {http_timeout:g} s HTTP timeout, so it sees "
                    f"the page, not throttling (at most {max_seen_rate(http_timeout)} shows)"
                )
    return out


def max_seen_rate(http_timeout: float = Timeouts().http) -> str:
    """The fastest throttle (in tc's kbit) whose page a probe cannot finish reading in time."""
    bps = int((BODY_LIMIT - 1) / (http_timeout + 1))  # burst = bps above 6000 bytes/s
    return f"{bps * 8 // 1000}kbit"


def up(scenario_path: Path, out: Path, *, prefix: str = "rw", control: bool = True) -> LabState:
    """Build the lab of ``scenario_path``; state and files go to ``out``."""
    netns.require_root()
    t0 = time.monotonic()
    scenario = load_scenario(scenario_path)
    layout = a.layout(
        prefix, [isp.name for isp in scenario.isp], {s.host: s.ip for s in scenario.site},
        [isp.probes for isp in scenario.isp],
    )  # fmt: skip
    isp_rules = rules.isp_rules(scenario, layout)
    out.mkdir(parents=True, exist_ok=True)
    out = out.resolve()
    _check_free(out, layout)
    vantages = []
    for s, i in zip(scenario.isp, layout.isps, strict=True):
        vantages.append(Vantage(ns=i.ns, name=s.name, asn=s.asn, cc=s.cc, ip=i.ip))
        vantages += [Vantage(ns=p.ns, name=s.name, asn=s.asn, cc=s.cc, ip=p.ip, probe=p.number)
                     for p in i.extra_probes()]  # fmt: skip
    c = scenario.control
    vantages.append(
        Vantage(ns=layout.control_ns, name=c.name, asn=c.asn, cc=c.cc, ip=a.LINK_CONTROL[1], isp=False)
    )
    state = LabState(
        prefix=layout.prefix, out=str(out), scenario=str(scenario_path.resolve()),
        namespaces=layout.namespaces, vantages=vantages, resolver=a.RESOLVER,
    )  # fmt: skip
    state.warnings += skipped_targets(scenario.skipped) + unseen_throttles(scenario)
    _write_files(out, scenario, layout, isp_rules)
    state.save()
    try:
        _build_network(scenario, layout, isp_rules)
        _start_servers(out, state, layout)
        if control:
            start_control(state, layout.control_ns, out)
    except BaseException:
        teardown(state)
        raise
    state.up_seconds = round(time.monotonic() - t0, 3)
    state.save()
    return state


def teardown(state: LabState) -> None:
    """Kill the lab's processes, delete its namespaces and forget it; harmless if already gone."""
    netns.kill([p.pid for p in state.processes if netns.alive(p.pid) and _in_lab(p)])
    existing = netns.list_netns()
    with ThreadPoolExecutor(max_workers=8) as pool:
        list(pool.map(netns.delete_ns, [ns for ns in state.namespaces if ns in existing]))
    for ns in state.namespaces:
        shutil.rmtree(netns.NETNS_ETC / ns, ignore_errors=True)
    state.forget()


def _in_lab(process: Process) -> bool:
    """Guard against a recycled PID: the process must still run in its namespace."""
    return process.ns in netns.list_netns() and process.pid in netns.ns_pids(process.ns)


def down(out: Path) -> LabState | None:
    netns.require_root()
    state = load(out.resolve())
    if state is not None:
        teardown(state)
    return state


def down_all() -> list[LabState]:
    netns.require_root()
    labs = registered()
    for state in labs:
        teardown(state)
    return labs
