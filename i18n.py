"""Languages: Flask-Babel with the gettext catalogs in translations/.

The locale of a request is the user's choice (the `locale` field of the account, else
the `locale` cookie set by the header's selector, which also works before login), else
the browser's Accept-Language, else DEFAULT_LOCALE. Outside a request (the CLI) it is
DEFAULT_LOCALE. Time zones are the browser's: the pages format dates with Intl.
"""
import os

from flask import Blueprint, current_app, g, has_request_context, redirect, request
from flask_babel import Babel, get_locale
from flask_babel import gettext as _

import auth
import pages
import ui_strings
from errors import bad_request

LANGUAGES = {"en": "English", "es": "Español"}  # code -> the language's own name
COOKIE = "locale"
COOKIE_MAX_AGE = 365 * 24 * 3600

bp = Blueprint("i18n", __name__)
babel = Babel()


def _account_locale():
    """The signed-in user's saved choice, when this request has loaded its user already.

    Never a lookup of its own: the locale may be chosen while an error page is rendered
    during a database outage, and nothing in an error path may wait on the database.
    The header's selector also sets the cookie, so the choice holds before the user is loaded.
    """
    user = g.get("user")
    return user.get("locale") if user else None


def select_locale():
    if not has_request_context():
        return current_app.config["DEFAULT_LOCALE"]
    for choice in (_account_locale(), request.cookies.get(COOKIE)):
        if choice in LANGUAGES:
            return choice
    return request.accept_languages.best_match(list(LANGUAGES)) or current_app.config["DEFAULT_LOCALE"]


def locale_code():
    return str(get_locale() or current_app.config["DEFAULT_LOCALE"])


@bp.post("/locale")
def set_locale():
    """The header's language selector (a form POST): remembered in a cookie and, for a
    signed-in user, on the account."""
    user = auth.current_user()
    if g.auth_method != "token":  # as auth.require_role: a Bearer request carries no cookie
        auth.csrf.protect()
    choice = request.form.get("locale")
    if choice not in LANGUAGES:
        raise bad_request(_("Unknown language; use one of: %(codes)s.", codes=", ".join(LANGUAGES)),
                          "invalid_locale")
    if user is not None and user.get("locale") != choice:
        auth.set_locale(user["username"], choice)
    response = redirect(pages._safe_next(request.form.get("next")))  # the login form's rule
    response.set_cookie(COOKIE, choice, max_age=COOKIE_MAX_AGE, samesite="Lax", httponly=True,
                        secure=current_app.config["SESSION_COOKIE_SECURE"])
    return response


def init_app(app):
    babel.init_app(app, locale_selector=select_locale, default_locale=app.config["DEFAULT_LOCALE"])
    missing = [code for code in LANGUAGES if not os.path.exists(
        os.path.join(app.root_path, "translations", code, "LC_MESSAGES", "messages.mo"))]
    if missing:
        app.logger.warning("translations not compiled for %s (run scripts/i18n.sh compile): "
                           "those pages will be in English", ", ".join(missing))
    app.register_blueprint(bp)

    app.jinja_env.globals["status_label"] = ui_strings.status_label
    app.jinja_env.globals["role_label"] = ui_strings.role_label

    @app.context_processor
    def inject_locale():
        code = locale_code()
        return {"locale": code, "languages": LANGUAGES,
                "page_strings": lambda: ui_strings.page_strings(code)}
