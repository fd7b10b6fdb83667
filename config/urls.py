from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView

from lobby.ops import health

# The styled 500 page with the deployment's name (Django's own renders without context).
handler500 = "lobby.views.server_error"

urlpatterns = [
    path("admin/", admin.site.urls),
    path("api/v1/", include("lobby.api.urls")),
    path("api/v1/", include("breakouts.urls")),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    path("healthz", health.healthz, name="healthz"),
    path("readyz", health.readyz, name="readyz"),
    path("metrics", health.metrics_view, name="metrics"),
    path("", include("lobby.urls")),
]
