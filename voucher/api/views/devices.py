"""Device keys: a citizen's or merchant's phone registers its secp256k1 public
key once, then signs every money-moving request with it."""

from django.db import transaction
from django.shortcuts import get_object_or_404
from drf_spectacular.utils import extend_schema
from rest_framework import exceptions, status
from rest_framework.generics import GenericAPIView
from rest_framework.response import Response

from bank import errors as bank_errors
from bank import identity
from bank import services as bank_services
from bank.api.errors import error_responses
from bank.api.signing import HEADERS as SIGNATURE_HEADERS
from bank.models import DeviceKey
from voucher.api.access import membership_of, wallet_of
from voucher.api.pagination import StrictLimitOffsetPagination
from voucher.api.schema import DEVICE_SIGNATURE_HEADERS, READ_ERRORS
from voucher.api.serializers import DeviceRegisterSerializer, DeviceSerializer
from voucher.api.views.common import body


def _parties(request) -> dict:
    """holder name -> party the login may register and use keys for."""
    parties = {}
    wallet, member = wallet_of(request), membership_of(request)
    if wallet is not None:
        parties["wallet"] = wallet.owner
    if member is not None:
        parties["merchant"] = member.merchant.party
    return parties


def _device_data(device: DeviceKey, holder: str) -> dict:
    return {
        "id": device.pk,
        "did": device.did,
        "public_key": device.public_key,
        "label": device.label,
        "holder": holder,
        "status": device.status,
        "created_at": device.created_at,
    }


@extend_schema(tags=["devices"])
class DeviceListView(GenericAPIView):
    """The login's device keys; POST registers one."""

    serializer_class = DeviceSerializer
    pagination_class = StrictLimitOffsetPagination

    @extend_schema(
        summary="My device keys (wallet's and merchant's)", responses={200: DeviceSerializer(many=True), **READ_ERRORS}
    )
    def get(self, request):
        holders = {party.pk: holder for holder, party in _parties(request).items()}
        devices = DeviceKey.objects.filter(party_id__in=holders).order_by("pk")
        page = self.paginate_queryset(devices)
        data = [_device_data(device, holders[device.party_id]) for device in page]
        return self.get_paginated_response(DeviceSerializer(data, many=True).data)

    @extend_schema(
        summary="Register a device key",
        description="Registers a secp256k1 public key for the login's wallet (default) or merchant, with a "
        "proof that the phone holds its secret. The first key needs only the login; once the holder has an active "
        "key, a new one must be added from a phone that holds one: the request is signed like a money-moving one "
        "(X-Device-Key, X-Nonce, X-Timestamp, X-Signature), so a stolen API token alone cannot enroll a thief's "
        "phone. Registering the same key again returns it. Its id is the X-Device-Key of signed requests.",
        parameters=DEVICE_SIGNATURE_HEADERS,
        request=DeviceRegisterSerializer,
        responses={201: DeviceSerializer, **error_responses(400, 401, 403, 409, 429)},
    )
    def post(self, request):
        data = body(DeviceRegisterSerializer, request)
        parties = _parties(request)
        holder = data.get("holder") or next(iter(parties), None)
        if holder not in parties:
            raise exceptions.PermissionDenied(f"Your login has no {holder or 'wallet or merchant'} to hold keys.")
        party, public_key = parties[holder], bytes.fromhex(data["public_key"])
        try:
            message = identity.device_proof_message(
                username=request.user.get_username(), holder=holder, public_key=public_key
            )
        except identity.MalformedKey:
            raise bank_errors.InvalidPublicKey()
        bank_services.check_possession(public_key=public_key, message=message, proof_hex=data["proof"])
        with transaction.atomic():
            if bank_services.has_active_device(party, other_than=public_key):
                values = {name: request.headers.get(header, "") for name, header in SIGNATURE_HEADERS.items()}
                approver = bank_services.check_signature(
                    party=party, method="POST", path=request.get_full_path(), body=request._request.body, **values
                )
                bank_services.consume_nonce(device=approver, nonce=values["nonce"])
            device = bank_services.register_device_key(party=party, public_key=public_key, label=data["label"])
        return Response(DeviceSerializer(_device_data(device, holder)).data, status=status.HTTP_201_CREATED)


@extend_schema(tags=["devices"])
class DeviceDetailView(GenericAPIView):
    """One of the login's device keys; DELETE revokes it."""

    serializer_class = DeviceSerializer

    def _device(self, request, device_id):
        holders = {party.pk: holder for holder, party in _parties(request).items()}
        device = get_object_or_404(DeviceKey, pk=device_id, party_id__in=holders)
        return device, holders[device.party_id]

    @extend_schema(summary="One of my device keys", responses={200: DeviceSerializer})
    def get(self, request, device_id: int):
        device, holder = self._device(request, device_id)
        return Response(DeviceSerializer(_device_data(device, holder)).data)

    @extend_schema(summary="Revoke a device key (a lost phone)", request=None, responses={204: None})
    def delete(self, request, device_id: int):
        device, _ = self._device(request, device_id)
        bank_services.revoke_device_key(actor=request.user, device=device, reason="revoked by its owner in the app")
        return Response(status=status.HTTP_204_NO_CONTENT)
