"""Probe throughput in the lab: a 2,000+ site scenario, one ISP dropping every 10th host, one clean.

Builds a scenario from the Citizen Lab global and pk lists (/work/shared/data/testlists), brings
the lab up (prefix ``rwbn``), and measures, one after the other so each has both cores:

1. ``bare (cold)``: a bare asyncio+uvloop loop in the clean ISP: resolve the host through the
   system resolver (``socket.getaddrinfo`` in as many threads as the probe uses), TCP connect, TLS with SNI for https sites, GET /, read
   the body. It is the first client, so the web server issues each host's certificate during it.
2. ``clean``: ``reachwatch measure`` in the clean ISP, as ``lab run`` starts it but with the
   probe's own default ``--workers`` (one measuring process per core, or ``--workers N``): it runs
   alone here, where ``lab run`` shares the cores out among the vantages measuring at once.
3. ``clean, 1 worker``: the same in one process (one event loop).
4. ``clean, no helper``: as 2, with ``--control`` pointing at a closed port (probe alone: no
   control request, and verdicts without a control).
5. ``helper elsewhere``: as 2, with ``--control`` pointing at a replay of the helper's answers
   recorded in run 2 (a small server in the control vantage answering each URL's request with the
   recorded JSON). The probe does all of its work, the request, the answer and the verdict against
   it included, while the helper's own DNS, TCP, TLS and GET, and the sites' serving of them, are
   gone from these cores: the probe as deployed, with the helper on a machine of its own outside
   the censor (as OONI's test helpers are). The replay server's CPU is printed as the helper's.
6. ``drop10``: ``reachwatch measure`` in the ISP that drops TCP to every 10th host.
7. ``bare``: the bare loop again (certificates cached): the reference rate.
8. ``bare, no DNS``: the bare loop with the addresses read from DIR/scenario.json, which no real
   client could do (this benchmark's reference until 2026-11-29; printed for comparison).

For each: wall time (process start to exit, interpreter start-up included), measurements/s, the
process's CPU seconds (``os.wait4``: its worker processes included) per measurement, and the CPU the control helper, the
internet server (sites, real resolver) and the router (censoring resolvers) spent meanwhile.
Wall figures move with whatever else the machine runs (the load average is printed); CPU per
measurement is the steadier figure. The lab is always torn down. Print only.

    .venv/bin/python benchmarks/probe_throughput.py [--parallel 100] [--workers N] [--limit N] [--profile DIR]

``--profile DIR`` samples the probe, the control helper and the internet server with py-spy
(``pip install py-spy`` into .venv) during the ``clean`` run and prints the hottest functions;
the sampling costs CPU, so figures of such a run are not the benchmark's.
"""

from __future__ import annotations

import argparse
import collections
import csv
import json
import os
import pstats
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from reachwatch.errors import UserError
from reachwatch.lab import addressing, netns, topology
from reachwatch.lab.run import Timeouts, measure_argv
from reachwatch.lab.scenario import Site
from reachwatch.lab.state import LabState, Vantage
from reachwatch.testlists import HEADER, read_testlist

LISTS = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "testlists"
PREFIX = "rwbn"
TICK = os.sysconf("SC_CLK_TCK")

BARE = r"""
import asyncio, json, socket, ssl, sys, time, uvloop
from concurrent.futures import ThreadPoolExecutor

async def main(out, parallel, resolve):
    sites = json.load(open(out + "/scenario.json"))["sites"]
    loop = asyncio.get_running_loop()
    # as many resolver threads as the probe has (libuv's own pool, behind loop.getaddrinfo, has 4)
    loop.set_default_executor(ThreadPoolExecutor(max_workers=min(64, max(4, parallel))))
    ctx = ssl.create_default_context(cafile=out + "/ca.pem")
    ctx.set_alpn_protocols(["http/1.1"])
    todo = iter(sorted(sites.items()))
    ok = 0
    errors = {}

    async def one(host, site):
        https = site.get("https", False)
        port = 443 if https else 80
        ip = site["ip"]
        if resolve:  # through the system resolver, as any client must
            infos = await loop.run_in_executor(None, socket.getaddrinfo, host, port, 0, socket.SOCK_STREAM)
            ip = infos[0][4][0]
        reader, writer = await asyncio.open_connection(
            ip, port, ssl=ctx if https else None,
            server_hostname=host if https else None)
        writer.write(f"GET / HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n".encode())
        head = await reader.readuntil(b"\r\n\r\n")
        length = next((int(l.split(b":")[1]) for l in head.split(b"\r\n")
                       if l.lower().startswith(b"content-length:")), None)
        body = await (reader.readexactly(length) if length is not None else reader.read())
        writer.close()
        if not head.startswith(b"HTTP/1.1 200") or not body:
            raise ValueError(head[:60])
        return 1

    async def worker():
        nonlocal ok
        for host, site in todo:
            try:
                async with asyncio.timeout(10):
                    done = await one(host, site)
                ok += done
            except Exception as exc:
                hosts = errors.setdefault(repr(exc)[:80], [])
                hosts.append(host)

    t0 = time.monotonic()
    await asyncio.gather(*(worker() for _ in range(parallel)))
    # each error with how many hosts had it and the first few of them
    errors = {e: [len(hosts), *hosts[:5]] for e, hosts in errors.items()}
    print(json.dumps({"n": len(sites), "ok": ok, "seconds": time.monotonic() - t0, "errors": errors}))

uvloop.run(main(sys.argv[1], int(sys.argv[2]), sys.argv[3] == "dns"))
"""

# The helper's answers from run ``clean``, replayed: POST / {"http_request": URL, ...} -> the JSON the
# live helper gave for URL (keep-alive HTTP/1.1, Content-Length bodies, as the probe's client sends).
REPLAY = r"""
import asyncio, sys, orjson, uvloop

answers = {}
for line in open(sys.argv[1], "rb"):
    measurement = orjson.loads(line)
    keys = measurement["test_keys"]
    if keys.get("control") is not None:  # the first hop's, whose URL is the input
        answers[measurement["input"]] = orjson.dumps(keys["control"])
    for hop in keys.get("x_controls") or []:  # a redirect's hops
        if hop.get("control") is not None:
            answers[hop["url"]] = orjson.dumps(hop["control"])

class Replay(asyncio.Protocol):
    def connection_made(self, transport):
        self.transport, self.buffer = transport, b""

    def data_received(self, data):
        self.buffer += data
        while (end := self.buffer.find(b"\r\n\r\n")) >= 0:
            head = self.buffer[:end].lower()
            at = head.find(b"content-length:")
            length = int(head[at + 15:].split(b"\r\n", 1)[0]) if at >= 0 else 0
            if len(self.buffer) < end + 4 + length:
                return
            body, self.buffer = self.buffer[end + 4:end + 4 + length], self.buffer[end + 4 + length:]
            answer = answers.get(orjson.loads(body)["http_request"])
            if answer is None:
                self.transport.write(b"HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\n\r\n")
            else:
                self.transport.write(b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n"
                                     b"content-length: %d\r\n\r\n%b" % (len(answer), answer))

async def main():
    server = await asyncio.get_running_loop().create_server(Replay, sys.argv[2], int(sys.argv[3]), backlog=1024)
    print(len(answers), flush=True)
    await server.serve_forever()

uvloop.run(main())
"""

# `python -m reachwatch ARGS` under cProfile, timed by the main thread's CPU clock (not wall time:
# waiting for the network and for the GIL is not the probe's work)
PROFILED_PROBE = r"""
import cProfile, runpy, sys, time
out = sys.argv.pop(1)
sys.argv[0] = "reachwatch"
profiler = cProfile.Profile(time.thread_time)
try:
    profiler.runcall(runpy.run_module, "reachwatch", run_name="__main__")
except SystemExit:
    pass
finally:
    profiler.dump_stats(out)
"""


@dataclass
class Run:
    label: str
    n: int
    ok: int
    wall: float
    cpu: float
    helper_cpu: float
    web_cpu: float
    router_cpu: float
    inner: float | None = None  # the bare loop's own timing (without interpreter start-up)

    @property
    def rate(self) -> float:
        return self.n / self.wall


def combined_targets(path: Path, limit: int | None) -> list[str]:
    """global + pk, one URL per valid, distinct host name; written to ``path``."""
    urls: dict[str, str] = {}
    for name in ("global.csv", "pk.csv"):
        for target in read_testlist(LISTS / name):
            try:
                host = Site(host=target.hostname).host
            except ValueError:
                continue  # an IP literal or a name the lab cannot serve
            urls.setdefault(host, target.url)
    hosts = list(urls)[:limit]
    with path.open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(HEADER)
        writer.writerows([urls[h], "MISC", "Miscellaneous", "", "bench", ""] for h in hosts)
    return hosts


def write_scenario(tmp: Path, hosts: list[str]) -> Path:
    dropped = hosts[9::10]
    blocks = ",\n".join(f'  {{ technique = "tcp-timeout", host = "{h}" }}' for h in dropped)
    text = (
        'targets = "targets.csv"\n\n'
        f'[[isp]]\nname = "drop10"\nasn = 64501\ncc = "PK"\nblock = [\n{blocks}\n]\n\n'
        '[[isp]]\nname = "clean"\nasn = 64502\ncc = "PK"\n'
    )
    path = tmp / "scenario.toml"
    path.write_text(text)
    return path


def cpu_of(pid: int | None) -> float:
    """utime + stime of a running process, in seconds (0 when unknown or gone)."""
    if pid is None:
        return 0.0
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(") ", 1)[1].split()
    except (OSError, IndexError):
        return 0.0
    return (int(fields[11]) + int(fields[12])) / TICK


def pid_of(state: LabState, name: str) -> int | None:
    return next((p.pid for p in state.processes if p.name == name), None)


def run_child(argv: list[str]) -> tuple[float, float, bytes]:
    """Run ``argv``; return wall seconds, its CPU seconds (wait4) and its stdout."""
    with tempfile.TemporaryFile() as out:
        t0 = time.monotonic()
        proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.PIPE)
        assert proc.stderr is not None
        err = proc.stderr.read()
        _, status, usage = os.wait4(proc.pid, 0)  # the child's own CPU time, which Popen.wait drops
        wall = time.monotonic() - t0
        proc.returncode = os.waitstatus_to_exitcode(status)
        if proc.returncode != 0:
            raise RuntimeError(
                f"{argv[:6]}... exited {proc.returncode}: {err.decode(errors='replace')[-2000:]}"
            )
        out.seek(0)
        return wall, usage.ru_utime + usage.ru_stime, out.read()


SERVERS = ("control", "internet", "router")


def servers_cpu(state: LabState, helper: int | None = None) -> list[float]:
    pids = [pid_of(state, name) for name in SERVERS]
    if helper is not None:
        pids[0] = helper
    return [cpu_of(pid) for pid in pids]


def replayed(state: LabState, vantage: Vantage, argv: list[str], label: str, answers: Path) -> Run:
    """``measured`` with the control helper's recorded ``answers`` (a probe's JSONL) replayed."""
    ns = next(p.ns for p in state.processes if p.name == "control")
    address = addressing.CONTROL
    port = str(addressing.COLLECTOR_PORT + 1)  # beside the control helper's and the collector's
    server = subprocess.Popen(netns.in_ns(ns, [sys.executable, "-c", REPLAY, str(answers), address, port]),
                              stdin=subprocess.DEVNULL, stdout=subprocess.PIPE)  # fmt: skip
    try:
        assert server.stdout is not None
        if not server.stdout.readline().strip():
            raise RuntimeError("the replay server did not start")
        argv = [*argv]
        argv[argv.index("--control") + 1] = f"http://{address}:{port}/"
        run = measured(state, vantage, argv, label, helper=server.pid)
    finally:
        server.kill()
        server.wait()
    out = Path(state.out) / f"{vantage.ns}.jsonl"
    missed = sum(1 for line in out.read_text().splitlines() if '"control_failure":null' not in line)
    if missed:
        print(f"{label}: {missed} measurements without a replayed control answer")
    return run


def measured(
    state: LabState, vantage: Vantage, argv: list[str], label: str, helper: int | None = None
) -> Run:
    """Run the probe ``argv`` in ``vantage``; ``helper``: the PID of the control server it uses,
    if not the lab's own helper."""
    before = servers_cpu(state, helper)
    wall, cpu, _ = run_child(netns.in_ns(vantage.ns, argv))
    spent = [b - a for a, b in zip(before, servers_cpu(state, helper), strict=True)]
    lines = (Path(state.out) / f"{vantage.ns}.jsonl").read_text().splitlines()
    ok = sum(1 for line in lines if '"code":200' in line)
    return Run(label, len(lines), ok, wall, cpu, *spent)


def bare(state: LabState, vantage: Vantage, parallel: int, label: str, *, resolve: bool = True) -> Run:
    before = servers_cpu(state)
    argv = [sys.executable, "-c", BARE, state.out, str(parallel), "dns" if resolve else "no-dns"]
    wall, cpu, out = run_child(netns.in_ns(vantage.ns, argv))
    spent = [b - a for a, b in zip(before, servers_cpu(state), strict=True)]
    result = json.loads(out)
    if result["errors"]:
        print(f"{label}: {result['errors']}")
    helper, web, router = spent
    return Run(label, result["n"], result["ok"], wall, cpu, helper, web, router, inner=result["seconds"])


def _py_spy(pid: int, name: str) -> subprocess.Popen[bytes]:
    exe = Path(sys.executable).with_name("py-spy")
    if not exe.exists():
        raise UserError("py-spy is not installed", fix=".venv/bin/pip install py-spy")
    raw = Path(os.environ["RW_BENCH_PROFILE"]) / f"{name}.txt"
    return subprocess.Popen([str(exe), "record", "--pid", str(pid), "--format", "raw", "--rate", "250",
                             "--nonblocking", "-o", str(raw)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip


def hottest(raw: Path, top: int = 15) -> str:
    """Self and inclusive time per function from py-spy's collapsed stacks."""
    own: collections.Counter[str] = collections.Counter()
    incl: collections.Counter[str] = collections.Counter()
    total = 0
    for line in raw.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack.strip():
            continue  # a sample py-spy could not read
        frames = [f.split(" (")[0] + " " + f.rpartition("/")[2].rstrip(")") for f in stack.split(";")]
        n = int(count)
        total += n
        own[frames[-1]] += n
        for frame in set(frames):
            incl[frame] += n
    rows = [f"  {n / total:6.1%} self  {incl[f] / total:6.1%} incl  {f}" for f, n in own.most_common(top)]
    return f"{raw.name}: {total} samples\n" + "\n".join(rows)


def r_cpu(r: Run) -> float:
    return (r.cpu + r.helper_cpu + r.web_cpu + r.router_cpu) / r.n


def report(runs: list[Run]) -> None:
    print("CPU in ms per measurement: the client (probe or bare loop), the control helper, the internet\n"
          "server (sites and the real resolver) and the router (censoring resolvers)")  # fmt: skip
    print(
        f"{'run':<18}{'n':>6}{'ok':>6}{'wall s':>8}{'/s':>6}{'client':>8}{'helper':>8}{'internet':>9}{'router':>8}"
    )
    for r in runs:
        print(f"{r.label:<18}{r.n:>6}{r.ok:>6}{r.wall:>8.2f}{r.rate:>6.0f}{1000 * r.cpu / r.n:>8.2f}"
              f"{1000 * r.helper_cpu / r.n:>8.2f}{1000 * r.web_cpu / r.n:>9.2f}{1000 * r.router_cpu / r.n:>8.2f}")  # fmt: skip
    by = {r.label: r for r in runs}
    ref, clean, alone, away = by["bare"], by["clean"], by["clean, no helper"], by["helper elsewhere"]
    assert ref.inner is not None
    print(
        f"\nbare loop: {ref.rate:.0f}/s ({ref.inner:.2f} s in its loop, {ref.n / ref.inner:.0f}/s without start-up)"
    )
    nodns = by["bare, no DNS"]
    print(
        f"ratio clean/bare (probe + control helper on the same 2 cores): {clean.rate / ref.rate:.2f}"
        f" ({clean.rate / nodns.rate:.2f} of the bare loop without DNS)"
    )
    print(f"ratio clean-no-helper/bare (probe alone, no control):           {alone.rate / ref.rate:.2f}"
          f" ({alone.rate / nodns.rate:.2f} of the bare loop without DNS)")  # fmt: skip
    print(f"ratio helper-elsewhere/bare (the probe as deployed):           {away.rate / ref.rate:.2f}"
          f" ({away.rate / nodns.rate:.2f} of the bare loop without DNS)")  # fmt: skip
    print(f"CPU per measurement, all processes: clean {1000 * r_cpu(clean):.2f} ms, probe alone "
          f"{1000 * r_cpu(alone):.2f} ms, helper elsewhere {1000 * r_cpu(away):.2f} ms, "
          f"bare {1000 * r_cpu(ref):.2f} ms")  # fmt: skip
    drop = by["drop10"]
    print(f"drop10: {drop.wall:.1f} s for {drop.n} ({'meets' if drop.wall <= 60 else 'MISSES'} the 60 s target); "
          f"clean {clean.rate:.0f}/s ({'meets' if clean.rate >= 100 else 'MISSES'} 100/s); "
          f"ratio with the helper elsewhere {'meets' if away.rate / ref.rate >= 0.5 else 'MISSES'} 0.5, "
          f"with the helper on the same cores {'meets' if clean.rate / ref.rate >= 0.5 else 'MISSES'} it")  # fmt: skip


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--parallel", type=int, default=None, help="default: the probe's default")
    parser.add_argument("--limit", type=int, default=None, help="measure only the first N hosts")
    parser.add_argument("--workers", type=int, default=None, help="the probe's --workers (default: its own)")
    parser.add_argument("--profile", type=Path, default=None, help="py-spy the clean run into DIR")
    args = parser.parse_args()
    if os.geteuid() != 0:
        print("skipped: the lab needs root (network namespaces)")
        return 0
    if not (LISTS / "global.csv").exists() or not (LISTS / "pk.csv").exists():
        print(f"skipped: the Citizen Lab lists are not in {LISTS} (global.csv, pk.csv)")
        return 0
    from reachwatch.probe.config import DEFAULT_PARALLEL

    parallel = args.parallel or DEFAULT_PARALLEL
    tmp = Path(tempfile.mkdtemp(prefix="rwbench-"))
    hosts = combined_targets(tmp / "targets.csv", args.limit)
    https = sum(1 for line in (tmp / "targets.csv").read_text().splitlines() if line.startswith("https:"))
    print(f"{len(hosts)} hosts ({https} https), every 10th dropped in drop10; --parallel {parallel}; "
          f"{os.cpu_count()} cores")  # fmt: skip
    print(f"load average {os.getloadavg()[0]:.1f} (other work on these cores skews wall figures)")
    t0 = time.monotonic()
    state = topology.up(write_scenario(tmp, hosts), tmp / "lab", prefix=PREFIX)
    runs: list[Run] = []
    try:
        print(f"lab up in {time.monotonic() - t0:.1f} s")
        drop10, clean = (v for v in state.vantages if v.isp)
        timeouts = Timeouts(parallel=args.parallel)
        runs.append(bare(state, clean, parallel, "bare (cold)"))
        profiles: list[subprocess.Popen[bytes]] | None = None
        if args.profile is not None:
            args.profile.mkdir(parents=True, exist_ok=True)
            os.environ["RW_BENCH_PROFILE"] = str(args.profile.resolve())
            profiles = [_py_spy(pid, name) for name in SERVERS
                        if (pid := pid_of(state, name)) is not None]  # fmt: skip
        workers = ["--workers", str(args.workers)] if args.workers is not None else []
        argv = [*measure_argv(state, clean, timeouts), *workers]
        if args.profile is not None:  # cProfile in the probe: CPU of the event loop's thread, per function
            argv[1:3] = ["-c", PROFILED_PROBE, str(args.profile / "probe.prof")]
            argv += ["--workers", "1"]  # one process, so the profile sees every measurement
        runs.append(measured(state, clean, argv, "clean"))
        recorded = tmp / "clean-answers.jsonl"
        shutil.copyfile(Path(state.out) / f"{clean.ns}.jsonl", recorded)
        for proc in profiles or []:
            proc.send_signal(2)  # py-spy writes its output on SIGINT
            proc.wait(30)
        runs.append(measured(state, clean, [*measure_argv(state, clean, timeouts), "--workers", "1"],
                             "clean, 1 worker"))  # fmt: skip
        argv = [*measure_argv(state, clean, timeouts), *workers]
        argv[argv.index("--control") + 1] = "http://100.127.2.1:9/"  # nothing listens there
        runs.append(measured(state, clean, argv, "clean, no helper"))
        argv = [*measure_argv(state, clean, timeouts), *workers]
        runs.append(replayed(state, clean, argv, "helper elsewhere", recorded))
        runs.append(measured(state, drop10, [*measure_argv(state, drop10, timeouts), *workers], "drop10"))
        runs.append(bare(state, clean, parallel, "bare"))
        runs.append(bare(state, clean, parallel, "bare, no DNS", resolve=False))
    finally:
        topology.teardown(state)
        shutil.rmtree(tmp, ignore_errors=True)
    own = resource.getrusage(resource.RUSAGE_SELF)
    print(f"(this script: {own.ru_utime + own.ru_stime:.1f} s CPU; load average {os.getloadavg()[0]:.1f})\n")
    report(runs)
    if args.profile is not None:
        pstats.Stats(str(args.profile / "probe.prof")).sort_stats("tottime").print_stats(25)
        for name in SERVERS:
            raw = args.profile / f"{name}.txt"
            if raw.exists():
                print("\n" + hottest(raw))
    return 0


if __name__ == "__main__":
    sys.exit(main())
