"""Batch status workflow through PATCH /api/batches/<id> (SPEC §3, §5, §11).

pending → assigned (by assignee) → in_progress → completed → reviewed;
completed → rejected → in_progress; a lead reopens reviewed → in_progress or completed;
unassigning returns to pending; anything else 409.
Segmenters move only their own batches, assigned → in_progress → completed.
Reasons, the incomplete-masks confirmation and the history: tests/test_review.py.
"""
from datetime import datetime, timezone

import pytest

import policy
from checks import assert_error, snapshot
from factories import insert_batches
from helpers import make_user

STATUSES = ["pending", "assigned", "in_progress", "completed", "reviewed", "rejected"]
# Written out from the spec, not imported, so a change to policy.py is caught here.
ALLOWED = {("assigned", "in_progress"), ("in_progress", "completed"), ("completed", "reviewed"),
           ("completed", "rejected"), ("rejected", "in_progress"), ("reviewed", "in_progress"),
           ("reviewed", "completed")}
REFUSED = [(a, b) for a in STATUSES for b in STATUSES if a != b and (a, b) not in ALLOWED]
TIMESTAMP = {"in_progress": "started_at", "completed": "completed_at", "reviewed": "reviewed_at",
             "rejected": "rejected_at"}
OLD = datetime(2020, 1, 1, tzinfo=timezone.utc)


def batch(database, batch_id="batch_0001"):
    return database.batches.find_one({"id": batch_id}, {"_id": 0})


def add(database, number, status="pending", assignee=None):
    """One batch in `status` with a mask for each image, last updated long ago (so a write's
    updated_at is visible)."""
    insert_batches(database, [number], status=status, assignee=assignee, updated_at=OLD, mask_count=4)
    return f"batch_{number:04d}"


def patch(client, headers, body, batch_id="batch_0001"):
    return client.patch(f"/api/batches/{batch_id}", json=body, headers=headers)


# --------------------------------------------------------------------------- the module


def test_policy_module_matches_the_spec():
    assert set(policy.STATUSES) == set(STATUSES)
    for a in STATUSES:
        for b in STATUSES:
            assert policy.can_transition(a, b) == ((a, b) in ALLOWED), (a, b)
    assert policy.segmenter_may("assigned", "in_progress")
    assert policy.segmenter_may("in_progress", "completed")
    for forbidden in [("completed", "reviewed"), ("completed", "rejected"), ("pending", "assigned")]:
        assert not policy.segmenter_may(*forbidden)


# --------------------------------------------------------------------------- happy paths


def test_full_workflow_from_pending_to_reviewed(client, database, lead, seg):
    add(database, 1)

    assigned = patch(client, lead, {"assignee": "sam"})
    assert assigned.status_code == 200, assigned.get_data(as_text=True)
    assert (assigned.get_json()["status"], assigned.get_json()["assignee"]) == ("assigned", "sam")
    doc = batch(database)
    assert (doc["status"], doc["assignee"]) == ("assigned", "sam")
    assert doc["metadata"]["assigned_at"] is not None
    assert doc["metadata"]["started_at"] is None

    started = patch(client, seg, {"status": "in_progress"})
    assert started.status_code == 200, started.get_data(as_text=True)
    assert started.get_json()["status"] == "in_progress"
    assert batch(database)["metadata"]["started_at"] is not None

    completed = patch(client, seg, {"status": "completed"})
    assert completed.status_code == 200, completed.get_data(as_text=True)
    assert batch(database)["status"] == "completed"
    assert batch(database)["metadata"]["completed_at"] is not None

    reviewed = patch(client, lead, {"status": "reviewed"})
    assert reviewed.status_code == 200, reviewed.get_data(as_text=True)
    doc = batch(database)
    assert (doc["status"], doc["assignee"]) == ("reviewed", "sam")
    meta = doc["metadata"]
    assert meta["assigned_at"] <= meta["started_at"] <= meta["completed_at"] <= meta["reviewed_at"]
    body = reviewed.get_json()
    for key in ("assigned_at", "started_at", "completed_at", "reviewed_at"):
        assert body["metadata"][key].endswith("Z")


def test_rejected_batch_goes_back_to_work(client, database, lead, seg):
    add(database, 1, "completed", "sam")

    rejected = patch(client, lead, {"status": "rejected", "reason": "Masks 2 and 3 miss the left lung."})
    assert rejected.status_code == 200, rejected.get_data(as_text=True)
    doc = batch(database)
    assert doc["status"] == "rejected"
    assert doc["metadata"]["rejected_at"] is not None
    assert rejected.get_json()["metadata"]["rejected_at"].endswith("Z")

    resumed = patch(client, seg, {"status": "in_progress"})
    assert resumed.status_code == 200, resumed.get_data(as_text=True)
    assert batch(database)["status"] == "in_progress"
    assert batch(database)["metadata"]["started_at"] is not None

    again = patch(client, seg, {"status": "completed"})
    assert again.status_code == 200
    assert batch(database)["status"] == "completed"


@pytest.mark.parametrize("current,target", sorted(ALLOWED))
def test_lead_may_make_every_allowed_transition(client, database, lead, seg, current, target):
    add(database, 1, current, "sam")

    response = patch(client, lead, {"status": target, "reason": "Because."})

    assert response.status_code == 200, response.get_data(as_text=True)
    assert response.get_json()["status"] == target
    doc = batch(database)
    assert doc["status"] == target
    assert doc["assignee"] == "sam"
    if (current, target) == ("reviewed", "completed"):  # reopened for review: not completed again
        assert doc["metadata"]["reviewed_at"] is None
    else:
        assert doc["metadata"][TIMESTAMP[target]] is not None
    assert doc["updated_at"] > OLD


@pytest.mark.parametrize("current", ["assigned", "in_progress", "rejected"])
def test_unassigning_returns_to_pending(client, database, lead, seg, current):
    add(database, 1, current, "sam")

    response = patch(client, lead, {"assignee": None})

    assert response.status_code == 200, response.get_data(as_text=True)
    doc = batch(database)
    assert (doc["status"], doc["assignee"]) == ("pending", None)
    assert response.get_json()["assignee"] is None
    assert doc["updated_at"] > OLD


@pytest.mark.parametrize("current", ["assigned", "in_progress"])
def test_lead_may_reassign_unfinished_work(client, database, lead, seg, other_seg, current):
    add(database, 1, current, "sam")

    response = patch(client, lead, {"assignee": "olga"})

    assert response.status_code == 200, response.get_data(as_text=True)
    doc = batch(database)
    assert (doc["status"], doc["assignee"]) == ("assigned", "olga")


def test_assign_and_start_in_one_request(client, database, lead, seg):
    add(database, 1)

    response = patch(client, lead, {"assignee": "sam", "status": "in_progress"})

    assert response.status_code == 200, response.get_data(as_text=True)
    doc = batch(database)
    assert (doc["status"], doc["assignee"]) == ("in_progress", "sam")
    assert doc["metadata"]["assigned_at"] is not None
    assert doc["metadata"]["started_at"] is not None


def test_patch_resolves_non_canonical_ids(client, database, lead, seg):
    add(database, 7)

    response = client.patch("/api/batches/Batch-7", json={"assignee": "sam"}, headers=lead)

    assert response.status_code == 200, response.get_data(as_text=True)
    assert response.get_json()["id"] == "batch_0007"
    assert batch(database, "batch_0007")["assignee"] == "sam"


def test_patch_to_the_current_state_changes_nothing(client, database, lead, seg):
    add(database, 1, "assigned", "sam")
    before = snapshot(database)

    response = patch(client, lead, {"status": "assigned", "assignee": "sam"})

    assert response.status_code == 200
    assert response.get_json()["status"] == "assigned"
    assert snapshot(database) == before


def test_patch_is_seen_by_the_detail_endpoint(client, database, lead, seg):
    add(database, 1)
    assert client.get("/api/batches/batch_0001", headers=lead).get_json()["status"] == "pending"

    assert patch(client, lead, {"assignee": "sam"}).status_code == 200

    detail = client.get("/api/batches/batch_0001", headers=seg).get_json()
    assert (detail["status"], detail["assignee"]) == ("assigned", "sam")


# --------------------------------------------------------------------------- refused transitions


@pytest.mark.parametrize("current,target", REFUSED)
def test_every_other_transition_is_409_and_changes_nothing(client, database, lead, seg, current,
                                                           target):
    add(database, 1, current, None if current == "pending" else "sam")
    before = snapshot(database)

    response = patch(client, lead, {"status": target})

    assert_error(response, 409)
    assert snapshot(database) == before


@pytest.mark.parametrize("current", ["completed", "reviewed"])
@pytest.mark.parametrize("assignee", ["olga", None])
def test_handed_in_work_cannot_be_reassigned_or_unassigned(client, database, lead, seg, other_seg,
                                                           current, assignee):
    add(database, 1, current, "sam")
    before = snapshot(database)

    response = patch(client, lead, {"assignee": assignee})

    assert_error(response, 409)
    assert snapshot(database) == before


def test_unassign_and_start_together_is_409(client, database, lead, seg):
    add(database, 1, "assigned", "sam")
    before = snapshot(database)

    response = patch(client, lead, {"assignee": None, "status": "in_progress"})

    assert_error(response, 409)
    assert snapshot(database) == before


def test_patch_of_an_unknown_batch_is_404(client, database, lead):
    add(database, 1)
    before = snapshot(database)

    for raw in ("batch_0002", "nonsense"):
        response = client.patch(f"/api/batches/{raw}", json={"status": "in_progress"}, headers=lead)
        assert_error(response, 404, "not_found")
    assert snapshot(database) == before


# --------------------------------------------------------------------------- bad input


@pytest.mark.parametrize("body", [
    {"status": "done"},
    {"status": "Completed"},
    {"status": "in progress"},
])
def test_unknown_status_is_400_and_changes_nothing(client, database, lead, seg, body):
    add(database, 1, "in_progress", "sam")
    before = snapshot(database)

    response = patch(client, lead, body)

    assert_error(response, 400)
    assert snapshot(database) == before


@pytest.mark.parametrize("body", [
    {"status": 1},
    {"status": True},
    {"status": None},
    {"status": ["completed"]},
    {"status": {"$ne": 1}},
    {"status": {"$set": "completed"}},
    {"status": ""},
    {"status": "completed\n"},
    {"assignee": 5},
    {"assignee": ["olga"]},
    {"assignee": {"$ne": None}},
    {"assignee": {"$ne": 1}},
    {"assignee": ""},
    {"assignee": "o" * 65},
    {"status": "completed", "$set": {"status": "reviewed"}},
    {"status": "completed", "metadata.completed_at": "2020-01-01"},
    {"status": "completed", "status.$": "x"},
    {"$where": "1"},
    {"status": "completed", "id": "batch_0002"},
    {"status": "completed", "mask_count": 9},
    {},
])
def test_wrong_types_and_unknown_keys_are_400_and_change_nothing(client, database, lead, seg,
                                                                 other_seg, body):
    add(database, 1, "in_progress", "sam")
    add(database, 2, "in_progress", "sam")
    before = snapshot(database)

    response = patch(client, lead, body)

    assert_error(response, 400)
    assert snapshot(database) == before


@pytest.mark.parametrize("data,content_type", [
    ('{"status": "completed"', "application/json"),
    ("{'status': 'completed'}", "application/json"),
    ("", "application/json"),
    ('["completed"]', "application/json"),
    ('"completed"', "application/json"),
    ("null", "application/json"),
    ('{"status": "completed"}', "text/plain"),
    ("status=completed", "application/x-www-form-urlencoded"),
])
def test_malformed_json_body_is_400_and_changes_nothing(client, database, lead, data,
                                                        content_type):
    add(database, 1, "in_progress", "sam")
    before = snapshot(database)

    response = client.patch("/api/batches/batch_0001", data=data, content_type=content_type,
                            headers=lead)

    assert_error(response, 400)
    assert snapshot(database) == before


@pytest.mark.parametrize("assignee", ["lead1", "ghost", "admin1", "sam "])
def test_assignee_must_be_an_active_segmenter(app, client, database, lead, seg, assignee):
    make_user(app, "admin1", "admin")
    add(database, 1)
    before = snapshot(database)

    response = patch(client, lead, {"assignee": assignee})

    assert_error(response, 400)
    assert snapshot(database) == before


def test_inactive_segmenter_cannot_be_assigned(app, client, database, lead):
    make_user(app, "gone", "segmenter")
    database.users.update_one({"username": "gone"}, {"$set": {"active": False}})
    add(database, 1)
    before = snapshot(database)

    response = patch(client, lead, {"assignee": "gone"})

    assert_error(response, 400, "invalid_assignee")
    assert snapshot(database) == before


# --------------------------------------------------------------------------- segmenter rules


def test_segmenter_moves_own_batch_through_the_work(client, database, seg):
    add(database, 1, "assigned", "sam")

    started = patch(client, seg, {"status": "in_progress"})
    completed = patch(client, seg, {"status": "completed"})

    assert started.status_code == 200 and completed.status_code == 200
    doc = batch(database)
    assert doc["status"] == "completed"
    assert doc["assignee"] == "sam"
    assert doc["metadata"]["started_at"] is not None
    assert doc["metadata"]["completed_at"] is not None


@pytest.mark.parametrize("status", ["assigned", "in_progress", "rejected"])
@pytest.mark.parametrize("target", ["in_progress", "completed"])
def test_segmenter_cannot_touch_someone_elses_batch(client, database, seg, other_seg, status,
                                                    target):
    add(database, 1, status, "olga")
    before = snapshot(database)

    response = patch(client, seg, {"status": target})

    assert_error(response, 403, "forbidden")
    assert snapshot(database) == before


def test_segmenter_cannot_touch_an_unassigned_batch(client, database, seg):
    add(database, 1)
    before = snapshot(database)

    take = patch(client, seg, {"assignee": "sam"})
    start = patch(client, seg, {"status": "in_progress"})

    assert_error(take, 403, "forbidden")
    assert_error(start, 403, "forbidden")
    assert snapshot(database) == before


@pytest.mark.parametrize("target", ["reviewed", "rejected"])
def test_segmenter_cannot_review_own_work(client, database, seg, target):
    add(database, 1, "completed", "sam")
    before = snapshot(database)

    response = patch(client, seg, {"status": target})

    assert_error(response, 403, "forbidden")
    assert snapshot(database) == before


@pytest.mark.parametrize("assignee", ["olga", None])
def test_segmenter_cannot_change_the_assignee(client, database, seg, other_seg, assignee):
    add(database, 1, "assigned", "sam")
    before = snapshot(database)

    response = patch(client, seg, {"assignee": assignee})

    assert_error(response, 403, "forbidden")
    assert snapshot(database) == before


def test_segmenter_invalid_transition_on_own_batch_changes_nothing(client, database, seg):
    add(database, 1, "assigned", "sam")
    before = snapshot(database)

    response = patch(client, seg, {"status": "completed"})

    assert response.status_code in (403, 409)
    assert_error(response, response.status_code)
    assert snapshot(database) == before


def test_segmenter_patch_of_an_unknown_batch_is_404(client, database, seg):
    response = patch(client, seg, {"status": "in_progress"}, batch_id="batch_0404")

    assert_error(response, 404, "not_found")


def test_admin_may_do_what_a_lead_may(app, client, database, seg):
    admin = make_user(app, "admin1", "admin")
    add(database, 1, "completed", "sam")

    response = patch(client, admin, {"status": "reviewed"})

    assert response.status_code == 200, response.get_data(as_text=True)
    assert batch(database)["status"] == "reviewed"
