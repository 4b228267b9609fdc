"""Server-rendered pages: login/logout, overview, batches, batch detail, my batches, jobs.

The pages are Jinja templates; their scripts (static/*.js) read and write through /api.
"""
from urllib.parse import urlsplit

from flask import Blueprint, current_app, g, redirect, render_template, request, session, url_for

import auth
import batch_service
import rate_limit
import workflow
from batch_ids import canonical_batch_id
from errors import ApiError, not_found, wants_json

bp = Blueprint("pages", __name__)


def _safe_next(target):
    """Only same-site relative paths are followed after login."""
    if not target:
        return url_for("pages.home")
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or not target.startswith("/") or target.startswith("//"):
        return url_for("pages.home")
    return target


@bp.route("/login", methods=["GET", "POST"])
def login():
    """The login form; failed attempts are limited per username and per address (rate_limit.py)."""
    error = None
    if request.method == "POST":
        auth.csrf.protect()
        username = request.form.get("username", "")
        wait = rate_limit.limiter().wait(username)
        if wait:
            return rate_limit.too_many_failures(wait)
        user = auth.check_password(username, request.form.get("password", ""))
        if user is not None:
            auth.login_session(user)
            return redirect(_safe_next(request.args.get("next")))
        rate_limit.limiter().record_failure(username)
        error = "Wrong username or password."
        if wants_json():
            raise ApiError(401, "invalid_credentials", error)
    return render_template("login.html", error=error), (401 if error else 200)


@bp.post("/logout")
def logout():
    # Without a logged-in session (never logged in, or expired) there is nothing to protect:
    # just go to the login page instead of failing the CSRF check of a session that is gone.
    if session.get("username"):
        auth.csrf.protect()
    session.clear()
    return redirect(url_for("pages.login"))


@bp.get("/")
@auth.require_role("segmenter")
def home():
    """Leads land on the overview; segmenters on their own queue (My batches)."""
    if auth.has_role(g.user, "lead"):
        return render_template("overview.html")
    return _my_batches_page()


# Button labels of the status changes (source, target) offered in the UI.
ACTION_LABELS = {
    ("assigned", "in_progress"): "Start",
    ("rejected", "in_progress"): "Restart",
    ("in_progress", "completed"): "Complete",
    ("completed", "reviewed"): "Mark reviewed",
    ("completed", "rejected"): "Reject",
}


def status_actions(user, assignee):
    """For each status, the status changes `user` may make on a batch assigned to `assignee`.

    Computed from workflow.py; the API enforces the same rules on every PATCH.
    """
    is_lead = auth.has_role(user, "lead")
    owns = assignee is not None and assignee == user["username"]
    table = {}
    for status in workflow.STATUSES:
        targets = workflow.allowed_targets(status, is_lead, owns)
        if targets:
            table[status] = [{"status": target,
                              "label": ACTION_LABELS.get((status, target), target.replace("_", " "))}
                             for target in targets]
    return table


@bp.get("/batches")
@auth.require_role("segmenter")
def batches():
    return render_template("batches.html")


@bp.get("/batches/<path:raw_id>")
@auth.require_role("segmenter")
def batch_detail(raw_id):
    batch_id = canonical_batch_id(raw_id)
    if batch_id is None:
        raise not_found(f"There is no batch {raw_id[:40]}.")
    if batch_id != raw_id:
        return redirect(url_for("pages.batch_detail", raw_id=batch_id))
    detail = batch_service.get_detail(batch_id)
    user = g.user
    is_lead = auth.has_role(user, "lead")
    page = {
        "batch": detail,
        "actions": status_actions(user, detail.get("assignee")),
        "can_assign": is_lead,
        "reassignable": list(workflow.REASSIGNABLE),
        "can_upload": is_lead or detail.get("assignee") == user["username"],
    }
    return render_template("batch_detail.html", batch=detail, page=page)


def _my_batches_page():
    user = g.user
    page = {"actions": status_actions(user, user["username"])}
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
    return render_template("jobs.html")


@bp.app_context_processor
def ui_config():
    """Settings the page scripts read from the `segdash-config` JSON block of base.html."""
    user = g.get("user")  # already loaded by auth's context processor; no second lookup
    return {"ui_config": {
        "statuses": list(workflow.STATUSES),
        "user": None if user is None else {"username": user["username"],
                                           "display_name": user.get("display_name") or user["username"],
                                           "role": user.get("role"),
                                           "is_lead": auth.has_role(user, "lead")},
        "max_upload_bytes": current_app.config["MAX_CONTENT_LENGTH"],
    }}
