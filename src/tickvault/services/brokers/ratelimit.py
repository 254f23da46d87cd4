"""A small token bucket shared by every call of one client (brokers limit per app key)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable


class TokenBucket:
    """At most ``rate`` calls per second on average, ``burst`` at once.

    ``acquire`` blocks until a call may go. With ``burst=1`` calls are spaced 1/rate
    apart, so a server counting calls in any one-second window never sees more than
    ``rate`` of them (give the rate a small margin below the broker's published limit).
    """

    def __init__(self, rate: float, burst: int = 1, clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], None] = time.sleep):
        if rate <= 0:
            raise ValueError("rate must be > 0 calls per second")
        self.rate = rate
        self.burst = max(1, burst)
        self._tokens = float(self.burst)
        self._clock = clock
        self._sleep = sleep
        self._last = clock()
        self._lock = threading.Lock()

    def acquire(self) -> float:
        """Take one token, sleeping as needed; returns the seconds waited."""
        waited = 0.0
        with self._lock:
            while True:
                now = self._clock()
                self._tokens = min(self.burst, self._tokens + (now - self._last) * self.rate)
                self._last = now
                if self._tokens >= 1:
                    self._tokens -= 1
                    return waited
                need = (1 - self._tokens) / self.rate
                self._sleep(need)
                waited += need

    def penalize(self, seconds: float) -> None:
        """After the broker said "too many": empty the bucket and hold off a while."""
        with self._lock:
            self._tokens = -seconds * self.rate
            self._last = self._clock()
