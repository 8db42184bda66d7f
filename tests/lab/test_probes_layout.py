"""Several probes per ISP: names, addresses and the lab's attribution database (no root needed)."""

from __future__ import annotations

from pathlib import Path

from reachwatch.collector.attribution import Attributor
from reachwatch.lab import addressing as a
from reachwatch.lab import rules
from reachwatch.lab.collector import write_mmdb
from reachwatch.lab.scenario import Control, Isp, Scenario


def test_names_fit_and_addresses_are_distinct() -> None:
    layout = a.layout("abcde", [f"ISP {i}" for i in range(250)], {}, [200] * 250)
    names = layout.namespaces
    assert len(names) == len(set(names)) == 3 + 250 * 200
    assert max(len(n) for n in names) <= 15
    last = layout.isps[-1]
    probes = last.extra_probes()
    assert probes[0].ns == "abcde-i250p2" and probes[0].ip == "100.64.250.10"
    assert probes[-1].ip == "100.64.250.208" and len({p.ip for p in probes} | {last.ip}) == 200
    assert all(len(p.port) <= 15 for p in probes)


def test_bridge_only_with_several_probes() -> None:
    layout = a.layout("rw", ["one", "three"], {}, [1, 3])
    single, multi = layout.isps
    assert not any("bridge" in line for line in rules.isp_batch(layout, single))
    batch = rules.isp_batch(layout, multi)
    assert "link set p3 master lan" in batch and "addr add 100.64.2.2/24 dev lan" in batch
    assert rules.probe_batch(layout, multi, multi.extra_probes()[0])[1] == "addr add 100.64.2.10/24 dev isp"
    links = rules.links(layout)
    assert "link add name p2 netns rw-isp2 type veth peer name isp netns rw-i2p2" in links


def test_lab_mmdb_attributes_every_probe(tmp_path: Path) -> None:
    scenario = Scenario(
        isp=[Isp(name="A", asn=64501, cc="PK", probes=3), Isp(name="B", asn=64502, cc="IR")],
        control=Control(name="C", asn=64496, cc="DE"),
    )
    layout = a.layout("rw", ["A", "B"], {}, [3, 1])
    attributor = Attributor(write_mmdb(tmp_path, scenario, layout))
    try:
        for ip in ("100.64.1.2", "100.64.1.10", "100.64.1.11"):
            assert (attributor.lookup(ip).asn, attributor.lookup(ip).name) == ("AS64501", "A")
        assert attributor.lookup("100.64.2.2").cc == "IR"
        assert attributor.lookup(a.COLLECTOR).asn == "AS64496"
        assert attributor.lookup(a.LINK_CONTROL[1]).cc == "DE"
        assert not attributor.lookup("100.64.3.2").attributed
    finally:
        attributor.close()
