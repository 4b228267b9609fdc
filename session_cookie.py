"""The browser session: Flask's signed cookie, with its signing serializer built once.

Flask builds a new `URLSafeTimedSerializer` for every request, session cookie or not
(a measurable share of a cached API request's CPU); the keys rarely change, so one
serializer per set of keys serves every request of the process.
"""
import threading

from flask.sessions import SecureCookieSessionInterface

import security


class SignedCookieSessions(SecureCookieSessionInterface):
    def __init__(self):
        self._lock = threading.Lock()
        self._serializers = {}

    def get_signing_serializer(self, app):
        if not app.secret_key:
            return None
        keys = (*(app.config["SECRET_KEY_FALLBACKS"] or ()), app.secret_key)
        found = self._serializers.get(keys)
        if found is None:
            found = super().get_signing_serializer(app)
            with self._lock:
                self._serializers = {keys: found}
        return found

    def get_cookie_secure(self, app):
        return security.cookie_secure(app)


def init_app(app):
    app.session_interface = SignedCookieSessions()
