"""`throttle` around plain sync and async functions."""

from __future__ import annotations

import asyncio

import pytest

import throttlekit as tk


def test_sync_function_calls_spend_the_budget() -> None:
    """Calls past the burst wait for their turn; results come back unchanged."""
    backend = tk.MemoryBackend()

    @tk.throttle(tk.RateLimit("1/second"), backend=backend, max_wait=0.5)
    def add(a: int, b: int) -> int:
        return a + b

    assert add(2, 3) == 5
    with pytest.raises(tk.RateLimited) as info:
        add(1, 1)
    assert info.value.delay == pytest.approx(1.0, abs=0.05)
    assert add.__name__ == "add"


def test_argument_key_binds_positional_keyword_and_default() -> None:
    """keys.argument finds the value however it was passed."""
    seen: list[str | None] = []
    key = tk.keys.argument("org_id", default="none")

    def spy(call: tk.Call) -> str | None:
        seen.append(key(call))
        return seen[-1]

    @tk.throttle(tk.RateLimit("100/second", key=spy), backend=tk.MemoryBackend())
    def fetch(org_id: str | None = None, page: int = 1) -> int:
        return page

    fetch("1")
    fetch(org_id="2")
    fetch()

    assert seen == ["org_id:1", "org_id:2", "none"]


def test_secret_argument_is_digested() -> None:
    """A secret argument appears in keys only as a digest."""
    key = tk.keys.argument("api_key", secret=True)

    def fetch(api_key: str) -> None: ...

    value = key(tk.Call(fetch, ("s3cret",)))

    assert value == f"api_key:{tk.keys.digest('s3cret')}"


def test_unknown_argument_is_a_clear_error() -> None:
    """A key naming a parameter the function lacks raises KeyError naming it."""

    def fetch(org_id: str) -> None: ...

    with pytest.raises(KeyError, match="no parameter 'network'"):
        tk.Call(fetch, ("1",)).argument("network")


def test_async_function_is_limited_for_concurrency() -> None:
    """An async function under Concurrency(2) never runs more than twice at once."""
    running = peak = 0

    @tk.throttle(tk.Concurrency(2), backend=tk.MemoryBackend())
    async def work(n: int) -> int:
        nonlocal running, peak
        running += 1
        peak = max(peak, running)
        await asyncio.sleep(0.001)
        running -= 1
        return n * 2

    async def main() -> list[int]:
        return await asyncio.gather(*(work(n) for n in range(10)))

    assert asyncio.run(main()) == [n * 2 for n in range(10)]
    assert peak == 2


def test_not_a_policy_is_refused() -> None:
    """Passing something that is not a policy fails at decoration time."""
    with pytest.raises(TypeError, match="not a throttlekit policy"):
        tk.throttle("10/second")  # type: ignore[arg-type]
