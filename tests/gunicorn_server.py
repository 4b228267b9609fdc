"""SegDash under a real Gunicorn for the operations tests (metrics, logs, faults, browser).

bench.servers.Gunicorn launches it (the benchmark's launcher) against the session's
database server, with the tests' defaults; this adds HTTP and log helpers.
"""
import json
import os
import signal

import requests
from prometheus_client.parser import text_string_to_metric_families

from bench.servers import Gunicorn
from helpers import TEST_PASSWORD_HASH, build_app


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


class GunicornServer(Gunicorn):
    """`app:app` under Gunicorn, started at once; keyword arguments are environment settings."""

    DEFAULTS = {"SECRET_KEY": "ops-test", "GUNICORN_THREADS": "2", "LOG_LEVEL": "INFO",
                "MEMORY_SAMPLE_RATE": "0", "PASSWORD_HASH_METHOD": TEST_PASSWORD_HASH,
                # No recycling mid-test unless a test asks for it: worker pids stay put.
                "GUNICORN_MAX_REQUESTS": "0"}

    def __init__(self, mongo_uri, db_name, workers=2, extra_args=(), **env):
        super().__init__("app:app", mongo_uri, db_name, workers, extra_env={**self.DEFAULTS, **env},
                         extra_args=extra_args)
        self.start()

    def workers(self):
        return sorted(child.pid for child in self.workers_now())

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
