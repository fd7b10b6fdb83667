"""Breakout data. A breakout room is a ``lobby.Room`` with a parent; membership is the
participant's ``breakout`` foreign key (so one breakout at a time is structural). Invitations
are rows here."""

from __future__ import annotations

import uuid

from django.db import models
from django.db.models import Q

from lobby.models import Room


class BreakoutRoom(Room):
    """Admin view of breakout rooms (a proxy: same table)."""

    class Meta:
        proxy = True
        verbose_name = "breakout room"


class BreakoutInvitation(models.Model):
    class Status(models.TextChoices):
        PENDING = "pending"
        ACCEPTED = "accepted"
        REJECTED = "rejected"

    breakout = models.ForeignKey(Room, on_delete=models.CASCADE, related_name="invitations")
    participant_id = models.CharField(max_length=128)
    force_join = models.BooleanField(default=False)
    invited_by = models.CharField(max_length=160, blank=True, default="")
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING)
    created_at = models.DateTimeField()

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["breakout", "participant_id"],
                condition=Q(status="pending"),
                name="one_pending_invitation",
            ),
            models.CheckConstraint(
                condition=Q(status__in=["pending", "accepted", "rejected"]),
                name="invitation_status_valid",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.participant_id} → {self.breakout_id} ({self.status})"


class HelpRequest(models.Model):
    """A breakout member's request for a moderator (``breakout-help``). One pending per
    participant and parent room until a moderator answers it, it expires
    (``ANTEROOM_HELP_REQUEST_TTL``) or the participant leaves its breakout room; asking again
    meanwhile is refused (``HELP_ALREADY_REQUESTED``), so a flood is one notice."""

    class Status(models.TextChoices):
        PENDING = "pending"
        ANSWERED = "answered"
        EXPIRED = "expired"
        CLEARED = "cleared"  # the participant left the breakout room (or the room), or it closed

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    parent = models.ForeignKey(Room, on_delete=models.CASCADE, related_name="help_requests")
    breakout = models.ForeignKey(Room, on_delete=models.CASCADE, related_name="+")
    participant_id = models.CharField(max_length=128)
    requested_at = models.DateTimeField()
    expires_at = models.DateTimeField()
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING)
    resolved_by = models.CharField(max_length=160, blank=True, default="")
    resolved_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["requested_at"]
        indexes = [models.Index(fields=["status", "expires_at"])]
        constraints = [
            models.UniqueConstraint(
                fields=["parent", "participant_id"],
                condition=Q(status="pending"),
                name="one_pending_help_request",
            ),
            models.CheckConstraint(
                condition=Q(status__in=["pending", "answered", "expired", "cleared"]),
                name="help_request_status_valid",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.participant_id} asks in {self.breakout_id} ({self.status})"
