"""Prototype of the list change BENCHMARKS.md recommends, installable in a process for measurement.

SegDash caches the list's count but fetches the page on every request. Here
the page itself (items, has-more flag, last id) is kept in the same per-worker
TTL cache as the counts, under the same coherence rule: every write bumps the
shared version and clears it, so a cached list request costs no round trip.
Nothing in the application's files changes: `batch_service.list_page` is
wrapped in the process that calls `install()` (the Gunicorn processes of
`bench.proposed_app`, or the benchmark's own process for a CPU measurement,
which calls `uninstall()` afterwards).
"""
import batch_service
from cache import caches

_original = batch_service.list_page


def cached_list_page(query, paging):
    key = ("page", batch_service._count_key(query), paging.per_page, paging.skip, paging.after)
    return caches().counts.get_or_compute(key, lambda: _original(query, paging))


def install():
    batch_service.list_page = cached_list_page


def uninstall():
    batch_service.list_page = _original
