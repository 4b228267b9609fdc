"""Team progress figures for the overview, computed once per change for the whole cluster.

The figures are one aggregation over every batch, too dear to run in each worker after
each write. They are stored as one document (`app_state` `team_metrics`) stamped with the
cache version they were computed at. A worker that needs them for the current version reads
that document (one round trip) and keeps it in its cache; when the document is older, one
process takes a short compute lease and recomputes while the others keep answering with the
stored figures (`stale: true`). Under constant writes the figures are recomputed at most
once per TEAM_METRICS_MIN_SECONDS.
"""
from datetime import timedelta

from flask import current_app
from pymongo.errors import DuplicateKeyError

import db
import policy
from cache import caches
from timeutil import iso, utcnow

DAYS = 30


def _pipeline(since):
    return [
        {"$facet": {
            "totals": [{"$group": {"_id": None, "batches": {"$sum": 1},
                                   "images": {"$sum": {"$ifNull": ["$image_count", 0]}},
                                   "masks": {"$sum": {"$ifNull": ["$mask_count", 0]}}}}],
            "by_status": [{"$group": {"_id": "$status", "n": {"$sum": 1}}}],
            "by_assignee": [
                {"$match": {"assignee": {"$type": "string"}}},
                {"$group": {"_id": {"assignee": "$assignee", "status": "$status"}, "n": {"$sum": 1},
                            "masks": {"$sum": {"$ifNull": ["$mask_count", 0]}}}},
            ],
            "completed_per_day": [
                {"$match": {"metadata.completed_at": {"$gte": since}}},
                {"$group": {"_id": {"$dateToString": {"format": "%Y-%m-%d", "date": "$metadata.completed_at"}},
                            "n": {"$sum": 1}}},
            ],
        }},
        # Files and linked files (one mask record each): the collections' stored counts, not a scan.
        {"$unionWith": {"coll": db.mask_files().name, "pipeline": [
            {"$collStats": {"count": {}}}, {"$project": {"_id": 0, "_files": "$count"}}]}},
        {"$unionWith": {"coll": db.mask_records().name, "pipeline": [
            {"$collStats": {"count": {}}}, {"$project": {"_id": 0, "_linked": "$count"}}]}},
    ]


def _compute():
    now = utcnow()
    first_day = (now - timedelta(days=DAYS - 1)).replace(hour=0, minute=0, second=0, microsecond=0)
    facets, files = {}, {}
    for doc in db.batches().aggregate(_pipeline(first_day)):
        if "_files" in doc:
            files["files"] = doc["_files"]
        elif "_linked" in doc:
            files["linked"] = doc["_linked"]
        else:
            facets = doc
    totals = (facets.get("totals") or [{}])[0]
    by_status = {status: 0 for status in policy.STATUSES}
    for row in facets.get("by_status", []):
        by_status[row["_id"] or "pending"] = by_status.get(row["_id"] or "pending", 0) + row["n"]
    assignees = {}
    for row in facets.get("by_assignee", []):
        name = row["_id"]["assignee"]
        entry = assignees.setdefault(name, {"assignee": name, **{s: 0 for s in policy.STATUSES},
                                            "masks": 0})
        entry[row["_id"].get("status") or "pending"] += row["n"]
        entry["masks"] += row["masks"]
    per_day = {row["_id"]: row["n"] for row in facets.get("completed_per_day", [])}
    days = [(first_day + timedelta(days=i)).strftime("%Y-%m-%d") for i in range(DAYS)]
    batches = totals.get("batches", 0)
    done = sum(by_status.get(s, 0) for s in policy.DONE_STATUSES)
    files_total, files_linked = files.get("files", 0), files.get("linked", 0)
    return {
        "totals": {"batches": batches, "images": totals.get("images", 0), "masks": totals.get("masks", 0),
                   "files": files_total, "linked_files": files_linked,
                   "unlinked_files": files_total - files_linked, "done": done},
        "by_status": by_status,
        "by_assignee": sorted(assignees.values(), key=lambda e: e["assignee"]),
        "completed_per_day": [{"date": day, "n": per_day.get(day, 0)} for day in days],
        "progress": {"done": done, "total": batches,
                     "percent": round(100.0 * done / batches, 1) if batches else 0.0},
        "generated_at": iso(now),
    }


STORED_ID = "team_metrics"
COMPUTE_LEASE_SECONDS = 30


def team_metrics():
    """The figures for the current cache version (or the last stored ones, marked stale,
    while another process recomputes them)."""
    found = caches()
    version = found.version
    figures = found.metrics.get_or_compute(
        ("team", version), lambda: _stored_or_computed(version, found.made_last_write))
    if figures.get("stale"):
        found.metrics.clear_key(("team", version))  # ask the store again next time
    return figures


def _stored_or_computed(version, own_write):
    stored = db.app_state().find_one({"_id": STORED_ID})
    if stored is not None and "figures" not in stored:
        stored = None  # only a compute lease so far: the first figures are being computed
    if stored is not None and stored.get("version") == version:
        return stored["figures"]
    now = utcnow()
    debounce = _recent(stored, now) and not own_write  # the writer sees its own change at once
    # A document holding only a lease: the first figures ever are still being computed.
    has_figures = stored is not None and "figures" in stored
    if has_figures and (debounce or not _claim(now)):
        return {**stored["figures"], "stale": True}
    if not has_figures:
        _claim(now)  # first figures ever: compute here even if another process does too
    figures = _compute()
    _store(version, figures, now)
    return figures


def _store(version, figures, now):
    """Keep the figures for every worker; two first computations may race to create the document."""
    change = {"$set": {"version": version, "figures": figures, "computed_at": now},
              "$unset": {"computing_until": ""}}
    try:
        db.app_state().update_one({"_id": STORED_ID}, change, upsert=True)
    except DuplicateKeyError:
        db.app_state().update_one({"_id": STORED_ID}, change)


def _recent(stored, now):
    """Computed less than TEAM_METRICS_MIN_SECONDS ago: debounce constant writes."""
    if stored is None:
        return False
    computed_at = stored.get("computed_at")
    min_age = timedelta(seconds=current_app.config["TEAM_METRICS_MIN_SECONDS"])
    return computed_at is not None and now - computed_at < min_age


def _claim(now):
    """Take the compute lease; False when another process holds it."""
    lease_until = now + timedelta(seconds=COMPUTE_LEASE_SECONDS)
    try:
        db.app_state().find_one_and_update(
            {"_id": STORED_ID, "$or": [{"computing_until": {"$exists": False}},
                                       {"computing_until": None},
                                       {"computing_until": {"$lt": now}}]},
            {"$set": {"computing_until": lease_until}}, upsert=True, projection={"_id": 1})
    except DuplicateKeyError:  # the document exists and its lease is held
        return False
    return True
