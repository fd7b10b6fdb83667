"""Page routes, included at the site root by config/urls.py (SPEC §5)."""

from django.urls import path

from . import views

app_name = "lobby"

urlpatterns = [
    path("", views.home_page, name="home"),
    path("brand.css", views.brand_css, name="brand_css"),
    path("r/<slug:room_name>/", views.guest_page, name="guest"),
    path("r/<slug:room_name>/dashboard/", views.dashboard_page, name="dashboard"),
]
