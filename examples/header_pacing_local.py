"""Pace a plain httpx client from the server's rate-limit headers alone.

Offline: starts a local API that announces its limit in the IETF RateLimit
header fields (50 requests per 5 seconds), then makes 120 calls from 8
threads with no rate configured on the client. `HeaderPacing` spreads what
the headers say is left over the time to the reset; `Retry` takes care of
any 429 that still comes.

    python examples/header_pacing_local.py [CALLS]

Needs the `testing` extra (uvicorn) for the local server.
"""

from __future__ import annotations

import sys
import threading
import time

import httpx

import throttlekit as tk
from throttlekit.testing import HeaderProfile, RateLimitedAPI

QUOTA, WINDOW, CALLS, THREADS = 50, 5.0, 120, 8


def main(calls: int = CALLS) -> None:
    transport = tk.ThrottledTransport(tk.Retry(attempts=10), tk.HeaderPacing())
    left = iter(range(calls))
    lock = threading.Lock()

    with RateLimitedAPI(HeaderProfile(quota=QUOTA, window=WINDOW)) as api:
        client = httpx.Client(transport=transport, trust_env=False)

        def work() -> None:
            while True:
                with lock:
                    if next(left, None) is None:
                        return
                client.get(f"{api.url}/items/1").raise_for_status()

        started = time.monotonic()
        threads = [threading.Thread(target=work) for _ in range(THREADS)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        wall = time.monotonic() - started
        refused = api.stats().count(429)

    ideal = calls / (QUOTA / WINDOW)
    print(f"{calls} calls in {wall:.1f} s (the server's rate allows {ideal:.1f} s)")
    print(f"429 responses counted by the server: {refused}")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else CALLS)
