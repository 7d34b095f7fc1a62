"""Four processes sharing Redis pace from a real server's headers alone."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

import fleet

QUOTA, WINDOW, CALLS = 100, 5.0, 300


@pytest.mark.parametrize("header_server", [f"{QUOTA} per 5 second"], indirect=True)
def test_fleet_paces_from_headers_without_a_configured_rate(
    header_server: object, redis_url: str
) -> None:
    """4 processes x 8 threads with only HeaderPacing (no rate on the client)
    against Flask-Limiter get at most 1% 429s and at least 0.9 efficiency.

    Efficiency is the ideal time over the wall time, the ideal being the
    server's sustained rate, CALLS / (QUOTA / WINDOW): spreading each window's
    quota evenly, as HeaderPacing does, cannot beat it.
    """
    server = header_server

    outcome = fleet.run_fleet(
        "headers_only",
        f"{server.url}/items/1",
        redis_url,
        calls=CALLS,  # type: ignore[attr-defined]
    )

    served = server.stats()  # type: ignore[attr-defined]
    refused = served.get(429, 0)
    ideal = CALLS / (QUOTA / WINDOW)
    assert outcome.statuses == {200: CALLS}, outcome
    assert outcome.errors == {}
    assert refused <= 0.01 * sum(served.values()), served
    assert ideal / outcome.wall >= 0.9, outcome
