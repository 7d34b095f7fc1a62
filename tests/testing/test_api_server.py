"""The test API served on loopback, in a child process and in a thread."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator

import httpx
import pytest

from throttlekit.testing import MerakiProfile, RateLimitedAPI, serve

# One token per 10 s: the burst is all a test can spend, however slow the
# machine, so the 429 after it does not depend on timing.
SLOW = MerakiProfile(org_rate=0.1, org_burst=10)
PATH = "/api/v1/organizations/321/networks"


@pytest.fixture(scope="module")
def api() -> Iterator[RateLimitedAPI]:
    """Run one server process for the module's tests."""
    with serve(SLOW) as server:
        yield server


@pytest.fixture
def fresh(api: RateLimitedAPI) -> RateLimitedAPI:
    """Return the module's server with its state reset."""
    api.reset()
    return api


def test_burst_then_429_with_retry_after(fresh: RateLimitedAPI) -> None:
    """Over loopback, ten calls pass and the eleventh gets 429 and JSON."""
    with httpx.Client(base_url=fresh.url, trust_env=False) as client:
        statuses = [client.get(PATH).status_code for _ in range(10)]
        refused = client.get(PATH)

    assert statuses == [200] * 10
    assert refused.status_code == 429
    assert 1 <= int(refused.headers["retry-after"]) <= 10
    assert list(refused.json()) == ["errors"]


def test_stats_count_what_the_server_answered(fresh: RateLimitedAPI) -> None:
    """stats() reports the responses by status and by organization."""
    with httpx.Client(base_url=fresh.url, trust_env=False) as client:
        for _ in range(12):
            client.get(PATH)

    stats = fresh.stats()

    assert stats.responses == {200: 10, 429: 2}
    assert stats.organizations == {"321": {200: 10, 429: 2}}


def test_reset_refills_the_buckets(fresh: RateLimitedAPI) -> None:
    """After reset() a spent organization has its whole burst again."""
    with httpx.Client(base_url=fresh.url, trust_env=False) as client:
        for _ in range(11):
            client.get(PATH)
        fresh.reset()
        statuses = [client.get(PATH).status_code for _ in range(11)]

    assert statuses == [200] * 10 + [429]


def test_thread_mode_serves_and_stops() -> None:
    """In thread mode the server answers, and its thread ends on exit."""
    with serve(SLOW, mode="thread") as api:
        runner = api._runner
        response = httpx.get(f"{api.url}{PATH}", trust_env=False)
        stats = api.stats()
        assert api.pid is None

    assert response.status_code == 200
    assert stats.count(200, "321") == 1
    assert runner is not None
    assert not runner.thread.is_alive()  # type: ignore[union-attr]


def test_the_process_stops_when_the_block_raises() -> None:
    """Leaving the block with an exception still ends the server process."""
    pids: list[int | None] = []

    def fail_while_serving() -> None:
        with serve(SLOW) as api:
            pids.append(api.pid)
            raise KeyError("boom")

    with pytest.raises(KeyError):
        fail_while_serving()

    assert pids[0] is not None
    assert not _alive(pids[0])


@pytest.mark.skipif(os.name != "posix", reason="uses POSIX signals")
def test_the_server_does_not_outlive_a_killed_parent() -> None:
    """A server whose parent is killed exits once its lifeline closes."""
    script = (
        "import sys, time\n"
        "from throttlekit.testing import serve\n"
        "with serve() as api:\n"
        "    print(api.pid, flush=True)\n"
        "    time.sleep(60)\n"
    )
    parent = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE)
    assert parent.stdout is not None
    pid = int(parent.stdout.readline())

    parent.kill()
    parent.wait()
    parent.stdout.close()

    assert _gone_within(pid, seconds=10)


def test_url_before_start_is_an_error() -> None:
    """Asking for the URL of a server not running raises RuntimeError."""
    api = RateLimitedAPI()

    with pytest.raises(RuntimeError, match="not running"):
        api.url  # noqa: B018


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"mode": "fork"}, "mode must be 'process' or 'thread'"),
        ({"latency": -1}, "latency must be >= 0"),
        ({"startup_timeout": -1}, "startup_timeout must be >= 0"),
    ],
    ids=["mode", "latency", "startup-timeout"],
)
def test_invalid_settings_are_refused_before_starting(
    options: dict[str, object], message: str
) -> None:
    """A bad mode or duration raises ValueError naming it, starting nothing."""
    with pytest.raises(ValueError, match=message):
        RateLimitedAPI(**options)  # type: ignore[arg-type]


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def _gone_within(pid: int, seconds: float) -> bool:
    # The orphan is reparented, so it is reaped by init and vanishes;
    # poll for that within a generous bound.
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if not _alive(pid):
            return True
        time.sleep(0.05)
    return False
