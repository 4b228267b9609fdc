"""Who may do what to a batch, and how its status moves (SPEC §3). The one place for these rules.

pending (unassigned) → assigned → in_progress → completed → reviewed;
completed → rejected → in_progress. Assigning sets `assigned`; unassigning
returns to `pending`. Everything else is refused.

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
}

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


def may_update(user, batch, changes):
    """May `user` apply `changes` ({status?, assignee?}) to `batch` ({status, assignee})?

    An assignment applies first, so {"assignee": x, "status": "in_progress"} is judged
    from the status the assignment leaves. Changes that change nothing are allowed.
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
        return may_change_status(user, status, target)
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

    Each is {"action": "status", "status": target, "label": key}, {"action": "assign"}
    or {"action": "upload"}; every one offered is one the checks above allow.
    """
    current = batch.get("status")
    actions = [{"action": "status", "status": target, "label": TRANSITIONS[(current, target)]}
               for target in STATUSES
               if (current, target) in TRANSITIONS and may_update(user, batch, {"status": target}) is None]
    if may_assign(user, batch) is None:
        actions.append({"action": "assign"})
    if may_upload(user, batch) is None:
        actions.append({"action": "upload"})
    return actions
