"""throttlekit: share third-party API rate limits without hitting them.

Example:
    >>> import httpx, throttlekit as tk
    >>> client = httpx.Client(
    ...     transport=tk.ThrottledTransport(
    ...         tk.RateLimit("10/second", key=tk.keys.path_param("organizations")),
    ...     )
    ... )
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from . import keys, presets
from ._core.backoff import AdaptiveRate, Backoff
from ._core.headers import RateLimitInfo, parse_headers
from ._core.rates import Limit, parse_rate
from ._decorator import Call, throttle
from ._exceptions import (
    BackendError,
    CapacityExceeded,
    ConfigurationError,
    RateLimited,
    ThrottlekitError,
)
from ._transport import AsyncThrottledTransport, ThrottledTransport, default_backend
from .backends import Backend, Lease, MemoryBackend, Reservation
from .policies import (
    Concurrency,
    Dedupe,
    DedupeStatistics,
    HeaderPacing,
    PacingStatistics,
    RateLimit,
    Retry,
    RetryBudget,
)

if TYPE_CHECKING:
    from .backends.redis import RedisBackend

__version__ = "0.1.0.dev0"

__all__ = [
    "AdaptiveRate",
    "AsyncThrottledTransport",
    "Backend",
    "BackendError",
    "Backoff",
    "Call",
    "CapacityExceeded",
    "Concurrency",
    "ConfigurationError",
    "Dedupe",
    "DedupeStatistics",
    "HeaderPacing",
    "Lease",
    "Limit",
    "MemoryBackend",
    "PacingStatistics",
    "RateLimit",
    "RateLimitInfo",
    "RateLimited",
    "RedisBackend",
    "Reservation",
    "Retry",
    "RetryBudget",
    "ThrottledTransport",
    "ThrottlekitError",
    "default_backend",
    "keys",
    "parse_headers",
    "parse_rate",
    "presets",
    "throttle",
]


def __getattr__(name: str) -> Any:
    # RedisBackend needs the redis extra; import it only when asked for.
    if name == "RedisBackend":
        from .backends.redis import RedisBackend

        return RedisBackend
    raise AttributeError(f"module 'throttlekit' has no attribute {name!r}")
