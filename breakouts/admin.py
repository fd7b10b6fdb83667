"""Django admin for breakout rooms and invitations. Every action goes through the services, so
live clients hear of it at once; rows are never edited or deleted behind the services' back
(deleting a room here would strand its members as ``paused``)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.contrib import admin, messages
from django.db.models import Count, Q, QuerySet
from django.http import HttpRequest
from django.utils.functional import Promise
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from lobby.errors import AnteroomError
from lobby.models import Participant, Room
from lobby.services import Actor

from . import services
from .models import BreakoutInvitation, BreakoutRoom


class MemberInline(admin.TabularInline):
    model = Participant
    fk_name = "breakout"
    extra = 0
    fields = ("participant_id", "name", "role", "status", "connected_at", "disconnected_at")
    readonly_fields = fields
    can_delete = False
    verbose_name = gettext_lazy("member")
    verbose_name_plural = gettext_lazy("members")

    def get_queryset(self, request: HttpRequest) -> QuerySet[Participant]:
        return super().get_queryset(request).exclude(status=Participant.Status.LEFT)

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


class InvitationInline(admin.TabularInline):
    model = BreakoutInvitation
    extra = 0
    fields = ("participant_id", "status", "force_join", "invited_by", "created_at")
    readonly_fields = fields
    can_delete = False

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


def _staff(request: HttpRequest) -> Actor:
    return Actor.staff(request.user.get_username())


def _per_parent(
    label: str | Promise, fn: Callable[..., services.Cleared]
) -> Callable[[admin.ModelAdmin, HttpRequest, QuerySet[BreakoutRoom]], None]:
    def action(
        modeladmin: admin.ModelAdmin, request: HttpRequest, queryset: QuerySet[BreakoutRoom]
    ) -> None:
        parents = Room.objects.filter(
            pk__in=queryset.values_list("parent_id", flat=True).distinct()
        )
        returned = 0
        for parent in parents:
            try:
                returned += len(fn(parent=parent, actor=_staff(request)).returned)
            except AnteroomError as exc:
                messages.error(request, f"{parent.name}: {exc.message}")
        messages.info(
            request,
            _("%(done)s: %(rooms)d room(s), %(returned)d participant(s) returned.")
            % {"done": label, "rooms": len(parents), "returned": returned},
        )

    return action


@admin.register(BreakoutRoom)
class BreakoutRoomAdmin(admin.ModelAdmin):
    list_display = (
        "__str__",
        "parent",
        "number",
        "capacity",
        "member_count",
        "audio",
        "video",
        "canvas",
        "share",
        "ends_at",
    )
    list_filter = (("parent", admin.RelatedOnlyFieldListFilter),)
    search_fields = ("parent__name",)
    fields = (
        "parent",
        "number",
        "name",
        "capacity",
        "audio",
        "video",
        "canvas",
        "share",
        "ends_at",
        "ending_warned",
        "created_at",
    )
    readonly_fields = fields
    inlines = [MemberInline, InvitationInline]
    actions = ["return_members", "clear_all", "destroy_all"]

    def get_queryset(self, request: HttpRequest) -> QuerySet[BreakoutRoom]:
        return (
            super()
            .get_queryset(request)
            .filter(parent__isnull=False)
            .select_related("parent")
            .annotate(
                members=Count(
                    "breakout_members",
                    filter=~Q(breakout_members__status=Participant.Status.LEFT),
                )
            )
        )

    @admin.display(description=gettext_lazy("members"), ordering="members")
    def member_count(self, obj: BreakoutRoom) -> int:
        return int(getattr(obj, "members", 0))

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # breakouts are created from the dashboard, the socket or the REST API

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False  # use "Destroy all breakouts" (it returns members first)

    @admin.action(
        description=gettext_lazy("Return the members of the selected rooms to their parent room"),
        permissions=["change"],
    )
    def return_members(self, request: HttpRequest, queryset: QuerySet[BreakoutRoom]) -> None:
        moved = 0
        for room in queryset.select_related("parent"):
            if room.parent is None:  # the queryset is breakout rooms: each has a parent
                continue
            for p in Participant.objects.filter(breakout=room).exclude(status="left"):
                try:
                    services.breakout_move(
                        parent=room.parent,
                        actor=_staff(request),
                        participant_id=p.participant_id,
                        room_id=None,
                    )
                    moved += 1
                except AnteroomError as exc:
                    messages.error(request, f"{p.participant_id}: {exc.message}")
        messages.info(
            request, _("%(n)d participant(s) returned to their parent room.") % {"n": moved}
        )

    clear_all = admin.action(
        description=gettext_lazy(
            "Clear all breakouts of the selected rooms' parents (rooms are kept)"
        ),
        permissions=["change"],
    )(_per_parent(gettext_lazy("Cleared"), services.breakout_rooms_clear_all))
    destroy_all = admin.action(
        description=gettext_lazy("Destroy all breakouts of the selected rooms' parents"),
        permissions=["change"],
    )(_per_parent(gettext_lazy("Destroyed"), services.breakout_rooms_destroy_all))


@admin.register(BreakoutInvitation)
class BreakoutInvitationAdmin(admin.ModelAdmin):
    list_display = (
        "participant_id",
        "breakout",
        "status",
        "force_join",
        "invited_by",
        "created_at",
    )
    list_filter = ("status", "force_join")
    search_fields = ("participant_id", "breakout__parent__name")
    readonly_fields = [f.name for f in BreakoutInvitation._meta.fields]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False
