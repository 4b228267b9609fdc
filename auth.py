"""Identity and roles: session login for browsers, Bearer tokens for scripts.

Passwords are stored as Werkzeug hashes (PASSWORD_HASH_METHOD, scrypt by default);
API tokens are random 256-bit values stored only as their SHA-256. CSRF (Flask-WTF) is enforced on writes
authenticated by the session cookie; Bearer requests carry no cookie and need none.
`require_role` is the one role check, applied to every protected view.
"""
import functools
import hashlib
import re
import secrets

from flask import current_app, g, redirect, request, session, url_for
from flask_babel import gettext as _
from flask_wtf.csrf import CSRFProtect
from werkzeug.security import check_password_hash, generate_password_hash

import db
import server_sessions
from cache import caches, writes
from errors import CSRF_REASONS, ApiError, error_response, forbidden, wants_json
from policy import ROLES, has_role

SAFE_METHODS = ("GET", "HEAD", "OPTIONS")
USERNAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
USER_FIELDS = {"_id": 1, "username": 1, "display_name": 1, "role": 1, "active": 1, "locale": 1}

csrf = CSRFProtect()


def hash_token(token):
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def valid_username(username):
    return isinstance(username, str) and bool(USERNAME_RE.match(username))


MIN_PASSWORD_LENGTH = 8
MAX_PASSWORD_LENGTH = 1024
MAX_DISPLAY_NAME = 200


class InvalidUser(ValueError):
    """A user field that breaks the rules; `field` names it."""

    def __init__(self, field, message):
        super().__init__(message)
        self.field = field


def check_user_fields(username, role, password=None, display_name=None):
    """The one set of rules for a user's fields (create-user, import-users); InvalidUser if broken."""
    if not valid_username(username):
        raise InvalidUser("username", _("username must be 1-64 letters, digits, '_', '.' or '-'"))
    if role not in ROLES:
        raise InvalidUser("role", _("role must be one of %(roles)s", roles=", ".join(ROLES)))
    if password is not None and (not isinstance(password, str)
                                 or not MIN_PASSWORD_LENGTH <= len(password) <= MAX_PASSWORD_LENGTH):
        raise InvalidUser("password", _("the password must be a string of %(min)s to %(max)s characters",
                                        min=MIN_PASSWORD_LENGTH, max=MAX_PASSWORD_LENGTH))
    if display_name is not None and (
            not isinstance(display_name, str) or not display_name.strip() or len(display_name) > MAX_DISPLAY_NAME
            or any(ord(ch) < 32 or ord(ch) == 127 for ch in display_name)):
        raise InvalidUser("display_name", _("the display name must be a non-empty string of at most %(max)s "
                                            "characters without control characters", max=MAX_DISPLAY_NAME))


@writes
def create_user(username, role, password=None, display_name=None):
    """Insert or update a user; returns the stored user (without secrets).

    An existing account keeps its active state (a deactivated one stays deactivated:
    `set_active` is the one way back). A new password or a new role ends every session
    and the API token of an existing account.
    """
    check_user_fields(username, role, password, display_name)
    fields = {"role": role, "display_name": display_name or username}
    if password is not None:
        method = current_app.config["PASSWORD_HASH_METHOD"]
        fields["password_hash"] = generate_password_hash(password, method=method)
    before = db.users().find_one_and_update(
        {"username": username}, {"$set": fields, "$setOnInsert": {"active": True}},
        projection={"role": 1, "active": 1}, upsert=True)
    if before is not None and (password is not None or before.get("role") != role):
        revoke_access(username)
    fields.pop("password_hash", None)
    return {"username": username, **fields, "active": True if before is None else bool(before.get("active"))}


@writes
def revoke_access(username, sessions=True, token=True):
    """End the sessions and/or the API token of `username`; returns the number of sessions
    ended. LookupError when there is no such user."""
    if not db.users().count_documents({"username": username}, limit=1):
        raise LookupError(_("no user %(name)r", name=username))
    if token:
        db.users().update_one({"username": username}, {"$unset": {"token_hash": ""}})
    return server_sessions.end_all(username) if sessions else 0


@writes
def set_active(username, active):
    """Activate or deactivate an account; deactivating ends its sessions and token."""
    result = db.users().update_one({"username": username}, {"$set": {"active": bool(active)}})
    if result.matched_count == 0:
        raise LookupError(_("no user %(name)r", name=username))
    if not active:
        revoke_access(username)


@writes
def create_token(username):
    """Give the user a new API token (replacing the old one); returns it once, in clear."""
    token = secrets.token_urlsafe(32)
    result = db.users().update_one({"username": username}, {"$set": {"token_hash": hash_token(token)}})
    if result.matched_count == 0:
        raise LookupError(_("no user %(name)r", name=username))
    return token


@writes
def set_locale(username, locale):
    """Remember the user's language on the account."""
    db.users().update_one({"username": username}, {"$set": {"locale": locale}})


def check_password(username, password):
    """The user when the password is right and the account active, else None."""
    if not valid_username(username) or not isinstance(password, str):
        return None
    found = db.users().find_one({"username": username, "active": True},
                                {**USER_FIELDS, "password_hash": 1})
    if not found or not found.get("password_hash"):
        # Hash anyway so a missing user costs the same time as a wrong password.
        check_password_hash(_DUMMY_HASH, password)
        return None
    if not check_password_hash(found.pop("password_hash"), password):
        return None
    return _public_user(found)


_DUMMY_HASH = generate_password_hash(secrets.token_hex(8))


def _public_user(doc):
    """The user as the app passes it around: `uid` is the account's id as a string."""
    doc["uid"] = str(doc.pop("_id"))
    return doc


def _load_user(query):
    found = db.users().find_one({**query, "active": True}, USER_FIELDS)
    return _public_user(found) if found else None


def _user_by_token(token):
    token_hash = hash_token(token)
    return caches().users.get_or_compute(("token", token_hash), lambda: _load_user({"token_hash": token_hash}))


def user_by_username(username):
    if not valid_username(username):
        return None
    return caches().users.get_or_compute(("user", username), lambda: _load_user({"username": username}))


def current_user():
    """The authenticated user of this request (dict) or None; sets g.auth_method."""
    if "user" in g:
        return g.user
    user, method = None, None
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() == "bearer":
        # A Bearer header is the identity, even a bad one: no fallback to the cookie.
        user, method = (_user_by_token(token.strip()) if token.strip() else None), "token"
    elif session.get("username"):
        # Other schemes (e.g. Basic from a reverse proxy the browser logged into) are not
        # ours: they must not hide the session.
        user, method = user_by_username(session["username"]), "session"
        if user is not None and session.get("uid") != user["uid"]:
            # The account was deleted and its name given to a new one: not this session's user.
            user = None
        if user is not None and not server_sessions.is_live(session.get("sid"), user["uid"]):
            # Logged out, revoked or past its absolute lifetime.
            user = None
    g.user, g.auth_method = user, method
    return user


def login_session(user):
    if session.get("sid"):
        server_sessions.end(session["sid"])
    session.clear()
    session.permanent = True
    session["username"] = user["username"]
    session["uid"] = user["uid"]
    session["sid"] = server_sessions.start(user)


def logout_session():
    """End this browser's session on the server and clear its cookie."""
    sid = session.get("sid")
    session.clear()
    server_sessions.end(sid)


def require_role(role="segmenter"):
    """Decorator: 401 without identity, 403 below `role`, CSRF on cookie-authenticated writes."""
    def decorator(view):
        @functools.wraps(view)
        def wrapped(*args, **kwargs):
            user = current_user()
            if user is None:
                if not wants_json():
                    return redirect(url_for("pages.login", next=request.full_path))
                raise ApiError(401, "unauthorized", _("Log in or send a valid Bearer token."))
            if g.auth_method == "session" and request.method not in SAFE_METHODS:
                csrf.protect()
            if not has_role(user, role):
                raise forbidden(_("This needs the %(role)s role.", role=role))
            return view(*args, **kwargs)
        return wrapped
    return decorator


def init_app(app):
    csrf.init_app(app)

    from flask_wtf.csrf import CSRFError

    @app.errorhandler(CSRFError)
    def handle_csrf_error(exc):
        return error_response(400, "csrf_failed", _("CSRF check failed: %(reason)s",
                                                            reason=CSRF_REASONS.get(exc.description, exc.description)))

    @app.context_processor
    def inject_user():
        return {"current_user": current_user(), "has_role": has_role}

    if app.config.get("SECRET_KEY_IS_EPHEMERAL"):
        app.logger.warning("SECRET_KEY is not set: sessions will not survive a restart "
                           "and will not work across Gunicorn workers")
