"""Fixtures of the token's tests."""

import pytest
from django.core.cache import cache


@pytest.fixture(autouse=True)
def fresh_throttles():
    """API throttles count in the cache (Redis when REDIS_URL is set); each test starts at zero."""
    cache.clear()
    yield
