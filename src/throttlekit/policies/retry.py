"""`Retry`: try again on rate limits, overloads and transport errors."""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Collection
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Literal

import httpx

from .. import keys as _keys
from .._core.backoff import Backoff
from .._core.budget import BudgetConfig
from .._core.headers import MAX_RETRY_AFTER, parse_headers
from .._exceptions import RateLimited, ThrottlekitError
from .._flow import Context, Flow, Send, Sleep
from .._validate import seconds

__all__ = [
    "IDEMPOTENT_METHODS",
    "RETRY_EXCEPTIONS",
    "RETRY_STATUSES",
    "Retry",
    "RetryBudget",
]

logger = logging.getLogger("throttlekit.retry")

#: Methods RFC 9110 §9.2.2 defines as idempotent: safe to send twice.
IDEMPOTENT_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "DELETE", "TRACE"})
#: Statuses retried by default: rate limited, bad gateway, unavailable, timeout.
RETRY_STATUSES = frozenset({429, 502, 503, 504})

_LONGEST = 366 * 86400.0

Verdict = Literal["retry", "give", "refuse"]

# Statuses `RateLimitInfo.rate_limited` can be true for (RFC 6585 §4, and
# the 403 and 503 that some servers send with Retry-After).
_MAYBE_RATE_LIMITED = frozenset({403, 429, 503})

#: Exceptions retried by default: failures to connect, read or write, and
#: protocol breaks by the server. Not a full pool (retrying makes it worse),
#: an unsupported scheme or a local protocol error (they cannot succeed).
RETRY_EXCEPTIONS: tuple[type[BaseException], ...] = (
    httpx.ConnectError,
    httpx.ConnectTimeout,
    httpx.ReadError,
    httpx.ReadTimeout,
    httpx.WriteError,
    httpx.WriteTimeout,
    httpx.RemoteProtocolError,
)


class RetryBudget:
    """Cap retries at a share of first attempts, across the whole fleet.

    Each first attempt earns ``ratio`` retry tokens (up to ``cap``) and each
    retry spends one, counted in the backend so every process shares the
    count. During an outage the fleet then adds about ``ratio`` extra
    attempts per first attempt instead of multiplying its load; once errors
    stop, first attempts refill it.

    Args:
        ratio: Tokens per first attempt, in ``(0, 1]``; default 0.1.
        cap: Most tokens saved up, at least 1; default 10. A budget starts
            full.
        key: Which budget a call uses: a key function, a string, or ``None``
            (default) for the request's host (one budget for plain calls).
        name: Prefix of the budget names; default ``"retry"``.
    """

    def __init__(
        self,
        ratio: float = 0.1,
        *,
        cap: float = 10.0,
        key: _keys.KeyFunc | str | None = None,
        name: str = "retry",
    ) -> None:
        self.config = BudgetConfig(ratio=ratio, cap=cap)
        self.key = _host_or_all if key is None else _keys.resolve(key)
        self.name = name

    def __repr__(self) -> str:
        return f"RetryBudget({self.config.ratio!r}, cap={self.config.cap!r})"

    def name_for(self, call: Any) -> str | None:
        """Return the budget's full name for ``call``, or None for none."""
        key = self.key(call)
        return None if key is None else f"{self.name}|{key}"


def _host_or_all(call: Any) -> str | None:
    if isinstance(call, httpx.Request):
        return _keys.host()(call)
    return "all"


class Retry:
    """Send a call again when the server or the network says "not now".

    Retries, by default, responses 429, 502, 503 and 504 and httpx transport
    errors, for idempotent methods whose body can be sent again. Between
    attempts it waits what the server asks (``Retry-After``, or the reset
    when nothing remains) or, when the server says nothing, an exponential
    backoff with full jitter. Every response it discards is closed first.

    It stops at ``attempts``, at ``deadline``, or when the server asks for a
    wait longer than ``max_retry_after`` or than the time left; then it
    returns the last response, or re-raises the last exception, unchanged —
    except that a rate-limited answer whose wait cannot be afforded raises
    `RateLimited` carrying that wait, so the caller can decide. A 401, or a
    403 that is not a rate limit, is never retried.

    Put `Retry` before the budget policies (`RateLimit`, `HeaderPacing`), so
    that every attempt spends budget and respects pauses like the first.

    Args:
        attempts: Attempts in all, the first included; at least 1; default 6.
        statuses: Response statuses to retry.
        methods: Request methods to retry; ``None`` (default) for the
            idempotent ones. Calls that are not httpx requests are retried
            whatever their method.
        exceptions: Exception types to retry; default `RETRY_EXCEPTIONS`:
            httpx's connect, read and write errors and timeouts and remote
            protocol errors, not a pool timeout or an unsupported protocol
            (throttlekit's own errors are never retried).
        backoff: The schedule when the server gives no wait; default
            ``Backoff(initial=0.5, multiplier=2, cap=30)`` with full jitter.
        deadline: Seconds from the first attempt after which no retry starts
            and no wait runs past; ``None`` (default) for no bound.
        max_retry_after: Longest server-requested wait to sleep through,
            seconds; default one hour.
        retry_after: For calls outside httpx: a function from the exception
            to the seconds the server asked to wait, or ``None``.
        budget: A `RetryBudget` shared by the fleet; ``None`` (default) for
            none. Costs one backend call per first attempt and per retry.

    Example:
        >>> import throttlekit as tk
        >>> transport = tk.ThrottledTransport(
        ...     tk.Retry(attempts=6), tk.RateLimit("10/second"), tk.HeaderPacing()
        ... )
    """

    def __init__(
        self,
        attempts: int = 6,
        *,
        statuses: Collection[int] = RETRY_STATUSES,
        methods: Collection[str] | None = None,
        exceptions: tuple[type[BaseException], ...] = RETRY_EXCEPTIONS,
        backoff: Backoff | None = None,
        deadline: float | timedelta | None = None,
        max_retry_after: float | timedelta = MAX_RETRY_AFTER,
        retry_after: Callable[[BaseException], float | None] | None = None,
        budget: RetryBudget | None = None,
    ) -> None:
        if isinstance(attempts, bool) or not isinstance(attempts, int) or attempts < 1:
            raise ValueError(f"attempts must be an int >= 1, got {attempts!r}")
        self.attempts = attempts
        self.statuses = _statuses(statuses)
        self.methods = IDEMPOTENT_METHODS if methods is None else _upper(methods)
        self.exceptions = _exception_types(exceptions)
        if backoff is not None and not isinstance(backoff, Backoff):
            raise TypeError(f"backoff must be a Backoff or None, got {backoff!r}")
        self.backoff = backoff if backoff is not None else Backoff()
        self.deadline = seconds("deadline", deadline)
        limit = seconds("max_retry_after", max_retry_after)
        if limit is None or math.isinf(limit):
            raise ValueError(
                f"max_retry_after must be finite seconds >= 0, got {max_retry_after!r}"
            )
        self.max_retry_after = limit
        if retry_after is not None and not callable(retry_after):
            raise TypeError(
                f"retry_after must be a function or None, got {retry_after!r}"
            )
        self.retry_after = retry_after
        if budget is not None and not isinstance(budget, RetryBudget):
            raise TypeError(f"budget must be a RetryBudget, got {budget!r}")
        self.budget = budget

    def __repr__(self) -> str:
        return f"Retry(attempts={self.attempts})"

    def flow(self, call: Any, ctx: Context) -> Flow[Any]:
        """Send the call, and again while the answer is worth retrying."""
        if not self._may_repeat(call):
            return (yield Send(call))

        started = ctx.clock()
        attempt = 1
        budget = self.budget.name_for(call) if self.budget else None
        if budget is not None:
            yield Earn(budget, self._budget_config())
        while True:
            ctx.attempts = attempt
            result, error = None, None
            try:
                result = yield Send(call)
            except self.exceptions as exc:
                if isinstance(exc, ThrottlekitError):
                    raise
                error = exc

            outcome = self._outcome(result, error, attempt)
            if outcome is None:
                return _give(result, error)
            verdict = self._verdict(
                outcome, attempt, _left(self.deadline, started, ctx)
            )
            if verdict == "refuse":
                # The server asked for a wait we cannot afford: free the
                # connection, then let the caller decide.
                if isinstance(result, httpx.Response):
                    yield Close(result)
                raise RateLimited(
                    _budget_key(call),
                    outcome.wait,
                    reason="server asked for a longer wait",
                )
            if verdict == "give":
                logger.warning("giving up on %s: %s", _describe(call), outcome.note)
                return _give(result, error)
            if budget is not None and not (yield Spend(budget, self._budget_config())):
                logger.warning("retry budget %s is spent; not retrying", budget)
                return _give(result, error)

            if isinstance(result, httpx.Response):
                yield Close(result)
            yield Sleep(outcome.wait)
            attempt += 1

    def _budget_config(self) -> BudgetConfig:
        assert self.budget is not None
        return self.budget.config

    def _may_repeat(self, call: Any) -> bool:
        if not isinstance(call, httpx.Request):
            return True
        if call.method.upper() not in self.methods:
            return False
        # A body read from an iterator cannot be sent twice.
        return isinstance(call.stream, httpx.ByteStream)

    def _outcome(
        self, result: Any, error: BaseException | None, attempt: int
    ) -> _Outcome | None:
        if error is not None:
            asked = self.retry_after(error) if self.retry_after else None
            return self._wait(asked, attempt, rate_limited=asked is not None)
        if not isinstance(result, httpx.Response):
            return None
        status = result.status_code
        if status not in self.statuses and status not in _MAYBE_RATE_LIMITED:
            return None  # the common success: no headers worth reading

        info = parse_headers(
            result.status_code,
            result.headers.multi_items(),
            time.time(),
            max_retry_after=_LONGEST,
        )
        if result.status_code not in self.statuses and not info.rate_limited:
            return None
        return self._wait(info.delay, attempt, info.rate_limited)

    def _wait(self, asked: float | None, attempt: int, rate_limited: bool) -> _Outcome:
        if asked is not None and math.isfinite(asked) and asked >= 0:
            return _Outcome(asked, asked=True, rate_limited=rate_limited)
        return _Outcome(self.backoff.delay(attempt), False, rate_limited)

    def _verdict(self, outcome: _Outcome, attempt: int, left: float) -> Verdict:
        """Decide whether to wait and try again ("retry"), return what came
        ("give"), or refuse a rate-limited wait we cannot afford."""
        if attempt >= self.attempts:
            outcome.note = f"{attempt} attempts made"
            return "give"

        bound = min(left, self.max_retry_after if outcome.asked else math.inf)
        if outcome.wait <= bound:
            return "retry"
        if outcome.rate_limited and outcome.asked:
            return "refuse"
        outcome.note = f"next wait {outcome.wait:.3f}s exceeds the {bound:.3f}s left"
        return "give"


@dataclass
class _Outcome:
    wait: float
    asked: bool
    rate_limited: bool
    note: str = ""


@dataclass(frozen=True)
class Close:
    """Close a response that will not be returned, freeing its connection."""

    response: httpx.Response

    def run(self, ctx: Context) -> None:
        self.response.close()

    async def arun(self, ctx: Context) -> None:
        await self.response.aclose()


@dataclass(frozen=True)
class Earn:
    """Credit a retry budget for a first attempt."""

    key: str
    config: BudgetConfig

    def run(self, ctx: Context) -> None:
        ctx.backend.earn(self.key, self.config)

    async def arun(self, ctx: Context) -> None:
        await ctx.backend.aearn(self.key, self.config)


@dataclass(frozen=True)
class Spend:
    """Take a retry from a budget; the result says whether it may go."""

    key: str
    config: BudgetConfig

    def run(self, ctx: Context) -> bool:
        return ctx.backend.spend(self.key, self.config)

    async def arun(self, ctx: Context) -> bool:
        return await ctx.backend.aspend(self.key, self.config)


def _give(result: Any, error: BaseException | None) -> Any:
    if error is not None:
        raise error
    return result


def _left(deadline: float | None, started: float, ctx: Context) -> float:
    left = ctx.remaining
    if deadline is not None:
        left = min(left, deadline - (ctx.clock() - started))
    return max(0.0, left)


def _budget_key(call: Any) -> str:
    if isinstance(call, httpx.Request):
        return _keys.host()(call) or "all"
    return "all"


def _describe(call: Any) -> str:
    if isinstance(call, httpx.Request):
        return f"{call.method} {call.url.host}{call.url.path}"
    function = getattr(call, "function", None)
    return getattr(function, "__qualname__", type(call).__name__)


def _upper(methods: Collection[str]) -> frozenset[str]:
    if isinstance(methods, str) or not all(isinstance(m, str) for m in methods):
        raise TypeError(f"methods must be a collection of names, got {methods!r}")
    return frozenset(method.upper() for method in methods)


def _statuses(statuses: Collection[int]) -> frozenset[int]:
    try:
        checked = frozenset(statuses)
    except TypeError:
        checked = frozenset({None})  # type: ignore[arg-type]
    if not all(isinstance(s, int) and 100 <= s <= 599 for s in checked):
        raise TypeError(
            f"statuses must be a collection of HTTP status codes, got {statuses!r}"
        )
    return checked


def _exception_types(
    exceptions: tuple[type[BaseException], ...],
) -> tuple[type[BaseException], ...]:
    if not isinstance(exceptions, tuple) or not all(
        isinstance(e, type) and issubclass(e, BaseException) for e in exceptions
    ):
        raise TypeError(
            f"exceptions must be a tuple of exception types, got {exceptions!r}"
        )
    return exceptions
