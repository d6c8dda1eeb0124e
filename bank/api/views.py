"""The ledger's public, read-only endpoints: what a third-party verifier needs
(block headers with their signers, and the validators' keys). Hashes only."""

from django.db.models import Prefetch
from django.shortcuts import get_object_or_404
from drf_spectacular.utils import extend_schema
from rest_framework import generics
from rest_framework.permissions import AllowAny

from bank.api.serializers import BlockSerializer, ValidatorSerializer
from bank.http.errors import error_responses
from bank.models import Block, BlockAttestation, ValidatorKey


def _blocks():
    attestations = BlockAttestation.objects.select_related("validator").order_by("validator_id")
    return Block.objects.prefetch_related(Prefetch("attestations", queryset=attestations))


@extend_schema(tags=["ledger"], responses={200: ValidatorSerializer(many=True)})
class ValidatorList(generics.ListAPIView):
    permission_classes = [AllowAny]
    serializer_class = ValidatorSerializer
    queryset = ValidatorKey.objects.order_by("name")
    pagination_class = None


@extend_schema(tags=["ledger"], responses={200: BlockSerializer, **error_responses(404)})
class LatestBlock(generics.RetrieveAPIView):
    permission_classes = [AllowAny]
    serializer_class = BlockSerializer

    def get_object(self):
        return get_object_or_404(_blocks().order_by("-height")[:1])


@extend_schema(tags=["ledger"], responses={200: BlockSerializer, **error_responses(404)})
class BlockDetail(generics.RetrieveAPIView):
    permission_classes = [AllowAny]
    serializer_class = BlockSerializer
    lookup_field = "height"
    queryset = _blocks()
