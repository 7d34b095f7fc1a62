"""`throttle`: the same policies around plain sync or async functions.

For SDKs not built on httpx, or any function that spends a budget: the
function's call passes through the policies exactly as a request passes
through `ThrottledTransport`. Key functions receive a `Call`.
"""

from __future__ import annotations

import asyncio
import functools
import inspect
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, TypeVar, cast

from ._flow import Context, Policy, run_async, run_sync
from ._transport import _check_policies, default_backend
from ._validate import seconds
from .backends._base import Backend

__all__ = ["Call", "throttle"]

F = TypeVar("F", bound=Callable[..., Any])


@dataclass(frozen=True)
class Call:
    """One call of a throttled function, as key functions see it.

    Attributes:
        function: The decorated function.
        args: Positional arguments of the call.
        kwargs: Keyword arguments of the call.
    """

    function: Callable[..., Any]
    args: tuple[Any, ...]
    kwargs: Mapping[str, Any] = field(default_factory=dict)

    def argument(self, name: str) -> Any:
        """Return the value bound to parameter ``name``, defaults included.

        A name the function only takes through ``**kwargs`` is found there.

        Raises:
            KeyError: The function has no parameter ``name``.
            TypeError: The call itself is invalid (a required argument is
                missing), as calling the function would raise.
        """
        signature = inspect.signature(self.function)
        bound = signature.bind(*self.args, **self.kwargs)
        bound.apply_defaults()
        if name in bound.arguments and name in signature.parameters:
            return bound.arguments[name]
        for parameter in signature.parameters.values():
            if parameter.kind is inspect.Parameter.VAR_KEYWORD:
                extra = bound.arguments.get(parameter.name, {})
                if name in extra:
                    return extra[name]
                if name not in signature.parameters:
                    return None  # may come through **kwargs; not this time
        raise KeyError(f"{self.function.__qualname__} has no parameter {name!r}")


def throttle(
    *policies: Policy[Call, Any],
    backend: Backend | None = None,
    max_wait: float | timedelta | None = None,
) -> Callable[[F], F]:
    """Decorate a sync or async function so its calls obey ``policies``.

    Args:
        *policies: `RateLimit`, `Concurrency` and other policies, outermost
            first. Their key functions receive a `Call`; see
            `throttlekit.keys.argument`.
        backend: Where budgets live. ``None`` (default): the process-wide
            `MemoryBackend`.
        max_wait: Seconds a call may wait in all before `RateLimited` is
            raised. ``None`` (default): no bound.

    Example:
        >>> import throttlekit as tk
        >>> @tk.throttle(
        ...     tk.RateLimit("10/second", key=tk.keys.argument("org_id"))
        ... )
        ... def get_networks(org_id: str) -> list[str]:
        ...     return []
    """
    _check_policies(policies)
    limit = seconds("max_wait", max_wait)

    def decorate(function: F) -> F:
        if inspect.isgeneratorfunction(function) or inspect.isasyncgenfunction(
            function
        ):
            raise TypeError(
                f"throttle cannot wrap the generator function "
                f"{function.__qualname__}: its body runs after the call returns, "
                "outside the policies; throttle a function that fetches each item"
            )

        def context() -> Context:
            chosen = backend if backend is not None else default_backend()
            return Context(chosen, float("inf") if limit is None else limit)

        if inspect.iscoroutinefunction(function):
            return cast(F, _async_wrapper(function, policies, context))
        return cast(F, _sync_wrapper(function, policies, context))

    return decorate


def _sync_wrapper(
    function: Callable[..., Any],
    policies: tuple[Policy[Call, Any], ...],
    context: Callable[[], Context],
) -> Callable[..., Any]:
    @functools.wraps(function)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        ctx = context()
        ctx.sleep = time.sleep
        call = Call(function, args, kwargs)
        return run_sync(policies, call, ctx, _invoke)

    return wrapper


def _async_wrapper(
    function: Callable[..., Awaitable[Any]],
    policies: tuple[Policy[Call, Any], ...],
    context: Callable[[], Context],
) -> Callable[..., Awaitable[Any]]:
    @functools.wraps(function)
    async def wrapper(*args: Any, **kwargs: Any) -> Any:
        ctx = context()
        ctx.asleep = asyncio.sleep
        call = Call(function, args, kwargs)
        return await run_async(policies, call, ctx, _ainvoke)

    return wrapper


def _invoke(call: Call) -> Any:
    return call.function(*call.args, **call.kwargs)


async def _ainvoke(call: Call) -> Any:
    return await call.function(*call.args, **call.kwargs)
