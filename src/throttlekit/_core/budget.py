"""The retry budget: retries may add only a share of the traffic.

A fleet that retries every failure multiplies its load exactly when the
server can least take it. The budget is a token count per key, shared by the
whole fleet through the backend:

- every first attempt earns ``ratio`` tokens, up to ``cap``;
- every retry spends one token, and is refused when less than one is left.

During an outage, then, the fleet sends at most ``ratio`` extra attempts per
first attempt (about 10% with the default), plus the ``cap`` saved up before
it; when errors stop, first attempts refill the budget.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

__all__ = ["BudgetConfig", "deposit", "withdraw"]


@dataclass(frozen=True)
class BudgetConfig:
    """How a retry budget fills and empties.

    Attributes:
        ratio: Tokens each first attempt earns; in ``(0, 1]``.
        cap: The most tokens saved up; at least 1. A new budget starts full.
    """

    ratio: float = 0.1
    cap: float = 10.0

    def __post_init__(self) -> None:
        for name in ("ratio", "cap"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise TypeError(f"{name} must be a number, got {value!r}")
        if not (math.isfinite(self.ratio) and 0 < self.ratio <= 1):
            raise ValueError(f"ratio must be in (0, 1], got {self.ratio!r}")
        if not (math.isfinite(self.cap) and self.cap >= 1):
            raise ValueError(f"cap must be a finite number >= 1, got {self.cap!r}")


def deposit(tokens: float | None, config: BudgetConfig) -> float:
    """Return the token count after a first attempt earns its share."""
    start = config.cap if tokens is None else tokens
    return min(config.cap, start + config.ratio)


def withdraw(tokens: float | None, config: BudgetConfig) -> tuple[bool, float]:
    """Return whether a retry may go, and the token count after it."""
    start = config.cap if tokens is None else tokens
    if start < 1:
        return False, start
    return True, start - 1
