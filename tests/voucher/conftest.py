"""Fixtures of the token's tests."""

import pytest
from django.core.cache import cache

from tests.voucher.portal_support import clerk_client, other, owner_client, shop  # noqa: F401  the portal's fixtures


@pytest.fixture(autouse=True)
def fresh_throttles():
    """API and login throttles count in the cache (Redis when REDIS_URL is set); each test starts at zero."""
    cache.clear()
    yield
