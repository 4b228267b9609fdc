"""Browser sessions recorded on the server, so that they can be ended.

The session cookie (Flask's signed cookie) names a session id; the `sessions`
collection holds one record per live session: `_id` is the SHA-256 of the id (the
database never holds the id itself), with the account (`uid`, `username`), when it
began and when it ends for good (`expires_at`, SESSION_ABSOLUTE_HOURS after the
login, however often it is used). The cookie's own signed timestamp gives the idle
lifetime (SESSION_HOURS since the last request).

A cookie whose record is gone is anonymous: logout deletes its record; a password,
role or active change, and `revoke-sessions`, delete all records of the account.
Records are read through the users cache, which every write clears on every worker
within CACHE_VERSION_CHECK_SECONDS (cache.py), so an ended session stops working
everywhere within about a second. Cookies from before sessions were recorded carry
no id and are anonymous: their users log in again.
"""
import hashlib
import secrets
from datetime import timedelta

from flask import current_app

import db
from cache import caches, writes
from timeutil import utcnow


def _key(sid):
    return hashlib.sha256(sid.encode("utf-8")).hexdigest()


def start(user):
    """Record a new session of `user`; returns its id (for the cookie)."""
    sid = secrets.token_urlsafe(32)
    now = utcnow()
    lifetime = timedelta(hours=current_app.config["SESSION_ABSOLUTE_HOURS"])
    db.sessions().insert_one({"_id": _key(sid), "uid": user["uid"], "username": user["username"],
                              "created_at": now, "expires_at": now + lifetime})
    return sid


def is_live(sid, uid):
    """Whether the session `sid` exists, belongs to account `uid` and has not reached its end."""
    if not isinstance(sid, str) or not sid:
        return False
    key = _key(sid)
    record = caches().users.get_or_compute(
        ("session", key), lambda: db.sessions().find_one({"_id": key}, {"uid": 1, "expires_at": 1}))
    return record is not None and record["uid"] == uid and record["expires_at"] > utcnow()


@writes
def end(sid):
    """End one session (logout)."""
    if isinstance(sid, str) and sid:
        db.sessions().delete_one({"_id": _key(sid)})


def end_all(username):
    """End every session of the account named `username`; returns how many there were.
    Called inside the caller's `@writes` function, which bumps the cache version once."""
    return db.sessions().delete_many({"username": username}).deleted_count
