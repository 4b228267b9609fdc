"""The pages offer exactly what the API allows (policy.py decides both).

For each role (lead, the segmenter who owns the batch, another segmenter) and each
status, the batch page's offered actions are read from the JSON config the server
renders into it; then every possible action is tried through the API on a fresh batch
in that status: the offered ones must succeed, the others must be refused.
"""
import io
import itertools
import json
import re

import pytest

import policy
from factories import insert_batches

ROLES = ("lead", "owner", "other")
_numbers = itertools.count(1)


@pytest.fixture
def people(lead, seg, other_seg):
    return {"lead": lead, "owner": seg, "other": other_seg}


def page_config(response, script_id):
    assert response.status_code == 200, response.get_data(as_text=True)[:300]
    found = re.search(r'<script id="%s" type="application/json">(.*?)</script>' % script_id,
                      response.get_data(as_text=True), re.S)
    assert found, script_id
    return json.loads(found.group(1))


def fresh_batch(database, status):
    """A new batch in `status`, assigned to the owner ('sam') unless pending, with a mask for each image."""
    number = next(_numbers)
    insert_batches(database, [number], status=status, assignee=None if status == "pending" else "sam",
                   mask_count=4)
    return f"batch_{number:04d}"


def offered_on_page(client, headers, batch_id, status):
    config = page_config(client.get(f"/batches/{batch_id}", headers=headers), "batch-page")
    assert config["batch"]["status"] == status
    names = set()
    for action in config["offers"][status]["actions"]:
        names.add(action["status"] if action["action"] == "status" else action["action"])
    return names


def attempt(client, headers, database, status, action, reason="Looked at every mask."):
    """Try `action` on a fresh batch in `status` (a status change with `reason`); returns the response."""
    batch_id = fresh_batch(database, status)
    if action == "upload":
        content = f"mask for {batch_id}".encode()
        return client.post("/api/masks", data={"file": (io.BytesIO(content), "m.png"), "batch_id": batch_id},
                           headers=headers, content_type="multipart/form-data")
    if action == "assign":
        return client.patch(f"/api/batches/{batch_id}", json={"assignee": "olga"}, headers=headers)
    return client.patch(f"/api/batches/{batch_id}", json={"status": action, "reason": reason}, headers=headers)


def offered_actions(client, headers, batch_id, status):
    config = page_config(client.get(f"/batches/{batch_id}", headers=headers), "batch-page")
    return config["offers"][status]["actions"]


@pytest.mark.parametrize("status", policy.STATUSES)
@pytest.mark.parametrize("role", ROLES)
def test_batch_page_offers_exactly_what_the_api_allows(client, database, people, role, status):
    headers = people[role]
    offered = offered_on_page(client, headers, fresh_batch(database, status), status)
    possible = [target for target in policy.STATUSES if target != status] + ["assign", "upload"]
    assert offered <= set(possible)
    for action in possible:
        response = attempt(client, headers, database, status, action)
        if action in offered:
            assert response.status_code in (200, 201), (role, status, action, response.get_json())
        else:
            assert response.status_code in (400, 403, 409), (role, status, action, response.get_json())
            assert response.get_json()["error"] in ("forbidden", "invalid_transition", "batch_closed")


@pytest.mark.parametrize("status", policy.STATUSES)
def test_offered_changes_that_need_a_reason_are_refused_without_one(client, database, people, status):
    """The page knows which changes ask for a reason (it asks for one): exactly those the API refuses
    without a reason, and every other offered change goes through without one."""
    for action in offered_actions(client, people["lead"], fresh_batch(database, status), status):
        if action["action"] != "status":
            continue
        batch_id = fresh_batch(database, status)
        response = client.patch(f"/api/batches/{batch_id}", json={"status": action["status"]},
                                headers=people["lead"])
        if action["needs_reason"]:
            assert response.status_code == 400 and response.get_json()["error"] == "reason_required", action
            assert database.batches.find_one({"id": batch_id})["status"] == status
        else:
            assert response.status_code == 200, (action, response.get_json())


def test_segmenter_is_not_offered_an_upload_into_handed_in_work(client, database, people):
    """The batch page once showed the upload form on a completed batch that the API refuses."""
    for status in policy.DONE_STATUSES:
        batch_id = fresh_batch(database, status)
        config = page_config(client.get(f"/batches/{batch_id}", headers=people["owner"]), "batch-page")
        entry = config["offers"][status]
        assert "upload" not in {action["action"] for action in entry["actions"]}
        assert entry["upload_note"] == f"Batch {batch_id} is {status}; ask a lead to reopen it."


def test_my_batches_offers_what_the_batch_pages_offer(client, database, people):
    """The queue's per-status table is the owner's offer on each of their batches."""
    table = page_config(client.get("/my", headers=people["owner"]), "my-page")["offers"]
    assert set(table) == set(policy.STATUSES)
    for status in policy.STATUSES:
        if status == "pending":
            continue  # never in a queue: pending batches have no assignee
        batch_id = fresh_batch(database, status)
        page = page_config(client.get(f"/batches/{batch_id}", headers=people["owner"]), "batch-page")
        assert table[status]["actions"] == page["offers"][status]["actions"], status


@pytest.mark.parametrize("role", ROLES)
def test_batches_page_offers_bulk_assignment_only_where_the_api_allows_it(client, database, people, role):
    config = page_config(client.get("/batches", headers=people[role]), "batches-page")
    batch_id = fresh_batch(database, "pending")
    response = client.post("/api/batches/assign", json={"ids": [batch_id], "assignee": "olga"}, headers=people[role])
    if config["can_bulk_assign"]:
        assert response.status_code == 200 and response.get_json()["assigned"] == 1
    else:
        assert response.status_code == 403


def test_policy_has_no_flask():
    """Command-line scripts use the same rules without a web app."""
    import ast
    import inspect

    tree = ast.parse(inspect.getsource(policy))
    imported = {alias.name.split(".")[0] for node in ast.walk(tree) if isinstance(node, ast.Import)
                for alias in node.names}
    imported |= {node.module.split(".")[0] for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)}
    assert imported <= {"dataclasses"}, imported
