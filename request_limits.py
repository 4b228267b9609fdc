"""Per-user limits on expensive reads: searches, CSV exports and file checks.

EXPENSIVE_RATE_LIMIT ("N per period", tiers separated by ";") is allowed per user and
per kind of request in each worker process; past it the request answers 429
`rate_limited` with Retry-After. Counted in the worker's memory (the `limits` library's
moving window), so it costs no database round trip; with W workers one user can make
at most W times the limit, which still bounds what one account can make everyone wait for.
"""
import math
import os
import threading
import time

from flask import current_app
from flask_babel import gettext as _
from limits import parse_many
from limits.storage import MemoryStorage
from limits.strategies import MovingWindowRateLimiter

from errors import ApiError
from policy import N_

SCOPE = "expensive"
# The kinds of expensive request, as named in the 429 message.
KIND_NAMES = {"search": N_("search"), "export": N_("export"), "check": N_("check")}


class ExpensiveLimiter:
    def __init__(self, config):
        try:
            self.items = parse_many(config["EXPENSIVE_RATE_LIMIT"])
        except ValueError:
            raise ValueError("EXPENSIVE_RATE_LIMIT must look like '120 per minute', "
                             f"not {config['EXPENSIVE_RATE_LIMIT']!r}") from None
        self._lock = threading.Lock()
        self._strategies = {}

    def _strategy(self):
        # One in-memory storage per process, made after Gunicorn's fork (its expiry timer
        # is a thread, which a fork does not copy).
        pid = os.getpid()
        found = self._strategies.get(pid)
        if found is None:
            with self._lock:
                found = self._strategies.get(pid)
                if found is None:
                    found = self._strategies[pid] = MovingWindowRateLimiter(MemoryStorage())
        return found

    def check(self, kind, username):
        """Count one `kind` request of `username`; ApiError 429 when over the limit."""
        strategy = self._strategy()
        for item in self.items:
            if not strategy.hit(item, SCOPE, kind, username):
                reset, _remaining = strategy.get_window_stats(item, SCOPE, kind, username)
                wait = max(1, math.ceil(reset - time.time()))
                raise ApiError(429, "rate_limited",
                               _("Too many %(kind)s requests; try again in %(seconds)s seconds.",
                                 kind=_(KIND_NAMES.get(kind, kind)), seconds=wait),
                               headers={"Retry-After": str(wait)})


def check(kind, user):
    current_app.extensions["segdash_expensive_limiter"].check(kind, user["username"])


def init_app(app):
    app.extensions["segdash_expensive_limiter"] = ExpensiveLimiter(app.config)
