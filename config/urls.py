"""URL routes of the whole site."""

from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView

urlpatterns = [
    path("admin/", admin.site.urls),
    path("api/v1/", include("bank.api.urls")),
    path("api/v1/", include("voucher.api.urls")),
    path("portal/", include("voucher.portal.urls")),
    path("api/schema/", SpectacularAPIView.as_view(), name="api-schema"),
    # The split view serves Swagger UI's init script as its own request, so the page runs
    # under the Content-Security-Policy without inline scripts (settings).
    path(
        "api/docs/",
        SpectacularSwaggerSplitView.as_view(url_name="api-schema", template_name="api/swagger_ui.html"),
        name="api-docs",
    ),
]

handler404 = "bank.http.errors.api_not_found"
handler500 = "bank.http.errors.api_server_error"
