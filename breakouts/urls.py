"""Breakout endpoints, included under ``/api/v1/`` (room control is the core's: lobby.api.urls)."""

from django.urls import URLPattern, path

from . import apis

urlpatterns: list[URLPattern] = [
    path("rooms/<str:name>/breakouts", apis.BreakoutListApi.as_view()),
    path("rooms/<str:name>/breakouts/invite", apis.BreakoutInviteApi.as_view()),
    path("rooms/<str:name>/breakouts/move", apis.BreakoutMoveApi.as_view()),
    path("rooms/<str:name>/breakouts/broadcast", apis.BreakoutBroadcastApi.as_view()),
    path("rooms/<str:name>/breakouts/extend", apis.BreakoutExtendApi.as_view()),
    path("rooms/<str:name>/breakouts/clear", apis.BreakoutClearApi.as_view()),
    path("rooms/<str:name>/breakouts/destroy", apis.BreakoutDestroyApi.as_view()),
]
