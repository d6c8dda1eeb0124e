"""The API tokens' one writer: issue a token (its raw value leaves here once and is
never stored), and log tokens out, by their holder or by staff (audited)."""

import hashlib
import secrets
from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from bank.models import ApiToken
from bank.services.audit import record_audit
from bank.services.controls import require_reason, require_role

REVOKE_PERMISSION = "bank.revoke_api_token"


@dataclass(frozen=True)
class IssuedToken:
    token: ApiToken
    key: str  # the raw token: give it to the client once, keep it nowhere


def token_digest(key: str) -> str:
    """What is stored for, and looked up by, the token `key`."""
    return hashlib.sha256(key.encode()).hexdigest()


def issue_api_token(*, user, ttl: timedelta | None = None) -> IssuedToken:
    """A new token for `user`, valid for `ttl` (API_TOKEN_TTL_HOURS by default).
    Every login gets its own, so logging one phone out leaves the others."""
    key = secrets.token_hex(32)
    now = timezone.now()
    ttl = ttl if ttl is not None else timedelta(hours=settings.API_TOKEN_TTL_HOURS)
    with transaction.atomic():
        token = ApiToken.objects.create(user=user, digest=token_digest(key), created_at=now, expires_at=now + ttl)
    return IssuedToken(token=token, key=key)


def revoke_api_token(*, token: ApiToken) -> bool:
    """The holder logs this token out. False when it was already revoked."""
    with transaction.atomic():
        return ApiToken.objects.filter(pk=token.pk, revoked_at=None).update(revoked_at=timezone.now()) == 1


def revoke_api_tokens_of(*, actor, user, reason: str) -> int:
    """Staff log every live token of `user` out (a lost phone, a suspected leak),
    audited with the reason. Returns how many were live."""
    require_role(actor, REVOKE_PERMISSION)
    reason = require_reason(reason)
    now = timezone.now()
    with transaction.atomic():
        live = ApiToken.objects.filter(user=user, revoked_at=None, expires_at__gt=now)
        count = live.update(revoked_at=now)
        record_audit(
            actor=actor,
            action="api_token.revoke_all",
            target=user,
            before={"live_tokens": count},
            after={"live_tokens": 0},
            reason=reason,
        )
    return count
