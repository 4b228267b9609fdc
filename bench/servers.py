"""The processes the benchmark and the tests start: a database server and Gunicorn servers.

Everything listens on 127.0.0.1 on a free port and is stopped by its own
process id when the run ends (normally or not). tests/gunicorn_server.py adds the
tests' defaults and HTTP helpers on top of `Gunicorn`.
"""
import importlib.metadata
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request

import psutil

import embedded_db

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

MB = 1024 * 1024


def free_port():
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class DatabaseServer:
    """embedded_db.start() on a free port and a temporary data directory (or a given URI)."""

    def __init__(self, uri=None):
        self.given_uri = uri
        self.process = None
        self.tmpdir = None
        self.uri = uri
        self.name = "external"

    def __enter__(self):
        if self.given_uri:
            return self
        self.tmpdir = tempfile.mkdtemp(prefix="segdash-bench-db-")
        self.process, self.uri, self.name = embedded_db.start(
            self.tmpdir, free_port(), os.path.join(self.tmpdir, "server.log"))
        return self

    def __exit__(self, *exc):
        self.stop()

    def stop(self):
        if self.process is not None:
            embedded_db.stop(self.process)
            self.process = None
        if self.tmpdir:
            shutil.rmtree(self.tmpdir, ignore_errors=True)
            self.tmpdir = None

    @property
    def pid(self):
        return self.process.pid if self.process else None

    def describe(self, client):
        """Which server this is, and its version."""
        info = client.server_info()
        wire = client.admin.command("hello").get("maxWireVersion")
        if self.name == "secantusdb":
            try:
                package = importlib.metadata.version("SecantusDB")
            except importlib.metadata.PackageNotFoundError:
                package = "?"
            return {"name": "SecantusDB", "version": package, "reports_mongodb_version": info.get("version"),
                    "max_wire_version": wire, "started_by_bench": True,
                    "text": f"SecantusDB {package} (pure-Python server, reports MongoDB "
                            f"{info.get('version')}, wire version {wire}), started by the benchmark"}
        name = "mongod" if self.name == "mongod" else "MongoDB (external)"
        return {"name": name, "version": info.get("version"), "max_wire_version": wire,
                "started_by_bench": self.process is not None,
                "text": f"{name} {info.get('version')} (wire version {wire})"}


class Gunicorn:
    """`gunicorn -c gunicorn_config.py MODULE` with the repository's configuration.

    Settings come from the environment exactly as in production (inherited GUNICORN_*
    variables are dropped); the caller sets the database, the worker count and class,
    and anything else through `extra_env`. Output goes to a file (never an undrained
    pipe, which would block the workers once full): in `log_dir` when given (kept),
    else a temporary file removed by `close()`.
    """

    def __init__(self, module, mongo_uri, db_name, workers, worker_class="gthread", log_dir=None,
                 extra_env=None, extra_args=()):
        self.module = module
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.worker_count = workers
        self.worker_class = worker_class
        self.extra_args = tuple(extra_args)
        self.env = {name: value for name, value in os.environ.items()
                    if not name.startswith("GUNICORN_") and name != "PROMETHEUS_MULTIPROC_DIR"}
        self.env.update({
            "MONGO_URI": mongo_uri, "MONGO_DB": db_name, "SECRET_KEY": "segdash-bench",
            "GUNICORN_BIND": f"127.0.0.1:{self.port}", "GUNICORN_WORKERS": str(workers),
            "GUNICORN_WORKER_CLASS": worker_class, "LOG_LEVEL": "WARNING",
            "PYTHONPATH": ROOT,
        })
        self.env.update(extra_env or {})
        if log_dir:
            self.log_path = os.path.join(
                log_dir, f"gunicorn-{module.replace(':', '_')}-{worker_class}-{workers}-{self.port}.log")
            self._own_log = False
        else:
            handle, self.log_path = tempfile.mkstemp(prefix="segdash-gunicorn-", suffix=".log")
            os.close(handle)
            self._own_log = True
        self.process = None

    def __enter__(self):
        self.start()
        return self

    def __exit__(self, *exc):
        self.close()

    @property
    def pid(self):
        return self.process.pid if self.process else None

    def start(self, timeout=90):
        """Start, and return once /healthz answers and every worker is up."""
        log = open(self.log_path, "ab")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "-c", "gunicorn_config.py", *self.extra_args, self.module],
            cwd=ROOT, env=self.env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        log.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"gunicorn {self.module} exited; log: {self.log_tail()}")
            try:
                with urllib.request.urlopen(self.base + "/healthz", timeout=5) as response:
                    if response.status == 200 and len(self.workers_now()) >= self.worker_count:
                        return self
            except OSError:
                pass
            time.sleep(0.2)
        self.stop()
        raise RuntimeError(f"gunicorn {self.module} did not answer in {timeout}s; log: {self.log_tail()}")

    def output(self):
        """Everything the server wrote so far."""
        try:
            with open(self.log_path, "rb") as handle:
                return handle.read().decode("utf-8", "replace")
        except OSError:
            return ""

    def log_tail(self, chars=2000):
        return self.output()[-chars:]

    def master(self):
        return psutil.Process(self.process.pid)

    def workers_now(self):
        try:
            return self.master().children()
        except psutil.Error:
            return []

    def memory(self):
        """PSS/RSS/USS of the master and each worker (psutil memory_full_info), in MB."""
        rows = []
        for role, proc in [("master", self.master())] + [("worker", p) for p in self.workers_now()]:
            try:
                info = proc.memory_full_info()
            except psutil.Error:
                continue
            rows.append({"role": role, "pid": proc.pid, "rss_mb": info.rss / MB,
                         "pss_mb": getattr(info, "pss", info.rss) / MB, "uss_mb": info.uss / MB})
        return rows

    def stop(self, timeout=20):
        """SIGTERM, then SIGKILL to the whole process group; returns the output."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()
        return self.output()

    def close(self):
        """Stop, and remove the log when it was a temporary file."""
        self.stop()
        if self._own_log:
            try:
                os.unlink(self.log_path)
            except OSError:
                pass


class JobRunner:
    """`flask --app app run-jobs`: the job runner that start_optimized.sh runs beside Gunicorn."""

    def __init__(self, mongo_uri, db_name, log_dir=None, extra_env=None):
        self.env = dict(os.environ)
        self.env.update({"MONGO_URI": mongo_uri, "MONGO_DB": db_name, "SECRET_KEY": "segdash-bench",
                         "LOG_LEVEL": "WARNING", "PYTHONPATH": ROOT})
        self.env.update(extra_env or {})
        self.log_path = os.path.join(log_dir or tempfile.gettempdir(), f"job-runner-{free_port()}.log")
        self.process = None

    def __enter__(self):
        log = open(self.log_path, "ab")
        self.process = subprocess.Popen([sys.executable, "-m", "flask", "--app", "app", "run-jobs"],
                                        cwd=ROOT, env=self.env, stdout=log, stderr=subprocess.STDOUT,
                                        start_new_session=True)
        log.close()
        return self

    def __exit__(self, *exc):
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()
