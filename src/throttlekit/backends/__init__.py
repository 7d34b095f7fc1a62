"""Backends: where shared limiter state lives."""

from ._base import Backend, Lease, Reservation
from .memory import MemoryBackend

__all__ = ["Backend", "Lease", "MemoryBackend", "Reservation"]
