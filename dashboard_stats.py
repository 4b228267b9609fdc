"""Team progress figures for the overview: one aggregation, cached per worker."""
from datetime import timedelta

import db
import workflow
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
    by_status = {status: 0 for status in workflow.STATUSES}
    for row in facets.get("by_status", []):
        by_status[row["_id"] or "pending"] = by_status.get(row["_id"] or "pending", 0) + row["n"]
    assignees = {}
    for row in facets.get("by_assignee", []):
        name = row["_id"]["assignee"]
        entry = assignees.setdefault(name, {"assignee": name, **{s: 0 for s in workflow.STATUSES},
                                            "masks": 0})
        entry[row["_id"].get("status") or "pending"] += row["n"]
        entry["masks"] += row["masks"]
    per_day = {row["_id"]: row["n"] for row in facets.get("completed_per_day", [])}
    days = [(first_day + timedelta(days=i)).strftime("%Y-%m-%d") for i in range(DAYS)]
    batches = totals.get("batches", 0)
    done = sum(by_status.get(s, 0) for s in workflow.DONE_STATUSES)
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


def team_metrics():
    return caches().metrics.get_or_compute("team", _compute)
