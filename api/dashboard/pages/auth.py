"""Login with an API key (scope ``read``; ``admin`` for actions), logout."""

from __future__ import annotations

import hmac
import secrets

from fastapi import APIRouter, Form, Request
from fastapi.responses import RedirectResponse, Response

from .. import session
from ..render import page

router = APIRouter(prefix="/dashboard", include_in_schema=False)


def _safe_next(target: str | None) -> str:
    """Only our own pages: a login must not be a redirect to anywhere (open redirect)."""
    if target and target.startswith("/dashboard") and "//" not in target and "\\" not in target:
        return target
    return "/dashboard"


def _login_page(request: Request, error: str | None = None, status: int = 200, next_: str | None = None) -> Response:
    token = secrets.token_urlsafe(16)
    resp = page(request, "login.html", status=status, error=error, csrf=token,
                next=_safe_next(next_ or request.query_params.get("next")))
    resp.set_cookie(session.LOGIN_COOKIE, token, max_age=1800, **session.cookie_args(request))
    return resp


@router.get("/login")
def login_form(request: Request) -> Response:
    return _login_page(request)


@router.post("/login")
def login(request: Request, api_key: str = Form("", max_length=200), csrf_token: str = Form("", max_length=100),
          next: str = Form("/dashboard", max_length=300)) -> Response:
    expected = request.cookies.get(session.LOGIN_COOKIE)
    if not expected or not hmac.compare_digest(expected, csrf_token):
        return _login_page(request, "The form expired or was not sent by this page; try again.", 403, next)
    principal = session.login_key(api_key)
    if principal is None:
        return _login_page(request, "That key is unknown, revoked, or lacks the read scope.", 401, next)
    value, _ = session.issue(principal.key_id)
    resp = RedirectResponse(_safe_next(next), status_code=303)
    resp.set_cookie(session.COOKIE, value, max_age=session.lifetime(), **session.cookie_args(request))
    resp.delete_cookie(session.LOGIN_COOKIE, path="/")
    return resp


@router.post("/logout")
def logout(request: Request, csrf_token: str = Form("", max_length=100)) -> Response:
    claims = session.decode(request.cookies.get(session.COOKIE))
    if claims is not None:
        if not hmac.compare_digest(csrf_token, session.csrf_for(str(claims.get("n")))):
            return Response("CSRF token missing or wrong", status_code=403)
        session.deny(claims)
    resp = RedirectResponse("/dashboard/login", status_code=303)
    resp.delete_cookie(session.COOKIE, path="/")
    return resp
