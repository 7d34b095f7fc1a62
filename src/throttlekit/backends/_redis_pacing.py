"""How `RedisBackend` keeps `HeaderPacing`'s gates in Redis.

A gate is split in two keys with the same hash tag: the line (its ``tat``,
taken by every call with lua/pace.lua in one round trip) and the rest, what
responses taught (a hash written by `learn`). `learn` reads the hash and the
server's time (lua/gate.lua), applies `throttlekit._core.pacing.learn` here
in Python, and writes the result back only if nobody wrote in between
(lua/learn.lua), retrying otherwise. The arithmetic thus stays in one place,
and a busy line never makes a lesson retry, since `learn` never touches the
line.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from typing import Any, NamedTuple

from .._core import pacing
from .._exceptions import RateLimited
from ._base import Reservation
from ._redis_scripts import Arg

__all__ = ["PlaceTicket", "gate_args", "pace_args", "placed", "read_gate"]

# What the gate hash holds: every field of `pacing.Gate` but the line's tat.
_FIELDS = tuple(f.name for f in dataclasses.fields(pacing.Gate) if f.name != "tat")

# A gate with nothing left to apply is kept this much longer, or the
# config's max_pause if longer, so a run of 429s keeps doubling its pause.
_KEEP = 60.0


class PlaceTicket(NamedTuple):
    """A place on a pacing line; what lua/unpace.lua needs to give it back.

    Attributes:
        line: The line's key.
        before: The line's tat before the place, as stored.
        after: The line's tat after the place, as stored.
    """

    line: str
    before: bytes
    after: bytes


def pace_args(
    jitter: float, config: pacing.PacingConfig, max_wait: float | None
) -> list[Arg]:
    """Return the arguments of lua/pace.lua."""
    ceiling = config.adaptive.ceiling if config.adaptive is not None else 0.0
    bound = -1.0 if max_wait is None or math.isinf(max_wait) else max_wait
    return [repr(jitter), repr(config.spread), repr(ceiling), repr(bound)]


def placed(key: str, line: str, reply: bytes | str) -> Reservation:
    """Turn lua/pace.lua's reply into a place, or raise its refusal.

    Raises:
        RateLimited: The wait exceeded max_wait; nothing was taken.
    """
    fields = (reply.encode() if isinstance(reply, str) else reply).split()
    wait = float(fields[1])
    if fields[0] == b"0":
        paused = fields[2] == b"1"
        raise RateLimited(key, wait, reason=_why(paused))
    return Reservation(key, 0.0, wait, PlaceTicket(line, fields[3], fields[4]))


def read_gate(reply: Sequence[Any]) -> tuple[float, str, pacing.Gate]:
    """Turn lua/gate.lua's reply into the time, the version and the gate."""
    text = [_text(value) for value in reply]
    held = dict(zip(text[1::2], text[2::2], strict=True))
    values: dict[str, Any] = {
        name: float(held[name]) for name in _FIELDS if name in held
    }
    if "strikes" in values:
        values["strikes"] = int(values["strikes"])
    return float(text[0]), held.get("v", ""), pacing.Gate(**values)


def gate_args(
    version: str, gate: pacing.Gate, now: float, config: pacing.PacingConfig
) -> list[Arg]:
    """Return the arguments of lua/learn.lua to store ``gate``."""
    idle = pacing.idle_at(dataclasses.replace(gate, tat=0.0))
    keep = max(0.0, idle - now) + max(_KEEP, config.max_pause)
    args: list[Arg] = [version, math.ceil(keep * 1000)]
    for name in _FIELDS:
        args += [name, repr(getattr(gate, name))]
    return args


def _why(paused: bool) -> str:
    if paused:
        return "paused at the server's request"
    return "paced from the server's headers"


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)
