"""Schema-driven fuzzing of the whole /api/v1/ surface with schemathesis (in-process, through WSGI).

For every operation in /api/schema/, hypothesis generates requests from the
schema; each response must not be a server error, must use a documented
status code and content type, and must match its documented schema. Member
endpoints are called with a member token, staff endpoints with an HQ token, so
the generated data reaches the views rather than stopping at 401.
"""

from __future__ import annotations

from decimal import Decimal

import pytest
import schemathesis
from django.core import signals
from django.db import close_old_connections
from django.utils import timezone
from hypothesis import HealthCheck
from hypothesis import settings as hypothesis_settings
from rest_framework.authtoken.models import Token
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)

from mall.models import Product, Sku, Stock
from members.auth import member_token_issue
from members.models import BrandMembership
from retail_crm.wsgi import application
from tests.factories import BrandFactory, MemberFactory, RegionFactory, RetailGroupFactory, StoreFactory, staff_user

schema = schemathesis.openapi.from_wsgi("/api/schema/", application)
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]


@pytest.fixture
def credentials(db, settings):
    # The WeCom callback configured with WeCom's published sample values, so its checks (not "unconfigured") run.
    settings.WECOM_CALLBACK_TOKEN = "QDG6eK"
    settings.WECOM_ENCODING_AES_KEY = "jWmYm7qr5nMoAUwZRjGtBxmz3KA1tkAj3ykkR6q2B2C"
    settings.WECOM_CORP_ID = "wx5823bf96d3bd56c7"
    # The official account's callback likewise, so its signature check (not "unconfigured") answers.
    settings.OFFICIAL_ACCOUNT_CALLBACK_TOKEN = "oa-callback-token"
    # Generated requests must reach the views, not stop at a rate limit (the limits have
    # tests/retail_crm/test_throttling.py; a 429 is still documented and would still be checked against the schema).
    settings.THROTTLE_RATES = {scope: "100000/min" for scope in settings.THROTTLE_RATES}
    group = RetailGroupFactory()
    brand = BrandFactory(group=group, code="WOM")
    StoreFactory(brand=brand, region=RegionFactory(brand=brand), code="WOM-S1")
    product = Product.objects.create(brand=brand, code="P1", name="连衣裙", category="连衣裙")
    sku = Sku.objects.create(product=product, brand=brand, code="P1-M", size="M", list_price=Decimal("599.00"),
                             member_price=Decimal("509.00"), cost_price=Decimal("200.00"))
    Stock.objects.create(sku=sku, quantity=50)
    member = MemberFactory(group=group, openid="o-fuzz")
    BrandMembership.objects.create(member=member, brand=brand, joined_at=timezone.now(), join_channel="guide_qr")
    staff = staff_user("hq", group=group)
    # Calling the WSGI app directly fires request_started/finished, whose close_old_connections would close the
    # test's connection inside its transaction on PostgreSQL; Django's test client disconnects them too.
    signals.request_started.disconnect(close_old_connections)
    signals.request_finished.disconnect(close_old_connections)
    yield {"member": f"Member {member_token_issue(member=member)}",
           "staff": f"Token {Token.objects.create(user=staff).key}"}
    signals.request_started.connect(close_old_connections)
    signals.request_finished.connect(close_old_connections)


@schema.parametrize()
@hypothesis_settings(max_examples=12, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow,
                                 HealthCheck.filter_too_much])
def test_api_conforms_to_its_schema_and_never_fails_on_bad_input(case, credentials):
    path = case.operation.path
    if path.startswith("/api/v1/mp/") and not path.startswith("/api/v1/mp/auth/login/"):
        header = credentials["member"]
    elif path.startswith(("/api/v1/wecom/callback/", "/api/v1/pay/notify/",
                          "/api/v1/marketing/official-account/callback/")):
        header = None
    else:
        header = credentials["staff"]
    headers = {"Authorization": header} if header else {}
    case.call_and_validate(headers=headers, checks=CHECKS)
