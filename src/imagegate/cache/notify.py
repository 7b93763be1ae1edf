"""Wake-ups for replicas waiting on another replica's flight: one Redis pub/sub channel.

A finished flight publishes its cache key on ``channel`` (``flights.FINISH`` does it in the
same round trip that stores the answer and frees the lock). Each process holds one
subscription, opened on the first wait and kept; a waiting flight registers an
``asyncio.Event`` under its key and the listener sets it. A notification is only a hint: the
waiter still reads Redis, and it looks again every ``poll_s`` whether or not one arrives, so
a lost message, a dropped subscription or a leader that died costs a poll, never a hang.

The subscription has its own connection without a read timeout (it is idle by design); it is
never on a request's path: a request waits for it to be confirmed at most ``timeout_s``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from redis.asyncio import Redis
from redis.exceptions import RedisError

log = logging.getLogger("imagegate.cache")


class Notifier:
    def __init__(
        self, url: str, channel: str, *, timeout_s: float = 0.25, retry_after_s: float = 1.0
    ) -> None:
        self.url = url
        self.channel = channel
        self.timeout_s = timeout_s
        self.retry_after_s = retry_after_s
        self._waiters: dict[str, set[asyncio.Event]] = {}
        self._ready = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self.received = 0

    def watch(self, key: str) -> asyncio.Event:
        """An event set when ``key``'s flight is announced finished (give it back: ``unwatch``)."""
        event = asyncio.Event()
        self._waiters.setdefault(key, set()).add(event)
        return event

    def unwatch(self, key: str, event: asyncio.Event) -> None:
        events = self._waiters.get(key)
        if events is not None:
            events.discard(event)
            if not events:
                del self._waiters[key]

    async def ready(self) -> bool:
        """Start listening if not yet; whether the subscription is confirmed (within the
        timeout: otherwise the caller polls)."""
        if self._task is None or self._task.done():
            self._ready.clear()
            self._task = asyncio.ensure_future(self._listen())
        if self._ready.is_set():
            return True
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(self.timeout_s):
                await self._ready.wait()
        return self._ready.is_set()

    def _announce(self, key: str) -> None:
        self.received += 1
        for event in self._waiters.get(key, ()):
            event.set()

    async def _listen(self) -> None:
        """Subscribe and dispatch for ever; after a failure, wait and subscribe again."""
        while True:
            client = Redis.from_url(self.url, socket_connect_timeout=self.timeout_s)
            pubsub = client.pubsub()
            try:
                await pubsub.subscribe(self.channel)
                while True:
                    message = await pubsub.get_message(timeout=None)
                    if message is None:
                        continue
                    if message["type"] == "subscribe":
                        self._ready.set()
                    elif message["type"] == "message":
                        data = message["data"]
                        if isinstance(data, bytes) and len(data) <= 128:
                            self._announce(data.decode("ascii", "replace"))
            except (RedisError, OSError) as exc:
                log.debug("cache flight notifications down (%s); polling", type(exc).__name__)
            finally:
                self._ready.clear()
                with contextlib.suppress(RedisError, OSError):
                    await pubsub.aclose()  # type: ignore[no-untyped-call]
                    await client.aclose()
            for events in self._waiters.values():  # they look again now, not after a poll
                for event in events:
                    event.set()
            await asyncio.sleep(self.retry_after_s)

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, RedisError, OSError):
                await self._task
            self._task = None
