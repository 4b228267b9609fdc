"""Who may do what to a batch, and how its status moves (SPEC §3). The one place for these rules.

pending (unassigned) → assigned → in_progress → completed → reviewed;
completed → rejected → in_progress; a lead may reopen reviewed → in_progress (back to
its segmenter) or reviewed → completed (for another look). Assigning sets `assigned`;
unassigning returns to `pending`. Everything else is refused. Rejecting and reopening
need a reason; completing with fewer masks than images needs a confirmation.

No Flask here: the API, the pages and command-line scripts all ask this module.
A check answers None when allowed, or a `Denied` saying why; the web layer turns
that into its error response (errors.denied).
"""
from dataclasses import dataclass, field

ROLES = ("segmenter", "lead", "admin")
ROLE_RANK = {role: rank for rank, role in enumerate(ROLES)}

STATUSES = ("pending", "assigned", "in_progress", "completed", "reviewed", "rejected")

# Status changes made through the `status` field, with the key of the label the UI shows.
# Assignment changes go through `assignee`.
TRANSITIONS = {
    ("assigned", "in_progress"): "start",
    ("in_progress", "completed"): "complete",
    ("completed", "reviewed"): "review",
    ("completed", "rejected"): "reject",
    ("rejected", "in_progress"): "restart",
    ("reviewed", "in_progress"): "reopen",
    ("reviewed", "completed"): "reopen_review",
}

# Changes that must say why (a `reason` of 1 to MAX_REASON characters).
REASON_REQUIRED = {"reject", "reopen", "reopen_review"}
MAX_REASON = 1000

# The subset a segmenter may make on a batch assigned to them.
SEGMENTER_TRANSITIONS = {
    ("assigned", "in_progress"),
    ("in_progress", "completed"),
    ("rejected", "in_progress"),
}

# A batch can be (re)assigned or unassigned only before its work is handed in.
REASSIGNABLE = ("pending", "assigned", "in_progress", "rejected")

# Handed-in work: only a lead may still add masks to it.
DONE_STATUSES = ("completed", "reviewed")

# The metadata timestamp each status sets when a batch enters it.
# (Reopening to `completed` keeps the original completion time: it counts on the day the work was done.)
TIMESTAMP_FOR_STATUS = {
    "assigned": "metadata.assigned_at",
    "in_progress": "metadata.started_at",
    "completed": "metadata.completed_at",
    "reviewed": "metadata.reviewed_at",
    "rejected": "metadata.rejected_at",
}


def N_(text):
    """Marks a sentence for the translation catalogs; errors.enforce translates it."""
    return text


@dataclass(frozen=True)
class Denied:
    """Why an action is refused: the HTTP status and error code to answer with, and a sentence
    (an English msgid with %(name)s placeholders filled from `params` once translated)."""
    status: int
    code: str
    message: str
    params: dict = field(default_factory=dict)
    extra: dict = field(default_factory=dict)  # more fields for the error body


def has_role(user, role):
    """True when `user` holds `role` or a higher one (segmenter < lead < admin)."""
    return user is not None and ROLE_RANK.get(user.get("role"), -1) >= ROLE_RANK[role]


def is_lead(user):
    return has_role(user, "lead")


def owns(user, batch):
    """True when `batch` is assigned to `user`."""
    assignee = batch.get("assignee")
    return user is not None and assignee is not None and assignee == user.get("username")


def can_transition(current, target):
    return (current, target) in TRANSITIONS


def segmenter_may(current, target):
    return (current, target) in SEGMENTER_TRANSITIONS


def status_after_assignment(assignee):
    """The status a batch takes when assigned to `assignee` (None: unassigned)."""
    return "pending" if assignee is None else "assigned"


def assignment_changes(batch, changes):
    return "assignee" in changes and changes["assignee"] != batch.get("assignee")


def may_assign(user, batch):
    """May `user` (re)assign or unassign `batch`?"""
    if not is_lead(user):
        return Denied(403, "forbidden", N_("Only a lead can assign batches."))
    if batch.get("status") not in REASSIGNABLE:
        return Denied(409, "invalid_transition", N_("A %(status)s batch cannot be reassigned."),
                      {"status": batch.get("status")})
    return None


def may_bulk_assign(user):
    """May `user` assign many batches at once? (Each batch is then checked with `may_assign`.)"""
    if not is_lead(user):
        return Denied(403, "forbidden", N_("This needs the lead role."))
    return None


def may_change_status(user, current, target):
    """May `user` move a batch (that they may change at all) from `current` to `target`?"""
    if not can_transition(current, target):
        return Denied(409, "invalid_transition", N_("A batch cannot go from %(source)s to %(target)s."),
                      {"source": current, "target": target})
    if not is_lead(user) and not segmenter_may(current, target):
        return Denied(403, "forbidden", N_("Only a lead can move a batch from %(source)s to %(target)s."),
                      {"source": current, "target": target})
    return None


def transition_label(current, target):
    """The label of the status change `current` → `target` (None when it is not one)."""
    return TRANSITIONS.get((current, target))


def needs_reason(current, target):
    return transition_label(current, target) in REASON_REQUIRED


def may_update(user, batch, changes):
    """May `user` apply `changes` ({status?, assignee?, reason?, confirm_incomplete?}) to
    `batch` ({status, assignee, mask_count?, image_count?})?

    An assignment applies first, so {"assignee": x, "status": "in_progress"} is judged
    from the status the assignment leaves. Changes that change nothing are allowed.
    Without the mask counts in `batch`, the completeness of its masks is not judged (the
    pages offer "complete" and ask for the confirmation when the API answers that it is needed).
    """
    if not is_lead(user) and not owns(user, batch):
        return Denied(403, "forbidden", N_("You can only change batches assigned to you."))
    status = batch.get("status")
    if assignment_changes(batch, changes):
        denied = may_assign(user, batch)
        if denied:
            return denied
        status = status_after_assignment(changes["assignee"])
    target = changes.get("status")
    if target is not None and target != status:
        return (may_change_status(user, status, target)
                or reason_missing(status, target, changes)
                or incomplete(batch, status, target, changes))
    return None


def reason_missing(current, target, changes):
    """Rejecting and reopening say why: `reason` must be given (the request schema bounds its length)."""
    if needs_reason(current, target) and not (changes.get("reason") or "").strip():
        return Denied(400, "reason_required",
                      N_("Say why: moving a batch from %(source)s to %(target)s needs a 'reason'."),
                      {"source": current, "target": target})
    return None


def incomplete(batch, current, target, changes):
    """Completing with fewer masks than images needs `confirm_incomplete: true`."""
    if transition_label(current, target) != "complete" or "image_count" not in batch:
        return None
    masks, images = batch.get("mask_count") or 0, batch.get("image_count") or 0
    if masks < images and changes.get("confirm_incomplete") is not True:
        return Denied(409, "incomplete_masks",
                      N_("Only %(masks)s of %(images)s images have a mask; send 'confirm_incomplete': true "
                         "to complete the batch anyway."),
                      {"masks": masks, "images": images}, {"mask_count": masks, "image_count": images})
    return None


def may_upload(user, batch):
    """May `user` upload a mask into `batch` (None: into no batch, left for a sync to link)?"""
    if batch is None:
        if is_lead(user):
            return None
        return Denied(400, "missing_batch_id", N_("Segmenters must give the 'batch_id' of one of their batches."))
    if is_lead(user):
        return None
    if not owns(user, batch):
        return Denied(403, "forbidden", N_("You can only upload masks to batches assigned to you."))
    if batch.get("status") in DONE_STATUSES:
        return Denied(409, "batch_closed",
                      N_("Batch %(id)s is %(status)s; ask a lead to reopen it."),
                      {"id": batch.get("id"), "status": batch.get("status")})
    return None


def actions_for(user, batch):
    """The actions to offer `user` on `batch` ({id?, status, assignee}), in the order to show them.

    Each is {"action": "status", "status": target, "label": key, "needs_reason": bool},
    {"action": "assign"} or {"action": "upload"}; every one offered is one the checks above
    allow (a status change given the reason it asks for).
    """
    current = batch.get("status")
    actions = [{"action": "status", "status": target, "label": TRANSITIONS[(current, target)],
                "needs_reason": needs_reason(current, target)}
               for target in STATUSES
               if (current, target) in TRANSITIONS
               and may_update(user, batch, {"status": target, "reason": "given"}) is None]
    if may_assign(user, batch) is None:
        actions.append({"action": "assign"})
    if may_upload(user, batch) is None:
        actions.append({"action": "upload"})
    return actions
