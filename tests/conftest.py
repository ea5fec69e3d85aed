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
def _task_results_joinable_before_each_test():
    """Celery keeps "inside a task: never wait for a result" in one process-wide flag, which each eager task sets
    and then puts back as it found it. Eager tasks running in several threads at once (the concurrency tests)
    can put it back in the wrong order and leave it set, and a later test that waits for a real worker's
    result would be refused ("Never call result.get() within a task!"). Each test starts with it clear."""
    from celery.result import _set_task_join_will_block

    _set_task_join_will_block(False)


@pytest.fixture(autouse=True)
def _empty_cache_before_each_test():
    """Rate-limit counters (and anything else cached) start empty: one test's requests never throttle the next."""
    from django.core.cache import cache

    cache.clear()
