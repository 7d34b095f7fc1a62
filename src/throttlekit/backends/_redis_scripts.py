"""The Lua scripts behind `RedisBackend`, one per atomic operation.

The sources ship as package data in ``lua/``; each file's header lists its
KEYS and ARGV, units and time source. Scripts run by digest (``EVALSHA``), so
a decision costs one round trip with a short request; when the server has
lost its script cache (a restart, ``SCRIPT FLUSH``, a failover) the same call
is repeated once with the source (``EVAL``), which caches it again on the
node that owns the key, Redis Cluster included.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from importlib import resources
from typing import Any

import redis
import redis.asyncio
import redis.asyncio.cluster
import redis.cluster

__all__ = [
    "ACQUIRE",
    "CANCEL",
    "EARN",
    "GATE",
    "LEARN",
    "PACE",
    "PAUSED",
    "RENEW",
    "RESERVE",
    "SPEND",
    "UNPACE",
    "Arg",
    "AsyncClient",
    "SyncClient",
]

SyncClient = redis.Redis | redis.cluster.RedisCluster
AsyncClient = redis.asyncio.Redis | redis.asyncio.cluster.RedisCluster
#: A script argument; redis-py sends numbers as their decimal text.
Arg = int | float | str | bytes


@dataclass(frozen=True)
class Script:
    """A Lua script and its digest.

    Attributes:
        name: The file name without ``.lua``.
        source: The script's text.
        sha: Its SHA1 digest, hex, as ``EVALSHA`` wants it.
    """

    name: str
    source: str
    sha: str

    def run(self, client: SyncClient, keys: Sequence[str], args: Sequence[Arg]) -> Any:
        """Run the script on ``keys`` with ``args``, blocking."""
        try:
            return client.evalsha(self.sha, len(keys), *keys, *args)
        except redis.exceptions.NoScriptError:
            return client.eval(self.source, len(keys), *keys, *args)

    async def arun(
        self, client: AsyncClient, keys: Sequence[str], args: Sequence[Arg]
    ) -> Any:
        """Run the script on ``keys`` with ``args``, awaiting."""
        try:
            return await client.evalsha(self.sha, len(keys), *keys, *args)
        except redis.exceptions.NoScriptError:
            return await client.eval(self.source, len(keys), *keys, *args)

    async def arun_many(
        self,
        client: AsyncClient,
        calls: Sequence[tuple[Sequence[str], Sequence[Arg]]],
    ) -> list[Any]:
        """Run the script once per call, all in one round trip.

        On Redis Cluster, which pipelines no scripts, the calls go out
        concurrently instead, each to the node that owns its keys.

        Returns:
            Each call's reply, or the `redis.ResponseError` it failed with.

        Raises:
            redis.RedisError: The round trip itself failed.
        """
        if len(calls) == 1 or isinstance(client, redis.asyncio.cluster.RedisCluster):
            replies = await asyncio.gather(
                *(self.arun(client, keys, args) for keys, args in calls),
                return_exceptions=True,
            )
            return [_reply(reply) for reply in replies]

        pipe = client.pipeline(transaction=False)
        for keys, args in calls:
            pipe.evalsha(self.sha, len(keys), *keys, *args)
        piped: list[Any] = await pipe.execute(raise_on_error=False)
        for index, reply in enumerate(piped):
            if isinstance(reply, redis.exceptions.NoScriptError):
                try:
                    piped[index] = await self.arun(client, *calls[index])
                except redis.exceptions.ResponseError as exc:
                    piped[index] = exc
        return piped


def _reply(reply: Any) -> Any:
    """Pass a reply or a per-call error through; raise anything else."""
    if isinstance(reply, BaseException) and not isinstance(
        reply, redis.exceptions.ResponseError
    ):
        raise reply
    return reply


def load(name: str) -> Script:
    """Read the script ``lua/<name>.lua`` shipped with the package."""
    folder = resources.files("throttlekit.backends").joinpath("lua")
    source = folder.joinpath(f"{name}.lua").read_text(encoding="utf-8")
    sha = hashlib.sha1(source.encode(), usedforsecurity=False).hexdigest()
    return Script(name, source, sha)


RESERVE = load("reserve")
CANCEL = load("cancel")
ACQUIRE = load("acquire")
RENEW = load("renew")
PACE = load("pace")
PAUSED = load("paused")
UNPACE = load("unpace")
GATE = load("gate")
LEARN = load("learn")
EARN = load("earn")
SPEND = load("spend")
