"""Samples worker memory on a fraction of requests and warns when it runs high.

With MEMORY_SAMPLE_RATE=0.01, one request in a hundred reads the process's RSS
and VMS (psutil) after it is handled and logs them with its method and path; a
sample above MEMORY_WARN_MB is logged as a warning. Unsampled requests cost one
random number.
"""
import logging
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
    process = psutil.Process()

    @app.after_request
    def sample_memory(response):
        if random.random() < rate:
            info = process.memory_info()
            fields = {"rss_mb": round(info.rss / _MB, 1), "vms_mb": round(info.vms / _MB, 1),
                      "method": request.method, "path": request.path, "pid": process.pid}
            if info.rss > warn_bytes:
                log.warning("worker memory above %s MB: %s", app.config["MEMORY_WARN_MB"], fields)
            else:
                log.info("worker memory: %s", fields)
        return response
