"""Gunicorn configuration for SegDash (a plain module, as in Gunicorn's example config).

Every value comes from the environment (documented in .env.example); an explicit
variable always wins over the defaults computed here.
"""
import logging
import multiprocessing
import os


def _int(name, default):
    value = os.environ.get(name)
    return int(value) if value not in (None, "") else default


def default_workers(cpus=None):
    """(2 x CPUs) + 1, Gunicorn's rule of thumb, capped at 8.

    The cap keeps memory and database connections bounded: 8 workers on the
    12-thread workstation, 5 on a 2-core machine.
    """
    cpus = cpus or multiprocessing.cpu_count()
    return min(2 * cpus + 1, 8)


# Where to listen.
bind = os.environ.get("GUNICORN_BIND") or "0.0.0.0:5000"

# Worker processes, and threads per worker (gthread) or a gevent event loop.
workers = _int("GUNICORN_WORKERS", default_workers())
threads = _int("GUNICORN_THREADS", 2)
worker_class = os.environ.get("GUNICORN_WORKER_CLASS") or "gthread"

# A worker silent for this long is killed and replaced.
timeout = _int("GUNICORN_TIMEOUT", 120)
graceful_timeout = _int("GUNICORN_GRACEFUL_TIMEOUT", 30)
keepalive = _int("GUNICORN_KEEPALIVE", 5)

# Recycle workers after this many requests (plus jitter so they do not all restart together).
max_requests = _int("GUNICORN_MAX_REQUESTS", 500)
max_requests_jitter = _int("GUNICORN_MAX_REQUESTS_JITTER", 50)

# Load the app once in the master and fork it: workers share its memory pages.
# The app opens no database connection at import; each worker connects after fork.
preload_app = True

loglevel = (os.environ.get("LOG_LEVEL") or "info").lower()
accesslog = os.environ.get("GUNICORN_ACCESS_LOG") or None
errorlog = "-"


def on_starting(server):
    server.log.info(
        "Gunicorn starting with config: workers=%s threads=%s class=%s timeout=%s "
        "max_requests=%s max_requests_jitter=%s bind=%s preload_app=%s",
        workers, threads, worker_class, timeout, max_requests, max_requests_jitter, bind, preload_app)
    logging.getLogger("gunicorn.error").setLevel(loglevel.upper())
