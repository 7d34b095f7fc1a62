"""Policies: the small objects users compose into a throttled transport."""

from .concurrency import Concurrency
from .dedupe import Dedupe, DedupeStatistics
from .rate import RateLimit

__all__ = ["Concurrency", "Dedupe", "DedupeStatistics", "RateLimit"]
