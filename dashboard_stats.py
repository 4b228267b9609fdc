"""Team progress figures for the overview, computed once per change for the whole cluster.

The figures are one aggregation over every batch, too dear to run in each worker after
each write. They are stored as one document (`app_state` `team_metrics`) stamped with the
cache version they were computed at. A worker that needs them for the current version reads
that document (one round trip) and keeps it in its cache; when the document is older, one
process takes a short compute lease and recomputes in a background thread while every
request answers with the stored figures (`stale: true`). Under constant writes the figures
are recomputed at most once per TEAM_METRICS_MIN_SECONDS, and no sooner than four times
the last computation's duration after it. Only the very first figures are computed inside
a request.
"""
import logging
import threading
import time
from datetime import timedelta

from flask import current_app
from pymongo.errors import DuplicateKeyError, PyMongoError

import db
import policy
from cache import caches
from timeutil import iso, utcnow

DAYS = 30
log = logging.getLogger(__name__)


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
COMPUTE_COST_FACTOR = 4


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
    if stored is None:
        _claim(now)  # first figures ever: compute here even if another process does too
        began = time.monotonic()
        figures = _compute()
        _store(version, figures, now, time.monotonic() - began)
        return figures
    if _due(stored, now, own_write) and _claim(now):
        _compute_in_background(current_app._get_current_object(), version, now)
    return {**stored["figures"], "stale": True}


def _compute_in_background(app, version, now):
    """Recompute outside the request: no request (nor the requests queued behind it in its
    worker) waits for a computation that takes seconds on a large database."""
    def run():
        with app.app_context():
            began = time.monotonic()
            try:
                figures = _compute()
            except PyMongoError:
                log.warning("team figures not computed", exc_info=True)
                db.app_state().update_one({"_id": STORED_ID}, {"$unset": {"computing_until": ""}})
                return
            _store(version, figures, now, time.monotonic() - began)

    threading.Thread(target=run, name="team-figures", daemon=True).start()


def _store(version, figures, now, seconds):
    """Keep the figures for every worker; two first computations may race to create the document."""
    change = {"$set": {"version": version, "figures": figures, "computed_at": now, "compute_seconds": seconds},
              "$unset": {"computing_until": ""}}
    try:
        db.app_state().update_one({"_id": STORED_ID}, change, upsert=True)
    except DuplicateKeyError:
        db.app_state().update_one({"_id": STORED_ID}, change)


def _due(stored, now, own_write):
    """Time to recompute: the last computation is older than TEAM_METRICS_MIN_SECONDS (at once
    for the process that made the change), and than COMPUTE_COST_FACTOR times what it took, so
    that under constant writes the database spends at most about 1/COMPUTE_COST_FACTOR of its
    time on the figures."""
    computed_at = stored.get("computed_at")
    if computed_at is None:
        return True
    seconds = stored.get("compute_seconds") or 0.0
    min_age = COMPUTE_COST_FACTOR * seconds
    if not own_write:
        min_age = max(min_age, current_app.config["TEAM_METRICS_MIN_SECONDS"])
    return now - computed_at >= timedelta(seconds=min_age)


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
