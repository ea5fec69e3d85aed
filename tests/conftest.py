import pytest
from django.utils import translation
from rest_framework.test import APIClient


@pytest.fixture
def api_client():
    return APIClient()


@pytest.fixture(autouse=True)
def _default_language_after_each_test(settings):
    """A request with ``Accept-Language: en`` leaves English active in the thread; the next test must start in
    the default language (zh-hans), whatever ran before it."""
    yield
    translation.activate(settings.LANGUAGE_CODE)


@pytest.fixture(autouse=True)
def _empty_cache_before_each_test():
    """Rate-limit counters (and anything else cached) start empty: one test's requests never throttle the next."""
    from django.core.cache import cache

    cache.clear()
