"""A money-moving endpoint built the way the apps build theirs (SignedPostMixin,
a serializer, one service call), so the shared API plumbing is tested through
HTTP against the real ledger. Routed only in these tests."""

from django.urls import include, path
from rest_framework import serializers
from rest_framework.response import Response
from rest_framework.views import APIView

from bank import services
from bank.http.signing import SignedPostMixin
from bank.models import Party


class TransferInput(serializers.Serializer):
    from_account = serializers.IntegerField()
    to_account = serializers.IntegerField()
    amount = serializers.IntegerField(min_value=1)


class TransferView(SignedPostMixin, APIView):
    def signing_party(self, request):
        return Party.objects.get(external_ref=f"user:{request.user.pk}")

    def post(self, request):
        data = TransferInput(data=request.data)
        data.is_valid(raise_exception=True)
        entry = services.post_entry(
            lines=[
                (data.validated_data["from_account"], -data.validated_data["amount"]),
                (data.validated_data["to_account"], data.validated_data["amount"]),
            ],
            kind="transfer",
            idempotency_key=self.service_key(),
        )
        return Response({"entry": entry.pk, "hash": entry.hash}, status=201)


urlpatterns = [
    path("api/test/transfer/", TransferView.as_view()),
    path("", include("config.urls")),
]
