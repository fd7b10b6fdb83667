from django.urls import path

from . import apis

urlpatterns = [
    path("rooms", apis.RoomListApi.as_view()),
    path("rooms/<str:name>", apis.RoomDetailApi.as_view()),
    path("rooms/<str:name>/entry-requests", apis.EntryRequestListApi.as_view()),
    path(
        "rooms/<str:name>/entry-requests/<str:request_id>/admit",
        apis.EntryRequestAdmitApi.as_view(),
    ),
    path(
        "rooms/<str:name>/entry-requests/<str:request_id>/deny", apis.EntryRequestDenyApi.as_view()
    ),
    path("rooms/<str:name>/participants", apis.ParticipantListApi.as_view()),
    path("rooms/<str:name>/audit", apis.AuditApi.as_view()),
    path("rooms/<str:name>/analytics", apis.AnalyticsApi.as_view()),
    path("meeting-tokens", apis.MeetingTokenApi.as_view()),
    path("meeting-tokens/decode", apis.MeetingTokenDecodeApi.as_view()),
    path("meeting-tokens/revoke", apis.MeetingTokenRevokeApi.as_view()),
]
