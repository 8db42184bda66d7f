import io

from rich.console import Console

from reachwatch.report.isp_table import render_cells

CELLS = [
    {"domain": "party.example", "probe_asn": "AS64502", "probe_network_name": "Clean Net", "state": "ok",
     "dominant_technique": None, "blocked_share": 0.0, "blocked_low": 0.0, "blocked_high": 0.56,
     "n_probes": 3, "n_measurements": 3},
    {"domain": "party.example", "probe_asn": "AS64501", "probe_network_name": "PakNet", "state": "blocked",
     "dominant_technique": "dns-hijack", "blocked_share": 1.0, "blocked_low": 0.44, "blocked_high": 1.0,
     "n_probes": 3, "n_measurements": 3},
]  # fmt: skip


def test_rows_are_grouped_by_target_and_ordered_by_asn() -> None:
    out = io.StringIO()
    render_cells(CELLS, Console(file=out, width=200), title="t")
    text = out.getvalue()
    assert text.index("AS64501") < text.index("AS64502")
    assert text.count("party.example") == 1
    assert "dns-hijack" in text and "100% (44%-100%)" in text and "0% (0%-56%)" in text
