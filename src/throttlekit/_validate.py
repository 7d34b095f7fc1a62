"""Argument checks shared by the public constructors."""

from __future__ import annotations

import math
from datetime import timedelta

__all__ = ["seconds"]


def seconds(name: str, value: float | timedelta | None) -> float | None:
    """Return ``value`` as float seconds, or raise naming ``name``.

    ``None`` passes through; a `timedelta` is converted.

    Raises:
        TypeError: ``value`` is not a number or timedelta.
        ValueError: ``value`` is negative or not a number.
    """
    if value is None:
        return None
    if isinstance(value, timedelta):
        value = value.total_seconds()
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{name} must be seconds (float or timedelta), got {value!r}")
    if math.isnan(value) or value < 0:
        raise ValueError(f"{name} must be >= 0 seconds, got {value!r}")
    return float(value)
