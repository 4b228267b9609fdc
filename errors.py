"""The one error format: `{"error": "<code>", "message": "<text>", "request_id": "<id>"}`
with its status (the request id is also in the X-Request-ID header and the logs).

Views raise `ApiError`; Werkzeug's HTTP errors and database outages are turned
into the same shape. Pages (non-API paths) get a readable HTML page instead.
The `code` is the same in every language; the `message` is in the request's language
(views pass gettext'd or lazy_gettext'd text, rendered here).
"""
import logging

from flask import g, jsonify, make_response, render_template, request
from flask_babel import format_decimal
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from pymongo.errors import AutoReconnect, ConnectionFailure, PyMongoError, ServerSelectionTimeoutError
from werkzeug.exceptions import HTTPException

from logs import request_id

log = logging.getLogger(__name__)

DB_UNAVAILABLE = (ServerSelectionTimeoutError, AutoReconnect, ConnectionFailure)


class ApiError(Exception):
    def __init__(self, status, code, message, headers=None, **extra):
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.headers = headers or {}
        self.extra = extra


def bad_request(message, code="bad_request", **extra):
    return ApiError(400, code, message, **extra)


NOT_FOUND = _l("Not found.")
NOT_ALLOWED = _l("You may not do this.")


def not_found(message=NOT_FOUND):
    return ApiError(404, "not_found", message)


def conflict(message, code="conflict", **extra):
    return ApiError(409, code, message, **extra)


def forbidden(message=NOT_ALLOWED):
    return ApiError(403, "forbidden", message)


def denial_text(denied):
    """A policy refusal's sentence in the request's language (statuses by their shown names)."""
    from policy import STATUSES
    from ui_strings import status_name

    params = {key: status_name(value) if value in STATUSES else value for key, value in denied.params.items()}
    return _(denied.message, **params)


def enforce(denied):
    """Raise the refusal a policy check returned (policy.Denied); nothing when it allowed."""
    if denied is not None:
        raise ApiError(denied.status, denied.code, denial_text(denied), **denied.extra)


def wants_json():
    path = request.path
    return path.startswith("/api/") or path in ("/healthz", "/metrics") or request.is_json or (
        request.accept_mimetypes.best == "application/json"
    )


def error_response(status, code, message, **extra):
    message = str(message)
    if wants_json():
        body = jsonify({"error": code, "message": message, **extra, "request_id": request_id()})
    else:
        # The page shows the user only when this request already loaded it: looking it up
        # could reach the database, which may be what failed.
        g.setdefault("user", None)
        body = render_template("error.html", status=status, code=code, message=message)
    return make_response(body, status)


def readable_size(size):
    """`50 MB`, `512 KB` or `300 bytes`."""
    for unit, factor in (("MB", 1024 * 1024), ("KB", 1024)):
        if size >= factor:
            return f"{format_decimal(size / factor, '0.##')} {unit}"
    return _("%(size)s bytes", size=format_decimal(size, '0'))


# Werkzeug's own descriptions of the HTTP errors, in the request's language.
HTTP_MESSAGES = {
    400: _l("The browser (or proxy) sent a request that this server could not understand."),
    401: _l("Log in or send a valid Bearer token."),
    403: _l("You may not do this."),
    404: _l("The requested URL was not found on the server. If you entered the URL manually "
            "please check your spelling and try again."),
    405: _l("The method is not allowed for the requested URL."),
    406: _l("The server cannot answer in a format the request accepts."),
    414: _l("The requested URL is too long."),
    415: _l("The server does not support the media type transmitted in the request."),
    431: _l("One or more header fields exceeds the maximum size."),
    500: _l("The server could not complete the request."),
    503: _l("The server is temporarily unavailable; try again later."),
}

# Flask-WTF's reasons for refusing a CSRF token, in the request's language.
CSRF_REASONS = {
    "The CSRF token is missing.": _l("The CSRF token is missing."),
    "The CSRF session token is missing.": _l("The CSRF session token is missing."),
    "The CSRF token has expired.": _l("The CSRF token has expired."),
    "The CSRF token is invalid.": _l("The CSRF token is invalid."),
    "The CSRF tokens do not match.": _l("The CSRF tokens do not match."),
}


def http_code(exc):
    return (exc.name or "error").lower().replace(" ", "_").replace("'", "")


def init_app(app):
    @app.errorhandler(ApiError)
    def handle_api_error(exc):
        response = error_response(exc.status, exc.code, exc.message, **exc.extra)
        response.headers.update(exc.headers)
        return response

    @app.errorhandler(HTTPException)
    def handle_http_error(exc):
        message = exc.description or exc.name
        if exc.code in HTTP_MESSAGES and exc.description == type(exc).description:
            message = HTTP_MESSAGES[exc.code]
        if exc.code == 413:
            message = _("The upload is larger than the %(size)s limit.",
                        size=readable_size(app.config['MAX_CONTENT_LENGTH']))
        response = error_response(exc.code, http_code(exc), message)
        if exc.code == 405 and getattr(exc, "valid_methods", None):
            response.headers["Allow"] = ", ".join(exc.valid_methods)
        if exc.code == 416 and getattr(exc, "length", None) is not None:
            response.headers["Content-Range"] = f"{exc.units} */{exc.length}"
        return response

    @app.errorhandler(PyMongoError)
    def handle_db_error(exc):
        if exc.timeout and not isinstance(exc, ServerSelectionTimeoutError):
            # An operation outlived its deadline (the socket timeout) on a live server.
            log.warning("database operation timed out: %s", exc.__class__.__name__)
            return error_response(504, "database_timeout",
                                  _("The database did not finish the work in time; nothing was lost, "
                                    "run it again to go on."))
        if isinstance(exc, DB_UNAVAILABLE):
            log.warning("database unavailable: %s", exc.__class__.__name__)
            return error_response(503, "database_unavailable",
                                  _("The database is not reachable right now; try again shortly."))
        log.exception("database error")
        return error_response(500, "internal_error", _("The server could not complete the request."))

    @app.errorhandler(Exception)
    def handle_unexpected(exc):
        log.exception("unhandled error")
        return error_response(500, "internal_error", _("The server could not complete the request."))
