"""Routes of the wallet API, included under /api/v1/."""

from django.urls import path

from voucher.api.views import auth, catalog, devices, merchant, wallet

app_name = "voucher-api"

urlpatterns = [
    path("auth/token/", auth.TokenView.as_view(), name="token"),
    path("auth/tokens/", auth.TokenListView.as_view(), name="tokens"),
    path("auth/tokens/<int:token_id>/", auth.TokenDetailView.as_view(), name="token-detail"),
    path("auth/me/", auth.MeView.as_view(), name="me"),
    path("devices/", devices.DeviceListView.as_view(), name="devices"),
    path("devices/<int:device_id>/", devices.DeviceDetailView.as_view(), name="device"),
    # the citizen's wallet
    path("wallet/", wallet.WalletView.as_view(), name="wallet"),
    path("wallet/history/", wallet.HistoryView.as_view(), name="wallet-history"),
    path("wallet/benefits/", catalog.BenefitsView.as_view(), name="wallet-benefits"),
    path("wallet/top-ups/", wallet.TopUpView.as_view(), name="wallet-top-ups"),
    path("wallet/payments/", wallet.PaymentListView.as_view(), name="wallet-payments"),
    path("wallet/payments/<int:payment_id>/", wallet.PaymentDetailView.as_view(), name="wallet-payment"),
    path("wallet/transfers/", wallet.TransferView.as_view(), name="wallet-transfers"),
    path("wallet/redemptions/", wallet.RedemptionView.as_view(), name="wallet-redemptions"),
    # the merchant side
    path("merchant/", merchant.MerchantProfileView.as_view(), name="merchant"),
    path("merchant/payments/", merchant.MerchantPaymentListView.as_view(), name="merchant-payments"),
    path("merchant/payments/<int:payment_id>/", merchant.MerchantPaymentDetailView.as_view(), name="merchant-payment"),
    path("merchant/payments/<int:payment_id>/refunds/", merchant.RefundView.as_view(), name="merchant-refunds"),
    path("merchant/charges/", merchant.ChargeView.as_view(), name="merchant-charges"),
    path("merchant/supplier-payments/", merchant.SupplierPaymentView.as_view(), name="merchant-supplier-payments"),
    path("payment-requests/", merchant.PaymentRequestListView.as_view(), name="payment-requests"),
    path("payment-requests/preview/", merchant.PaymentRequestPreviewView.as_view(), name="payment-request-preview"),
    path("payment-requests/<int:request_id>/", merchant.PaymentRequestDetailView.as_view(), name="payment-request"),
    path(
        "payment-requests/<int:request_id>/cancel/",
        merchant.PaymentRequestCancelView.as_view(),
        name="payment-request-cancel",
    ),
    path(
        "payment-requests/<int:request_id>/qr.png",
        merchant.PaymentRequestQrPngView.as_view(),
        name="payment-request-qr-png",
    ),
    path(
        "payment-requests/<int:request_id>/qr.svg",
        merchant.PaymentRequestQrSvgView.as_view(),
        name="payment-request-qr-svg",
    ),
    # the catalog
    path("merchants/", catalog.MerchantDirectoryView.as_view(), name="merchants"),
    path("merchants/<int:merchant_id>/", catalog.MerchantDirectoryDetailView.as_view(), name="merchant-directory"),
    path("programs/", catalog.ProgramListView.as_view(), name="programs"),
]
