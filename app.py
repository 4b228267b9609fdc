"""SegDash: the application factory.

`gunicorn app:app` serves the module-level `app`. Creating the app opens no
database connection: `db.client()` connects lazily in each worker after fork.
Logs are JSON lines on stdout (logs.py); `/metrics` is served by metrics.py.
"""
from flask import Flask

import api
import auth
import cache
import cli
import db
import errors
import i18n
import jobrunner
import logs
import memory_monitor
import metrics
import pages
import rate_limit
import request_limits
import security
import session_cookie
import strict_json
from batch_ids import BatchMatcher, compile_extra_patterns
from config import load_settings


def create_app(overrides=None):
    app = Flask(__name__)
    app.config.update(load_settings())
    if overrides:
        app.config.update(overrides)
    logs.configure(app.config["LOG_LEVEL"])
    strict_json.init_app(app)
    app.json.sort_keys = False
    app.extensions["segdash_matcher"] = BatchMatcher(
        compile_extra_patterns(app.config["EXTRA_BATCH_PATTERNS"]))
    # First, so that their before_request hooks see every request.
    logs.init_app(app)
    metrics.init_app(app)
    db.init_app(app)
    cache.init_app(app)
    errors.init_app(app)
    i18n.init_app(app)
    security.init_app(app)
    session_cookie.init_app(app)
    auth.init_app(app)
    rate_limit.init_app(app)
    request_limits.init_app(app)
    cli.init_app(app)
    jobrunner.init_app(app)
    memory_monitor.init_app(app)
    api.register(app)
    app.register_blueprint(pages.bp)
    return app


app = create_app()
