"""Samples worker memory on a fraction of requests and warns when it runs high.

With MEMORY_SAMPLE_RATE=0.01, one request in a hundred reads the process's RSS
and VMS (psutil) after it is handled and logs them with its method and path; a
sample above MEMORY_WARN_MB is logged as a warning. Unsampled requests cost one
random number.
"""
import logging
import os
import random

import psutil
from flask import request

log = logging.getLogger("segdash.memory")
_MB = 1024 * 1024


def init_app(app):
    rate = app.config["MEMORY_SAMPLE_RATE"]
    warn_bytes = app.config["MEMORY_WARN_MB"] * _MB
    if rate <= 0:
        return
    # The app is created in the Gunicorn master and forked: look up the worker's own
    # process (by its pid) on the first sample, not the master's.
    found = {}

    @app.after_request
    def sample_memory(response):
        if random.random() < rate:
            pid = os.getpid()
            process = found.get(pid)
            if process is None:
                process = found[pid] = psutil.Process(pid)
            info = process.memory_info()
            fields = {"rss_mb": round(info.rss / _MB, 1), "vms_mb": round(info.vms / _MB, 1),
                      "method": request.method, "path": request.path, "pid": process.pid}
            if info.rss > warn_bytes:
                log.warning("worker memory above %s MB: %s", app.config["MEMORY_WARN_MB"], fields,
                            extra=fields)
            else:
                log.info("worker memory: %s", fields, extra=fields)
        return response
