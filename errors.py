"""The one error format: `{"error": "<code>", "message": "<text>", "request_id": "<id>"}`
with its status (the request id is also in the X-Request-ID header and the logs).

Views raise `ApiError`; Werkzeug's HTTP errors and database outages are turned
into the same shape. Pages (non-API paths) get a readable HTML page instead.
"""
import logging

from flask import jsonify, make_response, render_template, request
from pymongo.errors import AutoReconnect, ConnectionFailure, PyMongoError, ServerSelectionTimeoutError
from werkzeug.exceptions import HTTPException

from logs import request_id

log = logging.getLogger(__name__)

DB_UNAVAILABLE = (ServerSelectionTimeoutError, AutoReconnect, ConnectionFailure)


class ApiError(Exception):
    def __init__(self, status, code, message, **extra):
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.extra = extra


def bad_request(message, code="bad_request", **extra):
    return ApiError(400, code, message, **extra)


def not_found(message="Not found."):
    return ApiError(404, "not_found", message)


def conflict(message, code="conflict", **extra):
    return ApiError(409, code, message, **extra)


def forbidden(message="You may not do this."):
    return ApiError(403, "forbidden", message)


def wants_json():
    path = request.path
    return path.startswith("/api/") or path in ("/healthz", "/metrics") or request.is_json or (
        request.accept_mimetypes.best == "application/json"
    )


def error_response(status, code, message, **extra):
    if wants_json():
        body = jsonify({"error": code, "message": message, **extra, "request_id": request_id()})
    else:
        body = render_template("error.html", status=status, code=code, message=message)
    return make_response(body, status)


def readable_size(size):
    """`50 MB`, `512 KB` or `300 bytes`."""
    for unit, factor in (("MB", 1024 * 1024), ("KB", 1024)):
        if size >= factor:
            return f"{size / factor:g} {unit}"
    return f"{size} bytes"


def http_code(exc):
    return (exc.name or "error").lower().replace(" ", "_").replace("'", "")


def init_app(app):
    @app.errorhandler(ApiError)
    def handle_api_error(exc):
        return error_response(exc.status, exc.code, exc.message, **exc.extra)

    @app.errorhandler(HTTPException)
    def handle_http_error(exc):
        message = exc.description or exc.name
        if exc.code == 413:
            message = f"The upload is larger than the {readable_size(app.config['MAX_CONTENT_LENGTH'])} limit."
        response = error_response(exc.code, http_code(exc), message)
        if exc.code == 405 and getattr(exc, "valid_methods", None):
            response.headers["Allow"] = ", ".join(exc.valid_methods)
        return response

    @app.errorhandler(PyMongoError)
    def handle_db_error(exc):
        if exc.timeout and not isinstance(exc, ServerSelectionTimeoutError):
            # An operation outlived its deadline (the socket timeout) on a live server.
            log.warning("database operation timed out: %s", exc.__class__.__name__)
            return error_response(504, "database_timeout",
                                  "The database did not finish the work in time; nothing was lost, "
                                  "run it again to go on.")
        if isinstance(exc, DB_UNAVAILABLE):
            log.warning("database unavailable: %s", exc.__class__.__name__)
            return error_response(503, "database_unavailable",
                                  "The database is not reachable right now; try again shortly.")
        log.exception("database error")
        return error_response(500, "internal_error", "The server could not complete the request.")

    @app.errorhandler(Exception)
    def handle_unexpected(exc):
        log.exception("unhandled error")
        return error_response(500, "internal_error", "The server could not complete the request.")
