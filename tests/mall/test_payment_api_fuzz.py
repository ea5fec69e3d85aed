"""Schema-driven fuzzing of the payment and refund endpoints (schemathesis, in-process through WSGI).

The project-wide fuzz test covers these once the project includes ``mall.api.pay_urls``; until then this runs
them from the test URLconf. Every response must not be a server error and must match the documented schema.
"""

from __future__ import annotations

import pytest
import schemathesis
from django.core import signals
from django.core.cache import cache
from django.db import close_old_connections
from django.test.utils import override_settings
from hypothesis import HealthCheck, settings
from rest_framework.authtoken.models import Token
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)

from members.auth import member_token_issue
from retail_crm.wsgi import application
from tests.factories import staff_user
from tests.factories_payments import fake_trade_for_paid, paid_ready_order

with override_settings(ROOT_URLCONF="tests.urls_payments"):
    schema = schemathesis.openapi.from_wsgi("/api/schema/", application).include(
        path_regex=r"^/api/v1/(mp/orders/\{order_no\}/(pay|refunds)/|pay/notify/|mall/refunds/)")
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]

pytestmark = pytest.mark.urls("tests.urls_payments")


@pytest.fixture
def credentials(db, settings):
    settings.PAYMENT_PROVIDER = "fake"
    cache.clear()
    example = paid_ready_order(status="paid")
    fake_trade_for_paid(example)
    staff = staff_user("brand_operator", brand=example.brand)
    example.member.openid = "o-fuzz"
    example.member.save(update_fields=["openid"])
    # Calling the WSGI app directly fires request_started/finished, whose close_old_connections would close
    # the test's connection inside its transaction on PostgreSQL; Django's test client disconnects them too.
    signals.request_started.disconnect(close_old_connections)
    signals.request_finished.disconnect(close_old_connections)
    yield {"member": f"Member {member_token_issue(member=example.member)}",
           "staff": f"Token {Token.objects.create(user=staff).key}"}
    signals.request_started.connect(close_old_connections)
    signals.request_finished.connect(close_old_connections)


@schema.parametrize()
@settings(max_examples=25, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow,
                                 HealthCheck.filter_too_much])
def test_payment_api_conforms_to_its_schema_and_never_fails_on_bad_input(case, credentials):
    path = case.operation.path
    if path.startswith("/api/v1/mp/"):
        header = credentials["member"]
    elif path.startswith("/api/v1/pay/notify/"):
        header = None
    else:
        header = credentials["staff"]
    case.call_and_validate(headers={"Authorization": header} if header else {}, checks=CHECKS)
