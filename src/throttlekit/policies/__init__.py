"""Policies: the small objects users compose into a throttled transport."""

from .concurrency import Concurrency
from .dedupe import Dedupe, DedupeStatistics
from .pacing import HeaderPacing, PacingStatistics
from .rate import RateLimit
from .retry import Retry, RetryBudget

__all__ = [
    "Concurrency",
    "Dedupe",
    "DedupeStatistics",
    "HeaderPacing",
    "PacingStatistics",
    "RateLimit",
    "Retry",
    "RetryBudget",
]
