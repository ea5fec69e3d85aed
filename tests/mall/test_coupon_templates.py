"""mall.coupons.coupon_template_create: a template's terms are checked by the service (field messages, nothing
written when they do not fit together), for brands in the creator's scope only; the API answers the same."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from django.utils import timezone

from mall.coupons import coupon_template_create
from mall.models import CouponTemplate
from retail_crm.errors import ApplicationError
from retail_crm.scoping import actor_for
from tests.factories import BrandFactory, RetailGroupFactory, staff_user

pytestmark = pytest.mark.django_db
D = Decimal


@pytest.fixture
def operator():
    group = RetailGroupFactory()
    BrandFactory(group=group, code="MEN")
    return actor_for(staff_user("brand_operator", brand=BrandFactory(group=group, code="WOM")))


def refused(**terms) -> tuple[str, str, int, dict]:
    with pytest.raises(ApplicationError) as info:
        coupon_template_create(**terms)
    return info.value.code, info.value.message, info.value.status, info.value.fields


def test_valid_terms_make_a_template(operator):
    template = coupon_template_create(actor=operator, brand_code="WOM", name="88折", kind="discount",
                                      discount_rate=D("0.880"), valid_days=14)

    assert (template.brand.code, template.kind, template.discount_rate, template.discount_amount,
            template.threshold_amount, template.valid_days, template.is_active) == (
        "WOM", "discount", D("0.880"), None, D("0.00"), 14, True)


@pytest.mark.parametrize(("terms", "fields"), [
    ({"kind": "threshold", "valid_days": 7},
     {"discount_amount": ["Required for a threshold coupon."]}),
    ({"kind": "threshold", "discount_amount": D("30"), "discount_rate": D("0.9"), "valid_days": 7},
     {"discount_rate": ["Only for a discount coupon."]}),
    ({"kind": "discount", "discount_amount": D("30"), "valid_days": 7},
     {"discount_rate": ["Required for a discount coupon."], "discount_amount": ["Only for a threshold coupon."]}),
    ({"kind": "discount", "discount_rate": D("0.9")},
     {"valid_days": ["Give either valid_days or valid_from and valid_to."]}),
    ({"kind": "discount", "discount_rate": D("0.9"), "valid_days": 7, "valid_to": timezone.now()},
     {"valid_days": ["Give either valid_days or valid_from and valid_to."]}),
    ({"kind": "discount", "discount_rate": D("0.9"), "valid_to": timezone.now()},
     {"valid_to": ["Give valid_from and a later valid_to."]}),
    ({"kind": "discount", "discount_rate": D("0.9"), "valid_from": timezone.now(),
      "valid_to": timezone.now() - dt.timedelta(days=1)},
     {"valid_to": ["Give valid_from and a later valid_to."]}),
])
def test_terms_that_do_not_fit_are_400_per_field_and_write_nothing(operator, terms, fields):
    assert refused(actor=operator, brand_code="WOM", name="券", **terms) == ("invalid", "Invalid input.", 400, fields)
    assert CouponTemplate.objects.count() == 0


def test_the_terms_are_checked_before_the_brand_and_the_brand_must_be_in_scope(operator):
    good = {"actor": operator, "name": "满300减30", "kind": "threshold", "discount_amount": D("30"), "valid_days": 7}

    assert refused(brand_code="MEN", **good) == ("invalid", "No such brand.", 400,
                                                 {"brand": ["No such brand in your scope."]})
    assert refused(brand_code="MEN", **good | {"valid_days": None})[3] == {
        "valid_days": ["Give either valid_days or valid_from and valid_to."]}
    assert CouponTemplate.objects.count() == 0


def test_the_api_answers_with_the_services_field_messages(operator, api_client):
    api_client.force_authenticate(staff_user("brand_operator", brand=BrandFactory(code="SOLO")))
    response = api_client.post("/api/v1/mall/coupon-templates/", {"brand": "SOLO", "name": "券", "kind": "discount",
                                                                   "discount_amount": "5.00"}, format="json")

    assert (response.status_code, response.json()) == (400, {"error": {
        "code": "invalid", "message": "Invalid input.",
        "fields": {"discount_rate": ["Required for a discount coupon."],
                   "discount_amount": ["Only for a threshold coupon."],
                   "valid_days": ["Give either valid_days or valid_from and valid_to."]}}})
