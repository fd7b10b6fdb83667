"""Lobby data: rooms, API keys, meeting tokens, entry requests, participants, server processes.

Models hold data and integrity (statuses, one pending knock per guest per room, one presence per
participant id); rules live in ``services.py``.
"""

from __future__ import annotations

import uuid

from django.core.validators import MaxValueValidator, MinValueValidator, RegexValidator
from django.db import models
from django.db.models import Q

ROOM_NAME_RE = r"^[A-Za-z0-9_-]{1,64}$"


class Room(models.Model):
    """A meeting room. A breakout room is a Room with a ``parent`` (SPEC §2)."""

    class Privacy(models.TextChoices):
        PUBLIC = "public"
        PRIVATE = "private"

    class Mode(models.TextChoices):
        GROUP = "group"
        LECTURE = "lecture"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    name = models.CharField(max_length=64, validators=[RegexValidator(ROOM_NAME_RE)])
    parent = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.CASCADE, related_name="breakouts"
    )
    privacy = models.CharField(max_length=8, choices=Privacy.choices, default=Privacy.PUBLIC)
    enable_knocking = models.BooleanField(default=False)
    mode = models.CharField(max_length=8, choices=Mode.choices, default=Mode.GROUP)
    max_active_talkers = models.PositiveSmallIntegerField(
        default=12, validators=[MinValueValidator(3), MaxValueValidator(50)]
    )
    knock_ttl = models.PositiveIntegerField(
        default=60, validators=[MinValueValidator(10), MaxValueValidator(600)]
    )
    paused = models.BooleanField(default=False)
    audio_muted = models.BooleanField(default=False)
    video_muted = models.BooleanField(default=False)
    created_at = models.DateTimeField(auto_now_add=True)

    # Breakout rooms only.
    number = models.PositiveSmallIntegerField(null=True, blank=True)
    capacity = models.PositiveSmallIntegerField(null=True, blank=True)
    audio = models.BooleanField(default=True)
    video = models.BooleanField(default=True)
    canvas = models.BooleanField(default=False)
    share = models.BooleanField(default=False)
    ends_at = models.DateTimeField(null=True, blank=True)
    ending_warned = models.BooleanField(default=False)

    # Media (lobby/media/): the publisher slots of this media room, in order (sticky), and, on
    # a parent, the sequence number of its media computations (``media-state.seq``).
    media_publishers = models.JSONField(default=list, blank=True)
    media_seq = models.PositiveBigIntegerField(default=0)

    class Meta:
        ordering = ["created_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["name"], condition=Q(parent__isnull=True), name="room_name_unique"
            ),
            models.UniqueConstraint(
                fields=["parent", "number"],
                condition=Q(parent__isnull=False),
                name="breakout_number_unique",
            ),
            models.CheckConstraint(
                condition=Q(privacy__in=["public", "private"]), name="room_privacy_valid"
            ),
            models.CheckConstraint(
                condition=Q(mode__in=["group", "lecture"]), name="room_mode_valid"
            ),
            models.CheckConstraint(
                condition=Q(max_active_talkers__gte=3, max_active_talkers__lte=50),
                name="room_talkers_range",
            ),
            models.CheckConstraint(
                condition=Q(knock_ttl__gte=10, knock_ttl__lte=600), name="room_knock_ttl_range"
            ),
        ]

    def __str__(self) -> str:
        if self.parent_id:
            return f"breakout {self.number} of {self.parent_id}"
        return self.name

    @property
    def is_breakout(self) -> bool:
        return self.parent_id is not None


class ApiKey(models.Model):
    """A REST API key. Only a SHA-256 of the secret is stored; the key is shown once."""

    name = models.CharField(max_length=100, unique=True)
    prefix = models.CharField(max_length=16, unique=True)
    key_hash = models.CharField(max_length=64)
    created_at = models.DateTimeField(auto_now_add=True)
    revoked = models.BooleanField(default=False)

    def __str__(self) -> str:
        return self.name


class MeetingToken(models.Model):
    """A token issued by the minting helper, or a revoked ``jti`` of a hand-made token."""

    jti = models.CharField(max_length=64, primary_key=True)
    room_name = models.CharField(max_length=64, blank=True, default="")
    subject = models.CharField(max_length=128, blank=True, default="")
    user_name = models.CharField(max_length=200, blank=True, default="")
    is_owner = models.BooleanField(default=False)
    issued_by = models.CharField(max_length=120, blank=True, default="")
    issued_at = models.DateTimeField(null=True, blank=True)
    expires_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-issued_at"]

    def __str__(self) -> str:
        return self.jti


class Role(models.TextChoices):
    MODERATOR = "moderator"
    PARTICIPANT = "participant"
    VIEWER = "viewer"


class EntryRequest(models.Model):
    """One knock (SPEC §2). Exactly one transition out of ``pending``."""

    class Status(models.TextChoices):
        PENDING = "pending"
        ADMITTED = "admitted"
        DENIED = "denied"
        CANCELED = "canceled"

    class CancelReason(models.TextChoices):
        ABORTED = "aborted"
        DISCONNECTED = "disconnected"
        TIMEOUT = "timeout"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    room = models.ForeignKey(Room, on_delete=models.CASCADE, related_name="entry_requests")
    participant_id = models.CharField(max_length=128)
    name = models.CharField(max_length=200, blank=True, default="")
    metadata = models.JSONField(default=dict, blank=True)
    role = models.CharField(max_length=12, choices=Role.choices, default=Role.PARTICIPANT)
    requested_at = models.DateTimeField()
    expires_at = models.DateTimeField()
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING)
    cancel_reason = models.CharField(
        max_length=12, choices=CancelReason.choices, blank=True, default=""
    )
    resolved_by = models.CharField(max_length=160, blank=True, default="")
    resolved_at = models.DateTimeField(null=True, blank=True)
    deny_reason = models.CharField(max_length=200, blank=True, default="")
    # Rate-limit keys (hashes, never the token itself).
    token_key = models.CharField(max_length=64, blank=True, default="", db_index=True)
    # The credential behind the knock: a revoked or expired token cannot resume or moderate.
    token_jti = models.CharField(max_length=64, blank=True, default="")
    token_expires_at = models.DateTimeField(null=True, blank=True)
    browser_key = models.CharField(max_length=64, blank=True, default="", db_index=True)
    client_address = models.CharField(max_length=64, blank=True, default="")
    # Reconnection: a SHA-256 of the server-issued resume key; who holds the socket.
    resume_hash = models.CharField(max_length=64, db_index=True)
    server_id = models.CharField(max_length=64, blank=True, default="")
    connection_id = models.CharField(max_length=64, blank=True, default="")
    disconnected_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["requested_at"]
        indexes = [
            models.Index(fields=["room", "status", "requested_at"]),
            models.Index(fields=["status", "expires_at"]),
            models.Index(fields=["client_address", "room", "requested_at"]),
        ]
        constraints = [
            models.CheckConstraint(
                condition=Q(status__in=["pending", "admitted", "denied", "canceled"]),
                name="entry_status_valid",
            ),
            models.CheckConstraint(
                condition=Q(cancel_reason__in=["", "aborted", "disconnected", "timeout"]),
                name="entry_cancel_reason_valid",
            ),
            models.CheckConstraint(
                condition=Q(status="canceled", cancel_reason__gt="")
                | (~Q(status="canceled") & Q(cancel_reason="")),
                name="entry_cancel_reason_iff_canceled",
            ),
            models.UniqueConstraint(
                fields=["room", "participant_id"],
                condition=Q(status="pending"),
                name="entry_one_pending_per_guest",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.name or self.participant_id} → {self.room_id} ({self.status})"


class Participant(models.Model):
    """One presence in a room (SPEC §2). Rejoining with the same id replaces it."""

    class Status(models.TextChoices):
        ACTIVE = "active"
        PAUSED = "paused"
        LEFT = "left"

    room = models.ForeignKey(Room, on_delete=models.CASCADE, related_name="participants")
    participant_id = models.CharField(max_length=128)
    name = models.CharField(max_length=200, blank=True, default="")
    role = models.CharField(max_length=12, choices=Role.choices, default=Role.PARTICIPANT)
    status = models.CharField(max_length=8, choices=Status.choices, default=Status.ACTIVE)
    can_publish = models.BooleanField(default=True)
    # What the participant says it sends (``media-update``); policy.py caps it by permissions.
    media_audio = models.BooleanField(default=False)
    media_video = models.BooleanField(default=False)
    media_screen = models.BooleanField(default=False)
    breakout = models.ForeignKey(
        Room, null=True, blank=True, on_delete=models.SET_NULL, related_name="breakout_members"
    )
    resume_hash = models.CharField(max_length=64, blank=True, default="", db_index=True)
    token_jti = models.CharField(max_length=64, blank=True, default="", db_index=True)
    token_expires_at = models.DateTimeField(null=True, blank=True)
    server_id = models.CharField(max_length=64, blank=True, default="")
    connection_id = models.CharField(max_length=64, blank=True, default="")
    connected_at = models.DateTimeField()
    disconnected_at = models.DateTimeField(null=True, blank=True)
    left_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["connected_at"]
        constraints = [
            models.UniqueConstraint(fields=["room", "participant_id"], name="one_presence_per_id"),
            models.CheckConstraint(
                condition=Q(status__in=["active", "paused", "left"]),
                name="participant_status_valid",
            ),
            models.CheckConstraint(
                condition=Q(role__in=["moderator", "participant", "viewer"]),
                name="participant_role_valid",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.name or self.participant_id} in {self.room_id}"

    @property
    def is_moderator(self) -> bool:
        return self.role == Role.MODERATOR


class ServerProcess(models.Model):
    """A running server process; its heartbeat tells sweepers which sockets are still held."""

    server_id = models.CharField(max_length=64, primary_key=True)
    started_at = models.DateTimeField()
    heartbeat_at = models.DateTimeField()

    def __str__(self) -> str:
        return self.server_id


class AuditEvent(models.Model):
    """The audit trail: every decision and breakout action (who, when, what, outcome, reason)."""

    room = models.ForeignKey(
        Room, null=True, on_delete=models.SET_NULL, related_name="audit_events"
    )
    room_name = models.CharField(max_length=64, blank=True, default="")
    at = models.DateTimeField(db_index=True)
    actor = models.CharField(max_length=160, blank=True, default="")
    action = models.CharField(max_length=40)
    request_id = models.UUIDField(null=True, blank=True)
    subject = models.CharField(max_length=128, blank=True, default="")
    data = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["at", "pk"]
        indexes = [models.Index(fields=["room", "at"])]

    def __str__(self) -> str:
        return f"{self.at:%Y-%m-%d %H:%M:%S} {self.actor} {self.action}"
