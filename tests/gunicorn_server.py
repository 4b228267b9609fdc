"""SegDash under a real Gunicorn for the operations tests (metrics, logs, check_memory.py).

Like tests/test_gunicorn.py: a subprocess on a free port against the session's database
server, with its own database. Its stdout and stderr go to a file (never an undrained
pipe, which would block the workers once full), read back with `lines()`.
"""
import json
import os
import signal
import subprocess
import sys
import tempfile
import time

import psutil
import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families

from conftest import ROOT, build_app, free_port


def prepare_database(mongo_uri, db_name, lead="lead1"):
    """Indexes and a lead with an API token in `db_name`; returns the Bearer header."""
    import auth
    import db

    app = build_app(mongo_uri, db_name)
    with app.app_context():
        db.ensure_indexes()
        auth.create_user(lead, "lead")
        token = auth.create_token(lead)
    return {"Authorization": f"Bearer {token}"}


def drop_database(mongo_uri, db_name):
    import db

    app = build_app(mongo_uri, db_name)
    with app.app_context():
        db.client().drop_database(db_name)


class GunicornServer:
    def __init__(self, mongo_uri, db_name, workers=2, extra_args=(), **env):
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.env = {k: v for k, v in os.environ.items() if k != "PROMETHEUS_MULTIPROC_DIR"}
        self.env.update(MONGO_URI=mongo_uri, MONGO_DB=db_name, SECRET_KEY="ops-test",
                        GUNICORN_BIND=f"127.0.0.1:{self.port}", GUNICORN_WORKERS=str(workers),
                        GUNICORN_THREADS="2", LOG_LEVEL="INFO", MEMORY_SAMPLE_RATE="0",
                        # No recycling mid-test unless a test asks for it: worker pids stay put.
                        GUNICORN_MAX_REQUESTS="0")
        self.env.update(env)
        self.workers_wanted = workers
        self.log = tempfile.NamedTemporaryFile(mode="w+", prefix="segdash-gunicorn-", suffix=".log")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "-c", "gunicorn_config.py", *extra_args, "app:app"],
            cwd=ROOT, env=self.env, stdout=self.log, stderr=subprocess.STDOUT, text=True)
        self.pid = self.process.pid
        self._wait_ready()

    def _wait_ready(self, timeout=60):
        deadline = time.monotonic() + timeout
        while True:
            try:
                if (requests.get(self.base + "/healthz", timeout=2).status_code == 200
                        and len(self.workers()) == self.workers_wanted):
                    return
            except requests.ConnectionError:
                pass
            if time.monotonic() > deadline or self.process.poll() is not None:
                self.process.kill()
                pytest.fail("gunicorn did not serve /healthz:\n" + self.output())
            time.sleep(0.2)

    def workers(self):
        return sorted(child.pid for child in psutil.Process(self.pid).children())

    def output(self):
        with open(self.log.name, encoding="utf-8") as handle:
            return handle.read()

    def lines(self):
        """Every line of stdout/stderr so far."""
        return [line for line in self.output().splitlines() if line.strip()]

    def json_lines(self):
        return [json.loads(line) for line in self.lines()]

    def get(self, path, **kwargs):
        kwargs.setdefault("timeout", 10)
        return requests.get(self.base + path, **kwargs)

    def post(self, path, **kwargs):
        kwargs.setdefault("timeout", 30)
        return requests.post(self.base + path, **kwargs)

    def scrape(self):
        """/metrics parsed: {(sample name, frozenset of label items): value}."""
        response = self.get("/metrics")
        assert response.status_code == 200, response.text
        return parse_metrics(response.text)

    def kill_worker(self, pid):
        os.kill(pid, signal.SIGKILL)

    def stop(self):
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        return self.output()

    def close(self):
        self.stop()
        self.log.close()


def parse_metrics(text):
    samples = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            samples[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return samples


def value(samples, name, **labels):
    """The sum of the samples called `name` whose labels include `labels` (0 when none)."""
    wanted = set(labels.items())
    return sum(v for (n, lbls), v in samples.items() if n == name and wanted <= lbls)


def label_values(samples, name, label, **labels):
    wanted = set(labels.items())
    return {dict(lbls)[label] for (n, lbls), _v in samples.items()
            if n == name and wanted <= lbls and label in dict(lbls)}
