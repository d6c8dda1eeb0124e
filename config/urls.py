"""URL routes of the whole site."""

from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

urlpatterns = [
    path("admin/", admin.site.urls),
    path("api/v1/", include("bank.api.urls")),
    path("api/v1/", include("voucher.api.urls")),
    path("portal/", include("voucher.portal.urls")),
    path("api/schema/", SpectacularAPIView.as_view(), name="api-schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="api-schema"), name="api-docs"),
]

handler404 = "bank.api.errors.api_not_found"
handler500 = "bank.api.errors.api_server_error"
