"""Four processes sharing Redis learn the rate of a server that never says it."""

from __future__ import annotations

import sys
from pathlib import Path

import httpx

import throttlekit as tk
from throttlekit.testing import MerakiProfile, RateLimitedAPI

sys.path.insert(0, str(Path(__file__).parent))

import fleet

RATE, BURST, CALLS = 10, 10, 250


def test_fleet_learns_a_limit_the_server_never_announces(redis_url: str) -> None:
    """4 processes x 8 threads with no rate configured, only
    HeaderPacing(adaptive=AdaptiveRate(100.0)), against a Meraki-like server
    (10/s with a burst of 10, 429 with Retry-After and nothing else) reach
    at least 0.85 efficiency with at most 3% of requests answered 429.

    Efficiency is the ideal time over the wall time, the ideal being
    (CALLS - BURST) / RATE: the burst goes at once, the rest at the server's
    rate. The learned rate, read back through statistics(), ends near the
    server's rate, far below the ceiling it started from.
    """
    with RateLimitedAPI(MerakiProfile(org_rate=RATE, org_burst=BURST)) as api:
        url = f"{api.url}/api/v1/organizations/1/networks"
        outcome = fleet.run_fleet("unknown_limit", url, redis_url, calls=CALLS)
        served = api.stats()

    backend = tk.RedisBackend.from_url(redis_url, namespace="fleet")
    pacing = fleet.unknown_limit(backend)[-1]
    learned = pacing.statistics(httpx.Request("GET", url), backend)
    backend.close()

    ideal = (CALLS - BURST) / RATE
    assert outcome.statuses == {200: CALLS}, outcome
    assert outcome.errors == {}
    assert served.count(429) <= 0.03 * served.total, served
    assert ideal / outcome.wall >= 0.85, outcome
    assert learned.rate is not None
    assert RATE / 2 <= learned.rate <= RATE * 2, learned
