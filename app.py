"""SegDash: the application factory.

`gunicorn app:app` serves the module-level `app`. Creating the app opens no
database connection: `db.client()` connects lazily in each worker after fork.
"""
import logging

from flask import Flask

import api
import auth
import cache
import cli
import db
import errors
import memory_monitor
import pages
from batch_ids import BatchMatcher, compile_extra_patterns
from config import load_settings


def create_app(overrides=None):
    app = Flask(__name__)
    app.config.update(load_settings())
    if overrides:
        app.config.update(overrides)
    logging.basicConfig(level=app.config["LOG_LEVEL"].upper(),
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    app.json.sort_keys = False
    app.extensions["segdash_matcher"] = BatchMatcher(
        compile_extra_patterns(app.config["EXTRA_BATCH_PATTERNS"]))
    db.init_app(app)
    cache.init_app(app)
    errors.init_app(app)
    auth.init_app(app)
    cli.init_app(app)
    memory_monitor.init_app(app)
    api.register(app)
    app.register_blueprint(pages.bp)
    return app


app = create_app()
