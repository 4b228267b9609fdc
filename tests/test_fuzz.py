"""Fuzzing every operation of the generated OpenAPI document with Schemathesis, in process, on the real database.

The app runs on the session's database server with a small seeded dataset (seed.py:
batches in every status, linked, unlinked, unmatched and duplicate files) and a lead's
Bearer token. Schemathesis generates valid and invalid requests from the document
(explicit edge cases first, then Hypothesis fuzzing) and checks each response: never a
5xx, a documented status code and content type, a body of the documented schema, the
invalid ones refused, and 401 without credentials.

Deterministic and bounded: derandomized generation, FUZZ_EXAMPLES examples per operation
and mode. For a longer run by hand: `FUZZ_EXAMPLES=300 .venv/bin/python -m pytest tests/test_fuzz.py`.
"""
import os
import uuid

import pytest
import schemathesis
from hypothesis import HealthCheck, settings

from helpers import build_app

pytestmark = pytest.mark.system

FUZZ_EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "50"))
SEED_BATCHES = 30
SEED_MASKS = 150


# Built at import, because Schemathesis reads the document from it while collecting (its
# fixture-based loader does not run under this pytest). The app connects on first use, so
# the fixture below points it at the session's database before any request.
FUZZ_APP = build_app("mongodb://127.0.0.1:9/", f"segdash_fuzz_{uuid.uuid4().hex[:12]}",
                     # Small, so that the fuzzer reaches the 413 answer without big bodies.
                     MAX_CONTENT_LENGTH=64 * 1024,
                     # One user sending hundreds of searches a minute; the limit has its own tests.
                     EXPENSIVE_RATE_LIMIT="1000000 per minute")
schema = schemathesis.openapi.from_wsgi("/api/openapi.json", FUZZ_APP, config=schemathesis.Config.from_dict({
    "generation": {"deterministic": True, "database": "none"},
    # Invalid input may also be refused for its size (413): the app's body limit is small here.
    "checks": {"negative_data_rejection": {"expected-statuses": [
        "400", "401", "403", "404", "405", "406", "409", "413", "415", "422", "428", "429"]}},
    "operations": [
        # "Valid per the document, so accepted" cannot hold where validity depends on data the
        # document cannot express: a signed cursor (list), an existing active segmenter
        # (update, assign), a file name that sanitizing leaves something of, a non-empty file
        # (upload). The rest of the checks still run there, and the other operations keep it.
        {"include-operation-id": "listBatches", "checks": {"positive_data_acceptance": {"enabled": False}}},
        {"include-operation-id": "patchBatch", "checks": {"positive_data_acceptance": {"enabled": False}}},
        {"include-operation-id": "uploadMask", "checks": {"positive_data_acceptance": {"enabled": False}}},
        # Also: /api/batches/assign is matched by the /api/batches/<path:raw_id> rule as well, so
        # Flask's Allow header for it lists GET and PATCH too (they answer 404 "No batch assign").
        {"include-operation-id": "assignBatches", "checks": {"positive_data_acceptance": {"enabled": False},
                                                              "allow_header_conformance": {"enabled": False}}},
    ],
}))


@pytest.fixture(scope="module")
def lead_header(mongo_uri):
    """The seeded database, a job runner (so that `?wait=S` ends soon), and the lead's Bearer header."""
    import auth
    import db
    import jobrunner
    import seed

    FUZZ_APP.config["MONGO_URI"] = mongo_uri
    with FUZZ_APP.app_context():
        db.ensure_indexes()
        seed.seed_demo(SEED_BATCHES, SEED_MASKS)
        token = auth.create_token("lead")
    FUZZ_APP.config["JOB_POLL_SECONDS"] = 0.02
    runner = jobrunner.Runner(FUZZ_APP)
    thread = runner.start_thread()
    yield {"Authorization": f"Bearer {token}"}
    runner.stop()
    thread.join(60)
    with FUZZ_APP.app_context():
        db.client().drop_database(FUZZ_APP.config["MONGO_DB"])


@schema.parametrize()
@settings(max_examples=FUZZ_EXAMPLES, derandomize=True, database=None, deadline=None,
          suppress_health_check=list(HealthCheck))
def test_api_conforms_to_its_openapi_document(case, lead_header):
    case.call_and_validate(headers=lead_header)
