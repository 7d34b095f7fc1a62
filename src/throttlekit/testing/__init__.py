"""Tools for testing code that uses throttlekit.

`FakeClock` replaces real time: give its `now` to a backend as the clock and
its `sleep` / `asleep` to a transport, and waits pass instantly while the
arithmetic stays exact.
"""

from ._clock import FakeClock

__all__ = ["FakeClock"]
