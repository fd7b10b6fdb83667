"""Django admin: every action goes through the services, so live clients see it at once."""

from __future__ import annotations

from typing import Any

from axes.admin import AccessAttemptAdmin as AxesAccessAttemptAdmin
from axes.models import AccessAttempt
from django import forms
from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest
from django.urls import reverse
from django.utils.html import format_html
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from . import services
from .commands import ROOM_PROPERTIES
from .errors import AnteroomError
from .models import (
    AlertEmail,
    ApiKey,
    AuditEvent,
    EntryRequest,
    MeetingToken,
    Participant,
    Room,
    RoomAlerts,
    WebhookDelivery,
    WebhookEndpoint,
)
from .services import appointments


class ParticipantInline(admin.TabularInline):
    model = Participant
    fk_name = "room"
    extra = 0
    fields = ("participant_id", "name", "role", "status", "breakout")
    readonly_fields = fields
    can_delete = False

    def get_queryset(self, request: HttpRequest) -> QuerySet[Participant]:
        return super().get_queryset(request).exclude(status="left")


class PendingInline(admin.TabularInline):
    model = EntryRequest
    extra = 0
    fields = ("name", "participant_id", "requested_at", "expires_at", "status")
    readonly_fields = fields
    can_delete = False
    verbose_name_plural = gettext_lazy("pending entry requests")

    def get_queryset(self, request: HttpRequest) -> QuerySet[EntryRequest]:
        return super().get_queryset(request).filter(status="pending")


class RoomAdminForm(forms.ModelForm):
    """The appointment window's rules as field errors (the services refuse the same)."""

    class Meta:
        model = Room
        fields = appointments.FIELDS

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        window = {k: data.get(k) for k in appointments.FIELDS if k in data}
        try:
            appointments.check_window(None, window)
        except AnteroomError as exc:
            self.add_error("closes_at", exc.message)
        return data


@admin.register(Room)
class RoomAdmin(admin.ModelAdmin):
    form = RoomAdminForm
    list_display = (
        "name",
        "privacy",
        "enable_knocking",
        "mode",
        "paused",
        "audio_muted",
        "opens_at",
        "closes_at",
        "created_at",
        "pages",
    )
    search_fields = ("name",)
    inlines = [ParticipantInline, PendingInline]
    fields = (
        "name",
        "privacy",
        "enable_knocking",
        "mode",
        "max_active_talkers",
        "knock_ttl",
        "max_participants",
        "opens_at",
        "closes_at",
        "paused",
        "audio_muted",
        "video_muted",
    )
    PROPERTIES = ROOM_PROPERTIES  # what a client may set: the same fields as the REST API
    STATE = ("paused", "audio_muted", "video_muted")

    def get_readonly_fields(self, request: HttpRequest, obj: Room | None = None) -> tuple[str, ...]:
        return ("name",) if obj is not None else ()

    def save_model(self, request: HttpRequest, obj: Room, form: Any, change: bool) -> None:
        """Through the services: rules, the row lock, ``room-updated`` to live clients, audit."""
        actor = services.Actor.staff(request.user.get_username())
        try:
            if not change:
                fresh = services.room_create(
                    actor=actor, name=obj.name, **{k: getattr(obj, k) for k in self.PROPERTIES}
                )
                obj.pk = fresh.pk
                state = {k: getattr(obj, k) for k in self.STATE if getattr(obj, k)}
                if state:
                    services.room_set_state(room=fresh, actor=actor, **state)
                return
            current = Room.objects.get(pk=obj.pk)
            props = {k: getattr(obj, k) for k in self.PROPERTIES if k in form.changed_data}
            if props:
                current = services.room_update(room=current, actor=actor, **props)
            state = {k: getattr(obj, k) for k in self.STATE if k in form.changed_data}
            if state:
                services.room_set_state(room=current, actor=actor, **state)
        except AnteroomError as exc:
            messages.error(request, _("Not saved: %(why)s") % {"why": exc.message})

    def get_queryset(self, request: HttpRequest) -> QuerySet[Room]:
        return super().get_queryset(request).filter(parent__isnull=True)

    def delete_model(self, request: HttpRequest, obj: Room) -> None:
        # connected sockets are told and closed
        services.room_delete(room=obj, actor=services.Actor.staff(request.user.get_username()))

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[Room]) -> None:
        actor = services.Actor.staff(request.user.get_username())
        for room in queryset:
            services.room_delete(room=room, actor=actor)

    @admin.display(description=gettext_lazy("pages"))
    def pages(self, obj: Room) -> str:
        """Staff moderate from the dashboard (their admin session is enough)."""
        return format_html(
            '<a href="{}">{}</a> · <a href="{}">{}</a>',
            reverse("lobby:dashboard", args=[obj.name]),
            _("dashboard"),
            reverse("lobby:guest", args=[obj.name]),
            _("guest page"),
        )


# The admin's words for each outcome (the outcome itself is a code, never translated).
_DECIDE = {
    "admitted": (
        gettext_lazy("Admit selected requests"),
        gettext_lazy("%(n)d request(s) admitted; the rest were no longer pending."),
    ),
    "denied": (
        gettext_lazy("Deny selected requests"),
        gettext_lazy("%(n)d request(s) denied; the rest were no longer pending."),
    ),
}


def _decide(outcome: str) -> Any:
    label, done = _DECIDE[outcome]

    def action(
        modeladmin: admin.ModelAdmin, request: HttpRequest, queryset: QuerySet[EntryRequest]
    ) -> None:
        actor = services.Actor.staff(request.user.get_username())
        effective = 0
        for r in queryset.select_related("room"):
            try:
                d = services.entry_request_decide(
                    room=r.room, request_id=r.pk, actor=actor, outcome=outcome
                )
            except AnteroomError as exc:
                messages.error(request, f"{r}: {exc.message}")
                continue
            effective += d.effective
        messages.info(request, str(done) % {"n": effective})

    action.__name__ = f"{outcome}_selected"
    return admin.action(description=label, permissions=["change"])(action)


@admin.register(EntryRequest)
class EntryRequestAdmin(admin.ModelAdmin):
    list_display = (
        "name",
        "room",
        "status",
        "cancel_reason",
        "requested_at",
        "expires_at",
        "resolved_by",
    )
    list_filter = ("status",)
    search_fields = ("name", "participant_id", "room__name")
    actions = [_decide("admitted"), _decide("denied")]
    readonly_fields = [f.name for f in EntryRequest._meta.fields]
    exclude = ("resume_hash", "token_key", "browser_key")

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False  # a deleted pending knock would leave its guest waiting unheard; purge instead


@admin.register(Participant)
class ParticipantAdmin(admin.ModelAdmin):
    list_display = ("participant_id", "name", "room", "role", "status", "breakout")
    list_filter = ("status", "role")
    readonly_fields = [f.name for f in Participant._meta.fields]
    exclude = ("resume_hash",)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False  # presence changes go through the services (leave, sweep)


@admin.register(MeetingToken)
class MeetingTokenAdmin(admin.ModelAdmin):
    list_display = (
        "jti",
        "room_name",
        "subject",
        "user_name",
        "is_owner",
        "expires_at",
        "revoked_at",
    )
    search_fields = ("jti", "room_name", "subject")
    readonly_fields = [f.name for f in MeetingToken._meta.fields]
    actions = ["revoke"]

    @admin.action(description=gettext_lazy("Revoke selected tokens"), permissions=["change"])
    def revoke(self, request: HttpRequest, queryset: QuerySet[MeetingToken]) -> None:
        by = f"staff:{request.user.get_username()}"
        n = sum(services.token_revoke(jti=t.jti, by=by) for t in queryset)
        messages.info(request, _("%(n)d token(s) revoked.") % {"n": n})

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False  # deleting a revoked token's row would make the token valid again


@admin.register(ApiKey)
class ApiKeyAdmin(admin.ModelAdmin):
    list_display = ("name", "prefix", "created_at", "revoked")
    readonly_fields = ("prefix", "key_hash", "created_at")

    def save_model(self, request: HttpRequest, obj: ApiKey, form: Any, change: bool) -> None:
        if change:
            super().save_model(request, obj, form, change)
            return
        from .api.auth import api_key_create

        row, key = api_key_create(name=obj.name)
        obj.pk = row.pk
        messages.warning(request, _("API key (shown once): %(key)s") % {"key": key})


@admin.register(AuditEvent)
class AuditEventAdmin(admin.ModelAdmin):
    list_display = ("at", "room_name", "actor", "action", "subject")
    list_filter = ("action",)
    readonly_fields = [f.name for f in AuditEvent._meta.fields]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False  # the audit trail is append-only; `manage.py purge` applies retention


@admin.register(AccessAttempt)
class AccessAttemptAdmin(AxesAccessAttemptAdmin):
    """Staff sign-in failures counted by django-axes (lobby/staff_login.py). Deleting a row
    unlocks that username and address at once; rows past the cool-off no longer count.

    Registered here (``AXES_ENABLE_ADMIN = False``) without axes' "Clean up expired attempts"
    action: in axes 8.3 it reads ``request.axes_attempt_time``, which only a sign-in request
    has, and fails on the admin's. Every failed sign-in already deletes expired rows."""

    actions: list[str] = []


# Webhooks and alerts (lobby/webhooks/): the same checks and services as the REST API --------


def _served_at(request: HttpRequest) -> tuple[str, int] | None:
    from django.http.request import split_domain_port

    host, port = split_domain_port(request.get_host())
    if not host:
        return None
    return host, int(port) if port else (443 if request.is_secure() else 80)


class WebhookEndpointForm(forms.ModelForm):
    class Meta:
        model = WebhookEndpoint
        fields = ("url", "events", "room", "description", "active")

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self.served_at = kwargs.pop("served_at", None)
        super().__init__(*args, **kwargs)
        self.fields["room"].queryset = Room.objects.filter(parent__isnull=True)  # type: ignore[attr-defined]
        self.fields["events"].help_text = _(
            'A JSON list, e.g. ["knock.created", "knock.unattended", "breakout.*"].'
        )

    def clean_url(self) -> str:
        from .webhooks import addresses

        url = self.cleaned_data["url"]
        try:
            addresses.check_url(url, served_at=self.served_at)
        except AnteroomError as exc:
            raise forms.ValidationError(f"{exc.code}: {exc.message}") from exc
        return str(url)

    def clean_events(self) -> list[str]:
        from .webhooks.services import clean_events

        try:
            return clean_events(self.cleaned_data["events"])
        except AnteroomError as exc:
            raise forms.ValidationError(f"{exc.code}: {exc.message}") from exc


@admin.register(WebhookEndpoint)
class WebhookEndpointAdmin(admin.ModelAdmin):
    form = WebhookEndpointForm
    list_display = ("url", "events", "room", "active", "created_at", "deliveries_link")
    list_filter = ("active",)
    readonly_fields = ("created_at", "created_by")

    def get_form(
        self, request: HttpRequest, obj: Any = None, change: bool = False, **kw: Any
    ) -> Any:
        form = super().get_form(request, obj, change=change, **kw)
        served = _served_at(request)

        class Bound(form):  # type: ignore[misc, valid-type]
            def __init__(self, *a: Any, **k: Any) -> None:
                super().__init__(*a, served_at=served, **k)

        return Bound

    def save_model(
        self, request: HttpRequest, obj: WebhookEndpoint, form: Any, change: bool
    ) -> None:
        from .webhooks import services as hooks

        fields = {k: form.cleaned_data[k] for k in ("url", "events", "description", "active")}
        if change:
            current = WebhookEndpoint.objects.get(pk=obj.pk)
            editable = ("url", "events", "description", "active", "room")
            changed = {k: form.cleaned_data[k] for k in editable if k in form.changed_data}
            hooks.webhook_update(endpoint=current, served_at=_served_at(request), **changed)
            return
        ep, secret = hooks.webhook_create(
            room=form.cleaned_data["room"],
            by=f"staff:{request.user.get_username()}",
            served_at=_served_at(request),
            **fields,
        )
        obj.pk = ep.pk
        messages.warning(request, _("Signing secret (shown once): %(secret)s") % {"secret": secret})

    def delete_model(self, request: HttpRequest, obj: WebhookEndpoint) -> None:
        from .webhooks import services as hooks

        hooks.webhook_delete(endpoint=obj)

    @admin.display(description=gettext_lazy("deliveries"))
    def deliveries_link(self, obj: WebhookEndpoint) -> str:
        url = reverse("admin:lobby_webhookdelivery_changelist") + f"?endpoint__id__exact={obj.pk}"
        return format_html('<a href="{}">{}</a>', url, _("delivery log"))


@admin.register(WebhookDelivery)
class WebhookDeliveryAdmin(admin.ModelAdmin):
    list_display = (
        "id",
        "event_type",
        "endpoint",
        "status",
        "attempts",
        "last_status_code",
        "last_error",
        "created_at",
        "delivered_at",
    )
    list_filter = ("status", "endpoint")
    list_select_related = ("event", "endpoint")
    readonly_fields = [f.name for f in WebhookDelivery._meta.fields if f.name != "event"] + [
        "event_type",
        "body",
    ]
    exclude = ("event",)
    actions = ["replay"]

    @admin.display(description=gettext_lazy("event"))
    def event_type(self, obj: WebhookDelivery) -> str:
        return obj.event.type

    @admin.display(description=gettext_lazy("body"))
    def body(self, obj: WebhookDelivery) -> str:
        return obj.event.body

    @admin.action(description=gettext_lazy("Replay selected deliveries"), permissions=["change"])
    def replay(self, request: HttpRequest, queryset: QuerySet[WebhookDelivery]) -> None:
        from .webhooks import services as hooks

        n = 0
        for d in queryset:
            hooks.delivery_replay(delivery=d)
            n += 1
        messages.info(request, _("%(n)d delivery(ies) queued again.") % {"n": n})

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False  # the log is deleted with its endpoint, or by `manage.py purge`


class RoomAlertsForm(forms.ModelForm):
    class Meta:
        model = RoomAlerts
        fields = ("room", "unattended_after", "escalate_after", "contacts", "escalation_contacts")

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if "room" in self.fields:
            self.fields["room"].queryset = Room.objects.filter(parent__isnull=True)  # type: ignore[attr-defined]
        for name in ("contacts", "escalation_contacts"):
            self.fields[name].help_text = _('A JSON list of e-mail addresses, e.g. ["a@b.org"].')
            self.fields[name].required = False

    def clean(self) -> dict[str, Any]:
        from .webhooks.services import clean_contacts

        data = super().clean() or {}
        try:
            for name in ("contacts", "escalation_contacts"):
                data[name] = clean_contacts(data.get(name) or [], name)
        except AnteroomError as exc:
            raise forms.ValidationError(exc.message) from exc
        if data.get("escalate_after") is not None and data.get("unattended_after") is None:
            raise forms.ValidationError(_("escalate_after needs unattended_after."))
        return data


@admin.register(RoomAlerts)
class RoomAlertsAdmin(admin.ModelAdmin):
    form = RoomAlertsForm
    list_display = ("room", "unattended_after", "escalate_after", "contacts")

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> tuple[str, ...]:
        return ("room",) if obj is not None else ()

    def save_model(self, request: HttpRequest, obj: RoomAlerts, form: Any, change: bool) -> None:
        from .webhooks import services as hooks

        d = form.cleaned_data
        try:
            hooks.room_alerts_set(
                room=obj.room,
                unattended_after=d.get("unattended_after"),
                escalate_after=d.get("escalate_after"),
                contacts=d.get("contacts") or [],
                escalation_contacts=d.get("escalation_contacts") or [],
            )
        except AnteroomError as exc:
            messages.error(request, _("Not saved: %(why)s") % {"why": exc.message})


@admin.register(AlertEmail)
class AlertEmailAdmin(admin.ModelAdmin):
    list_display = ("subject", "room_name", "level", "status", "attempts", "created_at", "sent_at")
    list_filter = ("status", "level")
    readonly_fields = [f.name for f in AlertEmail._meta.fields]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False  # the record that a notice went out
