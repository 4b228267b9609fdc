"""Server-rendered pages: login/logout, overview, batches, batch detail, my batches, review, jobs.

The pages are Jinja templates; their scripts (static/*.js) read and write through /api.
"""
from urllib.parse import urlsplit

from flask import Blueprint, current_app, g, redirect, render_template, request, session, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l

import auth
import batch_service
import policy
import rate_limit
import ui_strings
from batch_ids import canonical_batch_id
from errors import ApiError, denial_text, not_found, wants_json

bp = Blueprint("pages", __name__)


def _safe_next(target):
    """Only same-site relative paths are followed after login.

    Control characters (CR/LF would split the Location header) and backslashes (which
    browsers read as `/`, making `/\\host` another site) send the user home instead.
    """
    if not target or not isinstance(target, str) or "\\" in target \
            or any(ord(ch) < 32 or ord(ch) == 127 for ch in target):
        return url_for("pages.home")
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or not target.startswith("/") or target.startswith("//"):
        return url_for("pages.home")
    return target


@bp.route("/login", methods=["GET", "POST"])
def login():
    """The login form; failed attempts are limited per username and address (rate_limit.py)."""
    error = None
    if request.method == "POST":
        auth.csrf.protect()
        username = request.form.get("username", "")
        # Decided before the session exists, so that nothing can fail after it is made.
        target = _safe_next(request.args.get("next"))
        wait = rate_limit.limiter().wait(username)
        if wait:
            return rate_limit.too_many_failures(wait)
        user = auth.check_password(username, request.form.get("password", ""))
        if user is not None:
            auth.login_session(user)
            return rate_limit.limiter().remember_device(redirect(target), user["username"])
        rate_limit.limiter().record_failure(username)
        error = _("Wrong username or password.")
        if wants_json():
            raise ApiError(401, "invalid_credentials", error)
    return render_template("login.html", error=error), (401 if error else 200)


@bp.post("/logout")
def logout():
    # Without a logged-in session (never logged in, or expired) there is nothing to protect:
    # just go to the login page instead of failing the CSRF check of a session that is gone.
    if session.get("username"):
        auth.csrf.protect()
    auth.logout_session()
    return redirect(url_for("pages.login"))


@bp.get("/")
@auth.require_role("segmenter")
def home():
    """Leads land on the overview; segmenters on their own queue (My batches)."""
    if auth.has_role(g.user, "lead"):
        return render_template("overview.html")
    return _my_batches_page()


# Button text for each status change's label key (policy.TRANSITIONS).
ACTION_TEXT = {"start": _l("Start"), "restart": _l("Restart"), "complete": _l("Complete"),
               "review": _l("Mark reviewed"), "reject": _l("Reject"),
               "reopen": _l("Reopen for its segmenter"), "reopen_review": _l("Reopen for review")}
# Stands for "assigned to someone other than the viewer" when testing what the actions depend on.
_SOMEONE_ELSE = "\x00someone else"


def offer(user, batch):
    """What a page offers `user` on `batch` ({id, status, assignee}), all decided by policy.py:
    the actions (status changes with their button text, assign, upload) and, for the pages'
    notes, why changes or uploads are refused."""
    actions = [{**action, "text": str(ACTION_TEXT[action["label"]])} if action["action"] == "status" else action
               for action in policy.actions_for(user, batch)]
    change = policy.may_update(user, batch, {})
    upload = policy.may_upload(user, batch)
    return {"actions": actions, "change_note": denial_text(change) if change else None,
            "upload_note": denial_text(upload) if upload else None}


def offer_table(user, batch_id, assignee):
    """`offer` for each status of a batch assigned to `assignee`: the page picks the row of the
    batch's current status, also after it changed the status itself."""
    return {status: offer(user, {"id": batch_id, "status": status, "assignee": assignee})
            for status in policy.STATUSES}


def _actions_only(table):
    return {status: entry["actions"] for status, entry in table.items()}


@bp.get("/batches")
@auth.require_role("segmenter")
def batches():
    page = {"can_bulk_assign": policy.may_bulk_assign(g.user) is None}
    return render_template("batches.html", page=page)


@bp.get("/batches/<path:raw_id>")
@auth.require_role("segmenter")
def batch_detail(raw_id):
    batch_id = canonical_batch_id(raw_id)
    if batch_id is None:
        raise not_found(_("There is no batch %(id)s.", id=raw_id[:40]))
    if batch_id != raw_id:
        return redirect(url_for("pages.batch_detail", raw_id=batch_id))
    detail = batch_service.get_detail(batch_id)
    user = g.user
    table = offer_table(user, batch_id, detail.get("assignee"))
    # When the viewer's actions do not depend on who the batch is assigned to, the table
    # still holds after the viewer reassigns it; otherwise the page reloads after a reassignment.
    any_assignee = all(_actions_only(offer_table(user, batch_id, other)) == _actions_only(table)
                       for other in (None, user["username"], _SOMEONE_ELSE))
    offered = {action["action"] for entry in table.values() for action in entry["actions"]}
    page = {
        "batch": detail,
        "offers": table,
        "offers_assignee": detail.get("assignee"),
        "offers_any_assignee": any_assignee,
        "assign_form": "assign" in offered,
        "upload_form": "upload" in offered,
        # Opened from the review queue: after approving or rejecting, the next batch opens.
        "review": request.args.get("review") == "1" and policy.is_lead(user),
        "review_url": url_for("pages.review"),
    }
    return render_template("batch_detail.html", batch=detail, page=page)


@bp.get("/review")
@auth.require_role("segmenter")
def review():
    """The review queue: the oldest completed batch's page in review mode, or "nothing left".
    Segmenters review nothing: they go to their queue."""
    if not policy.is_lead(g.user):
        return redirect(url_for("pages.home"))
    after = canonical_batch_id(request.args.get("after") or "")
    batch_id = batch_service.next_to_review(after)
    if batch_id is None:
        return render_template("review_done.html", skipped=after is not None)
    return redirect(url_for("pages.batch_detail", raw_id=batch_id, review=1))


def _my_batches_page():
    user = g.user
    page = {"offers": offer_table(user, None, user["username"])}
    return render_template("my_batches.html", page=page)


@bp.get("/my")
@auth.require_role("segmenter")
def my_batches():
    """A segmenter's queue. Leads have no queue of their own: they go to the overview."""
    if auth.has_role(g.user, "lead"):
        return redirect(url_for("pages.home"))
    return _my_batches_page()


@bp.get("/jobs")
@auth.require_role("segmenter")
def jobs_page():
    """Running and recent background jobs, with their progress, results and errors (leads).
    Segmenters have no jobs: they go to their queue."""
    if not auth.has_role(g.user, "lead"):
        return redirect(url_for("pages.home"))
    return render_template("jobs.html", job_titles=ui_strings.JOB_TITLES, job_states=ui_strings.JOB_STATE_LABELS)


@bp.app_context_processor
def ui_config():
    """Settings the page scripts read from the `segdash-config` JSON block of base.html."""
    user = g.get("user")  # already loaded by auth's context processor; no second lookup
    return {"ui_config": {
        "statuses": list(policy.STATUSES),
        "user": None if user is None else {"username": user["username"],
                                           "display_name": user.get("display_name") or user["username"],
                                           "role": user.get("role"),
                                           "is_lead": auth.has_role(user, "lead")},
        "max_upload_bytes": current_app.config["MAX_CONTENT_LENGTH"],
    }}
