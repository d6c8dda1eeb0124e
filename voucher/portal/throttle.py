"""Login throttling for the portal: after PORTAL_LOGIN_MAX_FAILURES failed
logins of one username from one address, that pair is locked out for
PORTAL_LOGIN_LOCKOUT_SECONDS, even with the right password. Counted in the
Django cache (Redis when REDIS_URL is set), so every app server shares it.

Keyed by username and address together, so a stranger guessing at a
merchant's login from elsewhere cannot lock the merchant out of its own till.
"""

import hashlib

from django.conf import settings
from django.core.cache import cache


def _key(kind: str, username: str, address: str) -> str:
    digest = hashlib.sha256(f"{username.strip().lower()}|{address}".encode()).hexdigest()
    return f"portal-login:{kind}:{digest}"


def is_locked(username: str, address: str) -> bool:
    return cache.get(_key("locked", username, address)) is not None


def record_failure(username: str, address: str) -> bool:
    """Count a failed login; True when this failure locks the pair out."""
    failures = _key("failures", username, address)
    window = settings.PORTAL_LOGIN_LOCKOUT_SECONDS
    cache.add(failures, 0, window)
    try:
        count = cache.incr(failures)
    except ValueError:  # expired between add and incr
        cache.set(failures, 1, window)
        count = 1
    if count >= settings.PORTAL_LOGIN_MAX_FAILURES:
        cache.set(_key("locked", username, address), True, window)
        cache.delete(failures)
        return True
    return False


def clear(username: str, address: str) -> None:
    cache.delete_many([_key("failures", username, address), _key("locked", username, address)])
