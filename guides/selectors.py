"""Reads for the guide workbench (/workbench/): today's numbers, my members, a member's page, performance.

Every query runs through ``retail_crm.scoping.scoped`` for the viewer. Whose numbers a page shows is a
:class:`WorkbenchSubject`: a guide sees themself; a store manager sees the store (every guide of it) or, with a
guide filter, one of its guides; regional, brand and HQ staff see their scope the same way.

Definitions (each lives here once, and the tests work them out by hand):

* **Credited sales** of a guide: the sum of the guide's exclusive and selling credit rows
  (``attribution.SalesCredit``, refund corrections included) for orders placed in the period, counting only the
  kinds the order brand's ``AttributionSettings`` count for KPIs. A guide never holds both kinds for one order,
  so nothing is counted twice. **Credited sales** of a store or any wider scope: its *store* credits (every
  purchase exactly once, the HQ pool included for HQ). **Offline** is the store POS channel, **online** every
  other channel.
* **New members**: distinct members whose binding to the guide (the store's guides) started in the period,
  except rebindings that move existing members between guides (transfer, guide left, service lapse).
* **Members served**: distinct members with a care item of the guide (the store's guides) marked done in the
  period, or with an order placed in the period that is still a purchase (``mall.selectors.purchases``) and
  credited to the guide (to the store) by a positive credit row.
* **WeCom friends added**: distinct members who became WeCom friends of the guide (the store's guides) in the
  period (friendship rows added in the period).
* **Shares**: ``guides.Share`` rows of the guide (the store's guides) created in the period.
* **Material PV / UV**: ``material_view`` behaviour events in the period carrying the share code of one of the
  guide's (the store's guides') shares; a viewer's views of one share within one 30-minute window count once
  for PV (``members.share_views``); UV counts distinct viewers (the member, else the anonymous visitor).
* **Task execution rate**: executed ÷ assigned task assignments of the published or closed tasks that were
  running during the period (started by its end, deadline not before its start). On the home page, the
  progress of the **open** tasks (published, started, deadline not passed).
* **Commission**: ``guides.withdrawals.commission_balance`` (pending = earnings still inside the return window;
  available = every other ledger row), the same figures as the commission page.
* **Ranking**: by credited sales in the period among the active guides of the guide's store and region (or, for
  a store, among the region's active stores); ties share a place. Rankings read other guides' totals outside the
  viewer's scope on purpose, and return only the viewer's place and the number ranked, never the others' figures.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from decimal import Decimal

from django.db.models import (
    Case,
    Count,
    Exists,
    F,
    Min,
    OuterRef,
    Prefetch,
    Q,
    QuerySet,
    Subquery,
    Sum,
    Value,
    When,
)
from django.utils import timezone

from attribution.models import AttributionSettings, SalesCredit
from attribution.selectors import GuideCredit, credits_for_guide
from guides import withdrawals
from guides.models import CommissionEntry, GuideTask, Share, TaskAssignment
from livestream.models import CoachingNote, LiveSession
from livestream.selectors import store_schedule
from mall.models import OFFLINE_CHANNELS, Channel, Order, Product
from mall.selectors import purchases
from members.models import BehaviourEvent, EventKind, GuideBinding, Member, MemberTag, TagValue, WeComFriendship
from members.selectors import RFML_TAG_GROUP, MemberDetail, PhoneVisibility, member_detail, member_journey_states
from members.share_views import event_viewer, share_view_key
from retail_crm.errors import ApplicationError, ErrorCode
from retail_crm.models import Brand, Guide, Store
from retail_crm.money import money
from retail_crm.phones import InvalidPhone, normalise_phone
from retail_crm.scoping import Actor, scoped
from segments.models import CareItem, LifecycleStage, MemberRfm, RfmClassChange, Segment

ZERO = Decimal("0.00")
KIND_STORE, KIND_EXCLUSIVE, KIND_SELLING = (SalesCredit.Kind.STORE, SalesCredit.Kind.EXCLUSIVE,
                                            SalesCredit.Kind.SELLING)
#: Rebindings that move an existing member between guides: not new members.
NOT_NEW_BINDING_REASONS = (GuideBinding.Reason.TRANSFER, GuideBinding.Reason.GUIDE_LEFT,
                           GuideBinding.Reason.SERVICE_LAPSE)
_OFFLINE = [str(c) for c in OFFLINE_CHANNELS]


def _not_found(message: str) -> ApplicationError:
    return ApplicationError(ErrorCode.NOT_FOUND, message, status=404)


def day_bounds(date_from: dt.date, date_to: dt.date) -> tuple[dt.datetime, dt.datetime]:
    """[start of date_from, start of the day after date_to) as aware datetimes in the group's time zone."""
    zone = timezone.get_default_timezone()
    start = timezone.make_aware(dt.datetime.combine(date_from, dt.time.min), zone)
    end = timezone.make_aware(dt.datetime.combine(date_to + dt.timedelta(days=1), dt.time.min), zone)
    return start, end


# ---------------------------------------------------------------------------- whose numbers

@dataclass(frozen=True)
class WorkbenchSubject:
    """Whose numbers a workbench page shows: one guide, or everything in the viewer's scope.

    ``guide`` is set for a guide (themself) and for a manager who picked one of their guides; otherwise the
    page covers the viewer's scope (``store`` is the store manager's store).
    """

    actor: Actor
    guide: Guide | None
    store: Store | None

    @property
    def is_guide(self) -> bool:
        return self.guide is not None

    @property
    def is_manager(self) -> bool:
        """The viewer manages guides (may pick one of them with the guide filter)."""
        return self.actor.level != "guide"

    @property
    def brand_id(self) -> int | None:
        """The brand whose RFML classes and purchases a member list reads (None: every brand in scope)."""
        store = self.guide.store if self.guide else self.store
        return store.brand_id if store else (self.actor.brand_id if self.actor.level == "brand" else None)


def workbench_subject(*, actor: Actor, guide_code: str | None = None) -> WorkbenchSubject:
    """The subject for ``actor``: a guide is always themself; a manager may name one of their guides.

    A guide code outside the actor's scope (or unknown) is a 404, like every object outside scope.
    """
    if actor.level == "guide":
        guide = Guide.objects.select_related("store", "store__brand", "store__region").get(pk=actor.guide_id)
        return WorkbenchSubject(actor=actor, guide=guide, store=guide.store)
    store = (Store.objects.select_related("brand", "region").get(pk=actor.store_id)
             if actor.level == "store" else None)
    guide = None
    if guide_code:
        guide = (scoped(Guide.objects.filter(code=guide_code), actor)
                 .select_related("store", "store__brand", "store__region").first())
        if guide is None:
            raise _not_found("No such guide.")
    return WorkbenchSubject(actor=actor, guide=guide, store=guide.store if guide else store)


def guides_to_pick(*, subject: WorkbenchSubject, limit: int = 60) -> list[Guide] | None:
    """The guides a manager can pick from a list (a store's or a small scope's), or None when there are too
    many to list (the page then asks for a guide code)."""
    if not subject.is_manager:
        return None
    guides = list(scoped(Guide.objects.filter(left_at__isnull=True), subject.actor)
                  .only("pk", "code", "name", "role").order_by("code")[:limit + 1])
    return None if len(guides) > limit else guides


def _by_guide(subject: WorkbenchSubject, path: str = "guide") -> Q:
    """Narrow a queryset to the subject's guide (nothing to narrow when the subject is the whole scope)."""
    return Q(**{path: subject.guide}) if subject.guide is not None else Q()


# ---------------------------------------------------------------------------- credited sales

def kpi_credit_q() -> Q:
    """Guide credit rows that count for KPIs: exclusive and selling, minus the kinds a brand switched off."""
    no_exclusive = AttributionSettings.objects.filter(exclusive_counts_for_kpi=False).values("brand_id")
    no_selling = AttributionSettings.objects.filter(selling_counts_for_kpi=False).values("brand_id")
    return (Q(kind__in=[KIND_EXCLUSIVE, KIND_SELLING]) & ~Q(kind=KIND_EXCLUSIVE, brand_id__in=no_exclusive)
            & ~Q(kind=KIND_SELLING, brand_id__in=no_selling))


def _credited_rows(subject: WorkbenchSubject, date_from: dt.date, date_to: dt.date) -> QuerySet[SalesCredit]:
    """The credit rows that make up the subject's credited sales (see the module docstring)."""
    rows = SalesCredit.objects.filter(order_day__gte=date_from, order_day__lte=date_to)
    rows = rows.filter(kpi_credit_q(), guide=subject.guide) if subject.is_guide else rows.filter(kind=KIND_STORE)
    return scoped(rows, subject.actor)


@dataclass(frozen=True)
class ChannelSplit:
    online: Decimal
    offline: Decimal

    @property
    def total(self) -> Decimal:
        return self.online + self.offline


def credited_sales(*, subject: WorkbenchSubject, date_from: dt.date, date_to: dt.date) -> ChannelSplit:
    """Credited sales online and offline for orders placed on [date_from, date_to] (one query)."""
    totals = _credited_rows(subject, date_from, date_to).aggregate(
        offline=Sum("amount", filter=Q(channel__in=_OFFLINE)), online=Sum("amount", filter=~Q(channel__in=_OFFLINE)))
    return ChannelSplit(online=money(totals["online"]), offline=money(totals["offline"]))


# ---------------------------------------------------------------------------- counts

def new_member_count(*, subject: WorkbenchSubject, date_from: dt.date, date_to: dt.date) -> int:
    start, end = day_bounds(date_from, date_to)
    rows = scoped(GuideBinding.objects.filter(_by_guide(subject), started_at__gte=start, started_at__lt=end)
                  .exclude(reason__in=NOT_NEW_BINDING_REASONS), subject.actor)
    return rows.values("member_id").distinct().count()


def share_count(*, subject: WorkbenchSubject, date_from: dt.date, date_to: dt.date) -> int:
    start, end = day_bounds(date_from, date_to)
    return scoped(Share.objects.filter(_by_guide(subject), created_at__gte=start, created_at__lt=end),
                  subject.actor).count()


def wecom_added_count(*, subject: WorkbenchSubject, date_from: dt.date, date_to: dt.date) -> int:
    start, end = day_bounds(date_from, date_to)
    rows = scoped(WeComFriendship.objects.filter(_by_guide(subject), added_at__gte=start, added_at__lt=end),
                  subject.actor)
    return rows.values("member_id").distinct().count()


def members_served_count(*, subject: WorkbenchSubject, date_from: dt.date, date_to: dt.date) -> int:
    start, end = day_bounds(date_from, date_to)
    cared = scoped(CareItem.objects.filter(_by_guide(subject), done_at__gte=start, done_at__lt=end),
                   subject.actor).values("member_id")
    bought = (_credited_rows(subject, date_from, date_to)
              .filter(amount__gt=0, member__isnull=False, order__in=purchases().values("pk"))
              .values("member_id"))
    return cared.union(bought).count()


@dataclass(frozen=True)
class MaterialViews:
    pv: int
    uv: int


def material_views(*, subject: WorkbenchSubject, date_from: dt.date, date_to: dt.date) -> MaterialViews:
    """Material views in the period through the subject's shares (PV, and UV by member or visitor)."""
    start, end = day_bounds(date_from, date_to)
    codes = scoped(Share.objects.filter(_by_guide(subject)), subject.actor).values("code")
    totals = (BehaviourEvent.objects.filter(kind=EventKind.MATERIAL_VIEW, occurred_at__gte=start,
                                            occurred_at__lt=end, share_token__in=codes)
              .aggregate(pv=Count(share_view_key(), distinct=True), uv=Count(event_viewer(), distinct=True)))
    return MaterialViews(pv=totals["pv"] or 0, uv=totals["uv"] or 0)


@dataclass(frozen=True)
class TaskProgress:
    assigned: int
    executed: int

    @property
    def rate(self) -> Decimal | None:
        """Executed ÷ assigned as a fraction with 4 places (None when nothing was assigned)."""
        if not self.assigned:
            return None
        return (Decimal(self.executed) / Decimal(self.assigned)).quantize(Decimal("0.0001"))

    @property
    def percent(self) -> int | None:
        rate = self.rate
        return None if rate is None else int((rate * 100).to_integral_value())


def _assignments(subject: WorkbenchSubject) -> QuerySet[TaskAssignment]:
    return scoped(TaskAssignment.objects.filter(_by_guide(subject)), subject.actor)


def _progress(rows: QuerySet[TaskAssignment]) -> TaskProgress:
    totals = rows.aggregate(assigned=Count("pk"), executed=Count("pk", filter=Q(executed_at__isnull=False)))
    return TaskProgress(assigned=totals["assigned"] or 0, executed=totals["executed"] or 0)


def task_execution(*, subject: WorkbenchSubject, date_from: dt.date, date_to: dt.date) -> TaskProgress:
    """Execution of the tasks running during the period (published or closed; see the module docstring)."""
    start, end = day_bounds(date_from, date_to)
    return _progress(_assignments(subject).filter(
        task__status__in=[GuideTask.Status.PUBLISHED, GuideTask.Status.CLOSED], task__starts_at__lt=end,
        task__deadline__gte=start))


def _open_assignments(subject: WorkbenchSubject, now: dt.datetime) -> QuerySet[TaskAssignment]:
    return _assignments(subject).filter(task__status=GuideTask.Status.PUBLISHED, task__starts_at__lte=now,
                                        task__deadline__gt=now)


@dataclass(frozen=True)
class OpenTask:
    """An open task with its progress among the subject's assignments (one assignment for a guide).

    ``assignment_id`` is the subject's one assignment of the task (a guide's own), None when it holds several.
    """

    task_id: int
    title: str
    deadline: dt.datetime
    assigned: int
    executed: int
    assignment_id: int | None = None


def open_tasks(*, subject: WorkbenchSubject, now: dt.datetime | None = None, limit: int = 3) -> list[OpenTask]:
    """Open tasks not yet executed by every assignee of the subject, nearest deadline first."""
    now = now or timezone.now()
    rows = (_open_assignments(subject, now).values("task_id", "task__title", "task__deadline")
            .annotate(assigned=Count("pk"), executed=Count("pk", filter=Q(executed_at__isnull=False)),
                      first_assignment=Min("pk"))
            .filter(executed__lt=F("assigned")).order_by("task__deadline", "task_id")[:limit])
    return [OpenTask(task_id=r["task_id"], title=r["task__title"], deadline=r["task__deadline"],
                     assigned=r["assigned"], executed=r["executed"],
                     assignment_id=r["first_assignment"] if r["assigned"] == 1 else None) for r in rows]


# ---------------------------------------------------------------------------- home

@dataclass(frozen=True)
class CareCounts:
    open: int
    done: int
    important_open: int

    @property
    def total(self) -> int:
        return self.open + self.done


def care_counts(*, subject: WorkbenchSubject, day: dt.date) -> CareCounts:
    totals = scoped(CareItem.objects.filter(_by_guide(subject), day=day), subject.actor).aggregate(
        open=Count("pk", filter=Q(done_at__isnull=True)), done=Count("pk", filter=Q(done_at__isnull=False)),
        important=Count("pk", filter=Q(done_at__isnull=True, important=True)))
    return CareCounts(open=totals["open"] or 0, done=totals["done"] or 0, important_open=totals["important"] or 0)


def member_count(*, subject: WorkbenchSubject) -> int:
    """Members in view: a guide's currently bound members; a manager's scope (or the picked guide's)."""
    return _members_base(subject).count()


@dataclass(frozen=True)
class HomeNumbers:
    day: dt.date
    sales: ChannelSplit
    new_members: int
    shares: int
    tasks: TaskProgress
    open_tasks: list[OpenTask]
    care: CareCounts
    members: int
    commission: withdrawals.CommissionBalance | None


def home_numbers(*, subject: WorkbenchSubject, day: dt.date, now: dt.datetime | None = None,
                 staff_user=None) -> HomeNumbers:
    """Today's numbers for the home page. Commission is the subject guide's, else the viewer's own ledger
    (their guide row, or ``staff_user`` for office staff); None for a manager looking at a whole scope."""
    now = now or timezone.now()
    commission = None
    if subject.guide is not None:
        commission = withdrawals.commission_balance(guide=subject.guide, at=now)
    elif subject.actor.guide_id is not None:
        commission = withdrawals.commission_balance(guide=subject.actor.guide_id, at=now)
    elif staff_user is not None and CommissionEntry.objects.filter(staff_user=staff_user).exists():
        commission = withdrawals.commission_balance(staff_user=staff_user, at=now)
    return HomeNumbers(
        day=day,
        sales=credited_sales(subject=subject, date_from=day, date_to=day),
        new_members=new_member_count(subject=subject, date_from=day, date_to=day),
        shares=share_count(subject=subject, date_from=day, date_to=day),
        tasks=_progress(_open_assignments(subject, now)),
        open_tasks=open_tasks(subject=subject, now=now),
        care=care_counts(subject=subject, day=day),
        members=member_count(subject=subject),
        commission=commission,
    )


# ---------------------------------------------------------------------------- my members

@dataclass(frozen=True)
class MemberFilters:
    """Filters of the member list; empty values filter nothing. Dates are local days, both ends included."""

    q: str = ""
    tag: int | None = None
    segment: str = ""
    stage: str = ""
    bound_since: dt.date | None = None
    purchased_from: dt.date | None = None
    purchased_until: dt.date | None = None
    wecom: str = ""  # "yes": a WeCom friend of the guide (the scope's guides); "no": not one


def _members_base(subject: WorkbenchSubject) -> QuerySet[Member]:
    members = scoped(Member.objects.filter(merged_into__isnull=True), subject.actor)
    if subject.guide is not None:
        members = members.filter(pk__in=GuideBinding.objects.filter(guide=subject.guide, ended_at__isnull=True)
                                 .values("member_id"))
    return members


def _brand_ids(subject: WorkbenchSubject):
    """The brands a member list reads RFML classes and purchases from."""
    if subject.brand_id is not None:
        return [subject.brand_id]
    return scoped(Brand.objects.all(), subject.actor).values("pk")


def member_tag_choices(*, subject: WorkbenchSubject) -> QuerySet[TagValue]:
    """Tag values the viewer may filter by (RFML classes have their own filter)."""
    values = scoped(TagValue.objects.exclude(tag_group__code=RFML_TAG_GROUP), subject.actor)
    if subject.brand_id is not None:
        values = values.filter(Q(tag_group__brand_id=subject.brand_id) | Q(tag_group__brand__isnull=True))
    return values.select_related("tag_group").order_by("tag_group__name", "tag_group_id", "sort", "code")


def _search_q(text: str) -> Q:
    """Name (contains), member code (exact), whole phone (any written form) or the phone's last four digits."""
    q = Q(name__icontains=text) | Q(code=text)
    try:
        q |= Q(phone=normalise_phone(text))
    except InvalidPhone:
        if len(text) == 4 and text.isdigit():
            q |= Q(phone__endswith=text)
    return q


def member_list(*, subject: WorkbenchSubject, filters: MemberFilters) -> QuerySet[Member]:
    """The subject's members matching every filter, most recently bound first, ready to paginate.

    Each row carries ``current_bindings`` (open bindings in the viewer's brands, with the guide), ``rfm_rows``
    (RFML rows of the list's brands), ``last_purchase_at`` and ``wecom_friend``; a page costs a count, the
    page and two prefetches, however many members it shows.
    """
    actor = subject.actor
    brands = _brand_ids(subject)
    members = _members_base(subject)
    text = filters.q.strip()
    if text:
        members = members.filter(_search_q(text))
    if filters.tag is not None:
        members = members.filter(pk__in=MemberTag.objects.filter(
            tag_value__in=scoped(TagValue.objects.filter(pk=filters.tag), actor)).values("member_id"))
    if filters.segment or filters.stage:
        rfm = MemberRfm.objects.filter(brand_id__in=brands)
        if filters.segment:
            rfm = rfm.filter(segment=filters.segment)
        if filters.stage:
            rfm = rfm.filter(lifecycle_stage=filters.stage)
        members = members.filter(pk__in=rfm.values("member_id"))
    bindings = scoped(GuideBinding.objects.filter(_by_guide(subject), ended_at__isnull=True), actor)
    if filters.bound_since is not None:
        since, _end = day_bounds(filters.bound_since, filters.bound_since)
        members = members.filter(pk__in=bindings.filter(started_at__gte=since).values("member_id"))
    bought = purchases(Order.objects.filter(brand_id__in=brands))
    if filters.purchased_from is not None:
        start, _end = day_bounds(filters.purchased_from, filters.purchased_from)
        members = members.filter(Exists(bought.filter(member=OuterRef("pk"), ordered_at__gte=start)))
    if filters.purchased_until is not None:
        _start, after = day_bounds(filters.purchased_until, filters.purchased_until)
        members = members.filter(Exists(bought.filter(member=OuterRef("pk"))),
                                 ~Exists(bought.filter(member=OuterRef("pk"), ordered_at__gte=after)))
    friends = scoped(WeComFriendship.objects.filter(_by_guide(subject), removed_at__isnull=True), actor)
    if filters.wecom == "yes":
        members = members.filter(pk__in=friends.values("member_id"))
    elif filters.wecom == "no":
        members = members.exclude(pk__in=friends.values("member_id"))

    last_purchase = (bought.filter(member=OuterRef("pk")).order_by("-ordered_at").values("ordered_at")[:1])
    visible_brands = scoped(Brand.objects.all(), actor).values("pk")
    return (members
            .annotate(last_purchase_at=Subquery(last_purchase),
                      wecom_friend=Exists(friends.filter(member=OuterRef("pk"))))
            .order_by("-created_at", "-pk")
            .prefetch_related(
                Prefetch("bindings", to_attr="current_bindings",
                         queryset=GuideBinding.objects.filter(brand__in=visible_brands, ended_at__isnull=True)
                         .select_related("guide").order_by("brand_id")),
                Prefetch("rfm", to_attr="rfm_rows",
                         queryset=MemberRfm.objects.filter(brand_id__in=brands).order_by("brand_id"))))


# ---------------------------------------------------------------------------- a member's page

@dataclass(frozen=True)
class PurchaseRow:
    order_no: str
    ordered_at: dt.datetime
    brand_code: str
    brand_name: str
    channel: str
    channel_label: str
    store_name: str
    net: Decimal


@dataclass(frozen=True)
class RfmStep:
    changed_on: dt.date
    brand_code: str
    from_label: str
    to_label: str


@dataclass(frozen=True)
class WorkbenchMember:
    """A member's workbench page: the staff detail plus phone, purchases, RFML and the care timeline."""

    detail: MemberDetail
    phone: str
    phone_whole: bool
    bound_to_me: bool
    purchases: list[PurchaseRow]
    purchase_count: int
    purchase_total: Decimal
    rfm: list[MemberRfm]
    rfm_path: list[RfmStep]
    care: list[CareItem] = field(default_factory=list)
    journeys: list = field(default_factory=list)  # marketing.selectors.MemberJourneyState, latest first


def _segment_label(segment: str, stage: str) -> str:
    if segment:
        try:
            return str(Segment(segment).label)
        except ValueError:
            return segment
    try:
        return str(LifecycleStage(stage).label) if stage else "–"
    except ValueError:
        return stage


def workbench_member(*, subject: WorkbenchSubject, member_id: int, user=None, purchase_limit: int = 20,
                     today: dt.date | None = None) -> WorkbenchMember:
    """Everything the workbench shows about one member; 404 outside the viewer's scope (another guide's
    member is outside a guide's scope).

    Purchases cover every channel and the brands of the viewer's scope; the member's currently bound guide
    sees the member's purchases in every brand of the group (credit follows the guide across brands, so the
    guide serves the member across brands).
    """
    actor = subject.actor
    try:
        detail = member_detail(actor=actor, member_id=member_id, today=today)
    except ApplicationError as error:
        raise _not_found("No such member.") from error
    member = detail.member
    visibility = PhoneVisibility(actor=actor, user=user, members=[member])
    bound_to_me = actor.guide_id is not None and GuideBinding.objects.filter(
        member=member, guide_id=actor.guide_id, ended_at__isnull=True).exists()
    visible_brands = scoped(Brand.objects.all(), actor).values("pk")
    brands = Brand.objects.filter(group_id=member.group_id).values("pk") if bound_to_me else visible_brands
    bought = purchases(Order.objects.filter(member=member, brand__in=brands))
    totals = bought.aggregate(count=Count("pk"), total=Sum("net"))
    channel_labels = dict(Channel.choices)
    rows = [PurchaseRow(order_no=o.order_no, ordered_at=o.ordered_at, brand_code=o.brand.code,
                        brand_name=o.brand.name, channel=o.channel,
                        channel_label=str(channel_labels.get(o.channel, o.channel)),
                        store_name=o.store.name if o.store else "", net=money(o.net))
            for o in bought.select_related("brand", "store").order_by("-ordered_at", "-pk")[:purchase_limit]]
    rfm = list(MemberRfm.objects.filter(member=member, brand__in=visible_brands).select_related("brand")
               .order_by("brand__code"))
    path = [RfmStep(changed_on=c.changed_on, brand_code=c.brand.code,
                    from_label=_segment_label(c.from_segment, c.from_stage),
                    to_label=_segment_label(c.to_segment, c.to_stage))
            for c in RfmClassChange.objects.filter(member=member, brand__in=visible_brands)
            .select_related("brand").order_by("-changed_on", "-pk")[:30]]
    care = list(scoped(CareItem.objects.filter(member=member), actor).select_related("guide", "brand", "done_by")
                .order_by("-day", "-pk")[:30])
    return WorkbenchMember(detail=detail, phone=visibility.phone(member), phone_whole=visibility.sees_whole(member),
                           bound_to_me=bound_to_me, purchases=rows, purchase_count=totals["count"] or 0,
                           purchase_total=money(totals["total"]), rfm=rfm, rfm_path=path, care=care,
                           journeys=member_journey_states(member=member, brand_ids=visible_brands))


# ---------------------------------------------------------------------------- care list

#: How soon a kind of care item is due: marketing is due now (the member's purchase cycle is ending), a
#: win-back is already overdue but less likely to answer, a care (thank-you) call has no deadline.
CARE_KIND_DUE = {CareItem.Kind.MARKET: 0, CareItem.Kind.WINBACK: 1, CareItem.Kind.CARE: 2}


def care_list(*, subject: WorkbenchSubject, day: dt.date, kind: str | None = None,
              done: bool = False) -> QuerySet[CareItem]:
    """The day's open care items of the subject (or the done ones), ready to paginate.

    Open items are ranked so the few that matter come first (issue 23 #9): personal calls (important RFML
    classes) first, then by how soon the kind is due (:data:`CARE_KIND_DUE`), then by the member's value
    (``value``: RFML monetary in the item's brand, highest first, none last), then by name. Done ones most
    recently done first.
    """
    rows = scoped(CareItem.objects.filter(_by_guide(subject), day=day, done_at__isnull=not done), subject.actor)
    if kind:
        rows = rows.filter(kind=kind)
    rows = rows.select_related("member", "guide", "brand")
    if done:
        return rows.order_by("-done_at", "-pk")
    value = MemberRfm.objects.filter(member_id=OuterRef("member_id"), brand_id=OuterRef("brand_id")).values(
        "monetary")[:1]
    due = Case(*(When(kind=k, then=Value(rank)) for k, rank in CARE_KIND_DUE.items()), default=Value(9))
    return rows.annotate(value=Subquery(value), due_rank=due).order_by(
        "-important", "due_rank", F("value").desc(nulls_last=True), "member__name", "pk")


@dataclass(frozen=True)
class CareContact:
    """How to reach a care item's member: the phone as the viewer may see it (a ``tel:`` link only when whole),
    and the WeCom external id when the item's guide holds an open WeCom friendship with the member."""

    phone: str
    tel: str
    wecom_id: str
    wecom_friend: bool


def care_contacts(*, subject: WorkbenchSubject, items: list[CareItem], user=None) -> dict[int, CareContact]:
    """Per care item id, its :class:`CareContact` (two queries for the phones, one for the friendships)."""
    if not items:
        return {}
    members = [item.member for item in items]
    visibility = PhoneVisibility(actor=subject.actor, user=user, members=members)
    friends: dict[tuple[int, int], str] = {}
    for guide_id, member_id, external in scoped(WeComFriendship.objects.filter(
            member_id__in=[m.pk for m in members], guide_id__in={item.guide_id for item in items},
            removed_at__isnull=True), subject.actor).values_list("guide_id", "member_id", "external_userid"):
        friends[(guide_id, member_id)] = external
    contacts = {}
    for item in items:
        whole = bool(item.member.phone) and visibility.sees_whole(item.member)
        key = (item.guide_id, item.member_id)
        contacts[item.pk] = CareContact(phone=visibility.phone(item.member),
                                        tel=item.member.phone if whole else "", wecom_id=friends.get(key, ""),
                                        wecom_friend=key in friends)
    return contacts


def care_open_by_kind(*, subject: WorkbenchSubject, day: dt.date) -> dict[str, int]:
    """Open items of the day per kind (one query)."""
    totals = scoped(CareItem.objects.filter(_by_guide(subject), day=day, done_at__isnull=True),
                    subject.actor).aggregate(**{kind: Count("pk", filter=Q(kind=kind))
                                                for kind in CareItem.Kind.values})
    return {kind: totals[kind] or 0 for kind in CareItem.Kind.values}


def care_item_get(*, subject: WorkbenchSubject, item_id: int) -> CareItem:
    item = scoped(CareItem.objects.filter(pk=item_id), subject.actor).first()
    if item is None:
        raise _not_found("No such care item.")
    return item


# ---------------------------------------------------------------------------- performance

@dataclass(frozen=True)
class AmountRow:
    key: str
    label: str
    amount: Decimal


@dataclass(frozen=True)
class Rank:
    """A place in a ranking: ``position`` of ``out_of`` (ties share a place)."""

    position: int
    out_of: int
    within: str  # "store" or "region"


@dataclass(frozen=True)
class LeaderRow:
    guide: Guide
    amount: Decimal


@dataclass(frozen=True)
class Performance:
    date_from: dt.date
    date_to: dt.date
    sales: ChannelSplit
    exclusive: Decimal
    selling: Decimal
    by_channel: list[AmountRow]
    by_brand: list[AmountRow]
    cross_brand: Decimal
    guided: Decimal
    members_served: int
    new_members: int
    wecom_added: int
    shares: int
    material: MaterialViews
    tasks: TaskProgress
    ranks: list[Rank]
    credits: list[GuideCredit]
    credit_count: int
    leaders: list[LeaderRow]

    @property
    def cross_brand_share(self) -> Decimal | None:
        """Cross-brand guided sales ÷ guided sales (4 places), None without guided sales."""
        if not self.guided:
            return None
        return (self.cross_brand / self.guided).quantize(Decimal("0.0001"))

    @property
    def cross_brand_percent(self) -> Decimal | None:
        share = self.cross_brand_share
        return None if share is None else (share * 100).quantize(Decimal("0.1"))


def _guided_rows(subject: WorkbenchSubject, date_from: dt.date, date_to: dt.date) -> QuerySet[SalesCredit]:
    """KPI guide credits of the subject's guide, or of every guide in the scope."""
    return scoped(SalesCredit.objects.filter(kpi_credit_q(), _by_guide(subject), order_day__gte=date_from,
                                             order_day__lte=date_to), subject.actor)


def _ranked(totals: dict[int, Decimal], me: int, out_of: int, within: str) -> Rank:
    mine = totals.get(me, ZERO)
    return Rank(position=1 + sum(1 for amount in totals.values() if amount > mine), out_of=max(out_of, 1),
                within=within)


def guide_ranks(*, guide: Guide, date_from: dt.date, date_to: dt.date) -> list[Rank]:
    """The guide's place by credited sales among the active guides of their store and of their region."""
    ranks = []
    for within, path in (("store", "store_id"), ("region", "store__region_id")):
        anchor = guide.store_id if within == "store" else guide.store.region_id
        totals = {row["guide_id"]: money(row["total"]) for row in
                  SalesCredit.objects.filter(kpi_credit_q(), order_day__gte=date_from, order_day__lte=date_to,
                                             **{f"guide__{path}": anchor})
                  .values("guide_id").annotate(total=Sum("amount")).order_by()}
        out_of = Guide.objects.filter(Q(left_at__isnull=True) | Q(pk=guide.pk), **{path: anchor}).count()
        ranks.append(_ranked(totals, guide.pk, out_of, within))
    return ranks


def store_rank(*, store: Store, date_from: dt.date, date_to: dt.date) -> Rank:
    """The store's place by credited (store) sales among the active stores of its region."""
    totals = {row["store_id"]: money(row["total"]) for row in
              SalesCredit.objects.filter(kind=KIND_STORE, order_day__gte=date_from, order_day__lte=date_to,
                                         store__region_id=store.region_id)
              .values("store_id").annotate(total=Sum("amount")).order_by()}
    out_of = Store.objects.filter(Q(is_active=True) | Q(pk=store.pk), region_id=store.region_id).count()
    return _ranked(totals, store.pk, out_of, "region")


def performance(*, subject: WorkbenchSubject, date_from: dt.date, date_to: dt.date,
                credit_limit: int = 50) -> Performance:
    """The performance page over [date_from, date_to] (definitions in the module docstring)."""
    actor = subject.actor
    credited = _credited_rows(subject, date_from, date_to)
    channel_labels = dict(Channel.choices)
    by_channel = [AmountRow(key=r["channel"], label=str(channel_labels.get(r["channel"], r["channel"])),
                            amount=money(r["total"]))
                  for r in credited.values("channel").annotate(total=Sum("amount")).order_by("channel")]
    by_brand = [AmountRow(key=r["brand__code"], label=r["brand__name"], amount=money(r["total"]))
                for r in credited.values("brand__code", "brand__name").annotate(total=Sum("amount"))
                .order_by("brand__code")]
    guided = _guided_rows(subject, date_from, date_to).aggregate(
        exclusive=Sum("amount", filter=Q(kind=KIND_EXCLUSIVE)), selling=Sum("amount", filter=Q(kind=KIND_SELLING)),
        cross=Sum("amount", filter=Q(cross_brand=True)))
    exclusive, selling = money(guided["exclusive"]), money(guided["selling"])

    credits: list[GuideCredit] = []
    leaders: list[LeaderRow] = []
    if subject.guide is not None:
        ranks = guide_ranks(guide=subject.guide, date_from=date_from, date_to=date_to)
        credits = credits_for_guide(actor=actor, guide_id=subject.guide.pk, date_from=date_from, date_to=date_to)
    else:
        ranks = [store_rank(store=subject.store, date_from=date_from, date_to=date_to)] if subject.store else []
        totals = {r["guide_id"]: money(r["total"]) for r in _guided_rows(subject, date_from, date_to)
                  .values("guide_id").annotate(total=Sum("amount")).order_by("-total", "guide_id")[:10]}
        guides = Guide.objects.in_bulk(list(totals))
        leaders = [LeaderRow(guide=guides[pk], amount=amount) for pk, amount in totals.items()]
    return Performance(
        date_from=date_from, date_to=date_to,
        sales=credited_sales(subject=subject, date_from=date_from, date_to=date_to),
        exclusive=exclusive, selling=selling, by_channel=by_channel, by_brand=by_brand,
        cross_brand=money(guided["cross"]), guided=exclusive + selling,
        members_served=members_served_count(subject=subject, date_from=date_from, date_to=date_to),
        new_members=new_member_count(subject=subject, date_from=date_from, date_to=date_to),
        wecom_added=wecom_added_count(subject=subject, date_from=date_from, date_to=date_to),
        shares=share_count(subject=subject, date_from=date_from, date_to=date_to),
        material=material_views(subject=subject, date_from=date_from, date_to=date_to),
        tasks=task_execution(subject=subject, date_from=date_from, date_to=date_to),
        ranks=ranks, credits=credits[:credit_limit], credit_count=len(credits), leaders=leaders,
    )


# ---------------------------------------------------------------------------- the store's live schedule

def schedule_store(*, subject: WorkbenchSubject, store_code: str | None = None) -> Store | None:
    """The store whose live schedule the page shows: the guide's or store manager's own store, or (for wider
    scopes) the store named by code; None when a wider scope has named none yet. 404 outside scope."""
    if store_code:
        store = scoped(Store.objects.filter(code=store_code), subject.actor).select_related("brand").first()
        if store is None:
            raise _not_found("No such store.")
        return store
    return subject.store


@dataclass(frozen=True)
class LiveWeek:
    week_start: dt.date
    sessions: list[LiveSession]

    @property
    def week_end(self) -> dt.date:
        return self.week_start + dt.timedelta(days=6)


def store_live_weeks(*, subject: WorkbenchSubject, store: Store, today: dt.date,
                     now: dt.datetime | None = None) -> list[LiveWeek]:
    """This week's and next week's sessions of the store (local weeks from Monday), earliest first.

    Sessions that already started carry ``notes``: HQ's coaching notes (script, delivery, set…), oldest first;
    one query for the notes of both weeks. 404 for a store outside the viewer's scope.
    """
    now = now or timezone.now()
    monday = today - dt.timedelta(days=today.weekday())
    weeks = [LiveWeek(week_start=start, sessions=list(store_schedule(actor=subject.actor, store=store,
                                                                     week_start=start)))
             for start in (monday, monday + dt.timedelta(days=7))]
    past = [s for week in weeks for s in week.sessions if s.planned_start <= now]
    notes: dict[int, list[CoachingNote]] = {}
    if past:
        for note in (scoped(CoachingNote.objects.filter(session__in=past), subject.actor)
                     .select_related("author").order_by("created_at", "pk")):
            notes.setdefault(note.session_id, []).append(note)
    for week in weeks:
        for session in week.sessions:
            session.notes = notes.get(session.pk, [])
            session.is_past = session.planned_start <= now
    return weeks


# ---------------------------------------------------------------------------- in-store try-ons

TRY_ON_RECENT_DAYS = 14
TRY_ON_CHOICES = 12


def try_on_brand_and_store(subject: WorkbenchSubject) -> tuple[int | None, Store | None]:
    """The brand whose products a try-on may name (the store's) and the store it happened in."""
    store = subject.guide.store if subject.guide else subject.store
    return (store.brand_id if store else subject.brand_id), store


def try_on_products(*, subject: WorkbenchSubject, q: str = "", now: dt.datetime | None = None,
                    limit: int = TRY_ON_CHOICES) -> list[Product]:
    """Products to pick from for a try-on: with ``q``, the brand's active products whose code starts with it or
    whose name contains it; without, the products tried on in the store in the last two weeks (most often
    first), then the newest. At most ``limit``; three queries at most."""
    brand_id, store = try_on_brand_and_store(subject)
    if brand_id is None:
        return []
    products = Product.objects.filter(brand_id=brand_id, is_active=True).only("pk", "code", "name", "category")
    text = q.strip()
    if text:
        return list(products.filter(Q(code__istartswith=text) | Q(name__icontains=text)).order_by("code")[:limit])
    now = now or timezone.now()
    recent: list[str] = []
    if store is not None:
        recent = list(BehaviourEvent.objects.filter(
            brand_id=brand_id, kind=EventKind.TRY_ON, store=store,
            occurred_at__gte=now - dt.timedelta(days=TRY_ON_RECENT_DAYS), occurred_at__lte=now)
            .values("object_id").annotate(n=Count("pk")).order_by("-n", "object_id")
            .values_list("object_id", flat=True)[:limit])
    tried = {p.code: p for p in products.filter(code__in=recent)}
    chosen = [tried[code] for code in recent if code in tried]
    if len(chosen) < limit:
        chosen += list(products.exclude(code__in=recent).order_by("-created_at", "-pk")[:limit - len(chosen)])
    return chosen
