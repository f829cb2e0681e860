"""Who may talk to the app: localhost binds are open; any other bind needs an access token.

With a token, every request must carry it — as ``?token=…`` once (the app then sets an
HttpOnly cookie, so links and Dash's own requests keep working) or as that cookie. Anything
else is answered with 403.
"""

from __future__ import annotations

import hmac
import ipaddress

from flask import Flask, abort, request

from workbench.errors import UserError

COOKIE = "workbench_token"


def is_local(host: str) -> bool:
    if host in ("localhost", ""):
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def check_bind(host: str, token: str | None) -> None:
    """Refuse to serve on a non-local address without a token."""
    if not is_local(host) and not token:
        raise UserError(f"refusing to bind to non-local address {host!r} without an access "
                        "token: pass --token T (then open the app with ?token=T)")


def install_token_guard(server: Flask, token: str) -> None:
    """Require ``token`` on every request to ``server`` (403 otherwise)."""
    assert token, "an empty token would let everyone in"

    def matches(value: str | None) -> bool:
        return value is not None and hmac.compare_digest(value.encode(), token.encode())

    @server.before_request
    def _guard():
        if matches(request.cookies.get(COOKIE)):
            return None
        if matches(request.args.get("token")):
            request.environ["workbench.set_cookie"] = True
            return None
        abort(403)

    @server.after_request
    def _set_cookie(response):
        if request.environ.get("workbench.set_cookie"):
            response.set_cookie(COOKIE, token, httponly=True, samesite="Strict")
        return response
