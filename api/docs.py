"""The OpenAPI description of the JSON API: `openapi.yaml` at the project root, served as is.

Public (it describes routes, not data). tests/test_openapi.py keeps it equal to the
app's routes, and tests/test_fuzz.py checks the app against it.
"""
import os

from flask import Blueprint, send_file

bp = Blueprint("docs", __name__, url_prefix="/api")

DOCUMENT = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "openapi.yaml")


@bp.get("/openapi.yaml")
def openapi_document():
    return send_file(DOCUMENT, mimetype="application/yaml", max_age=0)
