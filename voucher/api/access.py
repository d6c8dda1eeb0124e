"""Who is asking: a citizen (a login with a wallet) or a merchant's owner or clerk,
and the signed-POST mixin every money-moving view of the wallet API uses.

Objects are looked up through the asker's own wallet or merchant, so someone
else's id is simply not found (404), never forbidden (403).
"""

import hashlib

from django.db import connection
from rest_framework.permissions import BasePermission

from bank.http.authentication import ApiTokenAuthentication, token_by_digest
from bank.http.signing import DEVICE_HEADER, SignedPostMixin
from voucher import selectors
from voucher.models import MerchantMember, Wallet
from voucher.services.common import MAX_KEY_LENGTH


def wallet_of(request) -> Wallet | None:
    """The asker's wallet with its owner (cached on the request), or None.

    A signed POST's device key (X-Device-Key) is read in the same query when it
    is one of the owner's active keys, for WalletSignedPostMixin.signing_device."""
    user = request.user  # a signed POST's token login fills the cache
    if not hasattr(request, "_voucher_wallet"):
        wallet = device = None
        if user.is_authenticated:
            wallet, device = selectors.wallet_of_user(user, device_id=_signing_device_id(request))
        request._voucher_wallet, request._voucher_device = wallet, device
    return request._voucher_wallet


def _signing_device_id(request) -> int | None:
    """X-Device-Key of a POST, as a bigint id; None for anything the database
    could not compare with one (check_signature then refuses it itself)."""
    value = request.headers.get(DEVICE_HEADER, "") if request.method == "POST" else ""
    return int(value) if value.isascii() and value.isdigit() and len(value) < 19 else None


def _token_login_with_wallet(digest: str, request):
    """ApiTokenAuthentication's read for the wallet's signed POSTs: on PostgreSQL the
    token, its user, the wallet, its owner and the signing key in one prepared
    statement (one round trip instead of two), cached for wallet_of()."""
    if connection.vendor != "postgresql":
        return token_by_digest(digest, request)
    found = selectors.token_login_with_wallet(digest, device_id=_signing_device_id(request))
    if found is None:
        return None
    token, request._voucher_wallet, request._voucher_device = found
    return token


def membership_of(request) -> MerchantMember | None:
    """The asker's merchant membership (cached on the request), or None."""
    if not hasattr(request, "_voucher_member"):
        user = request.user
        request._voucher_member = (
            MerchantMember.objects.select_related("merchant__party").filter(user=user).first()
            if user.is_authenticated
            else None
        )
    return request._voucher_member


class IsWalletHolder(BasePermission):
    message = "This is for wallet holders: your login has no wallet."

    def has_permission(self, request, view):
        return wallet_of(request) is not None


class IsMerchantMember(BasePermission):
    message = "This is for merchants: your login acts for no merchant."

    def has_permission(self, request, view):
        return membership_of(request) is not None


class VoucherSignedPostMixin(SignedPostMixin):
    """SignedPostMixin whose service keys fit the voucher services' 64 characters."""

    def voucher_key(self) -> str:
        """The Idempotency-Key scoped to the user (service_key), as the voucher services take it.

        service_key() is "api:<user id>:<key>" and may reach 120 characters; a
        longer one than the services take is replaced by "api#" and 60 hex
        digits of its SHA-256, still one per user and key (and never equal to a
        short one, which starts with "api:")."""
        key = self.service_key()
        if len(key) <= MAX_KEY_LENGTH:
            return key
        return "api#" + hashlib.sha256(key.encode()).hexdigest()[: MAX_KEY_LENGTH - 4]


class WalletSignedPostMixin(VoucherSignedPostMixin):
    """Signed by a device key of the wallet's owner."""

    permission_classes = [IsWalletHolder]

    def get_authenticators(self):
        # The project's authenticators, with the token's lookup also reading the wallet.
        return [
            ApiTokenAuthentication(login=_token_login_with_wallet) if type(auth) is ApiTokenAuthentication else auth
            for auth in super().get_authenticators()
        ]

    def signing_party(self, request):
        return wallet_of(request).owner

    def signing_device(self, request):
        wallet_of(request)
        return request._voucher_device


class MerchantSignedPostMixin(VoucherSignedPostMixin):
    """Signed by a device key of the merchant (any of its members' devices)."""

    permission_classes = [IsMerchantMember]

    def signing_party(self, request):
        return membership_of(request).merchant.party
