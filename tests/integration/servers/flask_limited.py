"""A header-emitting API we did not write: Flask-Limiter under gunicorn.

Run by the integration tests as ``gunicorn servers.flask_limited:app`` with
one worker (so the limiter's in-memory counts are one budget), configured by
environment variables:

- ``LIMIT``: the Flask-Limiter limit string, for example "100 per 5 second";
- ``STRATEGY``: "fixed-window" (default) or "moving-window".

Every response carries ``X-RateLimit-Limit``, ``-Remaining``, ``-Reset``
(epoch seconds) and, on 429, ``Retry-After``. ``GET /_stats`` (not limited)
returns how many responses of each status the API sent; ``POST /_reset``
clears the counts and the limiter.
"""

from __future__ import annotations

import os
import threading
from collections import Counter
from typing import Any

from flask import Flask, Response, jsonify
from flask_limiter import Limiter
from flask_limiter.util import get_remote_address

app = Flask(__name__)
app.config["RATELIMIT_HEADERS_ENABLED"] = True

limiter = Limiter(
    get_remote_address,
    app=app,
    default_limits=[os.environ.get("LIMIT", "100 per 5 second")],
    storage_uri="memory://",
    strategy=os.environ.get("STRATEGY", "fixed-window"),
)

_lock = threading.Lock()
_counts: Counter[int] = Counter()


@app.after_request
def _count(response: Response) -> Response:
    if not response.headers.get("X-Stats"):
        with _lock:
            _counts[response.status_code] += 1
    return response


@app.get("/items/<int:number>")
def item(number: int) -> Any:
    return jsonify(item=number)


@app.get("/_stats")
@limiter.exempt
def stats() -> Any:
    with _lock:
        body = jsonify({str(status): n for status, n in _counts.items()})
    body.headers["X-Stats"] = "1"
    return body


@app.post("/_reset")
@limiter.exempt
def reset() -> Any:
    with _lock:
        _counts.clear()
    limiter.reset()
    body = jsonify(reset=True)
    body.headers["X-Stats"] = "1"
    return body
