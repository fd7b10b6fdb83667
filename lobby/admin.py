"""Django admin: every action goes through the services, so live clients see it at once."""

from __future__ import annotations

from typing import Any

from axes.admin import AccessAttemptAdmin as AxesAccessAttemptAdmin
from axes.models import AccessAttempt
from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest
from django.urls import reverse
from django.utils.html import format_html

from . import services
from .commands import ROOM_PROPERTIES
from .errors import AnteroomError
from .models import ApiKey, AuditEvent, EntryRequest, MeetingToken, Participant, Room


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
    verbose_name_plural = "pending entry requests"

    def get_queryset(self, request: HttpRequest) -> QuerySet[EntryRequest]:
        return super().get_queryset(request).filter(status="pending")


@admin.register(Room)
class RoomAdmin(admin.ModelAdmin):
    list_display = (
        "name",
        "privacy",
        "enable_knocking",
        "mode",
        "paused",
        "audio_muted",
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
        try:
            if not change:
                fresh = services.room_create(
                    name=obj.name, **{k: getattr(obj, k) for k in self.PROPERTIES}
                )
                obj.pk = fresh.pk
                state = {k: getattr(obj, k) for k in self.STATE if getattr(obj, k)}
                if state:
                    services.room_set_state(
                        room=fresh, actor=services.Actor.staff(request.user.get_username()), **state
                    )
                return
            current = Room.objects.get(pk=obj.pk)
            props = {k: getattr(obj, k) for k in self.PROPERTIES if k in form.changed_data}
            if props:
                current = services.room_update(room=current, **props)
            state = {k: getattr(obj, k) for k in self.STATE if k in form.changed_data}
            if state:
                services.room_set_state(
                    room=current, actor=services.Actor.staff(request.user.get_username()), **state
                )
        except AnteroomError as exc:
            messages.error(request, f"Not saved: {exc.message}")

    def get_queryset(self, request: HttpRequest) -> QuerySet[Room]:
        return super().get_queryset(request).filter(parent__isnull=True)

    def delete_model(self, request: HttpRequest, obj: Room) -> None:
        services.room_delete(room=obj)  # connected sockets are told and closed

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[Room]) -> None:
        for room in queryset:
            services.room_delete(room=room)

    @admin.display(description="pages")
    def pages(self, obj: Room) -> str:
        """Staff moderate from the dashboard (their admin session is enough)."""
        return format_html(
            '<a href="{}">dashboard</a> · <a href="{}">guest page</a>',
            reverse("lobby:dashboard", args=[obj.name]),
            reverse("lobby:guest", args=[obj.name]),
        )


def _decide(outcome: str) -> Any:
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
        messages.info(
            request, f"{effective} request(s) {outcome}; the rest were no longer pending."
        )

    action.__name__ = f"{outcome}_selected"
    return admin.action(
        description=f"{outcome.capitalize()[:-2]} selected requests", permissions=["change"]
    )(action)


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

    @admin.action(description="Revoke selected tokens", permissions=["change"])
    def revoke(self, request: HttpRequest, queryset: QuerySet[MeetingToken]) -> None:
        by = f"staff:{request.user.get_username()}"
        n = sum(services.token_revoke(jti=t.jti, by=by) for t in queryset)
        messages.info(request, f"{n} token(s) revoked.")

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
        messages.warning(request, f"API key (shown once): {key}")


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
