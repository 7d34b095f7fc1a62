"""Shared fixtures: throwaway Redis servers, and the ``--run-slow`` switch.

Every Redis the tests use is a real ``redis-server`` started here on a free
loopback port, in a temporary directory, with persistence off; it is stopped
when the session (or the test that asked for it) ends. Tests never touch a
Redis they did not start.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import random
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import redis

_STARTUP = 10.0  # seconds a server may take to answer PING
_CLUSTER_NODE = (
    *("--cluster-enabled", "yes"),
    *("--cluster-config-file", "nodes.conf"),
    *("--cluster-node-timeout", "5000"),
)
_MISSING = (
    "redis-server and redis-cli are needed for these tests and were not found "
    "on PATH; install them, for example with `apt-get install redis-server`"
)


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--run-slow",
        action="store_true",
        default=False,
        help="also run tests marked slow (long soak or load runs)",
    )


def pytest_collection_modifyitems(
    config: pytest.Config, items: list[pytest.Item]
) -> None:
    if config.getoption("--run-slow"):
        return
    skip = pytest.mark.skip(reason="slow; run with --run-slow")
    for item in items:
        if "slow" in item.keywords:
            item.add_marker(skip)


class RedisServer:
    """A ``redis-server`` process on a loopback port, stoppable and
    restartable on the same port.

    Attributes:
        port: The TCP port it listens on.
        url: ``redis://127.0.0.1:<port>/0``.
    """

    def __init__(self, directory: Path, port: int, *extra: str) -> None:
        self.directory = directory
        self.port = port
        self.url = f"redis://127.0.0.1:{port}/0"
        self._extra = extra
        self._process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        """Start the server and wait until it answers."""
        self.directory.mkdir(parents=True, exist_ok=True)
        command = [
            _executable("redis-server"),
            "--port", str(self.port),
            "--bind", "127.0.0.1",
            "--save", "",
            "--appendonly", "no",
            "--dir", str(self.directory),
            *self._extra,
        ]  # fmt: skip
        log = (self.directory / "server.log").open("ab")
        self._process = subprocess.Popen(
            command,
            stdout=log,
            stderr=subprocess.STDOUT,
            preexec_fn=_die_with_parent,
        )
        log.close()
        self._wait_ready()

    def stop(self) -> None:
        """Stop the server; harmless when it is not running."""
        process, self._process = self._process, None
        if process is None or process.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            process.send_signal(signal.SIGCONT)
            process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)

    def pause(self) -> None:
        """Freeze the server (SIGSTOP): it accepts connections, never answers."""
        assert self._process is not None
        self._process.send_signal(signal.SIGSTOP)

    def resume(self) -> None:
        """Let a paused server run again."""
        assert self._process is not None
        self._process.send_signal(signal.SIGCONT)

    def client(self) -> redis.Redis:
        """Return a new client for this server."""
        return redis.Redis(port=self.port, socket_timeout=5)

    def _wait_ready(self) -> None:
        assert self._process is not None
        deadline = time.monotonic() + _STARTUP
        probe = redis.Redis(port=self.port, socket_timeout=1)
        try:
            while True:
                if self._process.poll() is not None:
                    log = (self.directory / "server.log").read_text(errors="replace")
                    raise RuntimeError(f"redis-server exited early:\n{log}")
                try:
                    if probe.ping():
                        return
                except (redis.ConnectionError, redis.exceptions.BusyLoadingError):
                    pass
                if time.monotonic() > deadline:
                    raise RuntimeError(f"redis-server on {self.port} did not answer")
                time.sleep(0.02)
        finally:
            probe.close()


def start_server(directory: Path, *extra: str, bus: bool = False) -> RedisServer:
    """Start a server on a free port, retrying if another process takes the
    port first.

    Args:
        directory: Where the server keeps its files.
        extra: More ``redis-server`` arguments.
        bus: Whether the port + 10000 (Redis Cluster's bus) must be free too.
    """
    for _attempt in range(5):
        server = RedisServer(directory, _free_port(bus), *extra)
        try:
            server.start()
        except RuntimeError:
            server.stop()
            continue
        return server
    raise RuntimeError("could not start redis-server on a free port")


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    """A throwaway Redis server shared by the whole session."""
    server = start_server(tmp_path_factory.mktemp("redis"))
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def redis_url(redis_server: RedisServer) -> str:
    """The URL of the session's throwaway Redis server."""
    return redis_server.url


@pytest.fixture
def spawn_redis(
    tmp_path: Path,
) -> Iterator[Callable[[], RedisServer]]:
    """A factory of dedicated Redis servers, stopped when the test ends.

    For tests that stop, pause or restart their server.
    """
    servers: list[RedisServer] = []

    def spawn() -> RedisServer:
        server = start_server(tmp_path / f"redis-{len(servers)}")
        servers.append(server)
        return server

    try:
        yield spawn
    finally:
        for server in servers:
            server.stop()


@pytest.fixture(scope="session")
def redis_cluster_url(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[str]:
    """The URL of one node of a throwaway 3-master Redis Cluster."""
    root = tmp_path_factory.mktemp("redis-cluster")
    nodes: list[RedisServer] = []
    try:
        for index in range(3):
            node = start_server(root / f"node-{index}", *_CLUSTER_NODE, bus=True)
            nodes.append(node)
        _create_cluster(nodes)
        yield nodes[0].url
    finally:
        for node in nodes:
            node.stop()


def _create_cluster(nodes: list[RedisServer]) -> None:
    addresses = [f"127.0.0.1:{node.port}" for node in nodes]
    subprocess.run(
        [
            _executable("redis-cli"),
            *("--cluster", "create", *addresses),
            *("--cluster-replicas", "0", "--cluster-yes"),
        ],
        check=True,
        capture_output=True,
        timeout=60,
    )
    deadline = time.monotonic() + 30
    while not all(_cluster_ok(node) for node in nodes):
        if time.monotonic() > deadline:
            raise RuntimeError("the Redis Cluster did not reach state ok")
        time.sleep(0.1)


def _cluster_ok(node: RedisServer) -> bool:
    client = node.client()
    try:
        info = client.execute_command("CLUSTER", "INFO")
    finally:
        client.close()
    text = info.decode() if isinstance(info, bytes) else str(info)
    return "cluster_state:ok" in text


def _executable(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        pytest.fail(_MISSING, pytrace=False)
    return path


def _free_port(bus: bool) -> int:
    # Ports are probed, not reserved: another process may take one before
    # the server binds it, so start_server retries.
    while True:
        port = random.randint(20000, 55000) if bus else _ephemeral_port()
        wanted = [port, port + 10000] if bus else [port]
        if all(_bindable(p) for p in wanted):
            return port


def _ephemeral_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _bindable(port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def _die_with_parent() -> None:
    # Linux only: the server gets SIGTERM if the test run dies without
    # cleaning up, so no orphaned servers outlive a crashed session.
    if os.uname().sysname != "Linux":
        return
    libc = ctypes.CDLL(None, use_errno=True)
    pr_set_pdeathsig = 1
    libc.prctl(pr_set_pdeathsig, signal.SIGTERM)
