"""REST: webhook endpoints, their delivery log and replays, and room alert settings
(``/api/v1/webhooks…``, ``/api/v1/rooms/{name}/alerts``; docs/webhooks.md)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, Literal

from django.http.request import split_domain_port
from drf_spectacular.utils import OpenApiParameter, extend_schema
from pydantic import ConfigDict, Field
from rest_framework.request import Request
from rest_framework.response import Response

from lobby import services
from lobby.api.schema import Shape, responses
from lobby.api.views import BaseApi, _int_param, listing, request_body
from lobby.errors import BadRequest
from lobby.models import RoomAlerts, WebhookDelivery, WebhookEndpoint

from . import services as hooks
from .commands import RoomAlertsBody, WebhookCreateBody, WebhookUpdateBody
from .outbox import _ts

DELIVERY_STATUSES = ("pending", "delivered", "failed")

# Shapes -----------------------------------------------------------------------------------------


class WebhookOut(Shape):
    model_config = ConfigDict(title="Webhook")
    id: uuid.UUID
    url: str
    events: list[str]
    room: str | None = Field(description="Only this room's events; null: every room's.")
    description: str
    active: bool
    created_at: datetime
    created_by: str


class WebhookCreatedOut(WebhookOut):
    model_config = ConfigDict(title="WebhookCreated")
    secret: str = Field(description="The signing secret. Shown only in this response.")


class WebhookListOut(Shape):
    model_config = ConfigDict(title="WebhookList")
    total_count: int
    data: list[WebhookOut]


class WebhookSecretOut(Shape):
    model_config = ConfigDict(title="WebhookSecret")
    id: uuid.UUID
    secret: str


class WebhookDeletedOut(Shape):
    model_config = ConfigDict(title="WebhookDeleted")
    deleted: Literal[True]
    id: uuid.UUID


class DeliveryOut(Shape):
    model_config = ConfigDict(title="WebhookDelivery")
    id: uuid.UUID = Field(description="The idempotency id (Anteroom-Webhook-Id).")
    event_id: uuid.UUID = Field(description="The event's id (the body's id).")
    event_type: str
    room: str
    status: Literal["pending", "delivered", "failed"]
    attempts: int
    created_at: datetime
    next_attempt_at: datetime | None
    last_attempt_at: datetime | None
    last_status_code: int | None
    last_error: str
    delivered_at: datetime | None
    replay_of: uuid.UUID | None


class DeliveryListOut(Shape):
    model_config = ConfigDict(title="WebhookDeliveryList")
    total_count: int
    data: list[DeliveryOut]


class RoomAlertsOut(Shape):
    model_config = ConfigDict(title="RoomAlerts")
    room: str
    unattended_after: int | None
    escalate_after: int | None
    contacts: list[str]
    escalation_contacts: list[str]


# Payloads ---------------------------------------------------------------------------------------


def webhook_payload(ep: WebhookEndpoint) -> dict[str, Any]:
    return {
        "id": str(ep.id),
        "url": ep.url,
        "events": list(ep.events),
        "room": ep.room.name if ep.room_id and ep.room else None,
        "description": ep.description,
        "active": ep.active,
        "created_at": _ts(ep.created_at),
        "created_by": ep.created_by,
    }


def delivery_payload(d: WebhookDelivery) -> dict[str, Any]:
    return {
        "id": str(d.id),
        "event_id": str(d.event_id),
        "event_type": d.event.type,
        "room": d.event.room_name,
        "status": d.status,
        "attempts": d.attempts,
        "created_at": _ts(d.created_at),
        "next_attempt_at": _ts(d.next_attempt_at) if d.status == "pending" else None,
        "last_attempt_at": _ts(d.last_attempt_at),
        "last_status_code": d.last_status_code,
        "last_error": d.last_error,
        "delivered_at": _ts(d.delivered_at),
        "replay_of": str(d.replay_of) if d.replay_of else None,
    }


def alerts_payload(a: RoomAlerts) -> dict[str, Any]:
    return {
        "room": a.room.name,
        "unattended_after": a.unattended_after,
        "escalate_after": a.escalate_after,
        "contacts": list(a.contacts),
        "escalation_contacts": list(a.escalation_contacts),
    }


def served_at(request: Request) -> tuple[str, int] | None:
    """The (host, port) this request came in on: a webhook may not point back at it."""
    host, port = split_domain_port(request.get_host())
    if not host:
        return None
    return host, int(port) if port else (443 if request.is_secure() else 80)


# Views ------------------------------------------------------------------------------------------


class WebhookListApi(BaseApi):
    @extend_schema(
        responses=responses(200, WebhookListOut),
        summary="List webhooks",
        operation_id="v1_webhooks_list",
    )
    def get(self, request: Request) -> Response:
        qs = WebhookEndpoint.objects.select_related("room")
        return listing([webhook_payload(e) for e in qs])

    @extend_schema(
        request=WebhookCreateBody,
        responses=responses(200, WebhookCreatedOut, 400, 404, 409),
        summary="Register a webhook (the signing secret is in this response only)",
        operation_id="v1_webhooks_create",
    )
    def post(self, request: Request) -> Response:
        body = WebhookCreateBody.parse(request_body(request))
        room = services.get_room(body.room) if body.room is not None else None
        ep, secret = hooks.webhook_create(
            url=body.url,
            events=body.events,
            room=room,
            description=body.description,
            active=body.active,
            by=self.actor(request).by,
            served_at=served_at(request),
        )
        return Response(webhook_payload(ep) | {"secret": secret})


class WebhookDetailApi(BaseApi):
    @extend_schema(
        responses=responses(200, WebhookOut, 404),
        summary="Read a webhook",
        operation_id="v1_webhooks_read",
    )
    def get(self, request: Request, webhook_id: str) -> Response:
        return Response(webhook_payload(hooks.get_endpoint(webhook_id)))

    @extend_schema(
        request=WebhookUpdateBody,
        responses=responses(200, WebhookOut, 400, 404),
        summary="Change a webhook",
        operation_id="v1_webhooks_partial_update",
    )
    def patch(self, request: Request, webhook_id: str) -> Response:
        ep = hooks.get_endpoint(webhook_id)
        body = WebhookUpdateBody.parse(request_body(request))
        ep = hooks.webhook_update(endpoint=ep, served_at=served_at(request), **body.fields())
        return Response(webhook_payload(ep))

    @extend_schema(
        responses=responses(200, WebhookDeletedOut, 404),
        summary="Delete a webhook and its delivery log",
        operation_id="v1_webhooks_destroy",
    )
    def delete(self, request: Request, webhook_id: str) -> Response:
        ep = hooks.get_endpoint(webhook_id)
        hooks.webhook_delete(endpoint=ep)
        return Response({"deleted": True, "id": str(ep.id)})


class WebhookRotateSecretApi(BaseApi):
    @extend_schema(
        request=None,
        responses=responses(200, WebhookSecretOut, 404),
        summary="Replace the signing secret (the new one is in this response only)",
        operation_id="v1_webhooks_rotate_secret_create",
    )
    def post(self, request: Request, webhook_id: str) -> Response:
        ep = hooks.get_endpoint(webhook_id)
        return Response({"id": str(ep.id), "secret": hooks.webhook_rotate_secret(endpoint=ep)})


class WebhookDeliveryListApi(BaseApi):
    @extend_schema(
        parameters=[
            OpenApiParameter("status", str, enum=list(DELIVERY_STATUSES)),
            OpenApiParameter("limit", int),
        ],
        responses=responses(200, DeliveryListOut, 400, 404),
        summary="The delivery log of a webhook, newest first",
        operation_id="v1_webhooks_deliveries_list",
    )
    def get(self, request: Request, webhook_id: str) -> Response:
        ep = hooks.get_endpoint(webhook_id)
        qs = WebhookDelivery.objects.filter(endpoint=ep).select_related("event")
        status = request.query_params.get("status")
        if status is not None:
            if status not in DELIVERY_STATUSES:
                raise BadRequest("status must be pending, delivered or failed.")
            qs = qs.filter(status=status)
        limit = _int_param(request, "limit", 100, 1000)
        total = qs.count()
        rows = [delivery_payload(d) for d in qs.order_by("-seq")[:limit]]
        return Response({"total_count": total, "data": rows})


class WebhookDeliveryReplayApi(BaseApi):
    @extend_schema(
        request=None,
        responses=responses(200, DeliveryOut, 404),
        summary="Send a delivery's event again (a new delivery id, the same event id)",
        operation_id="v1_webhooks_deliveries_replay_create",
    )
    def post(self, request: Request, webhook_id: str, delivery_id: str) -> Response:
        ep = hooks.get_endpoint(webhook_id)
        d = hooks.get_delivery(ep, delivery_id)
        new = hooks.delivery_replay(delivery=d)
        new.event = d.event
        return Response(delivery_payload(new))


class RoomAlertsApi(BaseApi):
    @extend_schema(
        responses=responses(200, RoomAlertsOut, 404),
        summary="The room's unattended-knock alerts",
        operation_id="v1_rooms_alerts_retrieve",
    )
    def get(self, request: Request, name: str) -> Response:
        room = services.get_room(name)
        return Response(alerts_payload(hooks.room_alerts_get(room=room)))

    @extend_schema(
        request=RoomAlertsBody,
        responses=responses(200, RoomAlertsOut, 400, 404),
        summary="Set the room's unattended-knock alerts (the whole setting)",
        operation_id="v1_rooms_alerts_update",
    )
    def put(self, request: Request, name: str) -> Response:
        room = services.get_room(name)
        body = RoomAlertsBody.parse(request_body(request))
        alerts = hooks.room_alerts_set(room=room, **body.model_dump())
        return Response(alerts_payload(alerts))
