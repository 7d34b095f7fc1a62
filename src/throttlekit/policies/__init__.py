"""Policies: the small objects users compose into a throttled transport."""

from .concurrency import Concurrency
from .rate import RateLimit

__all__ = ["Concurrency", "RateLimit"]
