"""throttlekit and its peers against real rate-limited servers, side by side
in one run: 4 processes x 8 threads calling one organization.

Run it on request, never in the test suite::

    .venv/bin/pip install -e ".[redis]" --group bench
    .venv/bin/python benchmarks/bench_peers.py

It starts its own servers on 127.0.0.1 and stops them at the end:

- nginx with ``limit_req`` set up like the Meraki Dashboard API
  (``nginx/meraki_like.conf``): 10 calls a second per organization, and
  50, each with burst 10, 429 with ``Retry-After: 1``; a server we did not
  write, installed with apt-get when missing;
- Flask-Limiter under gunicorn (``servers/headers_api.py``), 100 calls per
  5 seconds per organization, fixed window, with ``X-RateLimit-*``
  headers;
- a throwaway ``redis-server`` for the clients that share state.

Every client makes the same calls to a fresh organization of its own, so
each run starts with a full bucket and its 429s are counted on the server
side, from nginx's access log or Flask's counts. Efficiency is the ideal
time over the wall time:

- nginx: ``(calls - 11) / rate``; from idle, ``limit_req`` with burst 10
  admits 11 calls at once (the probe at the start of each run checks it),
  then one every ``1 / rate`` seconds;
- Flask-Limiter: ``calls / (100 / 5 s)``, the server's sustained rate. A
  fixed window lets a client that spends each window's quota at once
  finish sooner, up to a window early, so efficiency can pass 1 there.

The table goes to stdout and to ``results/peers.md`` and ``.json``; the
plot to ``docs/img/peers.png``. About 10 minutes on 2 cores.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import importlib.util
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import httpx
from bench_redis import throwaway_server
from peer_clients import CLIENTS, Target, learned_rate, run_fleet

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
RESULTS = HERE / "results"
PLOT = ROOT / "docs" / "img" / "peers.png"

# nginx's limit_req: burst 10 admits the call in hand plus 10 more.
NGINX_BURST = 10
NGINX_CAPACITY = NGINX_BURST + 1
HEADERS_QUOTA, HEADERS_WINDOW = 100, 5.0
HEADERS_LIMIT = f"{HEADERS_QUOTA} per {HEADERS_WINDOW:g} second"

LABELS = {
    "plain": "httpx, retry on 429",
    "tenacity": "tenacity",
    "httpx-retries": "httpx-retries",
    "meraki-sdk": "Meraki SDK",
    "limits": "limits, moving window",
    "throttlekit": "throttlekit, limit configured",
    "throttlekit-unknown": "throttlekit, limit unknown",
    "throttlekit-headers": "throttlekit, headers only",
}
PEERS = ("plain", "tenacity", "httpx-retries", "meraki-sdk", "limits")
# Peers in muted tones, throttlekit in greens, so the eye finds it.
COLORS = {
    "plain": "#9e9e9e",
    "tenacity": "#f4a259",
    "httpx-retries": "#e9c46a",
    "meraki-sdk": "#74a9cf",
    "limits": "#b39ddb",
    "throttlekit": "#1b7837",
    "throttlekit-unknown": "#5aae61",
    "throttlekit-headers": "#a6dba0",
}


@dataclass(frozen=True)
class Scenario:
    """One server and limit, and the clients run against it.

    ``limit`` is what the clients configured with a limit are told (`limits`,
    throttlekit's configured `RateLimit`); ``sdk_rate`` is the Meraki SDK's
    per-process limiter rate, 90% of the server's as its default of 9 is for
    Meraki's 10, or None for that default.
    """

    key: str
    title: str
    server: str
    calls: int
    limit: str
    rate: float
    sdk_rate: float | None
    clients: tuple[str, ...]

    def ideal(self, calls: int) -> float:
        """Return the ideal time for ``calls``: nginx's burst at once and
        the rest at its rate, or Flask-Limiter's quota spread evenly."""
        if self.server == "nginx":
            return max(0, calls - NGINX_CAPACITY) / self.rate
        return calls / self.rate


SCENARIOS = (
    Scenario(
        key="nginx-10",
        title="nginx limit_req, 10/s burst 10 (Meraki)",
        server="nginx",
        calls=300,
        limit="10/second",
        rate=10.0,
        sdk_rate=9.0,
        clients=(*PEERS, "throttlekit", "throttlekit-unknown"),
    ),
    Scenario(
        key="nginx-50",
        title="nginx limit_req, 50/s burst 10",
        server="nginx",
        calls=600,
        limit="50/second",
        rate=50.0,
        sdk_rate=45.0,
        clients=(*PEERS, "throttlekit", "throttlekit-unknown"),
    ),
    Scenario(
        key="headers",
        title="Flask-Limiter, 100 per 5 s, headers",
        server="flask",
        calls=300,
        limit=HEADERS_LIMIT,
        rate=HEADERS_QUOTA / HEADERS_WINDOW,
        sdk_rate=None,
        clients=(*PEERS, "throttlekit-headers"),
    ),
)

# What throttlekit is held to: (scenario, client, least efficiency, most
# 429s as a share of the requests the server answered).
TARGETS = (
    ("nginx-10", "throttlekit", 0.97, 0.0),
    ("nginx-50", "throttlekit", 0.97, 0.0),
    ("nginx-10", "throttlekit-unknown", 0.85, 0.03),
    ("nginx-50", "throttlekit-unknown", 0.85, 0.03),
    ("headers", "throttlekit-headers", 0.9, 0.01),
)


@dataclass(frozen=True)
class Row:
    """One client's run against one scenario."""

    scenario: str
    client: str
    calls: int
    succeeded: int
    errors: dict[str, int]
    wall: float
    ideal: float
    efficiency: float
    requests: int
    refused: int
    learned: float | None = None

    @property
    def refused_share(self) -> float:
        return self.refused / self.requests if self.requests else 0.0


# Servers


def installed(binary: str, package: str) -> str:
    """Return the path of ``binary``, installing ``package`` with apt-get
    first when it is missing and we are root."""
    search = os.pathsep.join([os.environ.get("PATH", ""), "/usr/sbin", "/sbin"])
    found = shutil.which(binary, path=search)
    if found:
        return found
    if os.geteuid() != 0:
        raise SystemExit(f"{binary} not found: apt-get install -y {package}")

    install = ["apt-get", "install", "-y", "-q", package]
    if subprocess.run(install, stdout=subprocess.DEVNULL).returncode != 0:
        subprocess.run(["apt-get", "update", "-q"], stdout=subprocess.DEVNULL)
        subprocess.run(install, stdout=subprocess.DEVNULL, check=True)
    found = shutil.which(binary, path=search)
    if found is None:
        raise SystemExit(f"{binary} still not found after installing {package}")
    return found


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Nginx:
    """nginx from ``nginx/meraki_like.conf`` in a temporary prefix."""

    def __init__(self, prefix: Path) -> None:
        self.prefix = prefix
        self.ports = {10: free_port(), 50: free_port()}
        for folder in ("logs", "tmp", "www"):
            (prefix / folder).mkdir()
        # Workers run as an unprivileged user when nginx starts as root:
        # they must be able to read the answer file.
        prefix.chmod(0o755)
        (prefix / "www").chmod(0o755)
        body = '[{"id": "N_1", "organizationId": "1", "name": "bench"}]\n'
        (prefix / "www" / "networks.json").write_text(body)
        (prefix / "www" / "networks.json").chmod(0o644)

        config = (HERE / "nginx" / "meraki_like.conf").read_text()
        config = config.replace("@PORT_10@", str(self.ports[10]))
        config = config.replace("@PORT_50@", str(self.ports[50]))
        (prefix / "nginx.conf").write_text(config)

        command = [installed("nginx", "nginx"), "-p", str(prefix)]
        command += ["-c", str(prefix / "nginx.conf"), "-e", str(prefix / "error.log")]
        command += ["-g", "daemon off;"]
        self.process = subprocess.Popen(command)
        _wait_until_up(self.process, self.base(10) + "/", "nginx")

    def base(self, rate: int) -> str:
        return f"http://127.0.0.1:{self.ports[rate]}"

    def count(self, org: str) -> Counter[int]:
        """Return the answers the organization got, by status."""
        counts: Counter[int] = Counter()
        with open(self.prefix / "logs" / "access.log") as log:
            for line in log:
                fields = line.split()
                # Calls outside /api/v1/organizations/ log no organization.
                if len(fields) == 3 and fields[1] == org:
                    counts[int(fields[2])] += 1
        return counts

    def stop(self) -> None:
        _stop(self.process)


class HeadersAPI:
    """``servers/headers_api.py`` under gunicorn, one worker."""

    def __init__(self, limit: str) -> None:
        port = free_port()
        self.origin = f"http://127.0.0.1:{port}"
        env = {**os.environ, "LIMIT": limit, "STRATEGY": "fixed-window"}
        command = [sys.executable, "-m", "gunicorn", "--bind", f"127.0.0.1:{port}"]
        command += ["--workers", "1", "--threads", "32", "--log-level", "warning"]
        command += ["--chdir", str(HERE / "servers"), "headers_api:app"]
        self.process = subprocess.Popen(command, env=env)
        _wait_until_up(self.process, f"{self.origin}/_stats/none", "gunicorn")

    def base(self, rate: int) -> str:
        """Return the origin; one limit serves every rate asked for."""
        return self.origin

    def count(self, org: str) -> Counter[int]:
        """Return the answers the organization got, by status."""
        answer = httpx.get(f"{self.origin}/_stats/{org}", trust_env=False)
        return Counter({int(status): n for status, n in answer.json().items()})

    def stop(self) -> None:
        _stop(self.process)


def _wait_until_up(process: subprocess.Popen[bytes], url: str, name: str) -> None:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{name} exited before it answered")
        try:
            httpx.get(url, trust_env=False, timeout=1)
            return
        except httpx.TransportError:
            time.sleep(0.1)
    _stop(process)
    raise RuntimeError(f"{name} did not answer within 20 s")


def _stop(process: subprocess.Popen[bytes]) -> None:
    process.terminate()
    try:
        process.wait(10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def probe(nginx: Nginx, rate: int) -> dict[str, int]:
    """Count what nginx admits from idle, then after a second's rest, and
    warn when that is not the burst the ideal times assume."""
    url = f"{nginx.base(rate)}/api/v1/organizations/probe{rate}/networks"
    with httpx.Client(trust_env=False) as client:
        first = [client.get(url).status_code for _ in range(20)]
        time.sleep(1.0)
        second = [client.get(url).status_code for _ in range(20)]

    admitted = {"from_idle": first.count(200), "after_1s": second.count(200)}
    print(f"nginx {rate}/s admits {admitted}", flush=True)
    if admitted["from_idle"] != NGINX_CAPACITY:
        print(f"warning: ideal times assume {NGINX_CAPACITY} from idle", flush=True)
    return admitted


def versions() -> dict[str, str]:
    """Return the versions of the servers and clients measured."""
    found = {}
    for package in (
        "throttlekit",
        "httpx",
        "tenacity",
        "httpx-retries",
        "meraki",
        "limits",
        "flask-limiter",
        "gunicorn",
    ):
        try:
            found[package] = importlib.metadata.version(package)
        except importlib.metadata.PackageNotFoundError:
            found[package] = "not installed"
    for binary, package in (("nginx", "nginx"), ("redis-server", "redis-server")):
        command = [installed(binary, package), "-v"]
        answer = subprocess.run(command, capture_output=True, text=True)
        # nginx says "nginx/1.22.1" on stderr, redis "v=7.0.15" on stdout.
        number = re.search(r"\d+\.\d+(\.\d+)?", answer.stdout + answer.stderr)
        found[binary] = number.group() if number else "unknown"
    return found


# Runs


def run(args: argparse.Namespace) -> tuple[list[Row], dict[str, Any]]:
    """Start the servers, run every scenario's clients, return the rows."""
    installed("redis-server", "redis-server")
    scenarios = [s for s in SCENARIOS if s.key in args.scenarios]
    orgs = (str(org) for org in range(5001, 10**6))
    rows: list[Row] = []
    with ExitStack() as stack:
        redis_url = stack.enter_context(throwaway_server())
        scratch = stack.enter_context(tempfile.TemporaryDirectory())
        nginx = Nginx(Path(stack.enter_context(tempfile.TemporaryDirectory())))
        stack.callback(nginx.stop)
        headers = HeadersAPI(HEADERS_LIMIT)
        stack.callback(headers.stop)
        notes: dict[str, Any] = {"versions": versions()}
        notes |= {f"nginx-{rate}": probe(nginx, rate) for rate in nginx.ports}

        for round_ in range(1, args.rounds + 1):
            for scenario, client in _runs(scenarios, args.clients):
                server = nginx if scenario.server == "nginx" else headers
                target = Target(
                    base=server.base(int(scenario.rate)),
                    org=next(orgs),
                    limit=scenario.limit,
                    burst=NGINX_BURST - 2,
                    sdk_rate=scenario.sdk_rate,
                    redis_url=redis_url,
                    scratch=scratch,
                )
                calls = max(1, round(scenario.calls * args.scale))
                row = measure(scenario, client, target, calls, server, args)
                rows.append(row)
                print(
                    f"round {round_} {scenario.key:9} {client:20} "
                    f"eff {row.efficiency:.2f}  429s {row.refused:5}  "
                    f"wall {row.wall:6.1f} s  ok {row.succeeded}/{calls}",
                    flush=True,
                )
    return rows, notes


def _runs(
    scenarios: list[Scenario], clients: list[str]
) -> Iterator[tuple[Scenario, str]]:
    for scenario in scenarios:
        for client in scenario.clients:
            if client in clients:
                yield scenario, client


def measure(
    scenario: Scenario,
    client: str,
    target: Target,
    calls: int,
    server: Nginx | HeadersAPI,
    args: argparse.Namespace,
) -> Row:
    """Run one client's fleet against ``target`` and count what the server
    answered."""
    outcome = run_fleet(
        client, target, calls=calls, processes=args.processes, threads=args.threads
    )
    # nginx writes a call's log line as it answers; give the last ones a
    # moment to land before reading the log.
    time.sleep(0.2)
    served = server.count(target.org)

    learned = learned_rate(target) if client == "throttlekit-unknown" else None
    ideal = scenario.ideal(calls)
    return Row(
        scenario=scenario.key,
        client=client,
        calls=calls,
        succeeded=outcome.statuses.get(200, 0),
        errors=outcome.errors,
        wall=outcome.wall,
        ideal=ideal,
        efficiency=ideal / outcome.wall,
        requests=sum(served.values()),
        refused=served.get(429, 0),
        learned=learned,
    )


# Reports


def summarize(rows: list[Row]) -> list[Row]:
    """Return one row per scenario and client: the median run by efficiency."""
    runs: dict[tuple[str, str], list[Row]] = {}
    for row in rows:
        runs.setdefault((row.scenario, row.client), []).append(row)
    summary = []
    for group in runs.values():
        ordered = sorted(group, key=lambda r: r.efficiency)
        summary.append(ordered[(len(ordered) - 1) // 2])
    return summary


def table(summary: list[Row], notes: dict[str, Any], rounds: int, fleet: str) -> str:
    """Return the results as markdown: one table per scenario, then the
    targets."""
    runs = f"the median of {rounds} runs by efficiency" if rounds > 1 else "one run"
    listed = ", ".join(f"{k} {v}" for k, v in notes.get("versions", {}).items())
    lines = [
        f"Measured {time.strftime('%Y-%m-%d')} on {os.cpu_count()} cores, "
        f"{fleet}, {runs} per client.",
        "",
        f"Versions: {listed}.",
        "",
    ]
    for scenario in SCENARIOS:
        rows = [r for r in summary if r.scenario == scenario.key]
        if not rows:
            continue
        probe_note = ""
        if scenario.key in notes:
            admitted = notes[scenario.key]
            probe_note = (
                f" Probe: {admitted['from_idle']} admitted from idle, "
                f"{admitted['after_1s']} after a second's rest."
            )
        lines += [
            f"### {scenario.title}",
            "",
            f"{rows[0].calls} calls, ideal time {rows[0].ideal:.1f} s.{probe_note}",
            "",
            "| Client | Efficiency | 429s (server) | 429 share | Requests "
            "| Wall time | Calls OK |",
            "| --- | ---: | ---: | ---: | ---: | ---: | ---: |",
        ]
        for row in rows:
            lines.append(
                f"| {LABELS[row.client]} | {row.efficiency:.2f} | {row.refused:,} "
                f"| {row.refused_share:.1%} | {row.requests:,} | {row.wall:.1f} s "
                f"| {row.succeeded}/{row.calls} |"
            )
        lines.append("")
        for row in rows:
            if row.learned is not None:
                lines += [
                    f"{LABELS[row.client]}: the rate it learned ends at "
                    f"{row.learned:.1f}/s.",
                    "",
                ]

    verdicts = targets(summary)
    if verdicts:
        lines += ["### throttlekit's targets", ""]
        lines += ["| Scenario | Client | Target | Measured | Met |"]
        lines += ["| --- | --- | --- | --- | --- |"]
        lines += verdicts
        lines.append("")
    return "\n".join(lines)


def targets(summary: list[Row]) -> list[str]:
    """Return a markdown row per target that was measured."""
    found = {(r.scenario, r.client): r for r in summary}
    lines = []
    for scenario, client, efficiency, share in TARGETS:
        row = found.get((scenario, client))
        if row is None:
            continue
        met = row.efficiency >= efficiency and row.refused_share <= share
        wanted = f"efficiency ≥ {efficiency:.2f}, 429s ≤ {share:.0%}"
        seen = f"{row.efficiency:.2f}, {row.refused_share:.1%} ({row.refused})"
        verdict = "yes" if met else "**no**"
        lines.append(
            f"| {scenario} | {LABELS[client]} | {wanted} | {seen} | {verdict} |"
        )
    return lines


def plot(summary: list[Row], path: Path, fleet: str) -> None:
    """Draw efficiency bars per scenario and client, 429s written on each."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    scenarios = [s for s in SCENARIOS if any(r.scenario == s.key for r in summary)]
    clients = [c for c in LABELS if any(r.client == c for r in summary)]
    width = 0.8 / max(len(s.clients) for s in scenarios)
    figure, axes = plt.subplots(figsize=(12, 5.5), layout="constrained")

    ticks = []
    for index, scenario in enumerate(scenarios):
        rows = [r for r in summary if r.scenario == scenario.key]
        rows.sort(key=lambda r: clients.index(r.client))
        left = index - width * (len(rows) - 1) / 2
        for offset, row in enumerate(rows):
            x = left + offset * width
            bar = axes.bar(x, row.efficiency, width * 0.92, color=COLORS[row.client])
            label = f"{row.refused:,}"
            axes.bar_label(bar, [label], padding=2, fontsize=8, rotation=90)
        sustained = " at the sustained rate" if scenario.server == "flask" else ""
        ticks.append(
            f"{scenario.title}\n{rows[0].calls} calls, "
            f"ideal {rows[0].ideal:.1f} s{sustained}"
        )

    axes.axhline(1.0, color="grey", linewidth=0.8, linestyle="--")
    axes.set_xticks(range(len(scenarios)), ticks)
    axes.set_ylabel("efficiency = ideal time / wall time")
    axes.set_ylim(0, max(1.15, max(r.efficiency for r in summary) * 1.18))
    axes.set_title(
        f"{fleet} calling one organization: efficiency (bars) "
        "and the server's 429s (numbers)"
    )
    handles = [plt.Rectangle((0, 0), 1, 1, color=COLORS[c]) for c in clients]
    axes.legend(
        handles,
        [LABELS[c] for c in clients],
        loc="upper center",
        bbox_to_anchor=(0.5, -0.16),
        ncol=4,
        frameon=False,
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=110)
    plt.close(figure)


def save(summary: list[Row], rows: list[Row], notes: dict[str, Any], text: str) -> None:
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "peers.md").write_text(f"# bench_peers.py\n\n{text}")
    data = {
        "probe": notes,
        "runs": [asdict(r) | {"refused_share": r.refused_share} for r in rows],
        "summary": [asdict(r) | {"refused_share": r.refused_share} for r in summary],
    }
    (RESULTS / "peers.json").write_text(json.dumps(data, indent=2) + "\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--scenarios",
        nargs="+",
        default=[s.key for s in SCENARIOS],
        choices=[s.key for s in SCENARIOS],
    )
    parser.add_argument(
        "--clients", nargs="+", default=list(CLIENTS), choices=list(CLIENTS)
    )
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument(
        "--scale", type=float, default=1.0, help="multiply every call count"
    )
    parser.add_argument("--processes", type=int, default=4)
    parser.add_argument("--threads", type=int, default=8)
    parser.add_argument(
        "--no-save",
        action="store_true",
        help="print only; leave results/ and the plot alone",
    )
    args = parser.parse_args()
    if importlib.util.find_spec("meraki") is None and "meraki-sdk" in args.clients:
        # The SDK needs Python 3.11 or later; the bench group skips it before.
        print("meraki is not installed: the Meraki SDK is left out", flush=True)
        args.clients.remove("meraki-sdk")

    began = time.monotonic()
    fleet = f"{args.processes} processes x {args.threads} threads"
    rows, notes = run(args)
    summary = summarize(rows)
    text = table(summary, notes, args.rounds, fleet)
    print()
    print(text)
    print(f"Whole run: {(time.monotonic() - began) / 60:.1f} minutes.")
    if not args.no_save:
        save(summary, rows, notes, text)
        plot(summary, PLOT, fleet)


if __name__ == "__main__":
    main()
