"""Per-visitor results kept on the server, by key, for a limited time: the app's
`gr.State` holds only the key, so no model is copied into session state, one visitor's
forgetting is invisible to another, and edited models are freed when their time is up."""

from __future__ import annotations

import threading
import time
import uuid


class Expired(KeyError):
    """The result behind a key is gone (its time ran out, or the store let it go)."""

    def __str__(self) -> str:
        return ("This result has expired (results are kept for a while only); please run the "
                "request again.")


class NoResultYet(Expired):
    """A visitor asked for a result before making any request: nothing expired."""

    def __str__(self) -> str:
        return ("No request yet: first forget something in the Forget tab (pick pairs "
                "in the gallery, or upload an image with its text, and press Forget); its "
                "result then shows here.")


class SessionStore:
    def __init__(self, ttl_s: float = 3600.0, max_items: int = 8, clock=time.monotonic):
        self.ttl_s, self.max_items, self.clock = ttl_s, max_items, clock
        self._items: dict[str, tuple[float, object]] = {}
        self._lock = threading.Lock()

    def put(self, value, key: str | None = None) -> str:
        """Store `value` (replacing `key`'s old value) and return its key. When full, the
        oldest entry is dropped first."""
        with self._lock:
            self._sweep()
            key = key or uuid.uuid4().hex
            self._items.pop(key, None)
            while len(self._items) >= self.max_items:
                self._items.pop(next(iter(self._items)))
            self._items[key] = (self.clock(), value)
        return key

    def get(self, key: str | None):
        with self._lock:
            self._sweep()
            if not key:
                raise NoResultYet(key)
            if key not in self._items:
                raise Expired(key)
            return self._items[key][1]

    def drop(self, key: str | None):
        """Let `key`'s value go; returns it (None if there was none)."""
        with self._lock:
            return self._items.pop(key, (None, None))[1]

    def __len__(self) -> int:
        with self._lock:
            self._sweep()
            return len(self._items)

    def _sweep(self) -> None:
        now = self.clock()
        for key in [k for k, (t, _) in self._items.items() if now - t > self.ttl_s]:
            del self._items[key]
