"""Per-worker caches with hit/miss counts, kept coherent across workers and hosts.

The hit and miss counts are also exported by `/metrics` (metrics.py), summed over workers.

Coherence rule: every write bumps a version number stored in the database
(`app_state` document `cache_version`). A worker re-reads that number at most
once per `CACHE_VERSION_CHECK_SECONDS` (1 s by default) and drops all its cached
values when it changed. The writing worker clears its own caches at once, so a
write is visible immediately there and within about a second everywhere else.

The write path: every function that writes is decorated `@writes`. The database
client notices each command that changes batches, masks or users (db.track_writes);
when the outermost `@writes` call in which one did ends (returning or raising), the
version is bumped. No app code calls `record_write` itself. Every cache also expires
on its own, so a write made outside this path is seen after at most its TTL.
"""
import functools
import logging
import threading
import time

from cachetools import TTLCache
from flask import current_app
from pymongo import ReturnDocument

import db
import metrics

log = logging.getLogger(__name__)

VERSION_ID = "cache_version"
PAGE_CACHE_SIZE = 256
_MISSING = object()


class CountingCache:
    """A thread-safe cachetools cache that counts hits and misses."""

    def __init__(self, name, backend):
        self.name = name
        self._backend = backend
        self._lock = threading.Lock()
        self._computing = {}  # key -> lock held by the one thread computing it
        self.hits = 0
        self.misses = 0
        # The same counts for /metrics (summed across workers there).
        self._hits_metric = metrics.CACHE_HITS.labels(name)
        self._misses_metric = metrics.CACHE_MISSES.labels(name)

    def get(self, key):
        with self._lock:
            value = self._backend.get(key, _MISSING)
            hit = value is not _MISSING
            if hit:
                self.hits += 1
            else:
                self.misses += 1
        (self._hits_metric if hit else self._misses_metric).inc()
        return value

    def set(self, key, value):
        with self._lock:
            self._backend[key] = value

    def get_or_compute(self, key, compute):
        """The cached value, or `compute()`'s. Concurrent misses of one key wait for a single
        computation instead of each running it (no thundering herd when a value expires)."""
        value = self.get(key)
        if value is not _MISSING:
            return value
        with self._lock:
            key_lock = self._computing.setdefault(key, threading.Lock())
        with key_lock:
            with self._lock:
                value = self._backend.get(key, _MISSING)
            if value is _MISSING:
                value = compute()
                self.set(key, value)
        with self._lock:
            if self._computing.get(key) is key_lock and not key_lock.locked():
                del self._computing[key]
        return value

    def clear(self):
        with self._lock:
            self._backend.clear()

    def clear_key(self, key):
        with self._lock:
            self._backend.pop(key, None)

    def stats(self):
        with self._lock:
            return {"hits": self.hits, "misses": self.misses, "size": len(self._backend)}


class Caches:
    """The caches of one app instance, and the shared version that keeps them coherent."""

    def __init__(self, config):
        self.counts = CountingCache("counts", TTLCache(maxsize=1024, ttl=config["COUNT_CACHE_TTL"]))
        # Rendered list pages (JSON bytes, ~10 KB for 50 rows): bounded so a worker holds a few MB.
        self.pages = CountingCache("pages", TTLCache(maxsize=PAGE_CACHE_SIZE, ttl=config["COUNT_CACHE_TTL"]))
        self.metrics = CountingCache("metrics", TTLCache(maxsize=16, ttl=config["METRICS_CACHE_TTL"]))
        self.details = CountingCache("details", TTLCache(maxsize=config["DETAIL_CACHE_SIZE"],
                                                          ttl=config["DETAIL_CACHE_TTL"]))
        self.users = CountingCache("users", TTLCache(maxsize=1024, ttl=config["USER_CACHE_TTL"]))
        self.check_interval = config["CACHE_VERSION_CHECK_SECONDS"]
        self._version = None
        self._own_version = None  # the version this worker's last write made
        self._checked_at = 0.0
        self._lock = threading.Lock()

    def all(self):
        return [self.counts, self.pages, self.metrics, self.details, self.users]

    def clear_all(self):
        for cache in self.all():
            cache.clear()

    def stats(self):
        return {cache.name: cache.stats() for cache in self.all()}

    def refresh(self):
        """Drop every cached value if another worker wrote since the last check.

        Reads the version at most once per check interval; between checks it costs nothing.
        """
        now = time.monotonic()
        if now - self._checked_at < self.check_interval:
            return
        # Read outside the lock: while the database is down each waiting thread would
        # otherwise sit through every other thread's server selection timeout in turn.
        doc = db.app_state().find_one({"_id": VERSION_ID}, {"v": 1})
        with self._lock:
            self._adopt(doc["v"] if doc else 0, now)

    def bump(self):
        """Record a write: new version in the database, local caches cleared at once."""
        doc = db.app_state().find_one_and_update(
            {"_id": VERSION_ID}, {"$inc": {"v": 1}}, upsert=True,
            projection={"v": 1}, return_document=ReturnDocument.AFTER)
        with self._lock:
            self._own_version = doc["v"]
            self._adopt(doc["v"], time.monotonic(), force_clear=True)

    @property
    def version(self):
        """The cache version this worker last saw (after `refresh`)."""
        return self._version

    @property
    def made_last_write(self):
        """True when the newest write this worker knows of is its own (it must see it at once)."""
        return self._version is not None and self._version == self._own_version

    def _adopt(self, version, now, force_clear=False):
        if force_clear or version != self._version:
            self.clear_all()
        self._version = version
        self._checked_at = now


def caches():
    """This app's caches, first brought up to date with writes made elsewhere, and with this
    call's own writes: inside a `writes` function that has written (the bump comes at its end),
    nothing cached before may be served."""
    found = current_app.extensions["segdash_caches"]
    found.refresh()
    if db.wrote_in_this_scope():
        found.clear_all()
    return found


def record_write():
    """Bump the cache version. The app's writes do it through `writes`; tests and benchmarks
    that write to the database directly, as another process would, call this."""
    current_app.extensions["segdash_caches"].bump()


def writes(function):
    """Decorator for every function that writes to batches, masks or users: once the outermost
    such call has written, the cache version is bumped before it returns or raises."""
    @functools.wraps(function)
    def wrapped(*args, **kwargs):
        with db.track_writes() as (scope, outermost):
            try:
                result = function(*args, **kwargs)
            except BaseException:
                if outermost and scope.wrote:
                    _bump_after_failure()
                raise
        if outermost and scope.wrote:
            record_write()
        return result
    return wrapped


def _bump_after_failure():
    """Bump after a partial write; a failure here must not hide the error being raised."""
    try:
        record_write()
    except Exception:  # the database may be what failed
        log.warning("cache version not bumped after a failed write", exc_info=True)


def init_app(app):
    app.extensions["segdash_caches"] = Caches(app.config)
