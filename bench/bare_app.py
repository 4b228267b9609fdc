"""The request-overhead floor: a bare Flask app returning a small JSON body.

Served by the same `gunicorn -c gunicorn_config.py` configuration as SegDash
(`gunicorn bench.bare_app:app`): same workers, threads, worker class, preload
and worker recycling. No database, no auth, no middleware.
"""
from flask import Flask, jsonify

app = Flask(__name__)


@app.get("/bare")
def bare():
    return jsonify({"status": "ok", "items": [], "total": 0})


@app.get("/healthz")
def healthz():
    return jsonify({"status": "ok"})
