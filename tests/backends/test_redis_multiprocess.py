"""Eight processes share one budget through `RedisBackend` and add up to it.

Each process reserves, sleeps until its turn, and reserves again, for a few
seconds. Admission times come from the Redis server's clock, so the count
in the window does not depend on the processes' clocks or speed.

Run as a script, this module is one of those processes.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
import uuid

import throttlekit as tk
from throttlekit.backends.redis import RedisBackend

PROCESSES = 8
SECONDS = 3
RATE, BURST = 50, 10
LIMITS = tk.parse_rate(f"{RATE}/second", burst=BURST)


def test_processes_add_up_to_one_budget(redis_url: str) -> None:
    """Over 3 s of server time, 8 processes sharing 50/s with burst 10 are
    admitted at most 50 * 3 + 10 times, and at least 95% of that."""
    key = f"shared-{uuid.uuid4().hex}"
    workers = [
        subprocess.Popen(
            [sys.executable, __file__, redis_url, key],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        for _ in range(PROCESSES)
    ]
    for worker in workers:
        assert worker.stdout is not None
        assert worker.stdout.readline().strip() == "ready"
    for worker in workers:
        assert worker.stdin is not None
        worker.stdin.write("go\n")
        worker.stdin.flush()

    admits: list[int] = []
    for worker in workers:
        out, _ = worker.communicate(timeout=60)
        assert worker.returncode == 0
        admits.extend(json.loads(out))

    start = min(admits)
    admitted = sum(1 for at in admits if at <= start + SECONDS * 1_000_000)
    bound = RATE * SECONDS + BURST
    print(f"admitted {admitted} of {bound} in {SECONDS} s of server time")
    assert 0.95 * bound <= admitted <= bound


def _work(url: str, key: str) -> list[int]:
    """Reserve, wait for the turn, repeat; return the admission times (µs,
    server clock) until one second past the window."""
    backend = RedisBackend.from_url(url)
    print("ready", flush=True)
    sys.stdin.readline()

    admits: list[int] = []
    while True:
        reservation = backend.reserve(key, LIMITS, 1, None)
        at: int = reservation.handle.admit_us  # type: ignore[attr-defined]
        if admits and at > admits[0] + (SECONDS + 1) * 1_000_000:
            backend.cancel(reservation)
            break
        time.sleep(reservation.wait)
        admits.append(at)
    backend.close()
    return admits


if __name__ == "__main__":
    print(json.dumps(_work(sys.argv[1], sys.argv[2])), flush=True)
