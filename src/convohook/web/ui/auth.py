"""Sign-in and sign-out. The sign-in form carries a double-submit CSRF token of its own."""

from __future__ import annotations

import hmac
import secrets

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from convohook.usecases.users import sign_in, sign_out
from convohook.web.ui.common import (
    SESSION_COOKIE,
    csrf_failed,
    current_session,
    form_with_csrf,
    render,
    services_of,
)

LOGIN_CSRF_COOKIE = "convohook_login_csrf"
HOME = "/settings/webhooks"


async def login_page(request: Request) -> Response:
    token = secrets.token_urlsafe(24)
    response = render("login.html", login_csrf=token, next=request.query_params.get("next", ""))
    response.set_cookie(LOGIN_CSRF_COOKIE, token, httponly=True, samesite="strict")
    return response


async def login(request: Request) -> Response:
    svc = services_of(request)
    form = await request.form()
    expected = request.cookies.get(LOGIN_CSRF_COOKIE, "")
    given = str(form.get("csrf_token", ""))
    if not expected or not hmac.compare_digest(expected.encode(), given.encode()):
        return csrf_failed()
    email = str(form.get("email", ""))
    signed = await svc.db.run(sign_in, email, str(form.get("password", "")), svc.clock())
    if signed is None:
        return render(
            "login.html",
            401,
            error="Wrong email or password.",
            login_csrf=expected,
            email=email,
            next=form.get("next", ""),
        )
    target = str(form.get("next") or HOME)
    if not target.startswith("/") or target.startswith("//"):
        target = HOME  # never redirect off-site
    response = RedirectResponse(target, status_code=303)
    response.set_cookie(
        SESSION_COOKIE,
        signed.token,
        max_age=14 * 86400,
        httponly=True,
        samesite="lax",
        secure=svc.settings.public_url.startswith("https://"),
    )
    response.delete_cookie(LOGIN_CSRF_COOKIE)
    return response


async def logout(request: Request) -> Response:
    session = await current_session(request)
    if session is not None:
        if await form_with_csrf(request, session) is None:
            return csrf_failed(session)
        svc = services_of(request)
        await svc.db.run(sign_out, request.cookies.get(SESSION_COOKIE, ""))
    response = RedirectResponse("/login", status_code=303)
    response.delete_cookie(SESSION_COOKIE)
    return response


async def home(request: Request) -> Response:
    return RedirectResponse(HOME, status_code=303)


routes = [
    Route("/", home, methods=["GET"]),
    Route("/login", login_page, methods=["GET"]),
    Route("/login", login, methods=["POST"]),
    Route("/logout", logout, methods=["POST"]),
]
