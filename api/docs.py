"""The OpenAPI document of the JSON API (generated, api/openapi.py) and a browsable page of it.

Public, like the login page: they describe routes, not data. The page is Swagger UI from
the flask-swagger-ui package (its files are served from the installed package).
"""
import yaml
from flask import Blueprint, Response, current_app, jsonify
from flask_swagger_ui import get_swaggerui_blueprint

from api import openapi, schemas
from api.contract import Reply, operation

bp = Blueprint("docs", __name__, url_prefix="/api")

DOCS_URL = "/api/docs"
ui = get_swaggerui_blueprint(DOCS_URL, "/api/openapi.json", blueprint_name="docs_ui",
                             config={"app_name": "SegDash API", "deepLinking": True})


class _Yaml(yaml.SafeDumper):
    """Multi-line texts (descriptions) as YAML blocks, readable as written."""


_Yaml.add_representer(str, lambda dumper, text: dumper.represent_scalar(
    "tag:yaml.org,2002:str", text, style="|" if "\n" in text else None))


@bp.get("/openapi.json")
@operation("operations", {200: Reply("This document, as JSON.", schemas.OpenApiDocument)}, role=None)
def openapi_json():
    """This document"""
    return jsonify(openapi.document(current_app._get_current_object()))


@bp.get("/openapi.yaml")
@operation("operations", {200: Reply("This document, as YAML.", schemas.OpenApiDocument, media="application/yaml")},
           role=None)
def openapi_yaml():
    """This document, as YAML"""
    text = yaml.dump(openapi.document(current_app._get_current_object()), Dumper=_Yaml, sort_keys=False,
                     allow_unicode=True)
    return Response(text, mimetype="application/yaml")
