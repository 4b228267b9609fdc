"""A job runner process (`flask --app app run-jobs`) for the tests that need real processes.

Like tests/gunicorn_server.py: a subprocess against the session's database server, its
output in a file (never an undrained pipe), read back with `output()`.
"""
import os
import signal
import subprocess
import sys
import tempfile

from helpers import ROOT


class RunnerProcess:
    def __init__(self, mongo_uri, db_name, **env):
        self.env = {k: v for k, v in os.environ.items() if k != "PROMETHEUS_MULTIPROC_DIR"}
        self.env.update(MONGO_URI=mongo_uri, MONGO_DB=db_name, SECRET_KEY="ops-test", LOG_LEVEL="INFO",
                        JOB_POLL_SECONDS="0.2")
        self.env.update(env)
        self.log = tempfile.NamedTemporaryFile(mode="w+", prefix="segdash-runner-", suffix=".log")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "flask", "--app", "app", "run-jobs"],
            cwd=ROOT, env=self.env, stdout=self.log, stderr=subprocess.STDOUT, text=True)
        self.pid = self.process.pid

    def output(self):
        with open(self.log.name, encoding="utf-8") as handle:
            return handle.read()

    def kill(self):
        """SIGKILL: no clean-up of any kind, as in a crash."""
        os.kill(self.pid, signal.SIGKILL)
        self.process.wait(30)

    def stop(self, timeout=30):
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        return self.process.returncode

    def close(self):
        self.stop()
        self.log.close()
