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
    """`on_drop(value)` is called for every value let go: dropped, replaced, evicted when
    full, or expired (the app stops a result's background Retrain there)."""

    def __init__(self, ttl_s: float = 3600.0, max_items: int = 8, clock=time.monotonic,
                 on_drop=None):
        self.ttl_s, self.max_items, self.clock = ttl_s, max_items, clock
        self.on_drop = on_drop
        self._items: dict[str, tuple[float, object]] = {}
        self._lock = threading.Lock()

    def put(self, value, key: str | None = None) -> str:
        """Store `value` (replacing `key`'s old value) and return its key. When full, the
        oldest entry is dropped first."""
        with self._lock:
            gone = self._sweep()
            key = key or uuid.uuid4().hex
            if key in self._items:
                gone.append(self._items.pop(key)[1])
            while len(self._items) >= self.max_items:
                gone.append(self._items.pop(next(iter(self._items)))[1])
            self._items[key] = (self.clock(), value)
        self._dropped(gone)
        return key

    def get(self, key: str | None):
        with self._lock:
            gone = self._sweep()
            found = self._items.get(key) if key else None
        self._dropped(gone)
        if not key:
            raise NoResultYet(key)
        if found is None:
            raise Expired(key)
        return found[1]

    def drop(self, key: str | None) -> None:
        with self._lock:
            gone = [self._items.pop(key)[1]] if key in self._items else []
        self._dropped(gone)

    def sweep(self) -> int:
        """Let expired results go now (each reaches `on_drop`); how many."""
        with self._lock:
            gone = self._sweep()
        self._dropped(gone)
        return len(gone)

    def __contains__(self, key) -> bool:
        with self._lock:
            return key in self._items

    def __len__(self) -> int:
        with self._lock:
            gone = self._sweep()
            n = len(self._items)
        self._dropped(gone)
        return n

    def _sweep(self) -> list:
        now = self.clock()
        return [self._items.pop(k)[1] for k, (t, _) in list(self._items.items())
                if now - t > self.ttl_s]

    def _dropped(self, values: list) -> None:
        for value in values if self.on_drop else ():  # outside the lock: it may take time
            self.on_drop(value)
