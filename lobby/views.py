"""Server-rendered pages (SPEC §5): the guest knock page and the moderator dashboard.

Pages translate, like the consumer: every dashboard action is one service call with an
``Actor``, so a plain form POST (no JavaScript) and the live socket obey the same rules. The
script on each page (``static/anteroom/*.js``) makes it live through ``client.js``.
"""

from __future__ import annotations

import json
import secrets
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import urlencode

from django.conf import settings
from django.contrib import messages
from django.core import signing
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import render
from django.urls import reverse
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy, gettext_noop, ngettext, pgettext
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_http_methods

from . import activity, branding, clock, extensions, selectors, services
from .consumers import GUEST_COOKIE, GUEST_COOKIE_SALT
from .errors import AnteroomError, RoomNotFound, error_text
from .forms import DECIDE_ACTIONS, DECIDE_ALL_ACTIONS, ROOM_ACTIONS, DashboardActionForm
from .models import EntryRequest, Room
from .services import appointments, moderation
from .tokens import verify_token
from .webhooks.alerts import notices_for

GUEST_COOKIE_MAX_AGE = 365 * 24 * 3600


def _session_key(room: Room) -> str:
    return f"anteroom.moderator.{room.name}"


def _iso(value: datetime) -> str:
    return value.isoformat().replace("+00:00", "Z")


def _not_found(request: HttpRequest, name: str) -> HttpResponse:
    return render(request, "lobby/not_found.html", {"room_name": name}, status=404)


def _ensure_guest_cookie(request: HttpRequest, response: HttpResponse) -> None:
    """The signed per-browser id the socket uses as the knock rate-limit key (SPEC §2)."""
    raw = request.COOKIES.get(GUEST_COOKIE)
    if raw:
        try:
            signing.loads(raw, salt=GUEST_COOKIE_SALT)
            return
        except signing.BadSignature:
            pass
    response.set_cookie(
        GUEST_COOKIE,
        signing.dumps(secrets.token_urlsafe(18), salt=GUEST_COOKIE_SALT),
        max_age=GUEST_COOKIE_MAX_AGE,
        httponly=True,
        samesite="Lax",
        secure=request.is_secure(),
    )


# Home ----------------------------------------------------------------------------------------


@require_http_methods(["GET", "HEAD"])
def home_page(request: HttpRequest) -> HttpResponse:
    """``/``: what this server is, and the way into the admin and the docs (no room names)."""
    return render(request, "lobby/home.html", {"docs_url": settings.ANTEROOM_DOCS_URL})


@require_http_methods(["GET", "HEAD"])
def brand_css(request: HttpRequest) -> HttpResponse:
    """``/brand.css?v=<version>``: the deployment's accent as CSS custom properties (the CSP
    allows no inline style). Pages link the current version, so that URL is cached for a year;
    any other answers ``no-cache`` (a page from before a redeploy)."""
    brand = branding.get_brand()
    response = HttpResponse(brand.css(), content_type="text/css; charset=utf-8")
    if request.GET.get("v") == brand.css_version:
        response["Cache-Control"] = "public, max-age=31536000, immutable"
    else:
        response["Cache-Control"] = "no-cache"
    return response


def server_error(request: HttpRequest) -> HttpResponse:
    """``handler500``: the styled 500 page with the brand, from a plain template render (no
    context processors, no database: whatever failed may fail again)."""
    from django.template import loader

    html = loader.get_template("500.html").render({"brand": branding.get_brand()})
    return HttpResponse(html, status=500)


# Guest page ----------------------------------------------------------------------------------


@never_cache
@require_http_methods(["GET", "HEAD"])
def guest_page(request: HttpRequest, room_name: str) -> HttpResponse:
    """The knock page. The access level shown is a token-less guest's; the script re-asks the
    server with the page's ``?t=`` token, which it removes from the address bar first."""
    try:
        room = services.get_room(room_name)
    except RoomNotFound:
        return _not_found(request, room_name)
    level = services.access_level(room=room, claims=None).level
    now = clock.now()
    config = {
        # Before an appointment window opens: when, and from when one may knock (not its end).
        **appointments.guest_form_window(room, now=now),
        "room": room.name,
        "level": level,
        "knock_ttl": room.knock_ttl,
        "server_now": _iso(clock.now()),
    }
    response = render(request, "lobby/guest.html", {"room": room, "level": level, "config": config})
    _ensure_guest_cookie(request, response)
    return response


# Dashboard -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Moderator:
    """Who is using the dashboard: a moderator token kept in the session, or a staff user."""

    actor: services.Actor
    display: str
    token: str | None = None
    staff: bool = False


def _moderator(request: HttpRequest, room: Room) -> Moderator | AnteroomError | None:
    token = request.session.get(_session_key(room))
    problem: AnteroomError | None = None
    if isinstance(token, str):
        try:
            claims = verify_token(token, room_name=room.name)
        except AnteroomError as exc:
            # Expired or revoked since it was stored: forget it.
            del request.session[_session_key(room)]
            problem = exc
        else:
            if claims.can_moderate:
                by = claims.sub or "moderator"
                return Moderator(
                    actor=services.Actor(by=by, can_moderate=True, participant_id=claims.sub),
                    display=claims.name or claims.sub or _("Moderator"),
                    token=token,
                )
    user = request.user
    if user.is_authenticated and user.is_staff:
        username = user.get_username()
        return Moderator(
            actor=services.Actor.staff(username),
            display=user.get_full_name() or username,
            staff=True,
        )
    return problem


def _dashboard_url(room: Room, **query: str) -> str:
    url = reverse("lobby:dashboard", args=[room.name])
    return f"{url}?{urlencode(query)}" if query else url


def _accept_link(request: HttpRequest, room: Room) -> HttpResponse:
    """``?t=<token>``: verify it, keep it in the session for this room, drop it from the URL."""
    token = request.GET.get("t", "")
    try:
        claims = verify_token(token, room_name=room.name)
    except AnteroomError as exc:
        return _needs_moderator(request, room, exc)
    if not claims.can_moderate:
        return _needs_moderator(
            request,
            room,
            AnteroomError(
                gettext_noop("This link lets its holder join the room, not moderate it.")
            ),
            guest_link=True,
        )
    request.session[_session_key(room)] = token
    rest = {k: str(v) for k, v in request.GET.items() if k != "t"}
    return HttpResponseRedirect(_dashboard_url(room, **rest))


def _needs_moderator(
    request: HttpRequest, room: Room, problem: AnteroomError | None, guest_link: bool = False
) -> HttpResponse:
    login = f"{reverse('admin:login')}?{urlencode({'next': request.path})}"
    ctx = {
        "room": room,
        "problem": problem,
        "problem_text": error_text(problem) if problem else "",
        "login_url": login,
        "guest_link": guest_link,
    }
    return render(request, "lobby/dashboard_login.html", ctx, status=403)


def clock_text(seconds: float) -> str:
    """``m:ss`` of a countdown (never negative)."""
    s = max(0, int(seconds))
    return f"{s // 60}:{s % 60:02d}"


def _waited(seconds: float) -> str:
    s = max(0, int(seconds))
    if s < 60:
        return _("%(seconds)ss") % {"seconds": s}
    if s < 3600:
        return _("%(minutes)sm %(seconds)ss") % {"minutes": s // 60, "seconds": f"{s % 60:02d}"}
    return _("%(hours)sh %(minutes)sm") % {"hours": s // 3600, "minutes": f"{s % 3600 // 60:02d}"}


def _metadata_rows(metadata: Any) -> list[tuple[str, str]]:
    if not isinstance(metadata, dict):
        return []
    return [
        (str(k), v if isinstance(v, str) else json.dumps(v, ensure_ascii=False))
        for k, v in metadata.items()
    ]


def _by_label(by: str, mod: Moderator, names: dict[str, str] | None = None) -> str:
    # Who decided, as the activity list says it after "by" ("admitted by you").
    if by == mod.actor.by:
        return pgettext("admitted by …", "you")
    if by.startswith("staff:"):
        return pgettext("admitted by …", "%(name)s (staff)") % {"name": by[6:]}
    if by.startswith("api:"):
        return pgettext("admitted by …", "the API (%(name)s)") % {"name": by[4:]}
    return (names or {}).get(by) or by


_LEAVE_WORDS = {
    "left": gettext_lazy("left"),
    "disconnected": gettext_lazy("left (connection lost)"),
    "revoked": gettext_lazy("left (their link was withdrawn)"),
}


def activity_words(item: activity.Item, mod: Moderator, names: dict[str, str]) -> str:
    """What happened, after the name: "admitted by you", "timed out (nobody answered)", …
    (``dashboard.js`` words live items the same way). ``names``: participant id → name."""
    by = _by_label(item["by"], mod, names) if item["by"] else pgettext("admitted by …", "someone")
    kind = item["kind"]
    if kind == "admitted":
        return _("admitted by %(by)s") % {"by": by}
    if kind == "denied":
        if item["reason"]:
            return _("denied by %(by)s (“%(reason)s”)") % {"by": by, "reason": item["reason"]}
        return _("denied by %(by)s") % {"by": by}
    if kind == "timed-out":
        return _("timed out (nobody answered)")
    if kind == "canceled":
        return _("stopped waiting")
    if kind == "dropped":
        return _("lost the connection while waiting")
    if kind == "removed":
        return _("removed by %(by)s") % {"by": by}
    if kind == "sent-to-lobby":
        return _("sent back to the waiting room by %(by)s") % {"by": by}
    return str(_LEAVE_WORDS.get(item["reason"], _LEAVE_WORDS["left"]))


def _render_dashboard(request: HttpRequest, room: Room, mod: Moderator) -> HttpResponse:
    now = clock.now()
    waiting = [r for r in selectors.pending_requests(room=room) if r.expires_at > now]
    # Unattended-knock notices already sent (lobby/webhooks/alerts.py), shown on the row.
    notices = notices_for([r.id for r in waiting])
    pending = [
        {
            "id": str(r.id),
            "name": r.name,
            "metadata": _metadata_rows(r.metadata),
            "requested_at": _iso(r.requested_at),
            "expires_at": _iso(r.expires_at),
            "waited": _waited((now - r.requested_at).total_seconds()),
            "left": clock_text((r.expires_at - now).total_seconds()),
            "connected": r.disconnected_at is None,
            "notice": notices.get(str(r.id)),
            "early": appointments.is_early(r, room, now=now),
        }
        for r in waiting
    ]
    participants = selectors.participants_present(room=room)
    names = {p.participant_id: p.name for p in participants if p.name}
    recent = [
        {
            **item,
            "when": datetime.fromisoformat(item["at"]) if item["at"] else None,
            "words": activity_words(item, mod, names),
        }
        for item in activity.recent(room=room)
    ]
    config = {
        "room": room.name,
        "token": mod.token,
        "staff": mod.staff,
        "me": mod.actor.by,
        "server_now": _iso(now),
        "appointment_early": int(appointments.early().total_seconds()),
        "guest_url": request.build_absolute_uri(reverse("lobby:guest", args=[room.name])),
    }
    ctx = {
        "room": room,
        "mod": mod,
        "pending": pending,
        "participants": participants,
        "activity": recent,
        "confirm_deny_all": request.GET.get("confirm") == "deny-all" and bool(pending),
        "config": config,
        "guest_url": config["guest_url"],
        "panels": extensions.dashboard_panels,
        "appointment": appointments.dashboard_window(room, now=now),
    }
    for panel in extensions.dashboard_panels:  # e.g. breakouts' panel (breakouts/views.py)
        ctx.update(panel.context(room=room, now=now, participants=participants))
    return render(request, "lobby/dashboard.html", ctx)


def _act(request: HttpRequest, room: Room, mod: Moderator) -> HttpResponse:
    """One dashboard button as a plain POST: one service call, a message, redirect (PRG)."""
    form = DashboardActionForm(request.POST)
    if not form.is_valid():
        problems = form.non_field_errors()
        messages.error(
            request,
            _("%(problem)s Nothing was changed.") % {"problem": problems[0]}
            if problems
            else _("That action was not understood; nothing was changed."),
        )
        return HttpResponseRedirect(_dashboard_url(room))
    action: str = form.cleaned_data["action"]
    try:
        if action in DECIDE_ACTIONS:
            d = services.entry_request_decide(
                room=room,
                request_id=form.cleaned_data["request_id"],
                actor=mod.actor,
                outcome=DECIDE_ACTIONS[action],
                reason=form.cleaned_data.get("reason") or "",
            )
            who = d.request.name or _("The guest")
            if d.effective:
                done = (
                    _("%(name)s: admitted.") if d.outcome == "admitted" else _("%(name)s: denied.")
                )
                messages.success(request, done % {"name": who})
            else:
                status = _status_words(d.request)
                messages.info(
                    request,
                    _("%(name)s was already %(status)s; nothing changed.")
                    % {"name": who, "status": status},
                )
        elif action == "deny-all" and not form.cleaned_data.get("confirm"):
            # Ask first (the page shows the question); nothing is denied yet.
            return HttpResponseRedirect(_dashboard_url(room, confirm="deny-all"))
        elif action in DECIDE_ALL_ACTIONS:
            outcome = DECIDE_ALL_ACTIONS[action]
            n = services.entry_requests_decide_all(room=room, actor=mod.actor, outcome=outcome)
            if n and outcome == "admitted":
                said = ngettext("%(count)s guest admitted.", "%(count)s guests admitted.", n)
                messages.success(request, said % {"count": n})
            elif n:
                said = ngettext("%(count)s guest denied.", "%(count)s guests denied.", n)
                messages.success(request, said % {"count": n})
            elif outcome == "admitted":
                messages.info(request, _("Nobody is waiting; nobody was admitted."))
            else:
                messages.info(request, _("Nobody is waiting; nobody was denied."))
        elif action in ("lobby-message", "lobby-message-clear"):
            text = form.cleaned_data.get("text") or "" if action == "lobby-message" else ""
            extra = form.cleaned_data.get("extend_minutes") or 0
            room, moved = moderation.lobby_message_set(
                room=room, actor=mod.actor, text=text, extend_minutes=extra
            )
            said = (
                _("Everyone waiting now sees: “%(text)s”.") % {"text": room.lobby_message}
                if room.lobby_message
                else _("The message to everyone waiting is cleared.")
            )
            if extra:
                more = ngettext(
                    "%(count)s guest got %(minutes)s more minutes.",
                    "%(count)s guests got %(minutes)s more minutes.",
                    moved,
                )
                said += " " + more % {"count": moved, "minutes": extra}
            messages.success(request, said)
        elif action == "entry-message":
            r = moderation.entry_request_message(
                room=room,
                actor=mod.actor,
                request_id=form.cleaned_data["request_id"],
                text=form.cleaned_data["text"],
            )
            who = r.name or pgettext("message sent to …", "the guest")
            messages.success(request, _("Message sent to %(name)s.") % {"name": who})
        elif action == "participant-remove":
            p = moderation.participant_remove(
                room=room, actor=mod.actor, participant_id=form.cleaned_data["client"]
            )
            who = p.name or _("The participant")
            messages.success(request, _("%(name)s was removed from the room.") % {"name": who})
        elif action == "participant-to-lobby":
            r = moderation.participant_send_to_lobby(
                room=room, actor=mod.actor, participant_id=form.cleaned_data["client"]
            )
            who = r.name or _("The participant")
            messages.success(request, _("%(name)s is back in the waiting room.") % {"name": who})
        elif (panel := extensions.panel_for(action)) is not None:
            done = panel.act(room=room, mod=mod, action=action, data=request.POST)
            messages.success(request, done)
        else:
            services.room_set_state(room=room, actor=mod.actor, **ROOM_ACTIONS[action])
            messages.success(request, str(_ROOM_ACTION_DONE[action]))
    except AnteroomError as exc:
        messages.error(request, error_text(exc))
    except extensions.FormProblem as exc:
        messages.error(request, _("%(problem)s Nothing was changed.") % {"problem": exc})
    return HttpResponseRedirect(_dashboard_url(room))


_ROOM_ACTION_DONE = {
    "pause": gettext_lazy("The room is paused."),
    "resume": gettext_lazy("The room is live again."),
    "mute-audio": gettext_lazy("Everyone's microphone is muted."),
    "unmute-audio": gettext_lazy("Microphones are allowed again."),
    "mute-video": gettext_lazy("Everyone's camera is off."),
    "unmute-video": gettext_lazy("Cameras are allowed again."),
}


def _status_words(r: EntryRequest) -> str:
    """The request's state after "was already …" (the status code itself is not shown)."""
    if r.status == EntryRequest.Status.CANCELED:
        return _("timed out") if r.cancel_reason == "timeout" else _("gone (canceled)")
    words: dict[str, str] = {
        "admitted": pgettext("was already …", "admitted"),
        "denied": pgettext("was already …", "denied"),
        "pending": pgettext("was already …", "waiting"),
    }
    return words.get(str(r.status), str(r.status))


@never_cache
@require_http_methods(["GET", "HEAD", "POST"])
def dashboard_page(request: HttpRequest, room_name: str) -> HttpResponse:
    """The moderator dashboard: owner/moderator link (``?t=``) or a signed-in staff user."""
    try:
        room = services.get_room(room_name)
    except RoomNotFound:
        return _not_found(request, room_name)
    if request.method != "POST" and "t" in request.GET:
        return _accept_link(request, room)
    mod = _moderator(request, room)
    if not isinstance(mod, Moderator):
        return _needs_moderator(request, room, mod)
    if request.method == "POST":
        return _act(request, room, mod)
    return _render_dashboard(request, room, mod)
