"""Behaviour events (members.events and POST /api/v1/mp/events/): ingestion, daily counters, purge, merge.

Expected values are worked out by hand from the items each test sends. Times are in the group time
zone Asia/Shanghai (UTC+8, no daylight saving): 2024-05-01T16:00:00Z is local midnight of 2 May.
"""

from __future__ import annotations

import datetime as dt
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
from django.conf import settings
from django.core import signing
from django.db import connection
from django.utils import timezone
from rest_framework.test import APIClient

from guides.services import guide_token_issue, guide_token_revoke
from members import tasks as event_tasks
from members.auth import member_token_issue
from members.events import (
    BatchResult,
    activity_summarise,
    event_batch_ingest,
    events_purge,
    local_today,
    member_events_merge,
)
from members.models import BehaviourEvent, MemberDailyActivity
from tests.factories import BrandFactory, GuideFactory, MemberFactory, RetailGroupFactory, staff_user

URL = "/api/v1/mp/events/"
UTC = dt.UTC
SHANGHAI = dt.timezone(dt.timedelta(hours=8))
NOW = dt.datetime(2024, 5, 3, 4, 0, tzinfo=UTC)  # 12:00 on 3 May in Shanghai


@pytest.fixture(autouse=True)
def shanghai(settings):
    settings.TIME_ZONE = "Asia/Shanghai"


@pytest.fixture
def api_client():
    # DRF's own messages (batch envelope) follow the request language; the tests read them in English.
    return APIClient(HTTP_ACCEPT_LANGUAGE="en")


@pytest.fixture
def brand(db):
    return BrandFactory(code="LADY", group=RetailGroupFactory(code="grp"))


def item(**overrides) -> dict:
    """A valid anonymous product view, 10 minutes ago."""
    body = {"kind": "product_view", "occurred_at": (timezone.now() - dt.timedelta(minutes=10)).isoformat(),
            "brand": "LADY", "object_type": "product", "object_id": "P001", "visitor_id": "v-1"}
    body.update(overrides)
    return {k: v for k, v in body.items() if v is not None}


def rows():
    """(kind, member code, visitor, object id, guide code, client id) of every stored event, in insert order."""
    return [(e.kind, e.member.code if e.member else None, e.visitor_id, e.object_id,
             e.guide.code if e.guide else None, e.client_event_id)
            for e in BehaviourEvent.objects.select_related("member", "guide").order_by("pk")]


def activity():
    """(member code, brand code, day, the seven counters) of every counter row, sorted."""
    return sorted((a.member.code, a.brand.code, a.day.isoformat(), a.product_views, a.favourites, a.shares,
                   a.add_to_carts, a.orders_unpaid, a.live_watches, a.material_views)
                  for a in MemberDailyActivity.objects.select_related("member", "brand"))


# ---------------------------------------------------------------------------- the endpoint

@pytest.mark.django_db
def test_mixed_batch_stores_the_good_items_and_reports_each_bad_one_by_index(brand, api_client):
    guide = GuideFactory(code="G-ANN", store__brand=brand, store__region__brand=brand)
    token = guide_token_issue(guide=guide).token
    now = timezone.now()
    naive_local = timezone.localtime(now - dt.timedelta(hours=1)).replace(tzinfo=None).isoformat()
    batch = [
        item(object_id="P1"),                                                     # 0 good
        item(kind="teleport"),                                                    # 1 unknown kind
        item(occurred_at=None),                                                   # 2 no time
        item(occurred_at=(now + dt.timedelta(minutes=10)).isoformat()),           # 3 future
        item(occurred_at=(now - dt.timedelta(days=31)).isoformat()),              # 4 too old
        item(brand="NOPE"),                                                       # 5 unknown brand
        item(visitor_id=None),                                                    # 6 anonymous, no visitor
        item(kind="share", object_id="P7", share_token=token),                    # 7 good, attributed
        "not an object",                                                          # 8
        item(brand=7, object_id="x" * 65, occurred_at="yesterday"),               # 9 three wrong fields
        item(kind="favourite", object_id="P10", occurred_at=naive_local),         # 10 good, naive local time
        item(object_type="product\x00", visitor_id=["v"]),                        # 11 NUL, wrong type
    ]
    response = api_client.post(URL, {"events": batch}, format="json")
    assert response.status_code == 200
    assert response.json() == {"accepted": 3, "duplicates": 0, "rejected": [
        {"index": 1, "errors": {"kind": ['"teleport" is not a valid choice.']}},
        {"index": 2, "errors": {"occurred_at": ["This field is required."]}},
        {"index": 3, "errors": {"occurred_at": [
            "Lies in the future (more than 5 minutes ahead of the server clock)."]}},
        {"index": 4, "errors": {"occurred_at": ["Older than 30 days; such events are no longer accepted."]}},
        {"index": 5, "errors": {"brand": ["Unknown brand."]}},
        {"index": 6, "errors": {"visitor_id": ["This field is required."]}},
        {"index": 8, "errors": {"non_field_errors": ["Expected an object."]}},
        {"index": 9, "errors": {"occurred_at": ["Not a valid ISO 8601 date-time."],
                                "brand": ["Expected a string."],
                                "object_id": ["Ensure this field has no more than 64 characters."]}},
        {"index": 11, "errors": {"object_type": ["Null characters are not allowed."],
                                 "visitor_id": ["Expected a string."]}},
    ]}
    assert rows() == [("product_view", None, "v-1", "P1", None, ""),
                      ("share", None, "v-1", "P7", "G-ANN", ""),
                      ("favourite", None, "v-1", "P10", None, "")]
    stored = BehaviourEvent.objects.get(object_id="P10")
    assert stored.occurred_at == timezone.make_aware(dt.datetime.fromisoformat(naive_local))
    assert stored.share_token == ""
    assert BehaviourEvent.objects.get(object_id="P7").share_token == token


@pytest.mark.django_db
def test_nul_characters_and_overlong_values_in_looked_up_fields_are_refused_per_item(brand, api_client):
    # PostgreSQL refuses NUL in any query parameter: such values must never reach the brand or token look-ups.
    batch = [item(brand="LA\x00DY"), item(share_token="abc\x00:def"), item(brand="L" * 40),
             item(share_token="t" * 101), item(object_id="P1")]
    response = api_client.post(URL, {"events": batch}, format="json")
    assert response.status_code == 200
    assert response.json() == {"accepted": 1, "duplicates": 0, "rejected": [
        {"index": 0, "errors": {"brand": ["Unknown brand."]}},
        {"index": 1, "errors": {"share_token": ["Null characters are not allowed."]}},
        {"index": 2, "errors": {"brand": ["Unknown brand."]}},
        {"index": 3, "errors": {"share_token": ["Ensure this field has no more than 100 characters."]}},
    ]}


@pytest.mark.django_db
def test_500_items_are_accepted_and_501_are_refused_whole(brand, api_client):
    response = api_client.post(URL, {"events": [item(object_id=f"P{i}") for i in range(500)]}, format="json")
    assert response.status_code == 200
    assert response.json() == {"accepted": 500, "duplicates": 0, "rejected": []}
    response = api_client.post(URL, {"events": [item() for _ in range(501)]}, format="json")
    assert response.status_code == 400
    assert response.json()["error"]["fields"] == {"events": ["Ensure this field has no more than 500 elements."]}
    assert BehaviourEvent.objects.count() == 500


@pytest.mark.parametrize(("body", "fields"), [
    ({"events": []}, {"events": ["This list may not be empty."]}),
    ({"events": {"kind": "share"}}, {"events": ['Expected a list of items but got type "dict".']}),
    ({"events": "x"}, {"events": ['Expected a list of items but got type "str".']}),
    ({}, {"events": ["This field is required."]}),
    ([{"kind": "share"}], {"non_field_errors": ["Invalid data. Expected a dictionary, but got list."]}),
])
@pytest.mark.django_db
def test_a_body_that_is_not_a_batch_is_a_400_with_a_field_message(brand, api_client, body, fields):
    response = api_client.post(URL, body, format="json")
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid"
    assert response.json()["error"]["fields"] == fields
    assert BehaviourEvent.objects.count() == 0


@pytest.mark.django_db
def test_malformed_json_is_a_400(brand, api_client):
    response = api_client.post(URL, '{"events": [', content_type="application/json")
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid"


@pytest.mark.django_db
def test_a_form_post_is_refused_as_unsupported(brand, api_client):
    response = api_client.post(URL, {"events": "x"})
    assert response.status_code == 415
    assert response.json()["error"]["code"] == "unsupported_media_type"
    assert BehaviourEvent.objects.count() == 0


@pytest.mark.django_db
def test_a_member_token_makes_the_events_the_members_and_visitor_id_optional(brand, api_client):
    member = MemberFactory(code="M-ANN", group=brand.group)
    key = member_token_issue(member=member)
    api_client.credentials(HTTP_AUTHORIZATION=f"Member {key}")
    response = api_client.post(URL, {"events": [item(visitor_id=None, object_id="P1"),
                                                item(visitor_id="v-before-login", object_id="P2")]},
                               format="json")
    assert response.json() == {"accepted": 2, "duplicates": 0, "rejected": []}
    assert rows() == [("product_view", "M-ANN", "", "P1", None, ""),
                      ("product_view", "M-ANN", "v-before-login", "P2", None, "")]


@pytest.mark.django_db
def test_a_member_cannot_send_events_for_another_groups_brand(brand, api_client):
    BrandFactory(code="OTHER", group=RetailGroupFactory(code="other-grp"))
    member = MemberFactory(group=brand.group)
    api_client.credentials(HTTP_AUTHORIZATION=f"Member {member_token_issue(member=member)}")
    response = api_client.post(URL, {"events": [item(brand="OTHER"), item(brand="LADY")]}, format="json")
    assert response.json() == {"accepted": 1, "duplicates": 0,
                               "rejected": [{"index": 0, "errors": {"brand": ["Unknown brand."]}}]}


@pytest.mark.django_db
def test_an_inactive_brand_is_unknown(brand, api_client):
    brand.is_active = False
    brand.save()
    response = api_client.post(URL, {"events": [item()]}, format="json")
    assert response.json()["rejected"] == [{"index": 0, "errors": {"brand": ["Unknown brand."]}}]


@pytest.mark.parametrize("header", ["Member not-a-token", "Member", "Member a b"])
@pytest.mark.django_db
def test_a_bad_member_token_is_a_401_and_nothing_is_stored(brand, api_client, header):
    api_client.credentials(HTTP_AUTHORIZATION=header)
    response = api_client.post(URL, {"events": [item()]}, format="json")
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "not_authenticated"
    assert BehaviourEvent.objects.count() == 0


@pytest.mark.django_db
def test_only_post_is_allowed(brand, api_client):
    assert api_client.get(URL).status_code == 405


@pytest.mark.django_db
def test_forged_and_unknown_share_tokens_are_refused_per_item(brand, api_client):
    guide = GuideFactory(code="G-ANN", store__brand=brand, store__region__brand=brand)
    genuine = guide_token_issue(guide=guide).token
    wrong_key = signing.Signer(key="someone-elses-secret", salt="guides.token").sign("abcdef")
    wrong_salt = signing.Signer(salt="another.salt").sign("abcdef")
    signed_but_never_issued = signing.Signer(salt="guides.token").sign("never-issued")
    batch = [item(share_token=genuine, object_id="P0"), item(share_token=wrong_key),
             item(share_token=wrong_salt), item(share_token="plain-text"),
             item(share_token=signed_but_never_issued), item(share_token=genuine[:-1] + "x")]
    response = api_client.post(URL, {"events": batch}, format="json")
    refused = {"share_token": ["Not a valid share token."]}
    assert response.json() == {"accepted": 1, "duplicates": 0,
                               "rejected": [{"index": i, "errors": refused} for i in (1, 2, 3, 4, 5)]}
    assert rows() == [("product_view", None, "v-1", "P0", "G-ANN", "")]


@pytest.mark.django_db
def test_a_revoked_share_token_still_attributes_the_guide_because_the_link_is_history(brand, api_client):
    guide = GuideFactory(code="G-OLD", store__brand=brand, store__region__brand=brand)
    token = guide_token_issue(guide=guide)
    guide_token_revoke(token=token)
    office = guide_token_issue(staff_user=staff_user("hq", group=brand.group)).token
    response = api_client.post(URL, {"events": [item(share_token=token.token, object_id="P1"),
                                                item(share_token=office, object_id="P2")]}, format="json")
    assert response.json() == {"accepted": 2, "duplicates": 0, "rejected": []}
    # An office-staff token (all-staff distribution) has no guide: stored, unattributed to a guide.
    assert rows() == [("product_view", None, "v-1", "P1", "G-OLD", ""),
                      ("product_view", None, "v-1", "P2", None, "")]


@pytest.mark.django_db
def test_resending_a_batch_stores_nothing_twice_and_reports_duplicates(brand, api_client):
    batch = [item(client_event_id="c1", object_id="P1"), item(client_event_id="c2", object_id="P2"),
             item(client_event_id="c1", object_id="P1-again"), item(object_id="no-id")]
    first = api_client.post(URL, {"events": batch}, format="json").json()
    assert first == {"accepted": 3, "duplicates": 1, "rejected": []}
    second = api_client.post(URL, {"events": batch + [item(client_event_id="c3", object_id="P3")]},
                             format="json").json()
    # Without a client_event_id the server cannot tell a resend from a new event: stored again.
    assert second == {"accepted": 2, "duplicates": 3, "rejected": []}
    assert rows() == [("product_view", None, "v-1", "P1", None, "c1"),
                      ("product_view", None, "v-1", "P2", None, "c2"),
                      ("product_view", None, "v-1", "no-id", None, ""),
                      ("product_view", None, "v-1", "no-id", None, ""),
                      ("product_view", None, "v-1", "P3", None, "c3")]


@pytest.mark.django_db
def test_client_event_ids_are_unique_per_brand_not_across_brands(brand, api_client):
    BrandFactory(code="MEN", group=brand.group)
    response = api_client.post(URL, {"events": [item(client_event_id="c1"), item(client_event_id="c1", brand="MEN")]},
                               format="json")
    assert response.json() == {"accepted": 2, "duplicates": 0, "rejected": []}


@pytest.mark.parametrize("size", [10, 80])
@pytest.mark.django_db
def test_ingestion_uses_a_fixed_number_of_queries_whatever_the_batch_size(brand, django_assert_num_queries, size):
    guide = GuideFactory(store__brand=brand, store__region__brand=brand)
    tokens = [guide_token_issue(guide=guide).token for _ in range(3)]
    batch = [item(share_token=tokens[i % 3], client_event_id=f"c{i}") for i in range(size)]
    # brands, share tokens, known client ids, then savepoint, one insert, release
    with django_assert_num_queries(6):
        result = event_batch_ingest(items=batch)
    assert (result.accepted, result.duplicates) == (size, 0)


def test_the_service_refuses_more_than_500_items():
    with pytest.raises(ValueError, match="at most 500"):
        event_batch_ingest(items=[{}] * 501)


@pytest.mark.django_db
def test_the_endpoint_is_in_the_openapi_schema(client):
    schema = client.get("/api/schema/", {"format": "json"}).json()
    operation = schema["paths"]["/api/v1/mp/events/"]["post"]
    assert operation["operationId"] == "mp_events_ingest"
    assert operation["security"] == [{"memberToken": []}, {}]  # member token or anonymous
    assert list(operation["requestBody"]["content"]) == ["application/json"]
    assert sorted(schema["components"]["schemas"]["MpEventBatchOut"]["properties"]) == [
        "accepted", "duplicates", "rejected"]


# ---------------------------------------------------------------------------- daily counters

def local(day: int, hour: int, minute: int = 0, second: int = 0) -> str:
    return dt.datetime(2024, 5, day, hour, minute, second, tzinfo=SHANGHAI).isoformat()


@pytest.fixture
def stream(brand):
    """A hand-made stream around local midnight of 1→2 May; returns the two members."""
    men = BrandFactory(code="MEN", group=brand.group)
    ann = MemberFactory(code="ANN", group=brand.group)
    bob = MemberFactory(code="BOB", group=brand.group)
    for member, items in [
        (ann, [item(occurred_at=local(1, 23, 59, 59)),                           # 1 May
               item(occurred_at="2024-05-01T15:59:59Z", kind="favourite"),       # 1 May 23:59:59 local
               item(occurred_at="2024-05-01T16:00:00Z"),                          # 2 May 00:00 local
               item(occurred_at=local(2, 0, 0, 1), kind="share"),
               item(occurred_at=local(2, 9), kind="add_to_cart"),
               item(occurred_at=local(2, 9, 5), kind="order_unpaid", object_type="order"),
               item(occurred_at=local(2, 20), kind="live_watch", brand="MEN"),
               item(occurred_at=local(2, 21), kind="material_view", brand="MEN")]),
        (bob, [item(occurred_at=local(1, 8)), item(occurred_at=local(1, 8, 1)), item(occurred_at=local(1, 8, 2))]),
        (None, [item(occurred_at=local(1, 12)), item(occurred_at=local(2, 12), kind="share")]),  # visitors
    ]:
        result = event_batch_ingest(items=items, member=member, now=NOW)
        assert (result.accepted, result.rejected) == (len(items), [])
    return ann, bob, men


DAY1_2 = [  # member, brand, day, views, favourites, shares, carts, unpaid, live, material
    ("ANN", "LADY", "2024-05-01", 1, 1, 0, 0, 0, 0, 0),
    ("ANN", "LADY", "2024-05-02", 1, 0, 1, 1, 1, 0, 0),
    ("ANN", "MEN", "2024-05-02", 0, 0, 0, 0, 0, 1, 1),
    ("BOB", "LADY", "2024-05-01", 3, 0, 0, 0, 0, 0, 0),
]


@pytest.mark.django_db
def test_daily_counters_split_at_local_midnight_in_shanghai(stream):
    result = activity_summarise(date_from=dt.date(2024, 5, 1), date_to=dt.date(2024, 5, 2))
    assert activity() == DAY1_2
    # brand-days with raw events: LADY 1st, LADY 2nd, MEN 2nd
    assert (result.brand_days, result.rows_deleted, result.rows_written) == (3, 0, 4)


@pytest.mark.django_db
def test_summarising_one_day_leaves_the_other_days_alone(stream):
    activity_summarise(date_from=dt.date(2024, 5, 2), date_to=dt.date(2024, 5, 2))
    assert activity() == [row for row in DAY1_2 if row[2] == "2024-05-02"]


@pytest.mark.django_db
def test_resummarising_is_idempotent_and_picks_up_late_events(stream):
    ann, _bob, _men = stream
    activity_summarise(date_from=dt.date(2024, 5, 1), date_to=dt.date(2024, 5, 2))
    again = activity_summarise(date_from=dt.date(2024, 5, 1), date_to=dt.date(2024, 5, 2))
    assert activity() == DAY1_2
    assert (again.rows_deleted, again.rows_written) == (4, 4)
    event_batch_ingest(items=[item(occurred_at=local(1, 10), kind="favourite")], member=ann, now=NOW)
    activity_summarise(date_from=dt.date(2024, 5, 1), date_to=dt.date(2024, 5, 1))
    expected = list(DAY1_2)
    expected[0] = ("ANN", "LADY", "2024-05-01", 1, 2, 0, 0, 0, 0, 0)
    assert activity() == expected


@pytest.mark.django_db
def test_summarising_one_brand_leaves_other_brands_counters_alone(stream):
    _ann, _bob, men = stream
    activity_summarise(date_from=dt.date(2024, 5, 1), date_to=dt.date(2024, 5, 2))
    MemberDailyActivity.objects.filter(brand__code="LADY").update(product_views=99)
    activity_summarise(date_from=dt.date(2024, 5, 1), date_to=dt.date(2024, 5, 2), brand_id=men.pk)
    assert [row[3] for row in activity()] == [99, 99, 0, 99]


@pytest.mark.django_db
def test_summarise_refuses_a_backwards_range():
    with pytest.raises(ValueError):
        activity_summarise(date_from=dt.date(2024, 5, 2), date_to=dt.date(2024, 5, 1))


# ---------------------------------------------------------------------------- retention

def _put(member, brand_code, occurred_at, kind="product_view"):
    from retail_crm.models import Brand

    return BehaviourEvent(brand=Brand.objects.get(code=brand_code), member=member, visitor_id="" if member else "v",
                          kind=kind, occurred_at=occurred_at)


@pytest.mark.django_db
def test_purge_deletes_old_summarised_days_keeps_unsummarised_ones_and_all_counters(brand):
    ann = MemberFactory(code="ANN", group=brand.group)
    today = local_today()
    tz = timezone.get_default_timezone()

    def at(days_ago, hour=12):
        return dt.datetime.combine(today - dt.timedelta(days=days_ago), dt.time(hour), tzinfo=tz)

    BehaviourEvent.objects.bulk_create([
        _put(ann, "LADY", at(200)), _put(ann, "LADY", at(200, 23)), _put(None, "LADY", at(200)),
        _put(ann, "LADY", at(190)),                         # never summarised: must survive
        _put(ann, "LADY", at(181)),                         # summarised, then a late-counted extra below
        _put(ann, "LADY", at(180)), _put(ann, "LADY", at(10)),  # inside the retention period
    ])
    for days_ago in (200, 181, 180, 10):
        day = today - dt.timedelta(days=days_ago)
        activity_summarise(date_from=day, date_to=day)
    BehaviourEvent.objects.bulk_create([_put(ann, "LADY", at(181, 13), kind="favourite")])  # not in counters
    counters_before = activity()

    result = events_purge()
    d = {n: today - dt.timedelta(days=n) for n in (200, 190, 181, 180, 10)}
    assert result.deleted == 3  # the two member events and the visitor's on day 200
    assert result.cutoff == dt.datetime.combine(d[180], dt.time.min, tzinfo=tz)
    assert result.unsummarised == [(brand.pk, d[190]), (brand.pk, d[181])]
    left = sorted(timezone.localdate(e.occurred_at) for e in BehaviourEvent.objects.all())
    assert left == [d[190], d[181], d[181], d[180], d[10]]
    assert activity() == counters_before
    # Re-summarising a purged day cannot wipe its counters: there are no raw events left to rebuild from.
    activity_summarise(date_from=d[200], date_to=d[200])
    assert ("ANN", "LADY", d[200].isoformat(), 2, 0, 0, 0, 0, 0, 0) in activity()


@pytest.mark.django_db
def test_purge_never_reaches_into_the_ingestion_window(brand):
    with pytest.raises(ValueError, match="at least 31 days"):
        events_purge(days=30)
    # An explicit cut-off later than the retention period is pulled back to it.
    result = events_purge(before=local_today())
    assert result.cutoff.date() == local_today() - dt.timedelta(days=180)


# ---------------------------------------------------------------------------- merging

@pytest.mark.django_db
def test_merge_moves_events_and_adds_counters_of_the_same_day(stream):
    ann, bob, _men = stream
    activity_summarise(date_from=dt.date(2024, 5, 1), date_to=dt.date(2024, 5, 2))
    totals_before = sorted(BehaviourEvent.objects.filter(member__isnull=False).values_list("kind", flat=True))

    moved = member_events_merge(survivor=ann, absorbed=bob)

    assert moved == 3
    assert BehaviourEvent.objects.filter(member=bob).count() == 0
    assert sorted(BehaviourEvent.objects.filter(member=ann).values_list("kind", flat=True)) == totals_before
    assert activity() == [
        ("ANN", "LADY", "2024-05-01", 4, 1, 0, 0, 0, 0, 0),  # 1 + bob's 3 views
        ("ANN", "LADY", "2024-05-02", 1, 0, 1, 1, 1, 0, 0),
        ("ANN", "MEN", "2024-05-02", 0, 0, 0, 0, 0, 1, 1),
    ]
    # The counters still agree with the raw events: a rebuild changes nothing.
    activity_summarise(date_from=dt.date(2024, 5, 1), date_to=dt.date(2024, 5, 2))
    assert activity()[0] == ("ANN", "LADY", "2024-05-01", 4, 1, 0, 0, 0, 0, 0)


@pytest.mark.django_db
def test_merge_moves_counter_rows_the_survivor_lacks(stream):
    ann, bob, _men = stream
    activity_summarise(date_from=dt.date(2024, 5, 1), date_to=dt.date(2024, 5, 2))
    assert member_events_merge(survivor=bob, absorbed=ann) == 8
    assert activity() == [
        ("BOB", "LADY", "2024-05-01", 4, 1, 0, 0, 0, 0, 0),
        ("BOB", "LADY", "2024-05-02", 1, 0, 1, 1, 1, 0, 0),
        ("BOB", "MEN", "2024-05-02", 0, 0, 0, 0, 0, 1, 1),
    ]


# ---------------------------------------------------------------------------- tasks and admin

@pytest.mark.django_db
def test_yesterday_task_also_resummarises_days_that_received_late_events(brand):
    ann = MemberFactory(code="ANN", group=brand.group)
    today = local_today()
    tz = timezone.get_default_timezone()
    yesterday = today - dt.timedelta(days=1)
    five_days_ago = today - dt.timedelta(days=5)
    old = _put(ann, "LADY", dt.datetime.combine(five_days_ago, dt.time(10), tzinfo=tz))
    BehaviourEvent.objects.bulk_create([old])
    # Summarised when it was fresh; then a late event for that day arrives now.
    activity_summarise(date_from=five_days_ago, date_to=five_days_ago)
    BehaviourEvent.objects.filter(pk=old.pk).update(received_at=timezone.now() - dt.timedelta(days=4))
    BehaviourEvent.objects.bulk_create([
        _put(ann, "LADY", dt.datetime.combine(five_days_ago, dt.time(11), tzinfo=tz), kind="share"),
        _put(ann, "LADY", dt.datetime.combine(yesterday, dt.time(9), tzinfo=tz)),
    ])
    out = event_tasks.activity_summarise_yesterday.delay().get()
    assert out == {"date_from": yesterday.isoformat(), "date_to": yesterday.isoformat(), "brand_days": 1,
                   "rows_written": 1, "late_days": [five_days_ago.isoformat()]}
    assert activity() == [("ANN", "LADY", five_days_ago.isoformat(), 1, 0, 1, 0, 0, 0, 0),
                          ("ANN", "LADY", yesterday.isoformat(), 1, 0, 0, 0, 0, 0, 0)]
    # Twice is the same as once.
    event_tasks.activity_summarise_yesterday.delay().get()
    event_tasks.activity_summarise_today.delay().get()
    assert len(activity()) == 2


@pytest.mark.django_db
def test_task_names_are_registered():
    from retail_crm.celery import app

    names = set(app.tasks)
    assert {"members.tasks.activity_summarise_range", "members.tasks.activity_summarise_yesterday",
            "members.tasks.activity_summarise_today", "members.tasks.events_purge"} <= names
    assert event_tasks.events_purge.delay().get()["deleted"] == 0
    assert event_tasks.activity_summarise_range.delay("2024-05-01", "2024-05-02").get() == {
        "date_from": "2024-05-01", "date_to": "2024-05-02", "brand_days": 0, "rows_written": 0}


@pytest.mark.django_db
def test_admin_shows_events_and_counters_read_only(stream, client):
    client.force_login(staff_user("hq", group=stream[0].group))
    for model in ("behaviourevent", "memberdailyactivity"):
        assert client.get(f"/admin/members/{model}/").status_code == 200
        assert client.get(f"/admin/members/{model}/add/").status_code == 403
    event = BehaviourEvent.objects.first()
    response = client.post(f"/admin/members/behaviourevent/{event.pk}/change/", {"kind": "share"})
    assert response.status_code == 403
    assert BehaviourEvent.objects.get(pk=event.pk).kind == event.kind


# ---------------------------------------------------------------------------- concurrency (PostgreSQL)

@pytest.mark.skipif(settings.DATABASES["default"]["ENGINE"].endswith("sqlite3"),
                    reason="concurrency tests need PostgreSQL (set DATABASE_URL)")
@pytest.mark.django_db(transaction=True)
def test_the_same_batch_sent_four_times_at_once_is_stored_once_with_exact_counts():
    brand = BrandFactory(code="LADY", group=RetailGroupFactory(code="grp"))
    batch = [item(client_event_id=f"c{i}", object_id=f"P{i}") for i in range(50)]
    barrier = threading.Barrier(4)

    def send() -> BatchResult:
        try:
            barrier.wait(timeout=10)
            return event_batch_ingest(items=batch)
        finally:
            connection.close()

    with ThreadPoolExecutor(max_workers=4) as pool:
        results = [f.result(timeout=60) for f in [pool.submit(send) for _ in range(4)]]
    assert sum(r.accepted for r in results) == 50
    assert sum(r.duplicates for r in results) == 150
    assert all(r.rejected == [] for r in results)
    assert BehaviourEvent.objects.filter(brand=brand).count() == 50
