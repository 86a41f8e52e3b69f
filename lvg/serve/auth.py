"""API keys (kept only as SHA-256 hashes) and a per-key token-bucket rate limiter."""

from __future__ import annotations

import hashlib
import hmac
import math
import os
import time
from collections.abc import Callable, Iterable
from pathlib import Path

from lvg.files import InputFileError, read_text


def header_safe(key: str) -> bool:
    """Whether ``key`` is printable ASCII: the middleware reads headers as Latin-1 and keys are hashed as UTF-8, so a
    key with other characters could never match what a client sends."""
    return all(" " <= ch <= "~" for ch in key)


def _digest(key: str) -> bytes:
    return hashlib.sha256(key.encode("utf-8")).digest()


class ApiKeys:
    """A set of API keys, held as SHA-256 digests and compared in constant time."""

    def __init__(self, keys: Iterable[str]) -> None:
        keys = list(keys)
        if not all(map(header_safe, keys)):
            raise ValueError("API keys must be printable ASCII: an HTTP header carries no other characters that match")
        self._digests = [_digest(k) for k in keys]
        if not self._digests:
            raise ValueError("no API keys given")

    @classmethod
    def from_file(cls, path: str | os.PathLike) -> ApiKeys:
        """One key per line; blank lines and ``#`` comments are ignored. A file without keys is an error."""
        path = Path(path)
        try:
            lines = read_text(path).splitlines()  # a regular UTF-8 file
        except InputFileError as e:
            raise ValueError(f"API keys file: {e}") from None
        keys = []
        for n, line in enumerate(lines, 1):
            key = line.strip()
            if key and not key.startswith("#"):
                if not header_safe(key):  # (the key itself is never printed)
                    raise ValueError(f"API keys file {path} line {n}: a key must be printable ASCII; clients send "
                                     f"it in an HTTP header, where other characters never match")  # fmt: skip
                keys.append(key)
        if not keys:
            raise ValueError(f"API keys file {path} holds no keys")
        return cls(keys)

    def __len__(self) -> int:
        return len(self._digests)

    def identify(self, presented: str) -> str | None:
        """The key's id (a hash prefix, safe to use as a label) if ``presented`` is a known key, else None."""
        d = _digest(presented)
        found = False
        for known in self._digests:  # no early exit: the time taken does not depend on which key matched
            found |= hmac.compare_digest(d, known)
        return d.hex()[:16] if found else None


def bearer_token(authorization: str | None) -> str | None:
    """The token of an ``Authorization: Bearer TOKEN`` header value, or None."""
    if not authorization:
        return None
    scheme, _, token = authorization.strip().partition(" ")
    token = token.strip()
    return token if scheme.lower() == "bearer" and token else None


class RateLimiter:
    """Token buckets of ``per_minute`` requests, refilled continuously, one per key. 0 turns limiting off."""

    def __init__(self, per_minute: int, clock: Callable[[], float] = time.monotonic) -> None:
        if per_minute < 0:
            raise ValueError(f"rate limit must be >= 0 requests per minute, got {per_minute}")
        self.capacity = float(per_minute)
        self.rate = per_minute / 60.0  # tokens per second
        self.clock = clock
        self._buckets: dict[str, tuple[float, float]] = {}  # key -> (tokens, last refill time)

    def acquire(self, key: str) -> float:
        """Take one token for ``key``: 0.0 if allowed, else the seconds until a token is available."""
        if self.capacity == 0:
            return 0.0
        now = self.clock()
        tokens, last = self._buckets.get(key, (self.capacity, now))
        tokens = min(self.capacity, tokens + (now - last) * self.rate)
        if tokens >= 1.0:
            self._buckets[key] = (tokens - 1.0, now)
            return 0.0
        self._buckets[key] = (tokens, now)
        return (1.0 - tokens) / self.rate


def retry_after_header(seconds: float) -> str:
    """A ``Retry-After`` value: whole seconds, at least 1."""
    return str(max(1, math.ceil(seconds)))
