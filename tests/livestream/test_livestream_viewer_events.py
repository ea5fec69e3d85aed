"""livestream.viewer_events.viewer_events_ingest: per-item validation, duplicates, anonymous vs member
viewers, the session's acceptance window and the whole-batch refusals (409)."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import pytest
from django.conf import settings

from livestream.models import LiveSession, ViewerEvent
from livestream.services import session_cancel, session_end, session_start
from livestream.viewer_events import viewer_events_ingest
from retail_crm.errors import ApplicationError
from retail_crm.ingestion import BatchResult, RejectedItem
from tests.factories import MemberFactory
from tests.factories_payments import ProductFactory
from tests.livestream.test_livestream_schedule import make_org, plan
from tests.members.test_member_concurrency import run_at_once

pytestmark = pytest.mark.django_db

SH = ZoneInfo("Asia/Shanghai")


def t(hour: int, minute: int = 0, second: int = 0, day: int = 4) -> dt.datetime:
    return dt.datetime(2024, 3, day, hour, minute, second, tzinfo=SH)


def iso(value: dt.datetime) -> str:
    return value.isoformat()


@pytest.fixture
def org():
    return make_org()


@pytest.fixture
def session(org):
    """Store session planned 19:00–21:00 (Shanghai) on 2024-03-04, with two products shown."""
    p1, p2 = ProductFactory(brand=org.brand), ProductFactory(brand=org.brand)
    s = plan(org, t(19), t(21), product_ids=[p1.pk, p2.pk])
    s.shown = (p1, p2)
    return s


def ev(kind="join", at=None, **kw):
    item = {"kind": kind, "occurred_at": iso(at or t(19, 30))}
    item.update(kw)
    return item


def rows(session=None):
    qs = ViewerEvent.objects.order_by("pk")
    if session is not None:
        qs = qs.filter(session=session)
    return [(e.viewer_id, e.member_id, e.kind, e.occurred_at, e.product_id, e.client_event_id) for e in qs]


NOW = t(20)


def test_member_events_are_the_members_and_item_viewer_ids_are_ignored(session):
    member = MemberFactory(code="M-ANN", group=session.brand.group)
    p1 = session.shown[0]
    result = viewer_events_ingest(session=session, member=member, now=NOW, items=[
        ev("join", t(19, 1), client_event_id="c1", viewer_id="someone-else"),
        ev("like", t(19, 2)),
        ev("product_click", t(19, 3), product_id=p1.pk, client_event_id="c2"),
        ev("leave", t(19, 4)),
    ])
    assert result == BatchResult(accepted=4, duplicates=0, rejected=[])
    assert rows() == [("M-ANN", member.pk, "join", t(19, 1), None, "c1"),
                      ("M-ANN", member.pk, "like", t(19, 2), None, ""),
                      ("M-ANN", member.pk, "product_click", t(19, 3), p1.pk, "c2"),
                      ("M-ANN", member.pk, "leave", t(19, 4), None, "")]
    assert set(ViewerEvent.objects.values_list("received_at", flat=True)) == {NOW}


def test_anonymous_viewers_need_a_viewer_id_stored_with_a_prefix(session):
    result = viewer_events_ingest(session=session, now=NOW, items=[
        ev(viewer_id="wx-anon-1"), ev(), ev(viewer_id=""), ev(viewer_id="  "), ev(viewer_id="x" * 59),
        ev(viewer_id="x" * 60), ev(viewer_id=7), ev(viewer_id="M-ANN")])
    required = {"viewer_id": ["This field is required."]}
    assert result == BatchResult(accepted=3, duplicates=0, rejected=[
        RejectedItem(1, required), RejectedItem(2, required), RejectedItem(3, required),
        RejectedItem(5, {"viewer_id": ["Ensure this field has no more than 59 characters."]}),
        RejectedItem(6, {"viewer_id": ["Expected a string."]})])
    # An anonymous id can never pose as a member code: "M-ANN" sent anonymously is "anon:M-ANN".
    assert [r[:2] for r in rows()] == [("anon:wx-anon-1", None), ("anon:" + "x" * 59, None), ("anon:M-ANN", None)]


def test_resent_client_ids_are_duplicates_per_session_not_errors(org, session):
    other = plan(org, t(19), t(21), store=org.store_b)
    batch = [ev(viewer_id="v1", client_event_id="a"), ev("like", viewer_id="v1", client_event_id="b"),
             ev("like", viewer_id="v1", client_event_id="b"), ev("like", viewer_id="v1")]
    assert viewer_events_ingest(session=session, items=batch, now=NOW) == BatchResult(3, 1, [])
    # The whole batch again: the two keyed events are known, the unkeyed one is stored again.
    assert viewer_events_ingest(session=session, items=batch, now=NOW) == BatchResult(1, 3, [])
    # Client ids are unique per session: the same ids in another session are new events.
    assert viewer_events_ingest(session=other, items=batch[:2], now=NOW) == BatchResult(2, 0, [])
    assert ViewerEvent.objects.filter(session=session).count() == 4
    assert sorted(ViewerEvent.objects.filter(session=session).values_list("client_event_id", flat=True)) == [
        "", "", "a", "b"]


def test_bad_items_are_reported_by_index_and_the_rest_stored(session):
    p1 = session.shown[0]
    outsider = ProductFactory(brand=session.brand)
    items = [
        ev(viewer_id="v"),  # 0 fine
        "not an object",  # 1
        {"occurred_at": iso(t(19, 30)), "viewer_id": "v"},  # 2 no kind
        ev("wave", viewer_id="v"),  # 3
        ev(viewer_id="v", occurred_at="yesterday"),  # 4
        ev(viewer_id="v", occurred_at=1709550000),  # 5
        ev(viewer_id="v", occurred_at=iso(NOW + dt.timedelta(minutes=6))),  # 6 future
        ev(viewer_id="v", occurred_at=iso(t(17, 59, 59))),  # 7 before the lobby opens (18:00)
        ev("product_click", viewer_id="v"),  # 8 no product
        ev("product_click", viewer_id="v", product_id=outsider.pk),  # 9 not shown in the session
        ev("product_click", viewer_id="v", product_id="12"),  # 10
        ev("product_click", viewer_id="v", product_id=True),  # 11
        ev("like", viewer_id="v", product_id=p1.pk),  # 12 product on a like
        ev(viewer_id="v", client_event_id="x" * 65),  # 13
        ev(viewer_id="v\x00", client_event_id="a\x00"),  # 14
        ev("product_click", viewer_id="v", product_id=p1.pk, occurred_at=iso(t(18))),  # 15 fine, in the lobby
        {},  # 16
    ]
    result = viewer_events_ingest(session=session, items=items, now=NOW)
    window = "Outside the session's window (2024-03-04T18:00:00+08:00 to 2024-03-04T22:00:00+08:00)."
    assert result == BatchResult(accepted=2, duplicates=0, rejected=[
        RejectedItem(1, {"non_field_errors": ["Expected an object."]}),
        RejectedItem(2, {"kind": ["This field is required."]}),
        RejectedItem(3, {"kind": ['"wave" is not a valid choice.']}),
        RejectedItem(4, {"occurred_at": ["Not a valid ISO 8601 date-time."]}),
        RejectedItem(5, {"occurred_at": ["Expected an ISO 8601 date-time string."]}),
        RejectedItem(6, {"occurred_at": ["Lies in the future (more than 5 minutes ahead of the server clock)."]}),
        RejectedItem(7, {"occurred_at": [window]}),
        RejectedItem(8, {"product_id": ["This field is required."]}),
        RejectedItem(9, {"product_id": ["Not a product shown in this session."]}),
        RejectedItem(10, {"product_id": ["A valid product id is required."]}),
        RejectedItem(11, {"product_id": ["A valid product id is required."]}),
        RejectedItem(12, {"product_id": ["Only product_click events name a product."]}),
        RejectedItem(13, {"client_event_id": ["Ensure this field has no more than 64 characters."]}),
        RejectedItem(14, {"client_event_id": ["Null characters are not allowed."],
                          "viewer_id": ["Null characters are not allowed."]}),
        RejectedItem(16, {"kind": ["This field is required."], "occurred_at": ["This field is required."],
                          "viewer_id": ["This field is required."]}),
    ])
    assert rows() == [("anon:v", None, "join", t(19, 30), None, ""),
                      ("anon:v", None, "product_click", t(18), p1.pk, "")]


def test_naive_times_are_local(session):
    viewer_events_ingest(session=session, items=[ev(viewer_id="v", occurred_at="2024-03-04T19:05:00")], now=NOW)
    assert ViewerEvent.objects.get().occurred_at == t(19, 5)


def test_the_window_follows_the_actual_times(org, session):
    """Started early at 18:30, ended late at 21:40: events from 17:30 to 22:40 are taken."""
    session_start(session, t(18, 30))
    session_end(session, t(21, 40))
    session.refresh_from_db()
    result = viewer_events_ingest(session=session, now=t(23), items=[
        ev(viewer_id="v", occurred_at=iso(t(17, 30))), ev(viewer_id="v", occurred_at=iso(t(22, 40))),
        ev(viewer_id="v", occurred_at=iso(t(17, 29, 59))), ev(viewer_id="v", occurred_at=iso(t(22, 40, 1)))])
    window = ["Outside the session's window (2024-03-04T17:30:00+08:00 to 2024-03-04T22:40:00+08:00)."]
    assert result == BatchResult(2, 0, [RejectedItem(2, {"occurred_at": window}),
                                        RejectedItem(3, {"occurred_at": window})])


def test_a_live_session_has_no_end_yet(session):
    session_start(session, t(19))
    session.refresh_from_db()
    late = t(23, 30)  # long past the planned end (21:00 + 1 h), still live
    result = viewer_events_ingest(session=session, items=[ev(viewer_id="v", occurred_at=iso(late))], now=late)
    assert result == BatchResult(1, 0, [])


def refused(session, now) -> tuple[int, str, str]:
    with pytest.raises(ApplicationError) as e:
        viewer_events_ingest(session=session, items=[ev(viewer_id="v")], now=now)
    assert ViewerEvent.objects.count() == 0
    return e.value.status, e.value.code, e.value.message


def test_a_cancelled_session_refuses_the_batch(session):
    session_cancel(session)
    session.refresh_from_db()
    assert refused(session, NOW) == (409, "session_cancelled",
                                     f"Session #{session.pk} was cancelled; it takes no viewer events.")


def test_before_the_lobby_opens_the_batch_is_refused(session):
    # Opens at 18:00; a phone up to 5 minutes fast is tolerated.
    assert refused(session, t(17, 54, 59)) == (
        409, "session_not_open", f"Session #{session.pk} opens for viewers at 2024-03-04T18:00:00+08:00.")
    result = viewer_events_ingest(session=session, items=[ev(viewer_id="v", occurred_at=iso(t(18)))],
                                  now=t(17, 55))
    assert result == BatchResult(1, 0, [])


def test_offline_queued_batches_are_taken_for_a_day_after_the_window_closes(session):
    session_start(session, t(19))
    session_end(session, t(21))
    session.refresh_from_db()
    # Window closes 22:00; queued batches are taken until 22:00 the next day.
    result = viewer_events_ingest(session=session, items=[ev(viewer_id="v", occurred_at=iso(t(20)))],
                                  now=t(22, day=5))
    assert result == BatchResult(1, 0, [])
    ViewerEvent.objects.all().delete()
    assert refused(session, t(22, 0, 1, day=5)) == (
        409, "session_closed", f"Session #{session.pk} closed for viewer events at 2024-03-05T22:00:00+08:00.")


def test_a_session_that_never_started_closes_after_its_planned_end(session):
    assert session.status == LiveSession.Status.PLANNED
    assert refused(session, t(22, 0, 1, day=5))[1] == "session_closed"


def test_more_than_500_items_is_a_value_error(session):
    with pytest.raises(ValueError, match="at most 500"):
        viewer_events_ingest(session=session, items=[ev(viewer_id="v")] * 501, now=NOW)


def test_a_batch_costs_a_fixed_number_of_queries(session, django_assert_num_queries):
    p1 = session.shown[0]
    items = [ev("product_click" if i % 2 else "like", viewer_id=f"v{i}", client_event_id=f"c{i}",
                product_id=p1.pk if i % 2 else None) for i in range(100)]
    # products shown, known client ids, savepoint + insert + release
    with django_assert_num_queries(5):
        result = viewer_events_ingest(session=session, items=items, now=NOW)
    assert result == BatchResult(100, 0, [])


@pytest.mark.skipif(settings.DATABASES["default"]["ENGINE"].endswith("sqlite3"),
                    reason="concurrency tests need PostgreSQL (set DATABASE_URL)")
@pytest.mark.django_db(transaction=True)
def test_the_same_batch_resent_by_five_threads_at_once_is_stored_once(session):
    """The look-up cannot see rows other threads have not committed; the unique constraint stops the losers'
    inserts and their retry reports exact counts: 40 stored in all, every other copy a duplicate."""
    batch = [ev("like", viewer_id=f"v{i}", client_event_id=f"c{i}") for i in range(40)]
    results = run_at_once([lambda: viewer_events_ingest(session=session, items=batch, now=NOW) for _ in range(5)])
    assert [kind for kind, _ in results] == ["ok"] * 5
    assert sum(r.accepted for _, r in results) == 40
    assert sum(r.duplicates for _, r in results) == 160
    assert all(r.accepted in (0, 40) and not r.rejected for _, r in results)  # a batch is one insert: all or none
    assert ViewerEvent.objects.count() == 40
