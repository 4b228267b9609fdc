"""Server-rendered pages: login, logout and the home page."""
from urllib.parse import urlsplit

from flask import Blueprint, redirect, render_template, request, session, url_for

import auth

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
    error = None
    if request.method == "POST":
        auth.csrf.protect()
        user = auth.check_password(request.form.get("username", ""), request.form.get("password", ""))
        if user is not None:
            auth.login_session(user)
            return redirect(_safe_next(request.args.get("next")))
        error = "Wrong username or password."
    return render_template("login.html", error=error), (401 if error else 200)


@bp.post("/logout")
def logout():
    auth.csrf.protect()
    session.clear()
    return redirect(url_for("pages.login"))


@bp.get("/")
@auth.require_role("segmenter")
def home():
    return render_template("home.html")
