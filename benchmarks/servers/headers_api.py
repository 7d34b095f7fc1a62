"""A header-emitting API we did not write the limiter of: Flask-Limiter.

bench_peers.py runs it as ``gunicorn headers_api:app`` with one worker, so
the limiter's in-memory counts are one budget. It serves Meraki's
``GET /api/v1/organizations/{id}/networks`` (so the Meraki SDK can call it
too), limited per organization by the ``LIMIT`` environment variable (a
Flask-Limiter limit string, default "100 per 5 second") with the
``STRATEGY`` variable's strategy (default "fixed-window").

Every answer carries ``X-RateLimit-Limit``, ``-Remaining`` and ``-Reset``
(epoch seconds) and, on 429, ``Retry-After`` in seconds.
``GET /_stats/{id}`` (not limited) returns how many answers of each status
the organization got.
"""

from __future__ import annotations

import os
import threading
from collections import Counter
from typing import Any

from flask import Flask, Response, jsonify, request
from flask_limiter import Limiter

app = Flask(__name__)
app.config["RATELIMIT_HEADERS_ENABLED"] = True


def _organization() -> str:
    return str((request.view_args or {}).get("org", ""))


limiter = Limiter(
    _organization,
    app=app,
    default_limits=[os.environ.get("LIMIT", "100 per 5 second")],
    storage_uri="memory://",
    strategy=os.environ.get("STRATEGY", "fixed-window"),
)

_lock = threading.Lock()
_counts: dict[str, Counter[int]] = {}


@app.after_request
def _count(response: Response) -> Response:
    # Runs for the limiter's 429s too: they are answers like any other.
    if request.endpoint == "networks":
        with _lock:
            _counts.setdefault(_organization(), Counter())[response.status_code] += 1
    return response


@app.get("/api/v1/organizations/<org>/networks")
def networks(org: str) -> Any:
    return jsonify([{"id": "N_1", "organizationId": org, "name": "bench"}])


@app.get("/_stats/<org>")
@limiter.exempt
def stats(org: str) -> Any:
    with _lock:
        counts = dict(_counts.get(org, Counter()))
    return jsonify({str(status): n for status, n in counts.items()})
