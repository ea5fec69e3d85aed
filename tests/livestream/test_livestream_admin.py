"""The livestream admin: sessions listed within the viewer's scope and never written there."""

from __future__ import annotations

import datetime as dt

import pytest
from django.test import Client

from livestream.models import LiveSession
from tests.factories import BrandFactory, RegionFactory, RetailGroupFactory, StoreFactory, staff_user

pytestmark = pytest.mark.django_db


def test_admin_lists_only_sessions_in_scope_and_is_read_only():
    group = RetailGroupFactory()
    wom, men = BrandFactory(group=group, code="WOM"), BrandFactory(group=group, code="MEN")
    start = dt.datetime(2024, 3, 4, 11, tzinfo=dt.UTC)
    for brand in (wom, men):
        store = StoreFactory(region=RegionFactory(brand=brand))
        LiveSession.objects.create(brand=brand, kind="store", title=f"{brand.code} evening live", host_store=store,
                                   planned_start=start, planned_end=start + dt.timedelta(hours=2))
    client = Client()
    client.force_login(staff_user("brand_operator", brand=wom))
    page = client.get("/admin/livestream/livesession/")
    assert page.status_code == 200
    assert "WOM evening live" in page.content.decode() and "MEN evening live" not in page.content.decode()
    assert client.get("/admin/livestream/livesession/add/").status_code == 403
    men_session = LiveSession.objects.get(brand=men)
    assert client.get(f"/admin/livestream/livesession/{men_session.pk}/change/").status_code == 302
    own = LiveSession.objects.get(brand=wom)
    assert client.get(f"/admin/livestream/livesession/{own.pk}/change/").status_code == 200
    assert client.post(f"/admin/livestream/livesession/{own.pk}/change/", {"title": "hacked"}).status_code == 403
    assert client.post(f"/admin/livestream/livesession/{own.pk}/delete/", {"post": "yes"}).status_code == 403
    assert LiveSession.objects.get(pk=own.pk).title == "WOM evening live"
