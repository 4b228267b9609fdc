"""GridFS chunks without a file document ("orphans"), reported by check and removed by
`flask remove-orphan-chunks`.

GridFS writes a file's chunks first and its file document last (at close), so a process
killed during an upload, or an upload whose clean-up could not reach the database,
leaves chunks that no file owns. A file id younger than ORPHAN_GRACE_SECONDS is not an
orphan yet: its upload may still be running (GridFS ids are ObjectIds made when the
upload opens, so their time says when it began).
"""
from datetime import timedelta

from bson import ObjectId

import db
from cache import writes
from timeutil import utcnow

ORPHAN_GRACE_SECONDS = 3600
DELETE_BATCH = 1000


def _cutoff():
    return ObjectId.from_datetime(utcnow() - timedelta(seconds=ORPHAN_GRACE_SECONDS))


def old_enough(file_id):
    """True when `file_id` (of chunks without a file) is past the grace period: an orphan."""
    return not isinstance(file_id, ObjectId) or file_id < _cutoff()


def pipeline():
    """Aggregation stages on `masks.chunks` giving the ids of orphaned files, in order.

    The sort and group on `files_id` are served by GridFS's own index (files_id, n); each
    distinct id is then looked up in `masks.files` by `_id`.
    """
    return [
        {"$sort": {"files_id": 1, "n": 1}},
        {"$group": {"_id": "$files_id", "n": {"$first": "$n"}}},
        {"$match": {"_id": {"$lt": _cutoff()}}},
        {"$lookup": {"from": db.mask_files().name, "localField": "_id", "foreignField": "_id",
                     "as": "file", "pipeline": [{"$project": {"_id": 1}}]}},
        {"$match": {"file": {"$size": 0}}},
        {"$project": {"_id": 1}},
    ]


def find():
    """Ids of the files whose chunks are orphaned."""
    return [doc["_id"] for doc in db.mask_chunks().aggregate(pipeline())]


@writes
def remove(file_ids):
    """Delete the chunks of `file_ids` whose file document is still missing; returns chunks deleted."""
    deleted = 0
    for start in range(0, len(file_ids), DELETE_BATCH):
        part = file_ids[start:start + DELETE_BATCH]
        owned = {doc["_id"] for doc in db.mask_files().find({"_id": {"$in": part}}, {"_id": 1})}
        orphaned = [file_id for file_id in part if file_id not in owned]
        if orphaned:
            deleted += db.mask_chunks().delete_many({"files_id": {"$in": orphaned}}).deleted_count
    return deleted
