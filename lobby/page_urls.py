"""Page routes, included at the site root by config/urls.py (SPEC §5)."""

from django.urls import path

from . import pages

app_name = "lobby"

urlpatterns = [
    path("", pages.home_page, name="home"),
    path("r/<slug:room_name>/", pages.guest_page, name="guest"),
    path("r/<slug:room_name>/dashboard/", pages.dashboard_page, name="dashboard"),
]
