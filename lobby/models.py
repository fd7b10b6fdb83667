"""Lobby data: rooms, API keys, meeting tokens, entry requests, participants, server processes.

Models hold data and integrity (statuses, one pending knock per guest per room, one presence per
participant id); rules live in ``services/``.
"""

from __future__ import annotations

import uuid

from django.core.validators import MaxValueValidator, MinValueValidator, RegexValidator
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

ROOM_NAME_RE = r"^[A-Za-z0-9_-]{1,64}$"
MAX_PARTICIPANTS = 100_000


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
    # Daily's name: at most this many present at once (moderators always enter); null = no cap.
    max_participants = models.PositiveIntegerField(
        null=True,
        blank=True,
        validators=[MinValueValidator(1), MaxValueValidator(MAX_PARTICIPANTS)],
        help_text=_("At most this many present at once (moderators always enter). Empty: no cap."),
    )
    paused = models.BooleanField(default=False)
    # Shown to everyone waiting ("Dr Lee is running 10 minutes late"); set by a moderator.
    lobby_message = models.CharField(max_length=300, blank=True, default="")
    audio_muted = models.BooleanField(default=False)
    video_muted = models.BooleanField(default=False)
    created_at = models.DateTimeField(auto_now_add=True)
    # An optional appointment window (lobby/appointments.py): knocks before ``opens_at`` wait
    # for it (from ``ANTEROOM_APPOINTMENT_EARLY`` seconds before), knocks after ``closes_at``
    # are refused, and a knock waits until the window closes.
    opens_at = models.DateTimeField(
        null=True,
        blank=True,
        help_text=_("Appointment window start: earlier knocks wait for it. Empty: no start."),
    )
    closes_at = models.DateTimeField(
        null=True,
        blank=True,
        help_text=_("Appointment window end: knocks wait until then; later knocks are refused."),
    )

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
            models.CheckConstraint(
                condition=Q(opens_at__isnull=True)
                | Q(closes_at__isnull=True)
                | Q(closes_at__gt=models.F("opens_at")),
                name="room_window_order",
            ),
            models.CheckConstraint(
                condition=Q(max_participants__isnull=True)
                | Q(max_participants__gte=1, max_participants__lte=MAX_PARTICIPANTS),
                name="room_max_participants_range",
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
    # The latest message a moderator sent to this waiting guest alone.
    host_message = models.CharField(max_length=300, blank=True, default="")
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
    # When the row was made and from which address: the per-address join limit counts the
    # fresh presences an address opened in a room (services.participant_join).
    created_at = models.DateTimeField(null=True, blank=True)
    client_address = models.CharField(max_length=64, blank=True, default="")

    class Meta:
        ordering = ["connected_at"]
        indexes = [
            models.Index(fields=["room", "client_address", "created_at"]),
            models.Index(fields=["status", "left_at"]),
        ]
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


class ModeratorSocket(models.Model):
    """One open socket of a moderator's presence. A moderator may be present from several tabs
    and devices at once (guests keep one seat): the presence is disconnected only when its last
    socket closes, and the participant row names the newest socket (``connection_id``)."""

    participant = models.ForeignKey(Participant, on_delete=models.CASCADE, related_name="sockets")
    connection_id = models.CharField(max_length=64, unique=True)
    server_id = models.CharField(max_length=64, db_index=True)
    opened_at = models.DateTimeField()

    class Meta:
        ordering = ["opened_at"]

    def __str__(self) -> str:
        return f"{self.connection_id} of {self.participant_id}"


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


# Webhooks and unattended-knock alerts (lobby/webhooks/, docs/webhooks.md) ------------------


class WebhookEndpoint(models.Model):
    """A receiver of signed event deliveries. ``secret`` signs them (HMAC-SHA256); it is shown
    once, when the endpoint is created, and never again by any surface."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    url = models.CharField(max_length=2000)
    events = models.JSONField(default=list)
    # Only this room's events (null: every room's).
    room = models.ForeignKey(
        Room, null=True, blank=True, on_delete=models.CASCADE, related_name="webhooks"
    )
    description = models.CharField(max_length=200, blank=True, default="")
    secret = models.CharField(max_length=100, editable=False)
    active = models.BooleanField(default=True)
    created_at = models.DateTimeField()
    created_by = models.CharField(max_length=160, blank=True, default="")

    class Meta:
        ordering = ["created_at"]
        indexes = [models.Index(fields=["active"])]

    def __str__(self) -> str:
        return self.url


class WebhookEvent(models.Model):
    """One event, written in the transaction of the change it reports. ``body`` is the exact
    JSON every endpoint receives (and the bytes that are signed)."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    type = models.CharField(max_length=40)
    room_name = models.CharField(max_length=64, blank=True, default="")
    created_at = models.DateTimeField()
    body = models.TextField()

    class Meta:
        ordering = ["created_at"]

    def __str__(self) -> str:
        return f"{self.type} {self.id}"


class WebhookDelivery(models.Model):
    """The outbox and delivery log: one event to one endpoint. Its ``id`` is the idempotency id
    (``Anteroom-Webhook-Id``), the same on every attempt. Deliveries of one endpoint and one
    ``ordering_key`` (the room) are sent one after the other in ``seq`` order."""

    class Status(models.TextChoices):
        PENDING = "pending"
        DELIVERED = "delivered"
        FAILED = "failed"  # gave up after ANTEROOM_WEBHOOK_RETRY_FOR seconds

    seq = models.BigAutoField(primary_key=True)
    id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    endpoint = models.ForeignKey(
        WebhookEndpoint, on_delete=models.CASCADE, related_name="deliveries"
    )
    event = models.ForeignKey(WebhookEvent, on_delete=models.CASCADE, related_name="deliveries")
    ordering_key = models.CharField(max_length=64, blank=True, default="")
    replay_of = models.UUIDField(null=True, blank=True)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING)
    created_at = models.DateTimeField()
    next_attempt_at = models.DateTimeField()
    attempts = models.PositiveIntegerField(default=0)
    last_attempt_at = models.DateTimeField(null=True, blank=True)
    last_status_code = models.PositiveSmallIntegerField(null=True, blank=True)
    last_error = models.CharField(max_length=300, blank=True, default="")
    delivered_at = models.DateTimeField(null=True, blank=True)
    # Which process holds it now, until when (a claim; a dead holder's lease runs out).
    lease_owner = models.CharField(max_length=64, blank=True, default="")
    lease_until = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["seq"]
        indexes = [
            models.Index(fields=["status", "next_attempt_at"]),
            models.Index(fields=["endpoint", "ordering_key", "status", "seq"]),
            models.Index(fields=["endpoint", "created_at"]),
        ]
        constraints = [
            models.CheckConstraint(
                condition=Q(status__in=["pending", "delivered", "failed"]),
                name="webhook_delivery_status_valid",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.event_id} → {self.endpoint_id} ({self.status})"


class RoomAlerts(models.Model):
    """Unattended-knock alerts of a room: ``unattended_after`` seconds with a pending knock and
    no moderator connected → notify ``contacts`` (and ``knock.unattended``); ``escalate_after``
    seconds later, still unattended → notify ``escalation_contacts``."""

    room = models.OneToOneField(
        Room, primary_key=True, on_delete=models.CASCADE, related_name="alerts"
    )
    unattended_after = models.PositiveIntegerField(
        null=True, blank=True, validators=[MinValueValidator(10), MaxValueValidator(86400)]
    )
    escalate_after = models.PositiveIntegerField(
        null=True, blank=True, validators=[MinValueValidator(10), MaxValueValidator(86400)]
    )
    contacts = models.JSONField(default=list, blank=True)
    escalation_contacts = models.JSONField(default=list, blank=True)

    class Meta:
        verbose_name_plural = "room alerts"

    def __str__(self) -> str:
        return f"alerts of {self.room_id}"


class KnockAlert(models.Model):
    """The alert state of one pending knock. ``due_at`` is the stored deadline the sweepers read
    (never earlier than the next notice can be due); ``level`` moves 0 → 1 (unattended notice
    sent) → 2 (escalated) by conditional updates, so each notice goes out once."""

    request = models.OneToOneField(
        EntryRequest, primary_key=True, on_delete=models.CASCADE, related_name="alert"
    )
    room = models.ForeignKey(Room, on_delete=models.CASCADE, related_name="knock_alerts")
    due_at = models.DateTimeField(null=True, blank=True)
    level = models.PositiveSmallIntegerField(default=0)
    unattended_at = models.DateTimeField(null=True, blank=True)
    escalated_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [models.Index(fields=["level", "due_at"])]

    def __str__(self) -> str:
        return f"alert {self.request_id} level {self.level}"


class AlertEmail(models.Model):
    """An outbox row for one notice e-mail, written with the notice; sent by the sweepers."""

    class Status(models.TextChoices):
        PENDING = "pending"
        SENT = "sent"
        FAILED = "failed"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    request = models.ForeignKey(
        EntryRequest, null=True, on_delete=models.SET_NULL, related_name="alert_emails"
    )
    room_name = models.CharField(max_length=64)
    level = models.PositiveSmallIntegerField()
    recipients = models.JSONField(default=list)
    subject = models.CharField(max_length=200)
    body = models.TextField()
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING)
    created_at = models.DateTimeField()
    next_attempt_at = models.DateTimeField()
    attempts = models.PositiveIntegerField(default=0)
    last_error = models.CharField(max_length=300, blank=True, default="")
    sent_at = models.DateTimeField(null=True, blank=True)
    lease_owner = models.CharField(max_length=64, blank=True, default="")
    lease_until = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["created_at"]
        indexes = [models.Index(fields=["status", "next_attempt_at"])]
        constraints = [
            models.UniqueConstraint(fields=["request", "level"], name="alert_email_once"),
        ]

    def __str__(self) -> str:
        return f"{self.subject} ({self.status})"
