"""livestream.phases: brand targets per phase, a store's phase, and its month's progress, figures worked out by hand.

The world (brand A, month March 2024 in Shanghai time, i.e. [2024-03-01 00:00+08, 2024-04-01 00:00+08)):

    region R1: store SA (phase 2, guides GA host / GA2), store SB (never moved: phase 1), store SD (no sessions)
    region R2: store SC (phase 3: no targets set for it)
    brand targets: phase 1 = 4 sessions, 6.0 h; phase 2 = 4 sessions, 6.0 h, 5,000.00 sales, 0.05 conversion

SA's sessions (local times; stats = viewers / buyers / paid sales):

    s1   ended  03-02 19:00–21:00   2.00 h   200 / 12 / 2,400.00   notes: rating 4
    s2   ended  03-09 19:00–20:30   1.50 h   150 /  6 / 1,350.50   notes: rating 3, no rating
    s3   ended  03-31 23:30–04-01 00:45   1.25 h   50 / 2 / 99.50  (starts in March: counts for March)
    s4   ended  planned 02-29 23:30, actually 03-01 00:05–00:50   0.75 h   100 / 0 / 0.00
                (held in March, but planned in February: not in March's planned count)
    s10  ended  03-15 19:00–20:00   1.00 h   no stats yet (the job has not run): viewers, buyers, sales 0
    s5   cancelled 03-20           (neither planned nor held)
    s6   planned 03-28 19:00–21:00 (planned, not held)
    s7   ended  02-28 19:00–20:00  (February)   notes: rating 1 (not March's)
    s8   ended  04-01 00:00–01:00  (April)
    hq   HQ central session 03-02 (not a store session)

So for March: planned = s1 s2 s3 s6 s10 = 5; held = s1 s2 s3 s4 s10 = 5; hours = 2 + 1.5 + 1.25 + 0.75 + 1 = 6.50;
sales = 2,400.00 + 1,350.50 + 99.50 + 0 = 3,850.00; viewers 500, buyers 20, conversion 20 ÷ 500 = 0.0400;
notes 3 with average rating (4 + 3) ÷ 2 = 3.50. Against phase 2: sessions 5 ÷ 4 = 1.25 met; hours 6.50 ÷ 6.0 =
1.0833 met; sales 3,850.00 ÷ 5,000.00 = 0.77 not met; conversion 0.0400 ÷ 0.05 = 0.8 not met.

SB: ended 03-05 19:00–23:00 (4 h, 80 / 4 / 800.00) and 03-12 19:00–21:30 (2.5 h, no stats): held 2, hours 6.50,
sales 800.00, conversion 4 ÷ 80 = 0.0500. Against phase 1: sessions 2 ÷ 4 = 0.5 not met; hours 6.50 ÷ 6.0 met.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest

from livestream.models import CoachingNote, LivePhaseTarget, LiveSession, SessionStats, StoreLivePhase
from livestream.phases import (
    PhaseTargetInput,
    TargetProgress,
    brand_store_progress,
    phase_targets_for_brand,
    phase_targets_set,
    store_phase_get,
    store_phase_set,
    store_progress,
)
from retail_crm.errors import ApplicationError
from tests.factories import BrandFactory, GuideFactory, RegionFactory, RetailGroupFactory, StoreFactory, staff_user

pytestmark = pytest.mark.django_db

SH = ZoneInfo("Asia/Shanghai")
MARCH = dt.date(2024, 3, 1)
D = Decimal


def local(month: int, day: int, hour: int, minute: int = 0) -> dt.datetime:
    return dt.datetime(2024, month, day, hour, minute, tzinfo=SH)


def session(world, store, *, planned, actual=None, status=LiveSession.Status.ENDED, guide=None, stats=None,
            kind=LiveSession.Kind.STORE, title="live"):
    """A session with its planned (and actual) times; ``stats`` = (viewers, buyers, paid sales)."""
    actual_start, actual_end = actual if actual else (None, None)
    s = LiveSession.objects.create(brand=world.brand, kind=kind, title=title, host_store=store, host_guide=guide,
                                   status=status, planned_start=planned[0], planned_end=planned[1],
                                   actual_start=actual_start, actual_end=actual_end)
    if stats:
        viewers, buyers, sales = stats
        SessionStats.objects.create(session=s, viewers=viewers, buyers=buyers, paid_sales=D(sales))
    return s


def build_world():
    """The world of the module docstring (plain function: the KPI API tests build it too)."""
    w = type("World", (), {})()
    w.group = RetailGroupFactory()
    w.brand = BrandFactory(group=w.group, code="A")
    w.other_brand = BrandFactory(group=w.group, code="B")
    w.r1, w.r2 = RegionFactory(brand=w.brand, code="R1"), RegionFactory(brand=w.brand, code="R2")
    w.sa = StoreFactory(region=w.r1, code="SA", name="Store A")
    w.sb = StoreFactory(region=w.r1, code="SB", name="Store B")
    w.sd = StoreFactory(region=w.r1, code="SD", name="Store D")
    w.sc = StoreFactory(region=w.r2, code="SC", name="Store C")
    w.ga = GuideFactory(store=w.sa, code="GA")
    w.ga2 = GuideFactory(store=w.sa, code="GA2")
    w.gc = GuideFactory(store=w.sc, code="GC")
    w.hq = staff_user("hq", group=w.group, username="hq")
    LivePhaseTarget.objects.create(brand=w.brand, phase=1, sessions_per_month=4, hours_per_month=D("6.0"))
    LivePhaseTarget.objects.create(brand=w.brand, phase=2, sessions_per_month=4, hours_per_month=D("6.0"),
                                   sales_per_month=D("5000.00"), conversion=D("0.05"))
    StoreLivePhase.objects.create(store=w.sa, phase=2, since=dt.date(2024, 2, 1))
    StoreLivePhase.objects.create(store=w.sc, phase=3, since=dt.date(2024, 1, 15))

    w.s1 = session(w, w.sa, planned=(local(3, 2, 19), local(3, 2, 21)), actual=(local(3, 2, 19), local(3, 2, 21)),
                   guide=w.ga, stats=(200, 12, "2400.00"))
    w.s2 = session(w, w.sa, planned=(local(3, 9, 19), local(3, 9, 21)),
                   actual=(local(3, 9, 19), local(3, 9, 20, 30)), guide=w.ga2, stats=(150, 6, "1350.50"))
    w.s3 = session(w, w.sa, planned=(local(3, 31, 23, 30), local(4, 1, 1)),
                   actual=(local(3, 31, 23, 30), local(4, 1, 0, 45)), stats=(50, 2, "99.50"))
    w.s4 = session(w, w.sa, planned=(local(2, 29, 23, 30), local(3, 1, 1)),
                   actual=(local(3, 1, 0, 5), local(3, 1, 0, 50)), stats=(100, 0, "0.00"))
    w.s10 = session(w, w.sa, planned=(local(3, 15, 19), local(3, 15, 20)),
                    actual=(local(3, 15, 19), local(3, 15, 20)))
    w.s5 = session(w, w.sa, planned=(local(3, 20, 19), local(3, 20, 21)), status=LiveSession.Status.CANCELLED)
    w.s6 = session(w, w.sa, planned=(local(3, 28, 19), local(3, 28, 21)), status=LiveSession.Status.PLANNED)
    w.s7 = session(w, w.sa, planned=(local(2, 28, 19), local(2, 28, 20)),
                   actual=(local(2, 28, 19), local(2, 28, 20)), stats=(999, 99, "9999.00"))
    w.s8 = session(w, w.sa, planned=(local(4, 1, 0), local(4, 1, 1)), actual=(local(4, 1, 0), local(4, 1, 1)),
                   stats=(999, 99, "9999.00"))
    w.hq_session = session(w, None, kind=LiveSession.Kind.HQ_CENTRAL, planned=(local(3, 2, 19), local(3, 2, 21)),
                           actual=(local(3, 2, 19), local(3, 2, 21)), stats=(5000, 300, "90000.00"))
    session(w, w.sb, planned=(local(3, 5, 19), local(3, 5, 23)), actual=(local(3, 5, 19), local(3, 5, 23)),
            stats=(80, 4, "800.00"))
    session(w, w.sb, planned=(local(3, 12, 19), local(3, 12, 22)), actual=(local(3, 12, 19), local(3, 12, 21, 30)))
    session(w, w.sc, planned=(local(3, 6, 19), local(3, 6, 20)), actual=(local(3, 6, 19), local(3, 6, 20)),
            stats=(10, 1, "100.00"))
    CoachingNote.objects.create(session=w.s1, aspect="script", text="Open with the new arrivals", rating=4)
    CoachingNote.objects.create(session=w.s2, aspect="delivery", text="Slow down", rating=3)
    CoachingNote.objects.create(session=w.s2, aspect="set", text="More light on the rail")
    CoachingNote.objects.create(session=w.s7, aspect="set", text="February", rating=1)
    return w


def role_user(world, role: str):
    """A login of ``role`` scoped to the brand, region R1, store SA or guide GA of the world."""
    scope = {"hq": {"group": world.group}, "brand_operator": {"brand": world.brand},
             "region_manager": {"brand": world.brand, "region": world.r1},
             "store_manager": {"brand": world.brand, "region": world.r1, "store": world.sa},
             "guide": {"brand": world.brand, "region": world.r1, "store": world.sa, "guide": world.ga}}[role]
    return staff_user(role, **scope)


@pytest.fixture
def world():
    return build_world()


def figures(p):
    return (p.store_code, p.month, p.phase, p.phase_since, p.sessions_planned, p.sessions_held, p.hours_live,
            p.live_sales, p.viewers, p.buyers, p.conversion, p.coaching_notes, p.average_rating, p.all_met)


SA_TARGETS = (
    TargetProgress("sessions", D("4"), D("5"), D("1.2500"), True),
    TargetProgress("hours", D("6.0"), D("6.50"), D("1.0833"), True),
    TargetProgress("sales", D("5000.00"), D("3850.00"), D("0.7700"), False),
    TargetProgress("conversion", D("0.0500"), D("0.0400"), D("0.8000"), False),
)


# ---------------------------------------------------------------------------- progress

def test_store_progress_against_phase_two_targets(world):
    p = store_progress(store=world.sa, month=MARCH, actor=world.hq)

    assert figures(p) == ("SA", MARCH, 2, dt.date(2024, 2, 1), 5, 5, D("6.50"), D("3850.00"), 500, 20, D("0.0400"),
                          3, D("3.50"), False)
    assert p.targets == SA_TARGETS


def test_any_day_of_the_month_means_that_month(world):
    assert store_progress(store=world.sa, month=dt.date(2024, 3, 17), actor=world.hq).targets == SA_TARGETS


def test_store_never_moved_is_in_phase_one_judged_on_sessions_and_hours(world):
    p = store_progress(store=world.sb, month=MARCH, actor=world.hq)

    assert figures(p) == ("SB", MARCH, 1, None, 2, 2, D("6.50"), D("800.00"), 80, 4, D("0.0500"), 0, None, False)
    assert p.targets == (TargetProgress("sessions", D("4"), D("2"), D("0.5000"), False),
                         TargetProgress("hours", D("6.0"), D("6.50"), D("1.0833"), True))


def test_store_without_sessions_has_zero_progress(world):
    p = store_progress(store=world.sd, month=MARCH, actor=world.hq)

    assert figures(p) == ("SD", MARCH, 1, None, 0, 0, D("0.00"), D("0.00"), 0, 0, None, 0, None, False)
    assert p.targets == (TargetProgress("sessions", D("4"), D("0"), D("0.0000"), False),
                         TargetProgress("hours", D("6.0"), D("0.00"), D("0.0000"), False))


def test_a_phase_without_targets_judges_nothing(world):
    p = store_progress(store=world.sc, month=MARCH, actor=world.hq)

    assert figures(p) == ("SC", MARCH, 3, dt.date(2024, 1, 15), 1, 1, D("1.00"), D("100.00"), 10, 1, D("0.1000"),
                          0, None, None)
    assert p.targets == ()


def test_conversion_below_target_when_there_are_no_viewers(world):
    LivePhaseTarget.objects.filter(brand=world.brand, phase=1).update(conversion=D("0.02"))

    p = store_progress(store=world.sd, month=MARCH, actor=world.hq)

    assert p.targets[-1] == TargetProgress("conversion", D("0.0200"), None, None, False)


def test_meeting_every_target_sets_all_met(world):
    LivePhaseTarget.objects.filter(brand=world.brand, phase=2).update(sales_per_month=D("3850.00"),
                                                                      conversion=D("0.04"))

    p = store_progress(store=world.sa, month=MARCH, actor=world.hq)

    assert [(t.measure, t.ratio, t.met) for t in p.targets] == [
        ("sessions", D("1.2500"), True), ("hours", D("1.0833"), True), ("sales", D("1.0000"), True),
        ("conversion", D("1.0000"), True)]
    assert p.all_met is True


def test_april_counts_what_started_in_april(world):
    p = store_progress(store=world.sa, month=dt.date(2024, 4, 1), actor=world.hq)

    # s8 (00:00–01:00 on 04-01, 999 / 99 / 9,999.00); s3 started on 03-31 and stays in March.
    assert figures(p)[4:11] == (1, 1, D("1.00"), D("9999.00"), 999, 99, D("0.0991"))


def test_brand_list_gives_every_store_with_phase_and_progress(world):
    rows = brand_store_progress(brand=world.brand, month=MARCH, actor=world.hq)

    assert [(r.store_code, r.phase, r.sessions_held, r.hours_live, r.live_sales, r.all_met) for r in rows] == [
        ("SA", 2, 5, D("6.50"), D("3850.00"), False),
        ("SB", 1, 2, D("6.50"), D("800.00"), False),
        ("SC", 3, 1, D("1.00"), D("100.00"), None),
        ("SD", 1, 0, D("0.00"), D("0.00"), False),
    ]
    assert rows[0].targets == SA_TARGETS


def test_brand_list_takes_a_fixed_number_of_queries(world, django_assert_max_num_queries):
    with django_assert_max_num_queries(9):
        brand_store_progress(brand=world.brand, month=MARCH, actor=world.hq)


# ---------------------------------------------------------------------------- scope

def test_region_manager_sees_only_their_regions_stores(world):
    manager = role_user(world, "region_manager")

    rows = brand_store_progress(brand=world.brand, month=MARCH, actor=manager)

    assert [r.store_code for r in rows] == ["SA", "SB", "SD"]
    with pytest.raises(ApplicationError) as raised:
        store_progress(store=world.sc, month=MARCH, actor=manager)
    assert (raised.value.status, raised.value.message) == (404, "No such store.")


def test_store_manager_sees_their_store_only(world):
    manager = role_user(world, "store_manager")

    assert figures(store_progress(store=world.sa, month=MARCH, actor=manager))[4:11] == (
        5, 5, D("6.50"), D("3850.00"), 500, 20, D("0.0400"))
    assert [r.store_code for r in brand_store_progress(brand=world.brand, month=MARCH, actor=manager)] == ["SA"]
    with pytest.raises(ApplicationError) as raised:
        store_progress(store=world.sb, month=MARCH, actor=manager)
    assert raised.value.status == 404


def test_a_guide_sees_the_figures_of_the_sessions_they_hosted(world):
    guide = role_user(world, "guide")

    p = store_progress(store=world.sa, month=MARCH, actor=guide)

    assert figures(p) == ("SA", MARCH, 2, dt.date(2024, 2, 1), 1, 1, D("2.00"), D("2400.00"), 200, 12, D("0.0600"),
                          1, D("4.00"), False)


def test_other_brand_operator_gets_404(world):
    outsider = staff_user("brand_operator", brand=world.other_brand)

    for call in (lambda: store_progress(store=world.sa, month=MARCH, actor=outsider),
                 lambda: brand_store_progress(brand=world.brand, month=MARCH, actor=outsider),
                 lambda: phase_targets_for_brand(brand=world.brand, actor=outsider),
                 lambda: store_phase_get(store=world.sa, actor=outsider)):
        with pytest.raises(ApplicationError) as raised:
            call()
        assert raised.value.status == 404


# ---------------------------------------------------------------------------- targets

def test_targets_read_all_three_phases_with_zeros_for_unset(world):
    targets = phase_targets_for_brand(brand=world.brand, actor=world.hq)

    assert [(t.phase, t.sessions_per_month, t.hours_per_month, t.sales_per_month, t.conversion, t.pk is None)
            for t in targets] == [
        (1, 4, D("6.0"), D("0.00"), D("0.0000"), False),
        (2, 4, D("6.0"), D("5000.00"), D("0.0500"), False),
        (3, 0, 0, 0, 0, True),
    ]


def test_brand_operator_sets_targets_of_the_phases_given(world):
    operator = staff_user("brand_operator", brand=world.brand)

    phase_targets_set(brand=world.brand, actor=operator, targets=[
        PhaseTargetInput(phase=3, sessions_per_month=8, hours_per_month=D("16.0"), sales_per_month=D("20000.00"),
                         conversion=D("0.06")),
        PhaseTargetInput(phase=1, sessions_per_month=6, hours_per_month=D("9.5"))])

    assert list(LivePhaseTarget.objects.filter(brand=world.brand).order_by("phase").values_list(
        "phase", "sessions_per_month", "hours_per_month", "sales_per_month", "conversion")) == [
        (1, 6, D("9.5"), D("0.00"), D("0.0000")),
        (2, 4, D("6.0"), D("5000.00"), D("0.0500")),
        (3, 8, D("16.0"), D("20000.00"), D("0.0600")),
    ]


@pytest.mark.parametrize(("targets", "field", "message"), [
    ([], "targets", "Give the targets of at least one phase."),
    ([PhaseTargetInput(phase=4)], "targets.0.phase", "Unknown phase 4; phases are 1, 2 and 3."),
    ([PhaseTargetInput(phase=1), PhaseTargetInput(phase=1)], "targets.1.phase", "Phase 1 is given twice."),
    ([PhaseTargetInput(phase=2, sales_per_month=D("-1"))], "targets.0.sales_per_month", "Must be 0 or more."),
    ([PhaseTargetInput(phase=2, conversion=D("1.5"))], "targets.0.conversion",
     "A conversion rate is at most 1 (100%)."),
])
def test_bad_targets_are_400_and_change_nothing(world, targets, field, message):
    before = list(LivePhaseTarget.objects.values_list("phase", "sessions_per_month", "sales_per_month"))

    with pytest.raises(ApplicationError) as raised:
        phase_targets_set(brand=world.brand, targets=targets, actor=world.hq)

    assert (raised.value.status, raised.value.fields) == (400, {field: [message]})
    assert list(LivePhaseTarget.objects.values_list("phase", "sessions_per_month", "sales_per_month")) == before


@pytest.mark.parametrize("role", ["region_manager", "store_manager", "guide"])
def test_only_hq_and_brand_operators_set_targets_and_phases(world, role):
    user = role_user(world, role)

    for call in (lambda: phase_targets_set(brand=world.brand, targets=[PhaseTargetInput(phase=1)], actor=user),
                 lambda: store_phase_set(store=world.sa, phase=3, actor=user)):
        with pytest.raises(ApplicationError) as raised:
            call()
        assert (raised.value.status, raised.value.code) == (403, "permission_denied")
    assert StoreLivePhase.objects.get(store=world.sa).phase == 2
    assert LivePhaseTarget.objects.get(brand=world.brand, phase=1).hours_per_month == D("6.0")


# ---------------------------------------------------------------------------- a store's phase

def test_store_phase_defaults_to_phase_one_until_moved(world):
    before = store_phase_get(store=world.sb, actor=world.hq)

    moved = store_phase_set(store=world.sb, phase=2, since=dt.date(2024, 3, 10), actor=world.hq)

    assert (before.phase, before.since, before.pk) == (1, None, None)
    assert (moved.phase, moved.since, moved.updated_by_id) == (2, dt.date(2024, 3, 10), world.hq.pk)
    assert store_progress(store=world.sb, month=MARCH, actor=world.hq).phase == 2


def test_setting_the_same_phase_keeps_since_and_a_new_phase_starts_today(world, monkeypatch):
    kept = store_phase_set(store=world.sa, phase=2, actor=world.hq)
    assert (kept.phase, kept.since) == (2, dt.date(2024, 2, 1))

    monkeypatch.setattr("livestream.phases.timezone.localdate", lambda: dt.date(2024, 3, 20))
    moved = store_phase_set(store=world.sa, phase=3, actor=world.hq)

    assert (moved.phase, moved.since) == (3, dt.date(2024, 3, 20))
    assert StoreLivePhase.objects.filter(store=world.sa).count() == 1


def test_unknown_phase_is_400(world):
    with pytest.raises(ApplicationError) as raised:
        store_phase_set(store=world.sa, phase=0, actor=world.hq)
    assert (raised.value.status, raised.value.fields) == (400, {"phase": ["Unknown phase 0; phases are 1, 2 and 3."]})


# ---------------------------------------------------------------------------- the admin

def _admin_client(user):
    from django.test import Client

    user.is_staff = True
    user.save()
    client = Client(HTTP_ACCEPT_LANGUAGE="en")
    client.force_login(user)
    return client


def test_admin_targets_and_store_phases_are_scoped_and_written_by_brand_operators(world):
    operator_user = role_user(world, "brand_operator")
    operator = _admin_client(operator_user)
    region = _admin_client(role_user(world, "region_manager"))
    outsider = _admin_client(staff_user("brand_operator", brand=world.other_brand))
    target = LivePhaseTarget.objects.get(brand=world.brand, phase=2)
    sa_phase = StoreLivePhase.objects.get(store=world.sa)

    bad = operator.post(f"/admin/livestream/livephasetarget/{target.pk}/change/", {
        "brand": world.brand.pk, "phase": 2, "sessions_per_month": 4, "hours_per_month": "6.0",
        "sales_per_month": "5000.00", "conversion": "1.5"})
    good = operator.post(f"/admin/livestream/livephasetarget/{target.pk}/change/", {
        "brand": world.brand.pk, "phase": 2, "sessions_per_month": 5, "hours_per_month": "8.0",
        "sales_per_month": "6000.00", "conversion": "0.05"})
    moved = operator.post(f"/admin/livestream/storelivephase/{sa_phase.pk}/change/", {
        "store": world.sa.pk, "phase": 3, "since": "2024-04-01"})

    assert bad.status_code == 200 and "A conversion rate is at most 1 (100%)." in bad.content.decode()
    assert good.status_code == 302
    assert LivePhaseTarget.objects.filter(pk=target.pk).values_list(
        "sessions_per_month", "hours_per_month", "sales_per_month").get() == (5, D("8.0"), D("6000.00"))
    assert moved.status_code == 302
    sa_phase.refresh_from_db()
    assert (sa_phase.phase, sa_phase.since, sa_phase.updated_by_id) == (3, dt.date(2024, 4, 1), operator_user.pk)
    assert region.get("/admin/livestream/storelivephase/").status_code == 200
    assert region.post(f"/admin/livestream/storelivephase/{sa_phase.pk}/change/", {
        "store": world.sa.pk, "phase": 1, "since": "2024-04-02"}).status_code == 403
    assert outsider.get(f"/admin/livestream/livephasetarget/{target.pk}/change/").status_code == 302
    assert "SA" not in outsider.get("/admin/livestream/storelivephase/").content.decode().split("result_list")[-1]


# ---------------------------------------------------------------------------- real concurrency (PostgreSQL)

_POSTGRES_ONLY = pytest.mark.skipif(__import__("django.conf").conf.settings.DATABASES["default"]["ENGINE"]
                                    .endswith("sqlite3"), reason="concurrency tests need PostgreSQL")


@_POSTGRES_ONLY
@pytest.mark.django_db(transaction=True)
def test_ten_editors_setting_a_new_brands_targets_at_once_leave_one_row_per_phase():
    from tests.members.test_member_concurrency import run_at_once

    brand = BrandFactory()
    hq = staff_user("hq", group=brand.group)

    def put(i):
        return lambda: phase_targets_set(brand=brand, actor=hq, targets=[
            PhaseTargetInput(phase=phase, sessions_per_month=i) for phase in (1, 2, 3)])

    results = run_at_once([put(i) for i in range(10)])

    assert [kind for kind, _ in results] == ["ok"] * 10
    rows = list(LivePhaseTarget.objects.filter(brand=brand).values_list("phase", "sessions_per_month"))
    assert sorted(phase for phase, _ in rows) == [1, 2, 3]
    assert len({n for _, n in rows}) == 1  # one editor's PUT, whole: the last one to take the brand lock


@_POSTGRES_ONLY
@pytest.mark.django_db(transaction=True)
def test_ten_editors_moving_a_store_at_once_leave_one_phase_row():
    from tests.members.test_member_concurrency import run_at_once

    brand = BrandFactory()
    store = StoreFactory(region=RegionFactory(brand=brand))
    hq = staff_user("hq", group=brand.group)

    results = run_at_once([lambda p=p: store_phase_set(store=store, phase=p, actor=hq) for p in (1, 2, 3) * 3 + (2,)])

    assert [kind for kind, _ in results] == ["ok"] * 10
    assert StoreLivePhase.objects.filter(store=store).count() == 1


@_POSTGRES_ONLY
@pytest.mark.django_db(transaction=True)
def test_ten_shares_of_hq_resources_at_once_add_each_product_once():
    from livestream.resources import session_resources_share
    from tests.factories_payments import ProductFactory
    from tests.members.test_member_concurrency import run_at_once

    brand = BrandFactory()
    store = StoreFactory(region=RegionFactory(brand=brand))
    hq = staff_user("hq", group=brand.group)
    central = LiveSession.objects.create(brand=brand, kind="hq_central", title="H", script="run sheet",
                                         planned_start=local(3, 5, 19), planned_end=local(3, 5, 21))
    central.products.set([ProductFactory(brand=brand) for _ in range(3)])
    follower = LiveSession.objects.create(brand=brand, kind="store", title="S", host_store=store,
                                          planned_start=local(3, 5, 19), planned_end=local(3, 5, 21))

    results = run_at_once([lambda: session_resources_share(session=follower, central_id=central.pk, actor=hq)
                           for _ in range(10)])

    assert [kind for kind, _ in results] == ["ok"] * 10
    assert sum(shared.products_added for _, shared in results) == 3
    assert sum(shared.script_copied for _, shared in results) == 1
    assert follower.products.count() == 3
