"""`RateLimitedAPI` and `serve`: the test API on a loopback port.

By default the server runs in a child process, so that the client's threads
(and its GIL) do not delay the server's clock readings and distort the rate
it enforces. The child binds a free port on 127.0.0.1 and reports it; the
parent keeps the child's stdin open as a lifeline, and the child shuts down
when it reads end of file, so it cannot outlive its parent even when the
parent is killed. An in-thread mode starts faster and needs no process.
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import os
import queue
import socket
import subprocess
import sys
import threading
import time
import weakref
from collections.abc import Iterator
from pathlib import Path
from types import TracebackType
from typing import IO, TYPE_CHECKING, Any, Literal

import httpx

from .._validate import seconds
from ._app import RESET_PATH, STATS_PATH, RateLimitedApp, ServerStats
from ._profiles import MerakiProfile, Profile, build_profile

if TYPE_CHECKING:
    import uvicorn

__all__ = ["RateLimitedAPI", "serve"]

Mode = Literal["process", "thread"]

HOST = "127.0.0.1"
_INSTALL_HINT = (
    "the rate-limited test server needs uvicorn: pip install 'throttlekit[testing]'"
)
# How long a stopping server may take to finish open responses, seconds.
_GRACE = 1
# How long to wait for a child that was asked to stop, seconds.
_STOP_TIMEOUT = 5.0


class RateLimitedAPI:
    """A rate-limited HTTP API on 127.0.0.1, for tests and demos.

    It answers like the Meraki Dashboard API by default (see
    `MerakiProfile`) and counts its responses, so a test can assert how
    many requests were refused. Use it as a context manager, or call `start`
    and `stop`.

    Args:
        profile: How requests are limited. ``None`` (default):
            `MerakiProfile()`.
        latency: Seconds the server waits before answering an API call;
            default 0.
        mode: ``"process"`` (default) runs the server in a child process;
            ``"thread"`` runs it in a thread of this process.
        startup_timeout: Seconds to wait for the server to answer; default 15.

    Raises:
        ImportError: uvicorn is not installed.
        ValueError: ``mode`` is unknown, or a duration is negative.

    Example:
        >>> import httpx
        >>> from throttlekit.testing import RateLimitedAPI
        >>> with RateLimitedAPI() as api:
        ...     response = httpx.get(f"{api.url}/api/v1/organizations/1/networks")
        ...     assert api.stats().count(200) == 1

    Note:
        The per-address limit sees every local client as ``127.0.0.1``, so
        clients sharing one server also share that budget.
    """

    def __init__(
        self,
        profile: Profile | None = None,
        *,
        latency: float = 0.0,
        mode: Mode = "process",
        startup_timeout: float = 15.0,
    ) -> None:
        if mode not in ("process", "thread"):
            raise ValueError(f"mode must be 'process' or 'thread', got {mode!r}")
        if importlib.util.find_spec("uvicorn") is None:
            raise ImportError(_INSTALL_HINT)

        self.profile: Profile = profile if profile is not None else MerakiProfile()
        self.latency = seconds("latency", latency) or 0.0
        self.mode: Mode = mode
        self.startup_timeout = seconds("startup_timeout", startup_timeout) or 0.0
        self._runner: _ProcessRunner | _ThreadRunner | None = None
        self._client: httpx.Client | None = None
        self._port: int | None = None

    @property
    def url(self) -> str:
        """The base URL, such as ``http://127.0.0.1:50123``.

        Raises:
            RuntimeError: The server is not running.
        """
        if self._port is None:
            raise RuntimeError("the server is not running; call start() first")
        return f"http://{HOST}:{self._port}"

    @property
    def pid(self) -> int | None:
        """The server process's id; ``None`` in thread mode or when stopped."""
        runner = self._runner
        if isinstance(runner, _ProcessRunner) and runner.process is not None:
            return runner.process.pid
        return None

    def start(self) -> RateLimitedAPI:
        """Start the server and return once it answers requests.

        Raises:
            RuntimeError: The server is running already, or did not come up
                within ``startup_timeout``.
        """
        if self._runner is not None:
            raise RuntimeError("the server is running already")

        runner: _ProcessRunner | _ThreadRunner
        if self.mode == "process":
            runner = _ProcessRunner(self.profile, self.latency)
        else:
            runner = _ThreadRunner(self.profile, self.latency)
        self._runner = runner

        try:
            self._port = runner.start(self.startup_timeout)
            self._client = httpx.Client(base_url=self.url, trust_env=False)
            self._wait_ready()
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        """Stop the server; harmless when it is not running."""
        runner, self._runner = self._runner, None
        client, self._client = self._client, None
        self._port = None
        if client is not None:
            client.close()
        if runner is not None:
            runner.stop()

    def stats(self) -> ServerStats:
        """Return the responses given since the start or the last reset."""
        response = self._http().get(STATS_PATH)
        response.raise_for_status()
        return ServerStats.from_json(response.json())

    def reset(self) -> None:
        """Forget every bucket and count, as if the server just started."""
        self._http().post(RESET_PATH).raise_for_status()

    def __enter__(self) -> RateLimitedAPI:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def _http(self) -> httpx.Client:
        if self._client is None:
            raise RuntimeError("the server is not running; call start() first")
        return self._client

    def _wait_ready(self) -> None:
        # The port is bound and listening before it is reported, so one
        # request waits in the backlog until the server loop takes it.
        deadline = time.monotonic() + self.startup_timeout
        while True:
            try:
                self._http().get(STATS_PATH, timeout=self.startup_timeout)
                return
            except httpx.TransportError:
                if time.monotonic() > deadline:
                    raise RuntimeError("the test server did not answer") from None
                time.sleep(0.05)


@contextlib.contextmanager
def serve(
    profile: Profile | None = None,
    *,
    latency: float = 0.0,
    mode: Mode = "process",
    startup_timeout: float = 15.0,
) -> Iterator[RateLimitedAPI]:
    """Run a `RateLimitedAPI` for the duration of a ``with`` block.

    Takes the same arguments as `RateLimitedAPI`; the server stops when the
    block ends, exception or not.

    Example:
        >>> from throttlekit.testing import MerakiProfile, serve
        >>> with serve(MerakiProfile(org_rate=5, org_burst=5)) as api:
        ...     print(api.url)  # doctest: +SKIP
    """
    api = RateLimitedAPI(
        profile, latency=latency, mode=mode, startup_timeout=startup_timeout
    )
    with api:
        yield api


class _ProcessRunner:
    """The server in a child process, tied to this one by its stdin."""

    def __init__(self, profile: Profile, latency: float) -> None:
        self.config = {"profile": profile.spec(), "latency": latency}
        self.process: subprocess.Popen[bytes] | None = None
        self._finalizer: weakref.finalize[Any, Any] | None = None

    def start(self, timeout: float) -> int:
        process = subprocess.Popen(
            [sys.executable, "-c", _child_command()],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            # Ctrl+C in a terminal goes to this process only; the child
            # stops when this process closes its lifeline.
            start_new_session=os.name == "posix",
        )
        self.process = process
        self._finalizer = weakref.finalize(self, _stop_process, process)

        assert process.stdin is not None
        assert process.stdout is not None
        process.stdin.write(json.dumps(self.config).encode() + b"\n")
        process.stdin.flush()
        line = _read_line(process.stdout, timeout)
        if not line:
            code = process.poll()
            raise RuntimeError(f"the test server process exited early (code {code})")
        return int(json.loads(line)["port"])

    def stop(self) -> None:
        if self._finalizer is not None:
            self._finalizer()


class _ThreadRunner:
    """The server in a daemon thread of this process."""

    def __init__(self, profile: Profile, latency: float) -> None:
        self.app = RateLimitedApp(profile, latency=latency)
        self.server: uvicorn.Server | None = None
        self.thread: threading.Thread | None = None

    def start(self, timeout: float) -> int:
        sock = _listen()
        server = self.server = _uvicorn_server(self.app)
        self.thread = threading.Thread(
            target=server.run,
            kwargs={"sockets": [sock]},
            name="throttlekit-test-api",
            daemon=True,
        )
        self.thread.start()
        return int(sock.getsockname()[1])

    def stop(self) -> None:
        if self.server is not None:
            self.server.should_exit = True
        if self.thread is not None:
            self.thread.join(_STOP_TIMEOUT)


def _listen() -> socket.socket:
    # Bound here rather than by uvicorn, so the port is known and taken
    # before anyone connects, with no race for a "free" port number. The
    # explicit protocol matters: asyncio turns Nagle's algorithm off only for
    # sockets marked TCP, and with it on every keep-alive response waits
    # out the client's delayed ACK (about 40 ms).
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    try:
        sock.bind((HOST, 0))
        sock.listen(128)
    except OSError:
        sock.close()
        raise
    return sock


def _uvicorn_server(app: RateLimitedApp) -> uvicorn.Server:
    try:
        import uvicorn
    except ImportError as exc:
        raise ImportError(_INSTALL_HINT) from exc

    config = uvicorn.Config(
        app,
        http="h11",
        ws="none",
        loop="asyncio",
        lifespan="off",
        log_level="warning",
        access_log=False,
        timeout_graceful_shutdown=_GRACE,
    )
    return uvicorn.Server(config)


def _child_command() -> str:
    # The child imports the same throttlekit as this process, wherever that
    # came from (an install, a checkout on sys.path).
    root = str(Path(__file__).resolve().parents[2])
    return (
        f"import sys; sys.path.insert(0, {root!r}); "
        "from throttlekit.testing._server import child_main; "
        "raise SystemExit(child_main())"
    )


def _read_line(stream: IO[bytes], timeout: float) -> bytes:
    # A pipe read cannot time out portably; a helper thread reads instead.
    lines: queue.Queue[bytes] = queue.Queue()
    reader = threading.Thread(target=lambda: lines.put(stream.readline()), daemon=True)
    reader.start()
    try:
        return lines.get(timeout=timeout)
    except queue.Empty:
        raise RuntimeError(
            f"the test server did not start within {timeout:g} seconds"
        ) from None


def _stop_process(process: subprocess.Popen[bytes]) -> None:
    with contextlib.suppress(OSError):
        if process.stdin is not None:
            process.stdin.close()
    try:
        process.wait(_STOP_TIMEOUT)
    except subprocess.TimeoutExpired:
        process.terminate()
        try:
            process.wait(_STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
    if process.stdout is not None:
        process.stdout.close()


def child_main() -> int:
    """Run the server in this process until stdin reaches end of file.

    Reads one JSON line from stdin (the profile's spec and the latency),
    writes ``{"port": N}`` and a newline to stdout once listening, and
    serves until stdin closes.
    """
    config = json.loads(sys.stdin.buffer.readline())
    app = RateLimitedApp(build_profile(config["profile"]), latency=config["latency"])
    sock = _listen()
    server = _uvicorn_server(app)

    def lifeline() -> None:
        sys.stdin.buffer.read()
        server.should_exit = True

    threading.Thread(target=lifeline, daemon=True).start()
    port = sock.getsockname()[1]
    sys.stdout.write(json.dumps({"port": port}) + "\n")
    sys.stdout.flush()

    try:
        server.run(sockets=[sock])
    except KeyboardInterrupt:
        return 130
    return 0
