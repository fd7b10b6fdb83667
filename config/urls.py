from django.contrib import admin
from django.urls import include, path
from django.views.decorators.http import require_POST
from django.views.i18n import JavaScriptCatalog, set_language
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
    # The language switcher (a CSRF-protected POST; the cookie LocaleMiddleware reads) and the
    # page scripts' translations (static/anteroom/i18n.js reads them; templates/base.html loads).
    path("i18n/setlang/", require_POST(set_language), name="set_language"),
    path("jsi18n/", JavaScriptCatalog.as_view(packages=["lobby"]), name="javascript-catalog"),
    path("", include("lobby.urls")),
]
