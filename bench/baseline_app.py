"""SegDash's app plus the old dashboard's list and export endpoints (benchmark only).

`gunicorn bench.baseline_app:app` serves SegDash unchanged and, beside it,
`/baseline/batches` (every batch loaded, then one page cut out) and
`/baseline/export.csv` (every row loaded, the whole CSV built, then sent), so
both run in the same kind of Gunicorn worker against the same database.
"""
from flask import Blueprint, Response, request

import db
from app import create_app
from bench import baseline

bp = Blueprint("baseline", __name__, url_prefix="/baseline")


@bp.get("/batches")
def list_batches():
    page = max(1, int(request.args.get("page", 1)))
    return Response(baseline.list_all_then_slice(db.database(), page=page), mimetype="application/json")


@bp.get("/export.csv")
def export():
    return Response(baseline.export_load_all(db.database()), mimetype="text/csv")


def create():
    application = create_app()
    application.register_blueprint(bp)
    return application


app = create()
