"""Staff sign-in: the admin login, which the dashboard's "Sign in as staff" link also uses.

Two defences against a login loop (docs/security.md, "Staff sign-in"):

* **Throttle and lockout** by django-axes: after ``ANTEROOM_LOGIN_FAILURE_LIMIT`` failed
  sign-ins for one username, or from one client address, further attempts are refused (429,
  ``Retry-After``, a message saying when to retry) without checking the password, until
  ``ANTEROOM_LOGIN_COOLOFF`` seconds after the last failure. A success resets the account's count.
* **Hashing on its own small pool.** Checking a password costs about a second of CPU (PBKDF2).
  ``AnteroomAdminSite.login`` runs ``authenticate`` on ``LOGIN_EXECUTOR``
  (``ANTEROOM_LOGIN_THREADS`` threads, default 1) and waits for it on its request's own thread
  (under Daphne, Django's ASGI handler gives each HTTP request a thread of its own for sync
  code), never on the event loop and never on the thread that runs the sockets' ORM work. So
  however many sign-ins arrive at once, one process hashes at most that many passwords at a
  time and keeps its other cores for knocks. At most ``ANTEROOM_LOGIN_QUEUE`` sign-ins wait for
  the pool; more are answered 503 with ``Retry-After`` at once. The rest of the admin login
  (form, session, redirect) is Django's own.

  (A sync view on purpose: an async one gains nothing while the middleware chain is sync, as
  WhiteNoise's is, and asgiref then leaves the calling thread pointing at a finished event loop
  when Django's test client serves it.)
"""

from __future__ import annotations

import contextvars
import math
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, cast

from axes.helpers import get_cool_off
from axes.models import AccessAttempt
from django.conf import settings
from django.contrib import admin
from django.contrib.admin.forms import AdminAuthenticationForm
from django.contrib.auth import authenticate
from django.contrib.auth.base_user import AbstractBaseUser
from django.contrib.auth.forms import UsernameField
from django.core.exceptions import ValidationError
from django.db import connections
from django.db.models import Max, Q
from django.http import HttpRequest, HttpResponse
from django.utils import timezone
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

if TYPE_CHECKING:
    from django.contrib.auth.models import User

LOGIN_EXECUTOR = ThreadPoolExecutor(
    max_workers=settings.ANTEROOM_LOGIN_THREADS, thread_name_prefix="anteroom-login"
)
_waiting = 0  # sign-ins of this process waiting for or running on LOGIN_EXECUTOR
_waiting_lock = threading.Lock()

LOCKED_OUT = _(
    "Too many failed sign-ins for this account or from this address. Try again after "
    "%(until)s UTC (in about %(minutes)s minutes)."
)
BUSY = "Too many sign-ins are being checked right now; retry in a few seconds.\n"
BUSY_RETRY_AFTER = "5"


@dataclass(frozen=True)
class LoginOutcome:
    """What ``authenticate`` said for one username and password."""

    username: str
    user: AbstractBaseUser | None
    locked_until: datetime | None = None  # set when axes refused without checking


def client_address(request: HttpRequest) -> str | None:
    """The address axes counts failures by: Daphne's client address (``X-Forwarded-For`` only
    with ``--proxy-headers``), never a header a client could choose."""
    address = request.META.get("REMOTE_ADDR")
    return str(address) if address else None


def _locked_until(request: HttpRequest, username: str) -> datetime:
    """When the lockout ends at the latest: the last counted failure plus the cool-off."""
    cool_off = get_cool_off(request) or timedelta(seconds=settings.ANTEROOM_LOGIN_COOLOFF)
    address = getattr(request, "axes_ip_address", None)
    last = AccessAttempt.objects.filter(Q(username=username) | Q(ip_address=address)).aggregate(
        last=Max("attempt_time")
    )["last"]
    return (last or timezone.now()) + cool_off


def _authenticate(request: HttpRequest, username: str, password: str) -> LoginOutcome:
    """On LOGIN_EXECUTOR: the backends (axes first, then the password check) and axes' records
    of the failure, all on this thread's own database connection, closed afterwards."""
    try:
        user = authenticate(request, username=username, password=password)
        if getattr(request, "axes_locked_out", False):
            return LoginOutcome(username, None, _locked_until(request, username))
        return LoginOutcome(username, user)
    finally:
        connections.close_all()


class LoginBusy(Exception):
    """More than ``ANTEROOM_LOGIN_QUEUE`` sign-ins are waiting in this process."""


def authenticate_staff(request: HttpRequest, username: str, password: str) -> LoginOutcome:
    """``authenticate`` on LOGIN_EXECUTOR, waited for on this thread (module docstring); the log
    context (request id) goes along. Raises ``LoginBusy`` when the queue is full."""
    global _waiting
    with _waiting_lock:
        if _waiting >= settings.ANTEROOM_LOGIN_QUEUE:
            raise LoginBusy
        _waiting += 1
    try:
        context = contextvars.copy_context()
        return LOGIN_EXECUTOR.submit(
            context.run, _authenticate, request, username, password
        ).result()
    finally:
        with _waiting_lock:
            _waiting -= 1


class StaffAuthenticationForm(AdminAuthenticationForm):
    """The admin login form, taking the outcome ``AnteroomAdminSite.login`` computed off-thread
    instead of hashing the password again."""

    error_messages = {**AdminAuthenticationForm.error_messages, "locked_out": LOCKED_OUT}

    def clean(self) -> dict[str, Any]:
        outcome: LoginOutcome | None = getattr(self.request, "anteroom_login", None)
        username = self.cleaned_data.get("username")
        password = self.cleaned_data.get("password")
        if outcome is None or outcome.username != username or not password:
            return super().clean()  # not through AnteroomAdminSite.login: Django's own path
        if outcome.locked_until is not None:
            left = (outcome.locked_until - timezone.now()).total_seconds()
            minutes = max(1, math.ceil(left / 60))
            raise ValidationError(
                self.error_messages["locked_out"],
                code="locked_out",
                params={"until": f"{outcome.locked_until:%H:%M}", "minutes": minutes},
            )
        self.user_cache = cast("User | None", outcome.user)  # the project's user model
        if self.user_cache is None:
            raise self.get_invalid_login_error()
        self.confirm_login_allowed(self.user_cache)
        return self.cleaned_data


class AnteroomAdminSite(admin.AdminSite):
    """Django's admin with the throttled, off-thread sign-in (``lobby.apps.AnteroomAdminConfig``
    makes it ``admin.site``)."""

    login_form = StaffAuthenticationForm

    def each_context(self, request: HttpRequest) -> dict[str, Any]:
        """The deployment's product name (ANTEROOM_PRODUCT_NAME, lobby/branding.py) in the
        admin's header and page titles, instead of "Django administration"."""
        context = super().each_context(request)
        product = {"product": _brand_name()}
        context["site_header"] = gettext("%(product)s administration") % product
        context["site_title"] = gettext("%(product)s admin") % product
        return context

    def login(
        self, request: HttpRequest, extra_context: dict[str, Any] | None = None
    ) -> HttpResponse:
        outcome: LoginOutcome | None = None
        if request.method == "POST":
            raw = request.POST.get("username")
            username = UsernameField().to_python(raw) if raw else ""
            password = request.POST.get("password") or ""
            if username and password:
                try:
                    outcome = authenticate_staff(request, username, password)
                except LoginBusy:
                    busy = HttpResponse(BUSY, status=503, content_type="text/plain; charset=utf-8")
                    busy["Retry-After"] = BUSY_RETRY_AFTER
                    return busy
                request.anteroom_login = outcome  # type: ignore[attr-defined]
        response = super().login(request, extra_context)
        if outcome is not None and outcome.locked_until is not None:
            wait = (outcome.locked_until - timezone.now()).total_seconds()
            response.status_code = 429
            response["Retry-After"] = str(max(1, math.ceil(wait)))
        return response


def _brand_name() -> str:
    from .branding import get_brand

    return get_brand().name
