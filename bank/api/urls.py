from django.urls import path

from bank.api import views

urlpatterns = [
    path("ledger/validators/", views.ValidatorList.as_view(), name="ledger-validators"),
    path("ledger/blocks/latest/", views.LatestBlock.as_view(), name="ledger-block-latest"),
    path("ledger/blocks/<int:height>/", views.BlockDetail.as_view(), name="ledger-block"),
]
