"""How a mask file belongs to a batch: the "linked" mark on the file and the batch's mask list.

A file is linked once `metadata.linked_at` is set; until then a sync may still link it.
The batch document keeps its masks in `mask_files` (ids) and `mask_count`.
"""
LINKED_AT = "metadata.linked_at"
# Query for the files not linked yet (served by the masks_by_linked_at index).
UNLINKED = {LINKED_AT: None}
# Aggregation expression: 1 for a linked file, else 0 (for counting them).
LINKED_AS_ONE = {"$cond": [{"$ifNull": ["$" + LINKED_AT, False]}, 1, 0]}


def is_linked(file_doc):
    return bool((file_doc.get("metadata") or {}).get("linked_at"))


def link_file_update(batch_id, now):
    """Update marking a file as linked to `batch_id` (apply only to files matching UNLINKED)."""
    return {"$set": {"metadata.batch_id": batch_id, LINKED_AT: now}}


def add_masks_update(file_ids, now):
    """Update pipeline adding `file_ids` to a batch's masks (idempotent) and recounting them."""
    return _mask_list_update("$setUnion", file_ids, now)


def remove_masks_update(file_ids, now):
    """Update pipeline taking `file_ids` out of a batch's masks and recounting them."""
    return _mask_list_update("$setDifference", file_ids, now)


def _mask_list_update(operator, file_ids, now):
    return [
        {"$set": {"mask_files": {operator: [{"$ifNull": ["$mask_files", []]}, list(file_ids)]},
                  "updated_at": now}},
        {"$set": {"mask_count": {"$size": "$mask_files"}}},
    ]
