"""What the kernel is told: ``ip -batch`` lines per namespace, nft rulesets, iptables and tc lines.

Pure functions from a :class:`~reachwatch.lab.addressing.Layout` and the ISPs'
:class:`~reachwatch.lab.techniques.IspRules`; :mod:`reachwatch.lab.topology` loads them.
"""

from __future__ import annotations

from reachwatch.lab import addressing as a
from reachwatch.lab.scenario import Scenario
from reachwatch.lab.techniques import TECHNIQUES, IspRules


def isp_rules(scenario: Scenario, layout: a.Layout) -> list[IspRules]:
    out = []
    for isp, addr in zip(scenario.isp, layout.isps, strict=True):
        rules = IspRules(iface=addr.router_iface, blockpage=a.BLOCKPAGE)
        for entry in isp.block:
            TECHNIQUES[entry.technique].apply(rules, entry, layout.sites[entry.host])
        out.append(rules)
    return out


def links(layout: a.Layout) -> list[str]:
    """Veth pairs created straight into their namespaces (no name ever lives in the root one)."""
    pairs = [(layout.router_ns, i.router_iface, i.ns, i.iface) for i in layout.isps]
    pairs += [(i.ns, p.port, p.ns, p.iface) for i in layout.isps for p in i.extra_probes()]
    pairs += [
        (layout.router_ns, "net", layout.internet_ns, "rtr"),
        (layout.internet_ns, "ctl", layout.control_ns, "net"),
    ]
    return [
        f"link add name {n1} netns {ns1} type veth peer name {n2} netns {ns2}" for ns1, n1, ns2, n2 in pairs
    ]


def _iface(name: str, cidr: str) -> list[str]:
    return [f"addr add {cidr} dev {name}", f"link set {name} up"]


def _routes(prefixes: list[str], via: str) -> list[str]:
    return [f"route add {p} via {via}" for p in prefixes]


def isp_batch(layout: a.Layout, isp: a.IspAddr) -> list[str]:
    """The ISP namespace is probe 1; with more probes its router link and theirs share a bridge."""
    if not isp.bridged:
        lines = _iface(isp.iface, f"{isp.ip}/24")
    else:
        ports = [isp.iface, *(p.port for p in isp.extra_probes())]
        lines = ["link add name lan type bridge stp_state 0 forward_delay 0"]
        lines += [f"link set {port} master lan" for port in ports] + [f"link set {port} up" for port in ports]
        lines += _iface("lan", f"{isp.ip}/24")
    return ["link set lo up", *lines, *_routes(layout.lab_prefixes(), isp.router_ip)]


def probe_batch(layout: a.Layout, isp: a.IspAddr, probe: a.ProbeAddr) -> list[str]:
    """A probe's own namespace: one address of the ISP's /24, on the ISP's segment, same routes."""
    return [
        "link set lo up",
        *_iface(probe.iface, f"{probe.ip}/24"),
        *_routes(layout.lab_prefixes(), isp.router_ip),
    ]


def router_batch(layout: a.Layout) -> list[str]:
    lines = ["link set lo up", f"addr add {a.CENSOR}/32 dev lo", *_iface("net", f"{a.LINK_ROUTER[0]}/30")]
    for isp in layout.isps:
        lines += _iface(isp.router_iface, f"{isp.router_ip}/24")
    # Packet-sized segments through the censor: with GRO/GSO a whole page crosses the router as one
    # 64 KB super-packet, which a byte-rate policer can only drop whole, so throttling would break.
    lines += [f"link set dev {dev} gso_max_size 1500 gro_max_size 1500"
              for dev in ("net", *(isp.router_iface for isp in layout.isps))]  # fmt: skip
    return lines + _routes(layout.lab_prefixes(), a.LINK_ROUTER[1])


def internet_batch(layout: a.Layout) -> list[str]:
    addresses = dict.fromkeys([a.RESOLVER, a.BLOCKPAGE, *layout.sites.values()])
    lines = ["link set lo up", *(f"addr add {ip}/32 dev lo" for ip in addresses)]
    lines += _iface("rtr", f"{a.LINK_ROUTER[1]}/30") + _iface("ctl", f"{a.LINK_CONTROL[0]}/30")
    lines += ["link set dev rtr gso_max_size 1500 gro_max_size 1500"]  # see router_batch
    lines += _routes([a.ISP_NET, f"{a.CENSOR}/32"], a.LINK_ROUTER[0])
    return lines + _routes([a.CONTROL_NET], a.LINK_CONTROL[1])


def control_batch(layout: a.Layout) -> list[str]:
    lines = ["link set lo up", *(f"addr add {ip}/32 dev lo" for ip in (a.CONTROL, a.COLLECTOR))]
    lines += _iface("net", f"{a.LINK_CONTROL[1]}/30")
    return lines + _routes([*layout.lab_prefixes(), a.ISP_NET], a.LINK_CONTROL[0])  # ISPs ask it too


def router_nft(layout: a.Layout, rules: list[IspRules]) -> str:
    nat, forward, output = [], [], []
    for isp, r in zip(layout.isps, rules, strict=True):
        for proto in ("udp", "tcp"):
            nat.append(
                f'iifname "{r.iface}" ip daddr {a.RESOLVER} {proto} dport 53 '
                f"dnat to {a.CENSOR}:{isp.resolver_port}"
            )
        if r.proxied:
            addrs = ", ".join(sorted(r.proxied))
            nat.append(
                f'iifname "{r.iface}" ip daddr {{ {addrs} }} tcp dport 80 redirect to :{isp.proxy_port}'
            )
            output += r.nft_output  # only a proxied connection leaves the router on this path
        forward += r.nft_forward
    forward = [*collector_accept("nft"), *forward] if forward else forward
    return (
        "table ip reachwatch {\n"
        "  chain prerouting {\n    type nat hook prerouting priority dstnat; policy accept;\n"
        + "".join(f"    {line}\n" for line in nat)
        + "  }\n  chain forward {\n    type filter hook forward priority filter; policy accept;\n"
        + "".join(f"    {line}\n" for line in forward)
        + "  }\n  chain output {\n    type filter hook output priority filter; policy accept;\n"
        + "".join(f"    {line}\n" for line in output)
        + "  }\n}\n"
    )


def collector_accept(kind: str) -> list[str]:
    """The censor never blocks the way to the collector: its traffic is accepted before any rule."""
    where = f"{a.COLLECTOR} tcp"
    if kind == "nft":
        return [
            f"ip daddr {where} dport {a.COLLECTOR_PORT} accept",
            f"ip saddr {where} sport {a.COLLECTOR_PORT} accept",
        ]
    return [
        f"-A FORWARD -d {a.COLLECTOR}/32 -p tcp --dport {a.COLLECTOR_PORT} -j ACCEPT",
        f"-A FORWARD -s {a.COLLECTOR}/32 -p tcp --sport {a.COLLECTOR_PORT} -j ACCEPT",
    ]


def router_iptables(rules: list[IspRules]) -> list[str]:
    lines = [line for r in rules for line in r.iptables_forward]
    # the proxy's side (INPUT) only where an ISP has a proxy: nothing else reaches it on port 80
    lines += [line for r in rules if r.proxied for line in r.iptables_input]
    return [*collector_accept("iptables"), *lines] if lines else lines


def internet_nft(down: list[str]) -> str:
    """The blockpage address's :80/:443 go to the blockpage listeners; sites that are down refuse TCP."""
    redirects = "".join(
        f"    ip daddr {a.BLOCKPAGE} tcp dport {port} redirect to :{to}\n"
        for port, to in zip((80, 443), a.BLOCKPAGE_PORTS, strict=True)
    )
    text = "table inet reachwatch {\n"
    for chain, hook in (("prerouting", "prerouting"), ("output", "output")):
        text += (
            f"  chain {chain} {{\n    type nat hook {hook} priority -100; policy accept;\n{redirects}  }}\n"
        )
    if down:
        addrs = ", ".join(sorted(set(down)))
        text += (
            "  chain input {\n    type filter hook input priority filter; policy accept;\n"
            f"    ip daddr {{ {addrs} }} meta l4proto tcp reject with tcp reset\n  }}\n"
        )
    return text + "}\n"
