"""JSON-lines logs on stdout, and the request id that ties one request's lines together.

Every line is one JSON object: `time` (UTC, ISO-8601), `level`, `logger`, `message`,
`pid`, any `extra` fields of the call, and `request_id` for every line written while a
request is handled. The request id is the incoming `X-Request-ID` header when that is a
short safe token (letters, digits, `.`, `_`, `:`, `-`; at most 64 characters), otherwise a
new random one. It is sent back in the `X-Request-ID` response header and in JSON error
bodies (errors.py).

Each request is logged once, after it is answered (logger `segdash.request`: method,
path without the query string, status, duration_ms) at INFO; the probes `/healthz` and
`/metrics` at DEBUG, so health checks and scrapes do not flood the log.

Served by Gunicorn, the app and Gunicorn itself write through one handler on stdout
(`gunicorn_logconfig`, used by gunicorn_config.py), so the whole of stdout is JSON lines.
Anywhere else (`flask --app app <command>`, scripts, tests) `configure` sends the same
JSON lines to stderr, so that a command's own output on stdout (a token, the demo
logins) stays clean.
"""
import logging
import re
import sys
import time
import uuid

from flask import g, has_request_context, request
from pythonjsonlogger.json import JsonFormatter

HEADER = "X-Request-ID"
_SAFE_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:-]{0,63}")
PROBES = ("/healthz", "/metrics")
# Gunicorn's access-log atom for the X-Request-ID response header.
_GUNICORN_ACCESS_ATOM = "{x-request-id}o"

request_log = logging.getLogger("segdash.request")


def request_id():
    """This request's id: the client's X-Request-ID when it is a safe token, else a new one."""
    found = g.get("request_id")
    if found is None:
        incoming = request.headers.get(HEADER, "")
        found = incoming if _SAFE_ID.fullmatch(incoming) else uuid.uuid4().hex
        g.request_id = found
    return found


class JsonStreamHandler(logging.StreamHandler):
    """A handler for `sys.stdout` or `sys.stderr` as they are when a line is written.

    (pytest swaps them between tests; a handler holding an old one would fail.)
    """

    def __init__(self, stream_name="stdout"):
        self.stream_name = stream_name
        super().__init__()

    @property
    def stream(self):
        return getattr(sys, self.stream_name)

    @stream.setter
    def stream(self, _value):
        pass


class RequestIdFilter(logging.Filter):
    """Adds `request_id` to lines written during a request (and to Gunicorn access lines)."""

    def filter(self, record):
        if getattr(record, "request_id", None) is None:
            if has_request_context():
                record.request_id = request_id()
            elif record.name == "gunicorn.access" and isinstance(record.args, dict):
                found = record.args.get(_GUNICORN_ACCESS_ATOM)
                if found and found != "-":
                    record.request_id = found
        return True


def json_formatter():
    return JsonFormatter(["levelname", "name", "message", "process"],
                         rename_fields={"levelname": "level", "name": "logger", "process": "pid"},
                         timestamp="time")


def make_handler(stream_name="stdout", filename=None):
    """The JSON handler: on stdout or stderr, or a file (Gunicorn's access log when it names one)."""
    handler = logging.FileHandler(filename) if filename else JsonStreamHandler(stream_name)
    handler.setFormatter(json_formatter())
    handler.addFilter(RequestIdFilter())
    return handler


def configure(level):
    """JSON lines for the root logger at `level` (idempotent): on stderr, unless set up already.

    Under Gunicorn the root logger already has the stdout handler (gunicorn_logconfig);
    then only the level is set.
    """
    root = logging.getLogger()
    if not any(isinstance(h, JsonStreamHandler) for h in root.handlers):
        root.addHandler(make_handler("stderr"))
    root.setLevel(level.upper())


def gunicorn_logconfig(level, access_log=None):
    """Gunicorn's `logconfig_dict`: its master and worker lines as JSON on stdout too.

    Gunicorn's access log stays off unless GUNICORN_ACCESS_LOG is set ("-" for stdout,
    or a file): the app already logs every request once, with its request id.
    """
    level = level.upper()
    handlers = {"json_stdout": {"()": make_handler}}
    access = {"level": "WARNING", "handlers": [], "propagate": True}
    if access_log == "-":
        access["level"] = "INFO"
    elif access_log:
        handlers["json_access_file"] = {"()": make_handler, "filename": access_log}
        access = {"level": "INFO", "handlers": ["json_access_file"], "propagate": False}
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {},
        "handlers": handlers,
        "root": {"level": level, "handlers": ["json_stdout"]},
        "loggers": {
            "gunicorn.error": {"level": level, "handlers": [], "propagate": True},
            "gunicorn.access": access,
        },
    }


def init_app(app):
    """Request ids and the one log line per request."""

    @app.before_request
    def start_request_log():
        g.log_started = time.perf_counter()
        request_id()

    @app.after_request
    def finish_request_log(response):
        response.headers[HEADER] = request_id()
        started = g.pop("log_started", None)
        level = logging.DEBUG if request.path in PROBES else logging.INFO
        if request_log.isEnabledFor(level):
            fields = {"method": request.method, "path": request.path, "status": response.status_code}
            if started is not None:
                fields["duration_ms"] = round((time.perf_counter() - started) * 1000, 1)
            request_log.log(level, "%s %s %s", request.method, request.path, response.status_code,
                            extra=fields)
        return response
