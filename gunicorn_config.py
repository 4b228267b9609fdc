"""Gunicorn configuration for SegDash (a plain module, as in Gunicorn's example config).

Every value comes from the environment (documented in .env.example); an explicit
variable always wins over the defaults computed here.

Metrics across workers: loaded by Gunicorn (as module `__config__`, in the master, before
the app is preloaded and before any worker forks), this file points
PROMETHEUS_MULTIPROC_DIR at a directory for prometheus_client's per-process files — a
fresh temporary one per start when the variable is not given (removed again on exit, and
at the next start when a killed master could not), or the given one, created when missing
and emptied of an earlier run's files. `child_exit`
marks each exited worker dead (its memory gauge disappears; its counters keep counting in
the totals) and `post_worker_init` records a new worker's memory at once. Imported under
any other name (tests, check_memory.py) it only computes the settings.

Logs: `logconfig_dict` sends Gunicorn's own lines through the app's JSON handler to stdout.

gevent: with preload_app the app is imported in the master, before the gevent worker
would patch the standard library after fork; locks created by then would be OS locks
that block a whole gevent worker while one greenlet waits on the database. So when the
worker class is gevent, this file patches first, before anything else is imported.
"""
import os

if __name__ == "__config__" and (os.environ.get("GUNICORN_WORKER_CLASS") or "gthread") == "gevent":
    from gevent import monkey

    monkey.patch_all()

import glob
import logging
import multiprocessing
import shutil
import tempfile

import psutil

import logs


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
# Forwarded headers (X-Forwarded-Proto …) are believed in one place only: the app's
# TRUSTED_PROXY_HOPS (security.py). Gunicorn's own default would believe them from any
# local client.
forwarded_allow_ips = ""

loglevel = (os.environ.get("LOG_LEVEL") or "info").lower()
# Off by default (the app logs every request with its request id); "-" for stdout or a file.
accesslog = os.environ.get("GUNICORN_ACCESS_LOG") or None
errorlog = "-"
# JSON lines on stdout for Gunicorn's master and workers too (logs.py).
logconfig_dict = logs.gunicorn_logconfig(loglevel, accesslog)

METRICS_DIR_ENV = "PROMETHEUS_MULTIPROC_DIR"
# Internal markers: the temporary directory this setup made, and the master that set it up.
_TEMP_DIR_ENV = "SEGDASH_METRICS_TEMP_DIR"
_MASTER_ENV = "SEGDASH_METRICS_MASTER_PID"


_TEMP_PREFIX = "segdash-metrics-"


def remove_orphaned_metrics_dirs():
    """Temporary metrics directories of masters that are gone (killed before `on_exit`)."""
    for path in glob.glob(os.path.join(tempfile.gettempdir(), f"{_TEMP_PREFIX}*-*")):
        owner = os.path.basename(path)[len(_TEMP_PREFIX):].split("-", 1)[0]
        if owner.isdigit() and not psutil.pid_exists(int(owner)):
            shutil.rmtree(path, ignore_errors=True)


def prepare_metrics_dir(environ=os.environ):
    """Point PROMETHEUS_MULTIPROC_DIR at an empty directory for this Gunicorn master; returns it.

    A configuration reload (SIGHUP) in the same master keeps the directory its workers
    write to. A new master (a restart, or a re-exec by SIGUSR2 that inherited the old
    master's environment) never reuses another master's temporary directory.
    """
    me = str(os.getpid())
    path = environ.get(METRICS_DIR_ENV)
    if path and environ.get(_MASTER_ENV) == me:
        return path
    if path and path != environ.get(_TEMP_DIR_ENV):
        os.makedirs(path, exist_ok=True)
        for stale in glob.glob(os.path.join(path, "*.db")):
            os.remove(stale)
    else:
        remove_orphaned_metrics_dirs()
        path = tempfile.mkdtemp(prefix=f"{_TEMP_PREFIX}{me}-")
        environ[_TEMP_DIR_ENV] = path
    environ[METRICS_DIR_ENV] = path
    environ[_MASTER_ENV] = me
    return path


if __name__ == "__config__":  # loaded by Gunicorn itself
    prepare_metrics_dir()


def on_starting(server):
    server.log.info(
        "Gunicorn starting with config: workers=%s threads=%s class=%s timeout=%s "
        "max_requests=%s max_requests_jitter=%s bind=%s preload_app=%s",
        workers, threads, worker_class, timeout, max_requests, max_requests_jitter, bind, preload_app)
    logging.getLogger("gunicorn.error").setLevel(loglevel.upper())
    server.log.info("Prometheus multiprocess directory: %s", os.environ.get(METRICS_DIR_ENV))


def post_worker_init(worker):
    """A new worker shows in /metrics (its memory gauge) before it serves anything."""
    import metrics

    metrics.record_memory()


def child_exit(server, worker):
    """In the master, for every worker that exited (recycled, killed, crashed)."""
    if os.environ.get(METRICS_DIR_ENV):
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(worker.pid)


def on_exit(server):
    """Remove the temporary metrics directory this master made."""
    temp = os.environ.get(_TEMP_DIR_ENV)
    if (temp and os.environ.get(METRICS_DIR_ENV) == temp
            and os.environ.get(_MASTER_ENV) == str(os.getpid())):
        shutil.rmtree(temp, ignore_errors=True)
