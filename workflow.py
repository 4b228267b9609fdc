"""Batch status workflow (SPEC §3) and who may move a batch where.

pending (unassigned) → assigned → in_progress → completed → reviewed;
completed → rejected → in_progress. Assigning sets `assigned`; unassigning
returns to `pending`. Everything else is refused.
"""
STATUSES = ("pending", "assigned", "in_progress", "completed", "reviewed", "rejected")

# Status changes made through the `status` field. Assignment changes go through `assignee`.
TRANSITIONS = {
    ("assigned", "in_progress"),
    ("in_progress", "completed"),
    ("completed", "reviewed"),
    ("completed", "rejected"),
    ("rejected", "in_progress"),
}

# The subset a segmenter may make on a batch assigned to them.
SEGMENTER_TRANSITIONS = {
    ("assigned", "in_progress"),
    ("in_progress", "completed"),
    ("rejected", "in_progress"),
}

# A batch can be (re)assigned or unassigned only before its work is handed in.
REASSIGNABLE = ("pending", "assigned", "in_progress", "rejected")

# The metadata timestamp each status sets when a batch enters it.
TIMESTAMP_FOR_STATUS = {
    "assigned": "metadata.assigned_at",
    "in_progress": "metadata.started_at",
    "completed": "metadata.completed_at",
    "reviewed": "metadata.reviewed_at",
    "rejected": "metadata.rejected_at",
}

DONE_STATUSES = ("completed", "reviewed")


def can_transition(current, target):
    return (current, target) in TRANSITIONS


def segmenter_may(current, target):
    return (current, target) in SEGMENTER_TRANSITIONS


def allowed_targets(current, is_lead, owns):
    """The statuses a viewer may move a batch from `current` to, in workflow order.

    Leads may make any valid move; a segmenter only their own moves on a batch they own.
    """
    return sorted((target for (source, target) in TRANSITIONS if source == current
                   and (is_lead or (owns and segmenter_may(source, target)))),
                  key=STATUSES.index)
