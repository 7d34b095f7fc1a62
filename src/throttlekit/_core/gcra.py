"""The generic cell rate algorithm (GCRA), with reservations.

A limit of ``amount`` per ``period`` gives each unit of cost an emission
interval ``T = period / amount``. A bucket remembers one number per limit, its
theoretical arrival time ``TAT``: the moment the bucket would be empty again
if nothing else arrived. A burst ``b`` lets the schedule run ahead of the clock
by the tolerance ``tau = b * T``.

A request of cost ``c`` arriving at ``now`` conforms to a limit when::

    max(TAT, now) + c * T - tau <= now

Otherwise it conforms after ``wait = max(TAT, now) + c * T - tau - now``.
Several limits are decided together: the request is admitted at
``admit = now + max(wait_i)``, and only then is every limit charged, as if
the request arrived at ``admit``::

    TAT_i' = max(TAT_i, admit) + c * T_i

Charging at the admission time keeps the short limits honest when a long
limit holds the request back. In any window of length ``t`` a bucket admits
at most ``amount / period * t + b`` units of cost.

Reservations: the caller is charged at once for a future admission time and
holds that place in line while it waits. A reservation that is given back is
undone when nothing was reserved after it; see `ReservationLedger`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

from .._exceptions import CapacityExceeded
from .rates import Limit

__all__ = [
    "ReservationLedger",
    "Slot",
    "capacity",
    "check_cost",
    "reserve",
]

# Waits shorter than this are rounding error, far below any clock's precision.
_EPSILON = 1e-9


@dataclass(frozen=True)
class Slot:
    """Where a request lands in a bucket's schedule.

    Attributes:
        wait: Seconds from ``now`` until the request may go; never negative.
        tats: Theoretical arrival times after charging the request.
    """

    wait: float
    tats: tuple[float, ...]


def capacity(limits: Sequence[Limit]) -> float:
    """Return the largest cost the limits can ever admit in one request."""
    return min(limit.burst for limit in limits)


def check_cost(key: str, limits: Sequence[Limit], cost: float) -> None:
    """Raise when ``cost`` is not a valid cost for these limits.

    Raises:
        ValueError: ``cost`` is negative or not finite.
        CapacityExceeded: ``cost`` is larger than the burst capacity, so no
            amount of waiting would admit it.
    """
    if not (cost >= 0 and math.isfinite(cost)):
        raise ValueError(f"cost must be a finite number >= 0, got {cost!r}")
    limit = capacity(limits)
    if cost > limit:
        raise CapacityExceeded(key, cost, limit)


def reserve(
    limits: Sequence[Limit],
    tats: Sequence[float],
    now: float,
    cost: float,
) -> Slot:
    """Compute where a request of ``cost`` arriving at ``now`` lands.

    Args:
        limits: The limits of the bucket, decided together.
        tats: The bucket's theoretical arrival times, one per limit, in the
            same clock as ``now``; use ``now`` or less for an idle bucket.
        now: The current time, seconds.
        cost: The request's cost; check it first with `check_cost`.

    Returns:
        The wait and the bucket's new state if the caller commits.
    """
    wait = 0.0
    for limit, tat in zip(limits, tats, strict=True):
        due = max(tat, now) + cost * limit.interval - limit.tolerance - now
        wait = max(wait, due)
    if wait < _EPSILON:
        # Float residue from summing intervals; not a real wait.
        wait = 0.0

    admit = now + wait
    new_tats = tuple(
        max(tat, admit) + cost * limit.interval
        for limit, tat in zip(limits, tats, strict=True)
    )
    return Slot(wait, new_tats)


@dataclass
class _Entry:
    before: tuple[float, ...]
    after: tuple[float, ...]
    admit: float
    cancelled: bool = False


@dataclass
class ReservationLedger:
    """A bucket's state with its outstanding reservations.

    Giving back a reservation is exact when it is the last one made: the
    bucket returns to the state before it. A reservation given back from the
    middle of the line is marked, and undone together with the ones behind
    it once they are all given back; until then the line keeps its pace, so
    the schedule never admits more than the limits allow.
    """

    tats: tuple[float, ...]
    entries: list[_Entry] = field(default_factory=list)

    def commit(self, slot: Slot, now: float) -> object:
        """Charge ``slot`` and return a handle for `cancel`."""
        self._forget_admitted(now)
        entry = _Entry(self.tats, slot.tats, now + slot.wait)
        self.entries.append(entry)
        self.tats = slot.tats
        return entry

    def cancel(self, handle: object, now: float) -> None:
        """Give back the reservation behind ``handle``; harmless twice."""
        if not isinstance(handle, _Entry):
            raise TypeError(f"not a reservation handle: {handle!r}")
        handle.cancelled = True
        while self.entries and self.entries[-1].cancelled:
            self.tats = self.entries.pop().before
        self._forget_admitted(now)

    def pending(self, now: float) -> int:
        """Return how many reservations are still waiting for their turn."""
        return sum(1 for e in self.entries if e.admit > now and not e.cancelled)

    def idle_at(self) -> float:
        """Return the time from which the bucket is as good as new."""
        return max(self.tats, default=-math.inf)

    def _forget_admitted(self, now: float) -> None:
        # Entries whose time has come are spent: their callers have gone.
        # Dropping them keeps the ledger as long as the line, not the history.
        # A cancelled entry still in the future stays, so that it is undone
        # when the ones behind it are given back too.
        drop = 0
        for entry in self.entries:
            if entry.admit > now:
                break
            drop += 1
        if drop:
            del self.entries[:drop]
