"""Requests-per-minute and tokens-per-minute limits as two token buckets, learnt from response headers."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping


class _Bucket:
    def __init__(self, per_minute: float) -> None:
        self.capacity = per_minute
        self.level = per_minute
        self.stamp = time.monotonic()

    def refill(self, now: float) -> None:
        self.level = min(self.capacity, self.level + (now - self.stamp) * self.capacity / 60.0)
        self.stamp = now

    def wait_for(self, amount: float) -> float:
        """Seconds until `amount` is available (amounts above capacity wait for a full bucket)."""
        amount = min(amount, self.capacity)
        return 0.0 if self.level >= amount else (amount - self.level) * 60.0 / self.capacity

    def resize(self, per_minute: float) -> None:
        self.level = min(self.level, per_minute)
        self.capacity = per_minute


class RateLimiter:
    """Waits before each request until both the request and the token budgets allow it.

    Limits given by the user are fixed; otherwise they are taken from `x-ratelimit-limit-requests` and
    `x-ratelimit-limit-tokens` headers as responses arrive (OpenAI and several compatible servers send them).
    """

    def __init__(self, rpm: int | None = None, tpm: int | None = None) -> None:
        self._fixed_rpm, self._fixed_tpm = rpm is not None, tpm is not None
        self.requests = _Bucket(rpm) if rpm else None
        self.tokens = _Bucket(tpm) if tpm else None
        self._lock = asyncio.Lock()

    async def acquire(self, tokens: int) -> None:
        if self.requests is None and self.tokens is None:
            return  # no limit known (yet): nothing to wait for
        async with self._lock:  # first come, first served
            while True:
                now = time.monotonic()
                waits = []
                for bucket, amount in ((self.requests, 1), (self.tokens, tokens)):
                    if bucket is not None:
                        bucket.refill(now)
                        waits.append(bucket.wait_for(amount))
                wait = max(waits, default=0.0)
                if wait <= 0:
                    if self.requests is not None:
                        self.requests.level -= 1
                    if self.tokens is not None:
                        self.tokens.level -= min(tokens, self.tokens.capacity)
                    return
                await asyncio.sleep(wait)

    def observe(self, headers: Mapping[str, str]) -> None:
        if not self._fixed_rpm:
            self.requests = _learn(self.requests, headers.get("x-ratelimit-limit-requests"))
        if not self._fixed_tpm:
            self.tokens = _learn(self.tokens, headers.get("x-ratelimit-limit-tokens"))


def _learn(bucket: _Bucket | None, value: str | None) -> _Bucket | None:
    try:
        limit = float(value) if value is not None else None
    except ValueError:
        return bucket
    if limit is None or limit <= 0:
        return bucket
    if bucket is None:
        return _Bucket(limit)
    if bucket.capacity != limit:
        bucket.resize(limit)
    return bucket


def retry_after_seconds(headers: Mapping[str, str] | None) -> float | None:
    """The server's requested wait: `retry-after-ms`, or `retry-after` in seconds or as an HTTP date."""
    if not headers:
        return None
    millis = headers.get("retry-after-ms")
    if millis is not None:
        try:
            return max(0.0, float(millis) / 1000)
        except ValueError:
            pass
    value = headers.get("retry-after")
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        from email.utils import parsedate_to_datetime

        try:
            return max(0.0, parsedate_to_datetime(value).timestamp() - time.time())
        except (TypeError, ValueError):
            return None


class AdaptiveConcurrency:
    """Requests in flight, halved when they time out and raised by one per window of answers back in time
    (additive increase, multiplicative decrease, as TCP does). A local server with one slot queues what it cannot
    serve; without this, the queued requests time out and are sent again while the server still works on them."""

    def __init__(self, ceiling: int) -> None:
        self.ceiling = ceiling
        self.window = float(ceiling)
        self.in_flight = 0
        self.cuts = 0
        self._last_cut = float("-inf")
        self._changed = asyncio.Condition()

    @property
    def limit(self) -> int:
        return max(1, int(self.window))

    async def acquire(self) -> float:
        """Wait for a free slot; returns the time the request starts, for `release`."""
        async with self._changed:
            await self._changed.wait_for(lambda: self.in_flight < self.limit)
            self.in_flight += 1
        return time.monotonic()

    async def release(self, started: float, timed_out: bool) -> None:
        async with self._changed:
            self.in_flight -= 1
            if timed_out:
                # Requests queued together time out together: cut once for those sent before the last cut.
                if started >= self._last_cut:
                    self.window = max(1.0, self.window / 2)
                    self._last_cut = time.monotonic()
                    self.cuts += 1
            else:
                self.window = min(float(self.ceiling), self.window + 1.0 / self.window)
            self._changed.notify_all()
