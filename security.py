"""Response hardening: security headers on every response, and the trusted-proxy setting.

The pages load scripts and styles only from /static (no inline script, no style
attributes: app.js sets styles through the CSSOM, which the policy allows). The JSON
blocks (`<script type="application/json">`) are data, never executed, so the policy
does not need to allow them.

Behind TRUSTED_PROXY_HOPS reverse proxies, Werkzeug's ProxyFix takes the client address,
scheme and host from that many X-Forwarded-* entries (set by the proxies themselves, so
a client cannot forge them). A request that arrived over HTTPS then gets a `Secure`
session cookie and Strict-Transport-Security.
"""
from flask import has_request_context, request
from werkzeug.middleware.proxy_fix import ProxyFix

CONTENT_SECURITY_POLICY = "; ".join((
    "default-src 'self'",
    "script-src 'self'",
    "style-src 'self'",
    "img-src 'self' data:",
    "object-src 'none'",
    "base-uri 'none'",
    "form-action 'self'",
    "frame-ancestors 'none'",
))

HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",
    "Cross-Origin-Opener-Policy": "same-origin",
}
HSTS = "max-age=31536000"


def cookie_secure(app):
    """Whether the session cookie gets `Secure`: always, never, or when this request is HTTPS."""
    if app.config["SESSION_COOKIE_SECURE"]:
        return True
    return bool(app.config.get("SESSION_COOKIE_SECURE_AUTO") and has_request_context() and request.is_secure)


def init_app(app):
    hops = app.config["TRUSTED_PROXY_HOPS"]
    if hops:
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=hops, x_proto=hops, x_host=hops, x_port=hops)

    @app.after_request
    def add_security_headers(response):
        for name, value in HEADERS.items():
            response.headers.setdefault(name, value)
        if request.is_secure:
            response.headers.setdefault("Strict-Transport-Security", HSTS)
        return response
