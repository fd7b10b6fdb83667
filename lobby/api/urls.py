"""The core's REST routes, included under ``/api/v1/`` (breakouts add theirs: breakouts.urls)."""

from django.urls import URLPattern, path

from lobby.webhooks import api as webhooks

from . import views

urlpatterns: list[URLPattern] = [
    path("rooms", views.RoomListApi.as_view()),
    path("rooms/<str:name>", views.RoomDetailApi.as_view()),
    path("rooms/<str:name>/entry-requests", views.EntryRequestListApi.as_view()),
    path(
        "rooms/<str:name>/entry-requests/<str:request_id>/admit",
        views.EntryRequestAdmitApi.as_view(),
    ),
    path(
        "rooms/<str:name>/entry-requests/<str:request_id>/deny",
        views.EntryRequestDenyApi.as_view(),
    ),
    path("rooms/<str:name>/participants", views.ParticipantListApi.as_view()),
    path("rooms/<str:name>/audit", views.AuditApi.as_view()),
    path("rooms/<str:name>/analytics", views.AnalyticsApi.as_view()),
    path("rooms/<str:name>/pause", views.RoomPauseApi.as_view()),
    path("rooms/<str:name>/resume", views.RoomResumeApi.as_view()),
    path("rooms/<str:name>/mute", views.RoomMuteApi.as_view()),
    path("rooms/<str:name>/unmute", views.RoomUnmuteApi.as_view()),
    path("rooms/<str:name>/alerts", webhooks.RoomAlertsApi.as_view()),
    path("webhooks", webhooks.WebhookListApi.as_view()),
    path("webhooks/<str:webhook_id>", webhooks.WebhookDetailApi.as_view()),
    path("webhooks/<str:webhook_id>/rotate-secret", webhooks.WebhookRotateSecretApi.as_view()),
    path("webhooks/<str:webhook_id>/deliveries", webhooks.WebhookDeliveryListApi.as_view()),
    path(
        "webhooks/<str:webhook_id>/deliveries/<str:delivery_id>/replay",
        webhooks.WebhookDeliveryReplayApi.as_view(),
    ),
    path("meeting-tokens", views.MeetingTokenMintApi.as_view()),
    path("meeting-tokens/decode", views.MeetingTokenDecodeApi.as_view()),
    path("meeting-tokens/revoke", views.MeetingTokenRevokeApi.as_view()),
]
