"""Prototypes of the gevent fix BENCHMARKS.md recommends, measured beside SegDash as shipped.

As shipped, with `preload_app`, the app is imported in the Gunicorn master and
the gevent worker monkey-patches `threading` only after the fork. Every lock
created at import or in `create_app()` is therefore a real OS lock, and two are
held across database I/O: `cache.Caches.refresh` holds `Caches._lock` while it
reads the cache version, and `db.client()` holds `_clients_lock` while
`MongoClient()` starts its monitor threads. A greenlet that waits inside
either yields; the next greenlet reaching the same lock blocks the whole
worker on the OS lock, so the worker hangs until Gunicorn's timeout kills it.

`BENCH_GEVENT_FIX` selects the prototype (benchmark processes only; nothing in
the application's files changes):
- `patch` (default): monkey-patch before anything else is imported when the
  worker class is gevent, as `gunicorn_config.py` could do at its top, so every
  lock the app creates is a gevent lock;
- `refresh`: only move the version read in `Caches.refresh` out of the lock
  (shows that fixing one lock is not enough).
"""
import os
import time

FIX = os.environ.get("BENCH_GEVENT_FIX", "patch")

if FIX == "patch" and (os.environ.get("GUNICORN_WORKER_CLASS") or "gthread") == "gevent":
    from gevent import monkey

    monkey.patch_all()

import cache  # noqa: E402
import db  # noqa: E402
from app import app  # noqa: E402,F401


def _refresh_outside_lock(self):
    now = time.monotonic()
    if now - self._checked_at < self.check_interval:
        return
    doc = db.app_state().find_one({"_id": cache.VERSION_ID}, {"v": 1})
    with self._lock:
        if now - self._checked_at >= self.check_interval:
            self._adopt(doc["v"] if doc else 0, now)


if FIX == "refresh":
    cache.Caches.refresh = _refresh_outside_lock
