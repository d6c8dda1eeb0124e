"""URL routes of the merchant portal, mounted at /portal/."""

from django.urls import path
from django.views.i18n import set_language

from voucher.portal import settlement_views, views

app_name = "portal"

urlpatterns = [
    path("", views.dashboard, name="dashboard"),
    path("login/", views.login_view, name="login"),
    path("logout/", views.logout_view, name="logout"),
    path("language/", set_language, name="set-language"),
    path("payments/", views.payment_list, name="payments"),
    path("payments/<int:payment_id>/", views.payment_detail, name="payment-detail"),
    path("payments/<int:payment_id>/refund/", views.refund, name="refund"),
    path("qr/", views.payment_requests, name="qr"),
    path("qr/<int:request_id>/", views.payment_request_detail, name="qr-detail"),
    path("qr/<int:request_id>/qr.svg", views.payment_request_svg, name="qr-svg"),
    path("account/", views.account, name="account"),
    path("settlements/", settlement_views.settlement_list, name="settlements"),
    path("settlements/instant/", settlement_views.instant_settlement, name="instant-settlement"),
    path("settlements/<int:line_id>/csv/", settlement_views.settlement_csv, name="settlement-csv"),
    path("settlements/<int:line_id>/statement/", settlement_views.settlement_statement, name="settlement-statement"),
]
