"""guides.selectors: the workbench's numbers on a hand-made dataset, every figure worked out by hand.

The world (``build_workbench_world``), relative to the local day the tests run on ("today"; "month start" is
the first of this month, which may be today):

    brand wa ── east ── s1 (g1 "me", g2, mgr [store manager], gone [left])   s2 (g3)
             └─ west ── s3 (g4)
    brand wb ── b-main ── b1 (gb)

Members (group grp; phones +86138000000<n>):
    m1 王小明  bound to g1 today (QR scan), WeCom friend of g1 since today, tag shoe-size 38, RFML important value
    m2 李雷    bound to g1 since 10 days before month start (store purchase), WeCom friend of g1 since then,
               RFML general develop / growing
    m3 韩梅梅  bound to g1 today by a transfer (not a new member); bought once 40 days before month start
    m4 赵敏    bound to g2 today (QR scan)
    m5 张伟    bound to g3 (store s2)
    m6 周杰    bound to g1 (brand wa) since before month start (share link); buys brand wb online

Orders and their credit rows (made by hand; the rules' sentences come from attribution.selectors):
    O1 wa m1 mini-program 300 today            store s1 300, exclusive g1 300
    O2 wa m2 POS s1 (g2) 200 today             store s1 200, exclusive g1 200, selling g2 200
    O3 wb m6 mini-program 500 today            HQ pool 500, exclusive g1 500 (cross-brand)
    O4 wa m1 mini-program 100 month start, refunded in full: store s1 +100 −100, exclusive g1 +100 −100
    O5 wa m4 POS s1 (g2) 150 today             store s1 150, exclusive g2 150
    O6 wa m2 POS s1 80 the day before month start: store s1 80, exclusive g1 80 (last month)
    O7 wa m5 POS s2 1200 today                 store s2 1200, exclusive g3 1200
    O8 wa m3 POS s1 60, 40 days before month start (no credits)
So g1 has online 300 + 500 = 800 and offline 200 today and this month (O4 nets to 0), exclusive 1000,
cross-brand 500 (50.0 %); g2 has 350; g3 1200. Store s1: online 300 (+0), offline 200 + 150 = 350.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from types import SimpleNamespace

import pytest
from django.utils import timezone, translation

from analytics.services import local_today
from attribution.models import SalesCredit
from attribution.services import Rule
from guides import selectors
from guides.models import CommissionEntry, GuideTask, GuideToken, Share, TaskAssignment
from livestream.models import CoachingNote, LiveSession
from mall.models import Channel, OrderStatus
from members.models import BehaviourEvent, EventKind, GuideBinding, MemberTag, TagSource, WeComFriendship
from retail_crm.models import Guide
from retail_crm.scoping import actor_for
from segments.models import CareItem, MemberRfm, RfmClassChange, RfmRun
from tests.factories import (
    BrandFactory,
    BrandMembershipFactory,
    GuideBindingFactory,
    GuideFactory,
    MemberFactory,
    OrderFactory,
    RegionFactory,
    RetailGroupFactory,
    StoreFactory,
    UserFactory,
    staff_user,
)
from tests.factories_member_staff import TagGroupFactory, TagValueFactory

pytestmark = pytest.mark.django_db


def local_midnight(day: dt.date) -> dt.datetime:
    return timezone.make_aware(dt.datetime.combine(day, dt.time.min), timezone.get_default_timezone())


def build_workbench_world() -> SimpleNamespace:
    today = local_today()
    month_start = today.replace(day=1)
    now = timezone.now()
    # "Today" moments: a second after local midnight, always in the past.
    t_today = local_midnight(today) + dt.timedelta(seconds=1)
    t_month = local_midnight(month_start) + dt.timedelta(seconds=1)
    t_last_month = local_midnight(month_start) - dt.timedelta(hours=12)

    grp = RetailGroupFactory(code="grp", name="Group")
    wa = BrandFactory(group=grp, code="wa", name="雅致 WA")
    wb = BrandFactory(group=grp, code="wb", name="动 WB")
    east, west = RegionFactory(brand=wa, code="east"), RegionFactory(brand=wa, code="west")
    s1 = StoreFactory(region=east, code="s1", name="Store One")
    s2 = StoreFactory(region=east, code="s2", name="Store Two")
    s3 = StoreFactory(region=west, code="s3", name="Store Three")
    b1 = StoreFactory(region=RegionFactory(brand=wb, code="b-main"), code="b1", name="B One")
    g1 = GuideFactory(store=s1, code="g1", name="Guide Me")
    g2 = GuideFactory(store=s1, code="g2", name="Guide Two")
    mgr = GuideFactory(store=s1, code="mgr", name="Manager", role=Guide.Role.STORE_MANAGER)
    gone = GuideFactory(store=s1, code="gone", name="Gone", left_at=dt.date(2024, 6, 1))
    g3 = GuideFactory(store=s2, code="g3", name="Guide Three")
    g4 = GuideFactory(store=s3, code="g4", name="Guide Four")
    gb = GuideFactory(store=b1, code="gb", name="Guide B")

    names = {"m1": "王小明", "m2": "李雷", "m3": "韩梅梅", "m4": "赵敏", "m5": "张伟", "m6": "周杰"}
    m = {code: MemberFactory(group=grp, code=f"wb{code}", name=name, phone=f"+86138000000{code[1:]:0>2}",
                             created_at=t_last_month - dt.timedelta(days=60 - int(code[1:])))
         for code, name in names.items()}
    for code, store in [("m1", s1), ("m2", s1), ("m3", s1), ("m4", s1), ("m5", s2), ("m6", s1)]:
        BrandMembershipFactory(member=m[code], brand=wa, store=store, joined_at=t_last_month - dt.timedelta(days=50))
    bind = GuideBinding.Reason
    GuideBindingFactory(member=m["m1"], guide=g1, started_at=t_today, reason=bind.QR_SCAN)
    GuideBindingFactory(member=m["m2"], guide=g1, started_at=t_month - dt.timedelta(days=10),
                        reason=bind.STORE_PURCHASE)
    GuideBindingFactory(member=m["m3"], guide=g2, started_at=t_month - dt.timedelta(days=30),
                        ended_at=t_today, reason=bind.QR_SCAN)
    GuideBindingFactory(member=m["m3"], guide=g1, started_at=t_today, reason=bind.TRANSFER)
    GuideBindingFactory(member=m["m4"], guide=g2, started_at=t_today, reason=bind.QR_SCAN)
    GuideBindingFactory(member=m["m5"], guide=g3, started_at=t_month - dt.timedelta(days=3), reason=bind.QR_SCAN)
    GuideBindingFactory(member=m["m6"], guide=g1, started_at=t_month - dt.timedelta(days=20),
                        reason=bind.SHARE_LINK)

    WeComFriendship.objects.create(member=m["m1"], guide=g1, added_at=t_today, source="api")
    WeComFriendship.objects.create(member=m["m2"], guide=g1, added_at=t_last_month, source="api")

    shoe = TagGroupFactory(group=grp, brand=wa, code="shoe-size", name="Shoe size")
    shoe_38 = TagValueFactory(tag_group=shoe, code="38", name="38")
    TagValueFactory(tag_group=shoe, code="39", name="39")
    MemberTag.objects.create(member=m["m1"], tag_value=shoe_38, source=TagSource.RULE, assigned_at=t_last_month,
                             reason="3 of 4 pairs bought in size 38")
    run = RfmRun.objects.create(brand=wa, as_of=today, window_days=365, started_at=now)
    MemberRfm.objects.create(member=m["m1"], brand=wa, run=run, segment="important_value",
                             lifecycle_stage="mature", frequency=5, monetary=Decimal("3400.00"), recency_days=12,
                             last_purchase_on=today)
    MemberRfm.objects.create(member=m["m2"], brand=wa, run=run, segment="general_develop",
                             lifecycle_stage="growing", frequency=2, monetary=Decimal("280.00"))
    RfmClassChange.objects.create(member=m["m1"], brand=wa, run=run, from_segment="general_value",
                                  to_segment="important_value", from_stage="growing", to_stage="mature",
                                  changed_on=today)

    def order(brand, member, channel, amount, at, *, store=None, guide=None, refunded="0"):
        return OrderFactory(brand=brand, member=member, channel=channel, store=store, guide=guide, ordered_at=at,
                            total_amount=Decimal(amount), paid_amount=Decimal(amount),
                            refunded_amount=Decimal(refunded))

    def credit(o, kind, amount, *, guide=None, store=None, rule, cross=False, inputs=None):
        return SalesCredit.objects.create(
            order=o, kind=kind, brand_id=o.brand_id, store=store, guide=guide, member=o.member,
            amount=Decimal(amount), order_day=timezone.localdate(o.ordered_at), channel=o.channel, rule=rule,
            inputs=inputs or {}, cross_brand=cross, is_correction=Decimal(amount) < 0)

    k = SalesCredit.Kind
    mini, pos = Channel.MINI_PROGRAM, Channel.STORE_POS
    o1 = order(wa, m["m1"], mini, "300", t_today)
    credit(o1, k.STORE, "300", store=s1, rule=Rule.ONLINE_BOUND_GUIDE_STORE)
    credit(o1, k.EXCLUSIVE, "300", guide=g1, store=s1, rule=Rule.EXCLUSIVE_BOUND_GUIDE,
           inputs={"bound_guide": "g1", "binding_started_at": t_today.isoformat(), "binding_reason": "qr_scan"})
    o2 = order(wa, m["m2"], pos, "200", t_today, store=s1, guide=g2)
    credit(o2, k.STORE, "200", store=s1, rule=Rule.OFFLINE_POS_STORE, inputs={"store": "s1"})
    credit(o2, k.EXCLUSIVE, "200", guide=g1, store=s1, rule=Rule.EXCLUSIVE_BOUND_GUIDE,
           inputs={"bound_guide": "g1", "binding_reason": "store_purchase"})
    credit(o2, k.SELLING, "200", guide=g2, store=s1, rule=Rule.SELLING_NAMED_GUIDE,
           inputs={"order_guide": "g2", "bound_guide": "g1"})
    o3 = order(wb, m["m6"], mini, "500", t_today)
    credit(o3, k.STORE, "500", rule=Rule.ONLINE_UNBOUND_HQ_POOL)
    credit(o3, k.EXCLUSIVE, "500", guide=g1, store=s1, rule=Rule.EXCLUSIVE_CROSS_BRAND_GUIDE, cross=True,
           inputs={"bound_guide": "g1", "binding_started_at": "2025-01-01T00:00:00+08:00"})
    o4 = order(wa, m["m1"], mini, "100", t_month, refunded="100")
    o4.status = OrderStatus.PAID
    credit(o4, k.STORE, "100", store=s1, rule=Rule.ONLINE_BOUND_GUIDE_STORE)
    credit(o4, k.STORE, "-100", store=s1, rule=Rule.REVERSAL_NOT_PURCHASE)
    credit(o4, k.EXCLUSIVE, "100", guide=g1, store=s1, rule=Rule.EXCLUSIVE_BOUND_GUIDE)
    credit(o4, k.EXCLUSIVE, "-100", guide=g1, store=s1, rule=Rule.REVERSAL_NOT_PURCHASE)
    o5 = order(wa, m["m4"], pos, "150", t_today, store=s1, guide=g2)
    credit(o5, k.STORE, "150", store=s1, rule=Rule.OFFLINE_POS_STORE)
    credit(o5, k.EXCLUSIVE, "150", guide=g2, store=s1, rule=Rule.EXCLUSIVE_BOUND_GUIDE)
    o6 = order(wa, m["m2"], pos, "80", t_last_month, store=s1)
    credit(o6, k.STORE, "80", store=s1, rule=Rule.OFFLINE_POS_STORE)
    credit(o6, k.EXCLUSIVE, "80", guide=g1, store=s1, rule=Rule.EXCLUSIVE_BOUND_GUIDE)
    o7 = order(wa, m["m5"], pos, "1200", t_today, store=s2)
    credit(o7, k.STORE, "1200", store=s2, rule=Rule.OFFLINE_POS_STORE)
    credit(o7, k.EXCLUSIVE, "1200", guide=g3, store=s2, rule=Rule.EXCLUSIVE_BOUND_GUIDE)
    order(wa, m["m3"], pos, "60", t_month - dt.timedelta(days=40), store=s1)

    token1 = GuideToken.objects.create(token="tok-g1", guide=g1)
    token2 = GuideToken.objects.create(token="tok-g2", guide=g2)
    share_a = Share.objects.create(code="sh-g1-a", group=grp, guide_token=token1, guide=g1, brand=wa,
                                   target=Share.Target.MATERIAL, created_at=t_today)
    Share.objects.create(code="sh-g1-b", group=grp, guide_token=token1, guide=g1, brand=wa,
                         target=Share.Target.MALL, created_at=t_today)
    Share.objects.create(code="sh-g1-old", group=grp, guide_token=token1, guide=g1, brand=wa,
                         target=Share.Target.MALL, created_at=t_last_month)
    Share.objects.create(code="sh-g2", group=grp, guide_token=token2, guide=g2, brand=wa,
                         target=Share.Target.MALL, created_at=t_today)

    def event(kind, code, *, member=None, visitor="", at=t_today):
        BehaviourEvent.objects.create(brand=wa, member=member, visitor_id=visitor, kind=kind, occurred_at=at,
                                      share_token=code)
    event(EventKind.MATERIAL_VIEW, "sh-g1-a", member=m["m1"])
    # An hour later: another 30-minute window, so another view (repeats inside one window count once).
    event(EventKind.MATERIAL_VIEW, "sh-g1-a", member=m["m1"], at=t_today + dt.timedelta(hours=1))
    event(EventKind.MATERIAL_VIEW, "sh-g1-a", visitor="v-1")
    event(EventKind.PRODUCT_VIEW, "sh-g1-a", visitor="v-2")  # not a material view
    event(EventKind.MATERIAL_VIEW, "sh-g2", visitor="v-3")  # another guide's share
    event(EventKind.MATERIAL_VIEW, "sh-g1-old", visitor="v-4", at=t_last_month)  # last month

    def task(title, *, status=GuideTask.Status.PUBLISHED, starts, deadline):
        return GuideTask.objects.create(group=grp, brand=wa, title=title, copy_text="copy", status=status,
                                        starts_at=starts, deadline=deadline)
    t1 = task("Task one", starts=t_today, deadline=now + dt.timedelta(days=3))
    t2 = task("Task two", starts=t_today, deadline=now + dt.timedelta(days=1))
    t3 = task("Draft", status=GuideTask.Status.DRAFT, starts=t_today,
              deadline=now + dt.timedelta(days=1))
    t4 = task("Last month", status=GuideTask.Status.CLOSED, starts=t_last_month - dt.timedelta(days=5),
              deadline=t_last_month)
    t5 = task("Future", starts=local_midnight(today) + dt.timedelta(days=2), deadline=now + dt.timedelta(days=9))
    TaskAssignment.objects.create(task=t1, guide=g1, executed_at=now, reached=3)
    TaskAssignment.objects.create(task=t1, guide=g2)
    TaskAssignment.objects.create(task=t2, guide=g1)
    for other in (t3, t4, t5):
        TaskAssignment.objects.create(task=other, guide=g1)

    care = {
        "c1": CareItem.objects.create(day=today, guide=g1, member=m["m1"], brand=wa, kind=CareItem.Kind.CARE,
                                      reason="Purchased 1 days ago", suggested_action="Thank them"),
        "c2": CareItem.objects.create(day=today, guide=g1, member=m["m2"], brand=wa, kind=CareItem.Kind.MARKET,
                                      reason="Last purchase 40 days ago; cycle 45 days",
                                      suggested_action="Call in person with matching new arrivals", important=True),
        "c3": CareItem.objects.create(day=today, guide=g1, member=m["m3"], brand=wa, kind=CareItem.Kind.WINBACK,
                                      reason="Lapsed", suggested_action="Send a coupon", done_at=now,
                                      outcome="No answer"),
        "c4": CareItem.objects.create(day=today, guide=g2, member=m["m4"], brand=wa, kind=CareItem.Kind.CARE,
                                      reason="Purchased 1 days ago", suggested_action="Thank them"),
        "old": CareItem.objects.create(day=today - dt.timedelta(days=1), guide=g1, member=m["m1"], brand=wa,
                                       kind=CareItem.Kind.CARE, reason="yesterday", suggested_action="-"),
    }

    ce = CommissionEntry.Kind
    for kind, amount, available in [(ce.EARN, "30.00", now - dt.timedelta(days=1)),
                                    (ce.EARN, "20.00", now + dt.timedelta(days=5)),
                                    (ce.REVERSAL, "-5.00", now + dt.timedelta(days=5)),
                                    (ce.WITHDRAWAL, "-10.00", now - dt.timedelta(hours=1))]:
        CommissionEntry.objects.create(guide=g1, brand=wa, kind=kind, amount=Decimal(amount), available_at=available)
    CommissionEntry.objects.create(guide=g2, brand=wa, kind=ce.EARN, amount=Decimal("99.00"), available_at=now)

    return SimpleNamespace(
        today=today, month_start=month_start, now=now, t_today=t_today, grp=grp, wa=wa, wb=wb, east=east,
        west=west, s1=s1, s2=s2, s3=s3, b1=b1, g1=g1, g2=g2, mgr=mgr, gone=gone, g3=g3, g4=g4, gb=gb, m=m,
        shoe_38=shoe_38, tasks=SimpleNamespace(t1=t1, t2=t2), care=care, share_a=share_a,
        users=SimpleNamespace(
            g1=staff_user("guide", guide=g1, username="u-g1"),
            g2=staff_user("guide", guide=g2, username="u-g2"),
            store=staff_user("store_manager", store=s1, guide=mgr, username="u-store"),
            region=staff_user("region_manager", region=east, username="u-region"),
            hq=staff_user("hq", group=grp, username="u-hq"),
            nobody=UserFactory(username="u-nobody"),
        ),
    )


def add_live_sessions(w) -> SimpleNamespace:
    """This week: a session g1 hosted (ended, one coaching note), another store's; next week: one g1 hosts and
    a cancelled one without a host (a guide sees all of their store's sessions, those they host marked)."""
    monday = w.today - dt.timedelta(days=w.today.weekday())
    started = max(local_midnight(monday), w.now - dt.timedelta(hours=2))
    past = LiveSession.objects.create(brand=w.wa, kind=LiveSession.Kind.STORE, title="Spring looks", host_store=w.s1,
                                      host_guide=w.g1, status=LiveSession.Status.ENDED, planned_start=started,
                                      planned_end=started + dt.timedelta(hours=1), actual_start=started,
                                      actual_end=started + dt.timedelta(minutes=50))
    CoachingNote.objects.create(session=past, aspect=CoachingNote.Aspect.SCRIPT, text="Open with the offer",
                                rating=4)
    next_monday = local_midnight(monday + dt.timedelta(days=7))
    upcoming = LiveSession.objects.create(brand=w.wa, kind=LiveSession.Kind.STORE, title="New arrivals",
                                          host_store=w.s1, host_guide=w.g1,
                                          planned_start=next_monday + dt.timedelta(hours=20),
                                          planned_end=next_monday + dt.timedelta(hours=21))
    cancelled = LiveSession.objects.create(brand=w.wa, kind=LiveSession.Kind.STORE, title="Cancelled one",
                                           host_store=w.s1, status=LiveSession.Status.CANCELLED,
                                           planned_start=next_monday + dt.timedelta(days=1, hours=20),
                                           planned_end=next_monday + dt.timedelta(days=1, hours=21))
    LiveSession.objects.create(brand=w.wa, kind=LiveSession.Kind.STORE, title="Other store", host_store=w.s2,
                               planned_start=started, planned_end=started + dt.timedelta(hours=1))
    LiveSession.objects.create(brand=w.wa, kind=LiveSession.Kind.STORE, title="In two weeks", host_store=w.s1,
                               planned_start=next_monday + dt.timedelta(days=7, hours=20),
                               planned_end=next_monday + dt.timedelta(days=7, hours=21))
    return SimpleNamespace(past=past, upcoming=upcoming, cancelled=cancelled)


@pytest.fixture
def w():
    return build_workbench_world()


def subject_of(user, guide_code=None):
    return selectors.workbench_subject(actor=actor_for(user), guide_code=guide_code)


# ---------------------------------------------------------------------------- subject

def test_a_guide_is_always_themself_and_a_manager_picks_within_scope(w):
    assert subject_of(w.users.g1).guide == w.g1
    assert subject_of(w.users.g1, "g2").guide == w.g1  # a guide cannot look at a colleague
    store = subject_of(w.users.store)
    assert (store.guide, store.store, store.is_manager) == (None, w.s1, True)
    assert subject_of(w.users.store, "g2").guide == w.g2
    for outside in ("g3", "nope"):
        with pytest.raises(Exception) as caught:
            subject_of(w.users.store, outside)
        assert caught.value.status == 404
    assert subject_of(w.users.region, "g3").guide == w.g3
    assert [g.code for g in selectors.guides_to_pick(subject=store)] == ["g1", "g2", "mgr"]


# ---------------------------------------------------------------------------- home

def test_home_numbers_of_a_guide(w):
    numbers = selectors.home_numbers(subject=subject_of(w.users.g1), day=w.today)

    assert numbers.sales == selectors.ChannelSplit(online=Decimal("800.00"), offline=Decimal("200.00"))
    assert numbers.new_members == 1  # m1 by QR today; m3 came by a transfer
    assert numbers.shares == 2
    assert (numbers.tasks.assigned, numbers.tasks.executed) == (2, 1)  # t1 done, t2 open; draft/closed/future out
    assert [(t.title, t.assigned, t.executed) for t in numbers.open_tasks] == [("Task two", 1, 0)]
    assert numbers.open_tasks[0].assignment_id == TaskAssignment.objects.get(task=w.tasks.t2, guide=w.g1).pk
    assert numbers.care == selectors.CareCounts(open=2, done=1, important_open=1)
    assert numbers.members == 4  # m1, m2, m3, m6
    # guides.withdrawals' definition: the reversal and the withdrawal count at once, the earning when due.
    assert (numbers.commission.pending, numbers.commission.available) == (Decimal("20.00"), Decimal("15.00"))


def test_home_numbers_of_a_store_and_of_one_of_its_guides(w):
    store = selectors.home_numbers(subject=subject_of(w.users.store), day=w.today)

    assert store.sales == selectors.ChannelSplit(online=Decimal("300.00"), offline=Decimal("350.00"))
    assert store.new_members == 2  # m1 (g1) and m4 (g2)
    assert store.shares == 3
    assert (store.tasks.assigned, store.tasks.executed) == (3, 1)
    assert [(t.title, t.assigned, t.executed) for t in store.open_tasks] == [("Task two", 1, 0),
                                                                             ("Task one", 2, 1)]
    assert store.open_tasks[1].assignment_id is None  # two assignees
    assert store.care == selectors.CareCounts(open=3, done=1, important_open=1)
    assert store.members == 5  # joined at s1 or bound to its guides: m1, m2, m3, m4, m6 (m5 joined at s2)
    # The store manager's own ledger (guide "mgr") is empty.
    assert (store.commission.pending, store.commission.available) == (Decimal("0.00"), Decimal("0.00"))

    g2 = selectors.home_numbers(subject=subject_of(w.users.store, "g2"), day=w.today)
    assert g2.sales == selectors.ChannelSplit(online=Decimal("0.00"), offline=Decimal("350.00"))
    assert (g2.new_members, g2.shares, g2.members) == (1, 1, 1)
    assert (g2.commission.pending, g2.commission.available) == (Decimal("0.00"), Decimal("99.00"))


def test_home_numbers_of_the_region_and_hq(w):
    region = selectors.home_numbers(subject=subject_of(w.users.region), day=w.today)
    assert region.sales == selectors.ChannelSplit(online=Decimal("300.00"), offline=Decimal("1550.00"))
    assert region.commission is None
    hq = selectors.home_numbers(subject=subject_of(w.users.hq), day=w.today)
    assert hq.sales == selectors.ChannelSplit(online=Decimal("800.00"), offline=Decimal("1550.00"))  # + HQ pool


# ---------------------------------------------------------------------------- performance

def test_performance_of_a_guide_this_month(w):
    with translation.override("en"):
        p = selectors.performance(subject=subject_of(w.users.g1), date_from=w.month_start, date_to=w.today)

    assert p.sales == selectors.ChannelSplit(online=Decimal("800.00"), offline=Decimal("200.00"))
    assert (p.exclusive, p.selling) == (Decimal("1000.00"), Decimal("0.00"))
    assert [(r.key, r.amount) for r in p.by_channel] == [("mini_program", Decimal("800.00")),
                                                         ("store_pos", Decimal("200.00"))]
    assert [(r.key, r.amount) for r in p.by_brand] == [("wa", Decimal("500.00")), ("wb", Decimal("500.00"))]
    assert (p.cross_brand, p.cross_brand_share, p.cross_brand_percent) == (
        Decimal("500.00"), Decimal("0.5000"), Decimal("50.0"))
    assert p.members_served == 4  # bought: m1, m2, m6; cared for: m3
    assert p.new_members == 1
    assert p.wecom_added == 1  # m1 this month; m2 last month
    assert p.shares == 2
    assert p.material == selectors.MaterialViews(pv=3, uv=2)
    assert (p.tasks.assigned, p.tasks.executed, p.tasks.rate, p.tasks.percent) == (2, 1, Decimal("0.5000"), 50)
    assert [(r.within, r.position, r.out_of) for r in p.ranks] == [("store", 1, 3), ("region", 2, 4)]
    # Each credited order once per kind with why it counts, newest first; the refunded one nets to 0.
    assert sorted((c.brand_code, c.channel, c.kind, c.amount) for c in p.credits) == [
        ("wa", "mini_program", "exclusive", Decimal("0.00")), ("wa", "mini_program", "exclusive", Decimal("300.00")),
        ("wa", "store_pos", "exclusive", Decimal("200.00")), ("wb", "mini_program", "exclusive", Decimal("500.00"))]
    o3 = next(c for c in p.credits if c.brand_code == "wb")
    assert o3.cross_brand and "works for another brand" in o3.why
    assert p.credit_count == 4 and p.leaders == []


def test_performance_of_a_store(w):
    p = selectors.performance(subject=subject_of(w.users.store), date_from=w.month_start, date_to=w.today)

    assert p.sales == selectors.ChannelSplit(online=Decimal("300.00"), offline=Decimal("350.00"))
    assert (p.exclusive, p.selling) == (Decimal("1150.00"), Decimal("200.00"))  # g1 1000 + g2 150; g2 200
    assert p.cross_brand == Decimal("500.00") and p.cross_brand_share == Decimal("0.3704")  # 500 / 1350
    assert p.members_served == 4  # m1, m2, m4 bought; m3 cared for
    assert p.new_members == 2 and p.shares == 3 and p.wecom_added == 1
    assert p.material == selectors.MaterialViews(pv=4, uv=3)  # g2's share adds visitor v-3
    assert (p.tasks.assigned, p.tasks.executed) == (3, 1)
    assert [(r.within, r.position, r.out_of) for r in p.ranks] == [("region", 2, 2)]  # s2 sold 1200 > 650
    assert [(row.guide.code, row.amount) for row in p.leaders] == [("g1", Decimal("1000.00")),
                                                                   ("g2", Decimal("350.00"))]
    assert p.credits == []


def test_last_month_is_its_own_period(w):
    last_day = w.month_start - dt.timedelta(days=1)
    p = selectors.performance(subject=subject_of(w.users.g1), date_from=last_day.replace(day=1), date_to=last_day)

    assert p.sales == selectors.ChannelSplit(online=Decimal("0.00"), offline=Decimal("80.00"))
    assert (p.shares, p.wecom_added, p.material.pv, p.members_served) == (1, 1, 1, 1)
    assert (p.tasks.assigned, p.tasks.executed) == (1, 0)  # the closed task t4


def test_a_brand_that_does_not_count_selling_credits_for_kpis(w):
    from attribution.models import AttributionSettings

    AttributionSettings.objects.create(brand=w.wa, selling_counts_for_kpi=False)
    p = selectors.performance(subject=subject_of(w.users.store, "g2"), date_from=w.month_start, date_to=w.today)

    assert (p.sales.total, p.exclusive, p.selling) == (Decimal("150.00"), Decimal("150.00"), Decimal("0.00"))


# ---------------------------------------------------------------------------- members

def codes(queryset) -> list[str]:
    return sorted(member.code.removeprefix("wb") for member in queryset)


@pytest.mark.parametrize(("filters", "expected"), [
    ({}, ["m1", "m2", "m3", "m6"]),
    ({"q": "王"}, ["m1"]),
    ({"q": "138 0000 0002"}, ["m2"]),
    ({"q": "wbm3"}, ["m3"]),
    ({"q": "0006"}, ["m6"]),
    ({"segment": "important_value"}, ["m1"]),
    ({"stage": "growing"}, ["m2"]),
    ({"wecom": "yes"}, ["m1", "m2"]),
    ({"wecom": "no"}, ["m3", "m6"]),
    ({"purchased_from": "today"}, ["m1", "m2"]),  # m6 bought brand wb, not the guide's brand
    ({"purchased_until": "yesterday"}, ["m3"]),  # m1 and m2 bought again today; O4 was refunded
])
def test_member_list_filters_of_a_guide(w, filters, expected):
    values = {"today": w.today, "yesterday": w.today - dt.timedelta(days=1)}
    filters = {key: values.get(value, value) for key, value in filters.items()}

    assert codes(selectors.member_list(subject=subject_of(w.users.g1), filters=selectors.MemberFilters(
        **filters))) == expected


def test_member_list_by_tag_bound_since_and_for_a_store(w):
    g1 = subject_of(w.users.g1)
    assert codes(selectors.member_list(subject=g1, filters=selectors.MemberFilters(tag=w.shoe_38.pk))) == ["m1"]
    assert codes(selectors.member_list(subject=g1, filters=selectors.MemberFilters(bound_since=w.today))) == [
        "m1", "m3"]
    store = subject_of(w.users.store)
    assert codes(selectors.member_list(subject=store, filters=selectors.MemberFilters())) == [
        "m1", "m2", "m3", "m4", "m6"]
    assert codes(selectors.member_list(subject=store, filters=selectors.MemberFilters(bound_since=w.today))) == [
        "m1", "m3", "m4"]


def test_member_list_rows_carry_what_the_page_shows(w):
    rows = {m.code: m for m in selectors.member_list(subject=subject_of(w.users.g1),
                                                     filters=selectors.MemberFilters())}

    assert rows["wbm1"].wecom_friend is True and rows["wbm3"].wecom_friend is False
    assert [r.segment for r in rows["wbm1"].rfm_rows] == ["important_value"]
    assert timezone.localdate(rows["wbm1"].last_purchase_at) == w.today
    assert rows["wbm6"].last_purchase_at is None  # only a brand wb purchase
    assert [b.guide.code for b in rows["wbm3"].current_bindings] == ["g1"]


def test_member_page_for_the_bound_guide_and_for_managers(w):
    mine = selectors.workbench_member(subject=subject_of(w.users.g1), member_id=w.m["m6"].pk, user=w.users.g1)
    assert (mine.phone, mine.phone_whole, mine.bound_to_me) == ("13800000006", True, True)
    # The bound guide sees the member's purchases in every brand (credit follows the guide).
    assert [(p.brand_code, p.net) for p in mine.purchases] == [("wb", Decimal("500.00"))]

    store = selectors.workbench_member(subject=subject_of(w.users.store), member_id=w.m["m6"].pk,
                                       user=w.users.store)
    assert (store.phone, store.phone_whole, store.purchase_count) == ("138****0006", False, 0)

    m1 = selectors.workbench_member(subject=subject_of(w.users.g1), member_id=w.m["m1"].pk, user=w.users.g1)
    assert (m1.purchase_count, m1.purchase_total) == (1, Decimal("300.00"))  # O4 was refunded in full
    assert [(t.tag_value.name, t.reason) for t in m1.detail.tags] == [("38", "3 of 4 pairs bought in size 38")]
    with translation.override("en"):
        m1 = selectors.workbench_member(subject=subject_of(w.users.g1), member_id=w.m["m1"].pk, user=w.users.g1)
    assert [(s.brand_code, s.from_label, s.to_label) for s in m1.rfm_path] == [
        ("wa", "General value", "Important value")]
    assert [c.day for c in m1.care] == [w.today, w.today - dt.timedelta(days=1)]
    assert [b.guide.code for b in m1.detail.bindings] == ["g1"]


def test_another_guides_member_is_not_found(w):
    for user, member in [(w.users.g1, "m4"), (w.users.g2, "m1"), (w.users.store, "m5")]:
        with pytest.raises(Exception) as caught:
            selectors.workbench_member(subject=subject_of(user), member_id=w.m[member].pk, user=user)
        assert caught.value.status == 404


# ---------------------------------------------------------------------------- care and live

def test_care_list_by_kind_personal_calls_first_and_done_ones(w):
    g1 = subject_of(w.users.g1)
    extra = MemberFactory(group=w.grp, code="wbm7", name="阿里", phone="")  # no clash with the world's phones
    GuideBindingFactory(member=extra, guide=w.g1)
    CareItem.objects.create(day=w.today, guide=w.g1, member=extra, brand=w.wa, kind=CareItem.Kind.MARKET,
                            reason="r", suggested_action="s")

    # ranked (issue 23 #9): the personal call, then the market item due now, then the thank-you call
    assert [i.member.code for i in selectors.care_list(subject=g1, day=w.today)] == ["wbm2", "wbm7", "wbm1"]
    assert [i.member.code for i in selectors.care_list(subject=g1, day=w.today, kind="market")] == ["wbm2", "wbm7"]
    assert [i.member.code for i in selectors.care_list(subject=g1, day=w.today, done=True)] == ["wbm3"]
    assert selectors.care_open_by_kind(subject=g1, day=w.today) == {"care": 1, "market": 2, "winback": 0}
    store = subject_of(w.users.store)
    assert selectors.care_list(subject=store, day=w.today).count() == 4
    assert selectors.care_open_by_kind(subject=store, day=w.today) == {"care": 2, "market": 2, "winback": 0}


def test_live_weeks_of_the_store_with_coaching_notes(w):
    live = add_live_sessions(w)
    weeks = selectors.store_live_weeks(subject=subject_of(w.users.store), store=w.s1, today=w.today)

    assert [[s.title for s in week.sessions] for week in weeks] == [["Spring looks"],
                                                                    ["New arrivals", "Cancelled one"]]
    assert [n.text for n in weeks[0].sessions[0].notes] == ["Open with the offer"]
    assert weeks[0].sessions[0].is_past and not weeks[1].sessions[0].is_past
    assert weeks[1].sessions[0].notes == [] and weeks[1].sessions[0].pk == live.upcoming.pk
    # A guide sees the whole store's schedule (issue 23 #2), not only the sessions they host.
    mine = selectors.store_live_weeks(subject=subject_of(w.users.g1), store=w.s1, today=w.today)
    assert [[s.title for s in week.sessions] for week in mine] == [["Spring looks"],
                                                                   ["New arrivals", "Cancelled one"]]
    with pytest.raises(Exception) as caught:
        selectors.store_live_weeks(subject=subject_of(w.users.g1), store=w.s2, today=w.today)
    assert caught.value.status == 404
