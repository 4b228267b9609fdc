"""Login throttling, counted in MongoDB so that every worker and host shares one count.

Two limits guard POST /login and both count failed logins only: LOGIN_RATE_LIMIT per
username and LOGIN_IP_RATE_LIMIT per client address. An attempt over either limit gets
429 with Retry-After before its password is checked, even when the password is right.
(Simultaneous attempts may pass the check together; the count still stops the ones after.)

The counting is the `limits` library's moving window on its MongoDB storage (collection
`rate_limit_windows` of the app's database, one document per key holding the times of
its last failures; a TTL index on `expireAt` removes idle ones). Its fixed window is not used: it resets
its counter in an update pipeline comparing with `$$NOW`, which SecantusDB evaluates wrongly.
Flask-Limiter is not used either: it builds the storage from a URI itself, so it could not
share db.py's client, and limits' storage opens a client (and creates indexes) when
garbage-collected unused, as every app built and dropped (the tests) would do.
"""
import math
import time

from babel.units import format_unit
from flask import current_app, make_response, render_template, request
from flask_babel import get_locale
from flask_babel import gettext as _
from limits import parse
from limits.storage import MongoDBStorage
from limits.strategies import MovingWindowRateLimiter

import auth
import db
from errors import error_response, wants_json

SETTINGS = ("LOGIN_RATE_LIMIT", "LOGIN_IP_RATE_LIMIT")
WINDOWS = "rate_limit_windows"
SCOPE = "login"


class _SharedClientStorage(MongoDBStorage):
    """limits' MongoDB storage on the process's client from db.py (created after the fork)."""

    def _init_mongo_client(self, uri, **options):
        return db.client()

    def __del__(self):
        # The client belongs to db.py. (limits' own __del__ would open one just to close it.)
        pass


class LoginLimiter:
    def __init__(self, config):
        self.limits = []
        for setting in SETTINGS:
            try:
                self.limits.append(parse(config[setting]))
            except ValueError:
                raise ValueError(f"{setting} must look like '10 per 5 minutes', "
                                 f"not {config[setting]!r}") from None
        self.storage = _SharedClientStorage(config["MONGO_URI"], database_name=config["MONGO_DB"],
                                            window_collection_name=WINDOWS,
                                            counter_collection_name="rate_limit_counters")
        self.strategy = MovingWindowRateLimiter(self.storage)

    def _keys(self, username):
        # Names that cannot exist share one counter instead of making a document each.
        user = "user:" + (username if auth.valid_username(username) else "~invalid")
        return zip(self.limits, (user, "ip:" + (request.remote_addr or "unknown")))

    def wait(self, username):
        """Seconds until `username` may try again from this address; 0 when it may now."""
        wait = 0
        for item, key in self._keys(username):
            start, failures = self.storage.get_moving_window(
                item.key_for(SCOPE, key), item.amount, item.get_expiry())
            if failures >= item.amount:
                wait = max(wait, math.ceil(start + item.get_expiry() - time.time()), 1)
        return wait

    def record_failure(self, username):
        for item, key in self._keys(username):
            self.strategy.hit(item, SCOPE, key)


def limiter():
    return current_app.extensions["segdash_login_limiter"]


def readable_wait(seconds):
    if seconds < 60:
        return format_unit(seconds, "duration-second", length="long", locale=get_locale())
    return format_unit(math.ceil(seconds / 60), "duration-minute", length="long", locale=get_locale())


def too_many_failures(wait):
    """The 429 answer: the login page with the message (a JSON error for JSON clients)."""
    message = _("Too many failed logins. Try again in %(wait)s.", wait=readable_wait(wait))
    if wants_json():
        response = error_response(429, "rate_limited", message)
    else:
        response = make_response(render_template("login.html", error=message), 429)
    response.headers["Retry-After"] = str(wait)
    return response


def init_app(app):
    app.extensions["segdash_login_limiter"] = LoginLimiter(app.config)
