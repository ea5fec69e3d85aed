"""Share PV/UV cannot be inflated by one visitor (members/share_views.py): a viewer's views of one share within
one 30-minute clock window count once for PV; UV counts distinct viewers. Every raw event is still stored.

Times: 2 March 2026 in Asia/Shanghai (UTC+8). 12:00 local is 04:00 UTC, a window start (windows are counted in
30-minute steps from 1970-01-01 00:00 UTC), so 12:00:00–12:29:59 is one window and 12:30 starts the next.
"""

from __future__ import annotations

import datetime as dt

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from analytics import metrics
from analytics.facts import facts_rebuild
from analytics.models import EngagementFact
from guides.selectors import MaterialViews, material_views, workbench_subject
from guides.sharing import ShareFunnel, Sharer, share_create, share_funnel_total, share_funnels
from members.events import event_batch_ingest
from members.models import BehaviourEvent, EventKind
from members.share_views import ClockWindow
from retail_crm.scoping import actor_for
from tests.factories import (
    BrandFactory,
    GuideFactory,
    MemberFactory,
    RegionFactory,
    RetailGroupFactory,
    StoreFactory,
    staff_user,
)

pytestmark = pytest.mark.django_db

SHANGHAI = dt.timezone(dt.timedelta(hours=8))
DAY = dt.date(2026, 3, 2)
NOON = dt.datetime(2026, 3, 2, 12, 0, tzinfo=SHANGHAI)
NOW = dt.datetime(2026, 3, 2, 18, 0, tzinfo=SHANGHAI)  # the ingestion clock: every event below is in the past


@pytest.fixture(autouse=True)
def shanghai(settings):
    settings.TIME_ZONE = "Asia/Shanghai"


@pytest.fixture
def w():
    group = RetailGroupFactory(code="grp")
    brand = BrandFactory(group=group, code="WOM")
    store = StoreFactory(brand=brand, region=RegionFactory(brand=brand), code="WOM-E001")
    guide = GuideFactory(store=store, code="g-li", name="李娜")
    sharer = Sharer(group_id=group.pk, guide=guide)
    share = share_create(sharer=sharer, target="mall", at=NOON - dt.timedelta(days=1))
    other = share_create(sharer=sharer, target="mall", at=NOON - dt.timedelta(days=1))
    return type("World", (), dict(group=group, brand=brand, store=store, guide=guide, share=share, other=other))


def views(share_code: str, times, *, visitor: str | None = None, member=None, kind=EventKind.PRODUCT_VIEW):
    """Send views through ingestion (anonymous with ``visitor``, else as ``member``), in batches of 500."""
    items = [{"kind": kind, "occurred_at": at.isoformat(), "brand": "WOM", "share_token": share_code,
              **({"visitor_id": visitor} if visitor else {})} for at in times]
    for start in range(0, len(items), 500):
        result = event_batch_ingest(items=items[start:start + 500], member=member, now=NOW)
        assert (result.accepted, result.rejected) == (len(items[start:start + 500]), [])


def every(seconds: int, count: int, start: dt.datetime = NOON) -> list[dt.datetime]:
    return [start + dt.timedelta(seconds=seconds * i) for i in range(count)]


def funnel(share) -> ShareFunnel:
    return share_funnels([share])[share.pk]


def test_one_visitor_viewing_one_share_100_times_in_a_window_is_one_view_and_one_visitor(w):
    views(w.share.code, every(17, 100), visitor="v-1")  # 12:00:00 … 12:28:03

    assert BehaviourEvent.objects.filter(share_token=w.share.code).count() == 100  # every raw event is kept
    assert funnel(w.share) == ShareFunnel(shares=1, views=1, visitors=1)


def test_the_same_visitor_in_two_windows_is_two_views_and_one_visitor(w):
    views(w.share.code, every(17, 100), visitor="v-1")
    views(w.share.code, [NOON + dt.timedelta(minutes=29, seconds=59)], visitor="v-1")  # still the first window
    views(w.share.code, [NOON + dt.timedelta(minutes=30)] * 3, visitor="v-1")  # 12:30: the next one

    assert funnel(w.share) == ShareFunnel(shares=1, views=2, visitors=1)


def test_two_visitors_and_a_member_are_three_visitors(w):
    member = MemberFactory(group=w.group)
    views(w.share.code, every(60, 20), visitor="v-1")
    views(w.share.code, every(60, 20), visitor="v-2")
    views(w.share.code, every(60, 20), member=member)
    # A visitor id that happens to look like the member's key is still another person.
    views(w.share.code, every(60, 5), visitor=str(member.pk))

    assert funnel(w.share) == ShareFunnel(shares=1, views=4, visitors=4)


def test_views_of_two_shares_in_one_window_are_one_view_of_each(w):
    views(w.share.code, every(30, 10), visitor="v-1")
    views(w.other.code, every(30, 10), visitor="v-1")

    assert share_funnels([w.share, w.other]) == {w.share.pk: ShareFunnel(shares=1, views=1, visitors=1),
                                                 w.other.pk: ShareFunnel(shares=1, views=1, visitors=1)}
    # The guide's total: two views (one per share), one visitor.
    assert share_funnel_total(type(w.share).objects.filter(guide=w.guide)) == ShareFunnel(shares=2, views=2,
                                                                                          visitors=1)


def test_the_window_length_is_a_setting(w, settings):
    views(w.share.code, every(60, 60), visitor="v-1")  # 12:00 … 12:59, one a minute

    assert funnel(w.share).views == 2  # 30-minute windows
    settings.SHARE_VIEW_WINDOW_MINUTES = 10
    assert funnel(w.share).views == 6
    settings.SHARE_VIEW_WINDOW_MINUTES = 60
    assert funnel(w.share).views == 1


def test_the_window_number_is_the_same_on_every_database(w):
    views(w.share.code, [NOON, NOON + dt.timedelta(minutes=29, seconds=59, microseconds=999999),
                         NOON + dt.timedelta(minutes=30)], visitor="v-1")
    numbers = list(BehaviourEvent.objects.order_by("occurred_at")
                   .annotate(window=ClockWindow("occurred_at", seconds=1800)).values_list("window", flat=True))
    noon_utc = int(NOON.timestamp())
    assert noon_utc % 1800 == 0
    assert numbers == [noon_utc // 1800, noon_utc // 1800, noon_utc // 1800 + 1]


def test_the_funnel_still_costs_five_queries(w):
    views(w.share.code, every(17, 100), visitor="v-1")
    with CaptureQueriesContext(connection) as queries:
        share_funnels([w.share, w.other])
    assert len(queries) == 5


def test_guide_kpis_and_rankings_count_views_the_same_way(w):
    """The daily fact behind the guide KPIs and the ranking, and the workbench's material views."""
    views(w.share.code, every(17, 100), visitor="v-1")  # PV 1
    views(w.share.code, [NOON + dt.timedelta(hours=1)], visitor="v-1")  # 13:00: PV 2
    views(w.share.code, every(60, 10), visitor="v-2")  # PV 3, UV 2
    material = share_create(sharer=Sharer(group_id=w.group.pk, guide=w.guide), target="mall",
                            at=NOON - dt.timedelta(days=1))
    views(material.code, every(10, 50), visitor="v-1", kind=EventKind.MATERIAL_VIEW)  # share and material PV 1
    # A colleague with one honest view: the ranking by share PV puts 李娜 first, 3 + 1 = 4 to 1.
    colleague = GuideFactory(store=w.store, code="g-wang", name="王芳")
    colleague_share = share_create(sharer=Sharer(group_id=w.group.pk, guide=colleague), target="mall",
                                   at=NOON - dt.timedelta(days=1))
    views(colleague_share.code, every(1, 300), visitor="v-9")

    facts_rebuild(date_from=DAY, date_to=DAY)

    fact = EngagementFact.objects.get(guide=w.guide, day=DAY)
    assert (fact.share_pv, fact.share_uv, fact.material_pv, fact.material_uv) == (4, 2, 1, 1)
    hq = actor_for(staff_user("hq", group=w.group))
    rows = metrics.guide_kpis(actor=hq, filters=metrics.Filters(DAY, DAY), order_by="share_pv")
    assert [(r.guide_code, r.share_pv, r.share_uv, r.material_pv, r.material_uv) for r in rows] == [
        ("g-li", 4, 2, 1, 1), ("g-wang", 1, 1, 0, 0)]

    # The workbench (the guide's own login): material views of the guide's shares that day.
    guide_login = actor_for(staff_user("guide", group=w.group, store=w.store, guide=w.guide))
    subject = workbench_subject(actor=guide_login)
    assert subject.guide == w.guide
    assert material_views(subject=subject, date_from=DAY, date_to=DAY) == MaterialViews(pv=1, uv=1)


def test_the_shares_page_shows_the_counted_views_and_says_how_they_are_counted(w, client):
    staff_user("guide", group=w.group, store=w.store, guide=w.guide, username="li-na")
    assert client.login(username="li-na", password="pw-123456")
    views(w.share.code, every(17, 100), visitor="v-1")

    page = client.get(reverse("workbench:shares")).content.decode()

    assert page.count('data-funnel="views">1</dd>') == 2  # the total and the one share that was opened
    assert ("浏览量：同一访客在同一 30 分钟时段内重复打开同一分享只计一次。"
            "访客数：不同的人（一位会员或一部手机）。") in page


def test_an_anonymous_batch_inventing_visitors_adds_one_visitor(w, api_client):
    """The reported attack: a full batch of events, each with a new visitor id, in one anonymous request."""
    when = (timezone.now() - dt.timedelta(minutes=1)).isoformat()
    items = [{"kind": "product_view", "occurred_at": when, "brand": "WOM", "share_token": w.share.code,
              "visitor_id": f"bot-{number}"} for number in range(499)]
    items.insert(0, "not an object")  # does not hide the batch's visitor

    response = api_client.post("/api/v1/mp/events/", {"events": items}, format="json")

    assert response.status_code == 200
    body = response.json()
    assert (body["accepted"], body["duplicates"], len(body["rejected"])) == (1, 0, 499)  # item 1 (bot-0) stored
    assert body["rejected"][1] == {"index": 2, "errors": {"visitor_id": [
        "An anonymous batch is one visitor's: every item needs the first item's visitor_id."]}}
    assert funnel(w.share) == ShareFunnel(shares=1, views=1, visitors=1)
