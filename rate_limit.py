"""Login throttling, counted in MongoDB so that every worker and host shares one count.

Failed logins only are counted, under three limits that an attempt must all be within
(else 429 with Retry-After before its password is checked, even when it is right):

- LOGIN_RATE_LIMIT per (username, client address) pair: guessing one account from one
  place is slow, and blocks nobody else;
- LOGIN_IP_RATE_LIMIT per client address: one place guessing many accounts;
- LOGIN_USER_RATE_LIMIT per username, a much higher ceiling in growing tiers (e.g. 50 per
  15 minutes, then 200 per day): guessing from many addresses is slow too.

None of them hands out a lockout switch: a browser that logged in as the user before
carries a signed device cookie (DEVICE_COOKIE, DEVICE_DAYS) and is held only to the pair
limit on its own count, so failures elsewhere never lock the real user out of their usual
browser; `flask unlock-login USER` clears every count of a username for the rest.

The counting is the `limits` library's moving window on its MongoDB storage (collection
`rate_limit_windows` of the app's database, one document per key holding the times of
its last failures; a TTL index on `expireAt` removes idle ones). Its fixed window is not used: it resets
its counter in an update pipeline comparing with `$$NOW`, which SecantusDB evaluates wrongly.
Flask-Limiter is not used either: it builds the storage from a URI itself, so it could not
share db.py's client, and limits' storage opens a client (and creates indexes) when
garbage-collected unused, as every app built and dropped (the tests) would do.
"""
import math
import re
import secrets
import time

from babel.units import format_unit
from flask import current_app, make_response, render_template, request
from flask_babel import get_locale
from flask_babel import gettext as _
from itsdangerous import BadData, URLSafeTimedSerializer
from limits import parse_many
from limits.storage import MongoDBStorage
from limits.strategies import MovingWindowRateLimiter

import auth
import db
import security
from errors import error_response, wants_json

SETTINGS = ("LOGIN_RATE_LIMIT", "LOGIN_IP_RATE_LIMIT", "LOGIN_USER_RATE_LIMIT")
WINDOWS = "rate_limit_windows"
SCOPE = "login"
DEVICE_COOKIE = "segdash_device"
DEVICE_DAYS = 90
DEVICE_SALT = "segdash.login-device"
INVALID_NAME = "~invalid"


class _SharedClientStorage(MongoDBStorage):
    """limits' MongoDB storage on the process's client from db.py (created after the fork)."""

    def _init_mongo_client(self, uri, **options):
        return db.client()

    def __del__(self):
        # The client belongs to db.py. (limits' own __del__ would open one just to close it.)
        pass


def _parse(config, setting):
    try:
        return parse_many(config[setting])
    except ValueError:
        raise ValueError(f"{setting} must look like '10 per 5 minutes' (tiers separated by ';'), "
                         f"not {config[setting]!r}") from None


class LoginLimiter:
    def __init__(self, config):
        self.pair, self.address, self.account = (_parse(config, setting) for setting in SETTINGS)
        self.storage = _SharedClientStorage(config["MONGO_URI"], database_name=config["MONGO_DB"],
                                            window_collection_name=WINDOWS,
                                            counter_collection_name="rate_limit_counters")
        self.strategy = MovingWindowRateLimiter(self.storage)
        self.devices = URLSafeTimedSerializer(config["SECRET_KEY"], salt=DEVICE_SALT)

    def _device(self, name):
        """The id of this browser's device cookie when it was given at a login as `name`."""
        try:
            found = self.devices.loads(request.cookies.get(DEVICE_COOKIE, ""), max_age=DEVICE_DAYS * 86400)
        except BadData:
            return None
        if isinstance(found, dict) and found.get("u") == name and isinstance(found.get("d"), str):
            return found["d"]
        return None

    def _limits(self, username):
        """(limits that may refuse the attempt, limits that only count it), as (item, key)."""
        # Names that cannot exist share one counter instead of making a document each.
        name = username if auth.valid_username(username) else INVALID_NAME
        account = [(item, f"user:{name}") for item in self.account]
        device = self._device(name) if name != INVALID_NAME else None
        if device:
            return [(item, f"device:{name}:{device}") for item in self.pair], account
        address = request.remote_addr or "unknown"
        return ([(item, f"pair:{name}@{address}") for item in self.pair]
                + [(item, f"ip:{address}") for item in self.address] + account), []

    def wait(self, username):
        """Seconds until `username` may try again from this browser; 0 when it may now."""
        wait = 0
        for item, key in self._limits(username)[0]:
            start, failures = self.storage.get_moving_window(
                item.key_for(SCOPE, key), item.amount, item.get_expiry())
            if failures >= item.amount:
                wait = max(wait, math.ceil(start + item.get_expiry() - time.time()), 1)
        return wait

    def record_failure(self, username):
        refusing, counting = self._limits(username)
        for item, key in refusing + counting:
            self.strategy.hit(item, SCOPE, key)

    def remember_device(self, response, username):
        """After a successful login: the device cookie that exempts this browser from the
        address and username limits for `username`."""
        token = self.devices.dumps({"u": username, "d": secrets.token_urlsafe(16)})
        response.set_cookie(DEVICE_COOKIE, token, max_age=DEVICE_DAYS * 86400, httponly=True,
                            samesite="Lax", secure=security.cookie_secure(current_app), path="/login")
        return response

    def unlock(self, username):
        """Forget every failed login counted for `username` (all addresses and devices)."""
        pattern = f"^{re.escape(f'LIMITER/{SCOPE}/')}(user|pair|device):{re.escape(username)}[/@:]"
        return db.database()[WINDOWS].delete_many({"_id": {"$regex": pattern}}).deleted_count


def limiter():
    return current_app.extensions["segdash_login_limiter"]


def readable_wait(seconds):
    if seconds < 60:
        return format_unit(seconds, "duration-second", length="long", locale=get_locale())
    minutes = math.ceil(seconds / 60)
    if minutes > 90:
        return format_unit(math.ceil(minutes / 60), "duration-hour", length="long", locale=get_locale())
    return format_unit(minutes, "duration-minute", length="long", locale=get_locale())


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
