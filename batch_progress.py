"""A batch's progress: the percent of its images that have a mask, in Python and as a stored field.

The list sorts by the stored `progress` field (index batches_by_progress), so every write of
`mask_count`, `image_count` or `status` also sets it: in Python with `percent` for a document
about to be inserted, or with the update pipeline stage `STAGE` (mask_records.settle_counts,
batch_service.update, the batch import). An assignment needs neither: it only moves a batch
between statuses that are not done, which leaves the percent as it was.
"""
from policy import DONE_STATUSES


def percent(doc):
    """Percent of the batch's images that have a mask (0-100)."""
    images = doc.get("image_count") or 0
    masks = doc.get("mask_count") or 0
    if images <= 0:
        return 100.0 if masks and doc.get("status") in DONE_STATUSES else 0.0
    return round(100.0 * min(masks, images) / images, 1)


_IMAGES = {"$ifNull": ["$image_count", 0]}
_MASKS = {"$ifNull": ["$mask_count", 0]}
# Update pipeline stage: `percent` of the document as the update leaves it.
STAGE = {"$set": {"progress": {"$cond": [
    {"$lte": [_IMAGES, 0]},
    {"$cond": [{"$and": [{"$gt": [_MASKS, 0]}, {"$in": ["$status", list(DONE_STATUSES)]}]}, 100.0, 0.0]},
    {"$round": [{"$divide": [{"$multiply": [100.0, {"$min": [_MASKS, _IMAGES]}]}, _IMAGES]}, 1]},
]}}}
