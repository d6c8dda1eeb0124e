"""Device keys: a citizen's or merchant's phone registers its secp256k1 public
key once, then signs every money-moving request with it.

Enrolling or revoking a key needs more than the API token: a signature by an
active key of the same holder, or (to enroll without one) a one-time code from
the bank's counter (bank/services/enrollment.py). A merchant's keys are managed
by its owner only; its clerks use the tills the owner enrolled.
"""

from django.shortcuts import get_object_or_404
from drf_spectacular.utils import extend_schema
from rest_framework import exceptions, status
from rest_framework.generics import GenericAPIView
from rest_framework.response import Response

from bank import errors as bank_errors
from bank import identity
from bank import services as bank_services
from bank.http.errors import error_responses
from bank.http.schema import READ_ERRORS
from bank.http.signing import signed_request
from bank.models import DeviceKey
from voucher import errors
from voucher.api.access import membership_of, wallet_of
from voucher.api.pagination import StrictLimitOffsetPagination
from voucher.api.schema import DEVICE_REVOKE_HEADERS, DEVICE_SIGNATURE_HEADERS
from voucher.api.serializers import DeviceRegisterSerializer, DeviceSerializer
from voucher.api.views.common import body
from voucher.models import MerchantMember


def _parties(request) -> dict:
    """holder name -> party the login may see keys of."""
    parties = {}
    wallet, member = wallet_of(request), membership_of(request)
    if wallet is not None:
        parties["wallet"] = wallet.owner
    if member is not None:
        parties["merchant"] = member.merchant.party
    return parties


def _check_may_manage(request, holder: str) -> None:
    """Every member sees the merchant's keys; only its owner adds or revokes them."""
    if holder == "merchant" and membership_of(request).role != MerchantMember.Role.OWNER:
        raise errors.MerchantOwnerOnly("Only the merchant's owner enrolls and revokes its device keys.")


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
        summary="Enroll a device key",
        description="Enrolls a secp256k1 public key for the login's wallet (default) or merchant, with a proof "
        "that the phone holds its secret. The API token alone is never enough: the request is either signed like "
        "a money-moving one (X-Device-Key, X-Nonce, X-Timestamp, X-Signature) by an active key of the same "
        "holder (a second phone added from the first), or carries `enrollment_code`, the one-time code a bank "
        "teller issues after checking the holder's identity (the first phone, or after the last key was "
        "revoked; then the request need not be signed). A merchant's keys are enrolled by its owner only. The "
        "same key enrolled again is returned with 200 and nothing changes. Its id is the X-Device-Key of signed "
        "requests. Errors: enrollment_code_required (no active key and no code), enrollment_code_invalid, "
        "device_proof_invalid, merchant_owner_only, and the signature's codes. See docs/SIGNING.md.",
        parameters=DEVICE_SIGNATURE_HEADERS,
        request=DeviceRegisterSerializer,
        responses={201: DeviceSerializer, 200: DeviceSerializer, **error_responses(400, 401, 403, 409, 429)},
    )
    def post(self, request):
        data = body(DeviceRegisterSerializer, request)
        parties = _parties(request)
        holder = data.get("holder") or next(iter(parties), None)
        if holder not in parties:
            raise exceptions.PermissionDenied(f"Your login has no {holder or 'wallet or merchant'} to hold keys.")
        _check_may_manage(request, holder)
        party, public_key = parties[holder], bytes.fromhex(data["public_key"])
        try:
            message = identity.device_proof_message(
                username=request.user.get_username(), holder=holder, public_key=public_key
            )
        except identity.MalformedKey:
            raise bank_errors.InvalidPublicKey()
        device, created = bank_services.enroll_device_key(
            actor=request.user,
            party=party,
            public_key=public_key,
            label=data["label"],
            proof_message=message,
            proof_hex=data["proof"],
            enrollment_code=data.get("enrollment_code", ""),
            signed_request=signed_request(request),
        )
        answer = status.HTTP_201_CREATED if created else status.HTTP_200_OK
        return Response(DeviceSerializer(_device_data(device, holder)).data, status=answer)


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

    @extend_schema(
        summary="Revoke a device key (a lost phone)",
        description="Signed like a money-moving request (X-Device-Key, X-Nonce, X-Timestamp, X-Signature) over "
        "method DELETE, this path and the empty body, by an active key of the same holder or by the key being "
        "revoked itself; no Idempotency-Key. Revoking a key already revoked answers 204 again and writes nothing, "
        "so a retry with the same headers is safe. A merchant's keys are revoked by its owner only. A phone lost "
        "with no other device is revoked by the bank's counter. See docs/SIGNING.md.",
        parameters=DEVICE_REVOKE_HEADERS,
        request=None,
        responses={204: None, **error_responses(401, 403, 404, 409)},
    )
    def delete(self, request, device_id: int):
        device, holder = self._device(request, device_id)
        _check_may_manage(request, holder)
        bank_services.revoke_own_device_key(actor=request.user, device=device, signed_request=signed_request(request))
        return Response(status=status.HTTP_204_NO_CONTENT)
