"""Idempotency records in the shared Redis, so every replica sees every key.

One string per (workspace, key) under ``prefix`` + the scope's SHA-256, written only by small
Lua scripts (each atomic): ``R`` + fingerprint + owner while running, with ``PX`` = the lease;
``D`` + fingerprint + owner + the kept answer once finished, with ``EX`` = the TTL. So a
replica that dies mid-call leaves a marker that lapses on its own. Redis being down is
``RecordsUnavailable``: the caller refuses the request rather than risk a second charge.
"""

from __future__ import annotations

import logging
from typing import Any

from ..redisconn import FailFastRedis, RedisDown
from .keys import Scope
from .records import Entry, RecordsUnavailable

log = logging.getLogger("imagegate.idempotency")

FP_CHARS = 64  # hex SHA-256
OWNER_CHARS = 32  # hex of 16 random bytes
HEAD = 1 + FP_CHARS + OWNER_CHARS

CLAIM = """
local cur = redis.call('GET', KEYS[1])
if cur then return cur end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
return false
"""
RENEW = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return 0
"""
FINISH = """
local cur = redis.call('GET', KEYS[1])
if cur == ARGV[1] or not cur then
  redis.call('SET', KEYS[1], ARGV[2], 'EX', ARGV[3])
  return 1
end
return 0
"""
ABANDON = """
local cur = redis.call('GET', KEYS[1])
if cur and string.sub(cur, 66, 97) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""


def running(fingerprint: str, owner: str) -> bytes:
    return f"R{fingerprint}{owner}".encode()


def parse(raw: bytes) -> Entry:
    if len(raw) < HEAD or raw[:1] not in (b"R", b"D"):
        raise RecordsUnavailable("unreadable idempotency record")
    fingerprint = raw[1 : 1 + FP_CHARS].decode()
    owner = raw[1 + FP_CHARS : HEAD].decode()
    return Entry(fingerprint, owner, raw[HEAD:] if raw[:1] == b"D" else None)


class RedisRecords:
    def __init__(self, url: str, *, prefix: str, timeout_s: float = 0.5) -> None:
        self.prefix = prefix
        self.redis = FailFastRedis(
            url,
            consequence="refusing requests with an Idempotency-Key (503)",
            log=log,
            timeout_s=timeout_s,
            retry_after_s=1.0,
        )
        client = self.redis.client
        self._claim = client.register_script(CLAIM)
        self._renew = client.register_script(RENEW)
        self._finish = client.register_script(FINISH)
        self._abandon = client.register_script(ABANDON)

    def name(self, scope: Scope) -> str:
        return self.prefix + scope.digest

    async def claim(
        self, scope: Scope, fingerprint: str, owner: str, lease_s: float
    ) -> Entry | None:
        value = running(fingerprint, owner)
        found = await self._call("claim", self._claim, scope, value, int(lease_s * 1000))
        return None if found is None else parse(found)

    async def renew(self, scope: Scope, fingerprint: str, owner: str, lease_s: float) -> bool:
        value = running(fingerprint, owner)
        return bool(await self._call("renew", self._renew, scope, value, int(lease_s * 1000)))

    async def finish(
        self, scope: Scope, fingerprint: str, owner: str, answer: bytes, ttl_s: int
    ) -> bool:
        done = b"D" + running(fingerprint, owner)[1:] + answer
        value = running(fingerprint, owner)
        return bool(await self._call("finish", self._finish, scope, value, done, ttl_s))

    async def abandon(self, scope: Scope, owner: str) -> None:
        await self._call("abandon", self._abandon, scope, owner)

    async def _call(self, op: str, script: Any, scope: Scope, *args: Any) -> Any:
        try:
            return await self.redis.call(op, lambda: script(keys=[self.name(scope)], args=args))
        except RedisDown as exc:
            raise RecordsUnavailable(f"redis: {op}") from exc

    async def close(self) -> None:
        await self.redis.close()
