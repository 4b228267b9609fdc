"""Review with reasons (SPEC §3, §5): reasons to reject and reopen, reopening reviewed
batches, the history of every status and assignee change, the latest rejection on the
segmenter's queue, the incomplete-masks confirmation and the review queue."""
from datetime import datetime, timedelta, timezone

import pytest

from checks import assert_error, snapshot
from factories import insert_batches

T0 = datetime(2026, 1, 1, tzinfo=timezone.utc)


def patch(client, headers, body, batch_id="batch_0001"):
    return client.patch(f"/api/batches/{batch_id}", json=body, headers=headers)


def detail(client, headers, batch_id="batch_0001"):
    response = client.get(f"/api/batches/{batch_id}", headers=headers)
    assert response.status_code == 200, response.get_data(as_text=True)
    return response.get_json()


# --------------------------------------------------------------------------- reasons


@pytest.mark.parametrize("current,target", [("completed", "rejected"), ("reviewed", "in_progress"),
                                            ("reviewed", "completed")])
def test_rejecting_and_reopening_need_a_reason(client, database, lead, seg, current, target):
    insert_batches(database, [1], status=current, assignee="sam", mask_count=4)
    before = snapshot(database)

    body = assert_error(patch(client, lead, {"status": target}), 400, "reason_required")

    assert "reason" in body["message"]
    assert snapshot(database) == before
    assert database.batch_history.count_documents({}) == 0


@pytest.mark.parametrize("reason,code", [("", "invalid_value"), ("   \n\t", "invalid_value"),
                                         ("x" * 1001, "too_long"), ("bad\x00byte", "invalid_value"),
                                         (42, "invalid_type"), ({"$ne": None}, "invalid_type"),
                                         (None, "invalid_type")])
def test_a_reason_is_one_to_a_thousand_characters_of_text(client, database, lead, seg, reason, code):
    insert_batches(database, [1], status="completed", assignee="sam", mask_count=4)
    before = snapshot(database)

    assert_error(patch(client, lead, {"status": "rejected", "reason": reason}), 400, code)

    assert snapshot(database) == before


@pytest.mark.parametrize("reason", ["x", "y" * 1000, "Mask 3:\n- the left lung is missing\n- tabs\tare fine"])
def test_a_reason_at_the_bounds_is_accepted(client, database, lead, seg, reason):
    insert_batches(database, [1], status="completed", assignee="sam", mask_count=4)

    response = patch(client, lead, {"status": "rejected", "reason": reason})

    assert response.status_code == 200, response.get_data(as_text=True)
    assert response.get_json()["last_rejection"]["reason"] == reason


def test_the_segmenter_sees_the_rejection_reason_on_the_queue_and_the_batch(client, database, lead, seg):
    insert_batches(database, [1, 2], status="completed", assignee="sam", mask_count=4)
    reason = "Masks 2 and 3 miss the left lung."

    rejected = patch(client, lead, {"status": "rejected", "reason": reason})

    assert rejected.status_code == 200, rejected.get_data(as_text=True)
    queue = client.get("/api/batches?assignee=sam", headers=seg).get_json()["items"]
    by_id = {item["id"]: item for item in queue}
    assert by_id["batch_0001"]["rejection_reason"] == reason
    assert "rejection_reason" not in by_id["batch_0002"]  # only rejected batches carry one
    seen = detail(client, seg)
    assert seen["last_rejection"]["reason"] == reason
    assert seen["last_rejection"]["by"] == "lead1"
    assert seen["last_rejection"]["at"].endswith("Z")
    # Restarted: the list item is an ordinary one again; the batch still says why it was rejected.
    assert patch(client, seg, {"status": "in_progress"}).status_code == 200
    item = client.get("/api/batches?assignee=sam", headers=seg).get_json()["items"][0]
    assert item["status"] == "in_progress" and "rejection_reason" not in item
    assert detail(client, seg)["last_rejection"]["reason"] == reason


def test_an_optional_reason_on_other_changes_is_kept_in_the_history(client, database, lead, seg):
    insert_batches(database, [1], status="completed", assignee="sam", mask_count=4)

    response = patch(client, lead, {"status": "reviewed", "reason": "Clean work."})

    assert response.status_code == 200
    assert response.get_json()["history"][0]["reason"] == "Clean work."
    assert response.get_json()["last_rejection"] is None


# --------------------------------------------------------------------------- reopening


def test_a_lead_reopens_a_reviewed_batch_for_its_segmenter(client, database, lead, seg):
    import io

    insert_batches(database, [1], status="reviewed", assignee="sam", mask_count=4)

    response = patch(client, lead, {"status": "in_progress", "reason": "Mask 4 needs the new class."})

    assert response.status_code == 200, response.get_data(as_text=True)
    doc = database.batches.find_one({"id": "batch_0001"})
    assert (doc["status"], doc["assignee"]) == ("in_progress", "sam")
    # Its segmenter may work on it again.
    upload = client.post("/api/masks", headers=seg, content_type="multipart/form-data",
                         data={"file": (io.BytesIO(b"\x89PNG again"), "m4.png"), "batch_id": "batch_0001"})
    assert upload.status_code == 201, upload.get_data(as_text=True)
    assert patch(client, seg, {"status": "completed", "confirm_incomplete": True}).status_code == 200


def test_a_lead_reopens_a_reviewed_batch_for_another_look(client, database, lead, seg):
    insert_batches(database, [1], status="reviewed", assignee="sam", mask_count=4)
    completed_at = T0
    database.batches.update_one({"id": "batch_0001"}, {"$set": {"metadata.completed_at": completed_at,
                                                               "metadata.reviewed_at": T0 + timedelta(hours=1)}})

    response = patch(client, lead, {"status": "completed", "reason": "Second opinion on mask 2."})

    assert response.status_code == 200, response.get_data(as_text=True)
    doc = database.batches.find_one({"id": "batch_0001"})
    assert doc["status"] == "completed"
    assert doc["metadata"]["completed_at"] == completed_at  # the work was done then
    assert doc["metadata"]["reviewed_at"] is None
    assert client.get("/api/review/next", headers=lead).get_json() == {"batch_id": "batch_0001"}


@pytest.mark.parametrize("target", ["in_progress", "completed"])
def test_segmenters_cannot_reopen(client, database, seg, target):
    insert_batches(database, [1], status="reviewed", assignee="sam", mask_count=4)
    before = snapshot(database)

    assert_error(patch(client, seg, {"status": target, "reason": "Please"}), 403, "forbidden")

    assert snapshot(database) == before


# --------------------------------------------------------------------------- history


def test_every_change_is_recorded_with_actor_from_to_and_reason(client, database, lead, seg):
    insert_batches(database, [1], mask_count=4)

    steps = [(lead, {"assignee": "sam"}), (seg, {"status": "in_progress"}), (seg, {"status": "completed"}),
             (lead, {"status": "rejected", "reason": "Redo mask 1."}), (seg, {"status": "in_progress"}),
             (seg, {"status": "completed"}), (lead, {"status": "reviewed"}),
             (lead, {"status": "completed", "reason": "Another look."})]
    for headers, body in steps:
        response = patch(client, headers, body)
        assert response.status_code == 200, (body, response.get_data(as_text=True))

    history = detail(client, lead)["history"]
    assert [(h["action"], h["actor"], h["from"]["status"], h["to"]["status"], h["reason"]) for h in history] == [
        ("reopen_review", "lead1", "reviewed", "completed", "Another look."),
        ("review", "lead1", "completed", "reviewed", None),
        ("complete", "sam", "in_progress", "completed", None),
        ("restart", "sam", "rejected", "in_progress", None),
        ("reject", "lead1", "completed", "rejected", "Redo mask 1."),
        ("complete", "sam", "in_progress", "completed", None),
        ("start", "sam", "assigned", "in_progress", None),
        ("assign", "lead1", "pending", "assigned", None),
    ]
    assert history[-1]["from"]["assignee"] is None and history[-1]["to"]["assignee"] == "sam"
    times = [h["at"] for h in history]
    assert times == sorted(times, reverse=True) and all(t.endswith("Z") for t in times)


def test_unassigning_and_a_no_op_are_recorded_as_they_are(client, database, lead, seg):
    insert_batches(database, [1], status="assigned", assignee="sam")

    assert patch(client, lead, {"assignee": "sam"}).status_code == 200  # nothing changes: nothing recorded
    assert patch(client, lead, {"assignee": None, "reason": "Sam is away."}).status_code == 200

    history = detail(client, lead)["history"]
    assert len(history) == 1
    assert (history[0]["action"], history[0]["from"], history[0]["to"], history[0]["reason"]) == (
        "unassign", {"status": "assigned", "assignee": "sam"}, {"status": "pending", "assignee": None}, "Sam is away.")


def test_bulk_assignment_records_one_entry_per_batch_in_one_insert(client, database, lead, seg, commands):
    insert_batches(database, [1, 2, 3])
    insert_batches(database, [4], status="completed", assignee="sam")

    commands.clear()
    response = client.post("/api/batches/assign", json={"ids": ["batch_0001", "batch_0002", "batch_0003", "batch_0004"],
                                                        "assignee": "sam"}, headers=lead)

    assert response.status_code == 200, response.get_data(as_text=True)
    inserts = [c for c in commands.snapshot() if c["name"] == "insert" and c["collection"] == "batch_history"]
    assert len(inserts) == 1 and len(inserts[0]["command"]["documents"]) == 3
    for batch_id in ("batch_0001", "batch_0002", "batch_0003"):
        [entry] = detail(client, lead, batch_id)["history"]
        assert (entry["action"], entry["actor"], entry["from"], entry["to"], entry["reason"]) == (
            "assign", "lead1", {"status": "pending", "assignee": None}, {"status": "assigned", "assignee": "sam"}, None)
    assert detail(client, lead, "batch_0004")["history"] == []  # not assignable: not changed, not recorded


def test_a_bulk_assignment_may_say_why(client, database, lead, seg):
    insert_batches(database, [1, 2])

    response = client.post("/api/batches/assign", json={"ids": ["batch_0001", "batch_0002"], "assignee": "sam",
                                                        "reason": "Sam knows these scans."}, headers=lead)

    assert response.status_code == 200 and response.get_json()["assigned"] == 2
    assert {detail(client, lead, b)["history"][0]["reason"] for b in ("batch_0001", "batch_0002")} == {
        "Sam knows these scans."}


def test_refused_changes_are_not_recorded(client, database, lead, seg, other_seg):
    insert_batches(database, [1], status="assigned", assignee="sam")

    assert patch(client, other_seg, {"status": "in_progress"}).status_code == 403
    assert patch(client, lead, {"status": "reviewed"}).status_code == 409

    assert database.batch_history.count_documents({}) == 0


def test_the_detail_shows_the_latest_fifty_changes(client, database, lead):
    import history

    insert_batches(database, [1])
    database.batch_history.insert_many([
        {"batch_id": "batch_0001", "at": T0 + timedelta(minutes=n), "actor": "lead1", "action": "assign",
         "from": {"status": "pending", "assignee": None}, "to": {"status": "assigned", "assignee": f"u{n}"},
         "reason": None} for n in range(60)])

    found = detail(client, lead)["history"]

    assert len(found) == history.LIMIT == 50
    assert [h["to"]["assignee"] for h in found] == [f"u{n}" for n in range(59, 9, -1)]


def test_the_history_is_read_through_its_index(app, database):
    import db

    with app.app_context():
        plan = db.batch_history().find({"batch_id": "batch_0001"}).sort("at", -1).limit(50).explain()
    assert "history_by_batch" in str(plan)


# --------------------------------------------------------------------------- incomplete masks


def test_completing_with_fewer_masks_than_images_needs_a_confirmation(client, database, seg):
    insert_batches(database, [1], status="in_progress", assignee="sam", image_count=6, mask_count=1)
    before = snapshot(database)

    response = patch(client, seg, {"status": "completed"})

    assert response.status_code == 409
    body = response.get_json()
    assert (body["error"], body["mask_count"], body["image_count"]) == ("incomplete_masks", 1, 6)
    assert "1 of 6" in body["message"] and body["request_id"] == response.headers["X-Request-ID"]
    assert snapshot(database) == before
    assert_error(patch(client, seg, {"status": "completed", "confirm_incomplete": "yes"}), 400, "invalid_type")
    assert patch(client, seg, {"status": "completed", "confirm_incomplete": False}).status_code == 409
    assert snapshot(database) == before

    confirmed = patch(client, seg, {"status": "completed", "confirm_incomplete": True})

    assert confirmed.status_code == 200, confirmed.get_data(as_text=True)
    assert database.batches.find_one({"id": "batch_0001"})["status"] == "completed"


@pytest.mark.parametrize("masks", [6, 9])
def test_a_batch_with_a_mask_for_every_image_completes_without_asking(client, database, seg, masks):
    insert_batches(database, [1], status="in_progress", assignee="sam", image_count=6, mask_count=masks)

    assert patch(client, seg, {"status": "completed"}).status_code == 200


# --------------------------------------------------------------------------- review queue


def completed(database, number, completed_at):
    insert_batches(database, [number], status="completed", assignee="sam", mask_count=4)
    database.batches.update_one({"number": number}, {"$set": {"metadata.completed_at": completed_at}})


def test_review_next_walks_the_completed_batches_oldest_first(client, database, lead, seg):
    completed(database, 1, T0 + timedelta(days=2))
    completed(database, 2, T0)
    completed(database, 3, T0 + timedelta(days=1))
    insert_batches(database, [4], status="in_progress", assignee="sam")

    order = []
    for decision in ({"status": "reviewed"}, {"status": "rejected", "reason": "Mask 1 is empty."},
                     {"status": "reviewed"}):
        response = client.get("/api/review/next", headers=lead)
        assert response.status_code == 200, response.get_data(as_text=True)
        batch_id = response.get_json()["batch_id"]
        order.append(batch_id)
        assert patch(client, lead, decision, batch_id).status_code == 200
    assert order == ["batch_0002", "batch_0003", "batch_0001"]

    assert_error(client.get("/api/review/next", headers=lead), 404, "nothing_to_review")


def test_a_lead_may_skip_a_batch(client, database, lead):
    completed(database, 1, T0 + timedelta(days=1))
    completed(database, 2, T0)
    completed(database, 3, T0 + timedelta(days=1))  # the same time as batch_0001: id order
    completed(database, 4, None)  # no completion time recorded: first
    completed(database, 5, None)

    walked, after = [], None
    while True:
        response = client.get("/api/review/next", query_string={"after": after} if after else None, headers=lead)
        if response.status_code == 404:
            break
        after = response.get_json()["batch_id"]
        walked.append(after)

    assert walked == ["batch_0004", "batch_0005", "batch_0002", "batch_0001", "batch_0003"]
    assert_error(response, 404, "nothing_to_review")
    # Another spelling of the id, and an empty value (ignored).
    assert client.get("/api/review/next?after=b2", headers=lead).get_json() == {"batch_id": "batch_0001"}
    assert client.get("/api/review/next?after=", headers=lead).get_json() == {"batch_id": "batch_0004"}
    assert_error(client.get("/api/review/next?after=batch_0099", headers=lead), 404, "not_found")


def test_the_review_page_skips_and_says_when_only_skipped_batches_are_left(client, database, lead):
    completed(database, 1, T0)
    completed(database, 2, T0 + timedelta(days=1))

    assert client.get("/review?after=batch_0001", headers=lead).headers["Location"] == "/batches/batch_0002?review=1"
    page = client.get("/review?after=batch_0002", headers=lead)

    assert page.status_code == 200
    text = page.get_data(as_text=True)
    assert "No more batches after the ones you skipped" in text and 'href="/review"' in text


def test_review_next_is_for_leads(client, database, seg):
    completed(database, 1, T0)
    assert_error(client.get("/api/review/next", headers=seg), 403, "forbidden")


def test_the_review_queue_is_served_by_an_index(app, database, lead, client, commands):
    completed(database, 1, T0)
    commands.clear()
    assert client.get("/api/review/next", headers=lead).status_code == 200
    [find] = [c for c in commands.snapshot() if c["name"] == "find" and c["collection"] == "batches"]
    assert find["command"]["hint"] == "batches_to_review"
    assert find["command"]["filter"] == {"status": "completed"}


def test_the_review_page_opens_the_next_batch_or_says_none_is_left(client, database, lead, seg):
    completed(database, 5, T0)

    response = client.get("/review", headers=lead)

    assert response.status_code == 302
    assert response.headers["Location"] == "/batches/batch_0005?review=1"
    page = client.get("/batches/batch_0005?review=1", headers=lead).get_data(as_text=True)
    assert '"review": true' in page
    assert patch(client, lead, {"status": "reviewed"}, "batch_0005").status_code == 200
    done = client.get("/review", headers=lead)
    assert done.status_code == 200 and "Nothing left to review" in done.get_data(as_text=True)
    # Review mode is a lead's: a segmenter's page never offers it.
    assert '"review": false' in client.get("/batches/batch_0005?review=1", headers=seg).get_data(as_text=True)
