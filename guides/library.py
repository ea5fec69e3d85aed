"""The material library (素材库) and guide tasks (导购任务): create, publish, execute, measure.

Decisions worth knowing:

* **Assignees.** Publishing assigns the task to every active guide (store
  managers included: they serve members too) of the stores named, of the
  regions named and of the brands named, together; naming none means every
  store of the task's brand (or of the whole group for an HQ task). A brand
  task never reaches another brand's guides. Publishing again (after new
  guides joined) only adds the missing assignments.
* **Audience.** A guide's audience for a task is the members currently bound
  to that guide (for the task's brand, or any brand for an HQ task) who match
  the task's audience: for tags, at least one chosen value *in each* chosen tag
  group (sizes 35 or 36, *and* yellow); for RFML classes, the member's current
  class for the binding's brand is one of those chosen. No audience means
  every bound member. Sizes are counted in one grouped query for all guides.
* **Execution** is one tap: it records the time, creates a share of the task
  (``guides.sharing``) and records **reached** = the guide's audience size at
  that moment (the copy goes to that audience in one send). Who then opened the
  link is the share's funnel (visitors). Tapping again changes nothing. A task
  can be executed between its start and its deadline only: after the deadline
  an unexecuted assignment stays **overdue**.
* **Execution rate** = executed assignments ÷ assignments of published (or
  closed) tasks, per guide, store or region (the guide's current store), in the
  viewer's scope; four decimals, half up.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from enum import StrEnum

from django.db import transaction
from django.db.models import Count, Exists, OuterRef, Q, QuerySet, Sum
from django.utils import timezone
from django.utils.translation import gettext as _

from guides.errors import GuidesErrorCode
from guides.models import GuideTask, Material, TaskAssignment
from guides.sharing import Sharer, share_create
from members.models import BehaviourEvent, GuideBinding, Member, MemberTag
from members.selectors import PhoneVisibility
from retail_crm.errors import ApplicationError, ErrorCode
from retail_crm.models import Guide
from retail_crm.scoping import Actor, scoped
from segments.models import MemberRfm, Segment

RATE_PLACES = Decimal("0.0001")
LIVE_STATUSES = (GuideTask.Status.PUBLISHED, GuideTask.Status.CLOSED)


# ---------------------------------------------------------------------------- materials

def materials_visible(*, actor: Actor, kind: str | None = None) -> QuerySet[Material]:
    """Active materials the viewer may use: group-wide ones and their own brand's (newest first)."""
    rows = scoped(Material.objects.filter(is_active=True), actor).select_related("brand", "product")
    if kind:
        rows = rows.filter(kind=kind)
    return rows.order_by("-created_at", "-pk")


def material_errors(*, group, kind: str, title: str, brand=None, body: str = "", image=None, video_url: str = "",
                    product=None) -> dict[str, list[str]]:
    """What is wrong with a material, per field (empty when nothing): each kind needs its content."""
    errors: dict[str, list[str]] = {}
    if kind not in Material.Kind.values:
        errors["kind"] = [_("Not one of %(values)s.") % {"values": ", ".join(Material.Kind.values)}]
    if not (title or "").strip():
        errors["title"] = [_("This field is required.")]
    if kind == Material.Kind.COPY and not (body or "").strip():
        errors["body"] = [_("A copy-text material needs its text.")]
    if kind == Material.Kind.VIDEO and not video_url:
        errors["video_url"] = [_("A video material needs its link.")]
    if kind == Material.Kind.IMAGE and not image and product is None:
        errors["image"] = [_("An image material needs an image (or a product whose pictures it shows).")]
    if brand is not None and brand.group_id != group.pk:
        errors["brand"] = [_("Not a brand of this group.")]
    if product is not None and (product.brand.group_id != group.pk or (brand is not None and
                                                                      product.brand_id != brand.pk)):
        errors["product"] = [_("Choose a product of the material's brand.")]
    return errors


def material_create(*, group, kind: str, title: str, brand=None, body: str = "", image=None, video_url: str = "",
                    product=None, created_by=None) -> Material:
    """A material for the whole group (no brand, HQ) or one brand."""
    errors = material_errors(group=group, kind=kind, title=title, brand=brand, body=body, image=image,
                             video_url=video_url, product=product)
    if errors:
        raise ApplicationError(ErrorCode.INVALID, "The material is incomplete.", fields=errors)
    return Material.objects.create(group=group, brand=brand, kind=kind, title=title.strip(), body=body,
                                   image=image or "", video_url=video_url, product=product, created_by=created_by)


# ---------------------------------------------------------------------------- tasks: create and publish

def task_errors(*, group, title: str, copy_text: str, starts_at, deadline, brand=None, materials=(), product=None,
                live_session=None, audience_segments=(), assign_brands=(), assign_regions=(),
                assign_stores=()) -> dict[str, list[str]]:
    """What is wrong with a task, per field (empty when nothing). A brand task stays inside its brand."""
    errors: dict[str, list[str]] = {}
    if not (title or "").strip():
        errors["title"] = [_("This field is required.")]
    if not (copy_text or "").strip():
        errors["copy_text"] = [_("This field is required.")]
    if starts_at is not None and deadline is not None and deadline <= starts_at:
        errors["deadline"] = [_("The deadline must come after the start.")]
    unknown = sorted(set(audience_segments) - set(Segment.values))
    if unknown:
        errors["audience_segments"] = [_("Unknown RFML class: %(values)s.") % {"values": ", ".join(unknown)}]

    def outside(brand_id: int | None, group_id: int) -> bool:
        return group_id != group.pk or (brand is not None and brand_id != brand.pk)

    if any(m.group_id != group.pk or (m.brand_id is not None and outside(m.brand_id, m.group_id))
           for m in materials):
        errors["materials"] = [_("Choose group-wide materials or the task brand's.")]
    if product is not None and outside(product.brand_id, product.brand.group_id):
        errors["product"] = [_("Choose a product of the task's brand.")]
    if live_session is not None and outside(live_session.brand_id, live_session.brand.group_id):
        errors["live_session"] = [_("Choose a livestream of the task's brand.")]
    if any(outside(b.pk, b.group_id) for b in assign_brands):
        errors["assign_brands"] = [_("Outside the task's brand.")]
    if any(outside(r.brand_id, r.brand.group_id) for r in assign_regions):
        errors["assign_regions"] = [_("Outside the task's brand.")]
    if any(outside(s.brand_id, s.brand.group_id) for s in assign_stores):
        errors["assign_stores"] = [_("Outside the task's brand.")]
    return errors


@transaction.atomic
def task_create(*, group, title: str, copy_text: str, starts_at: dt.datetime, deadline: dt.datetime, brand=None,
                materials: Iterable[Material] = (), product=None, live_session=None, audience_tags=(),
                audience_segments: Iterable[str] = (), assign_brands=(), assign_regions=(), assign_stores=(),
                created_by=None) -> GuideTask:
    """A draft task (HQ's when ``brand`` is None); nothing reaches guides until it is published."""
    materials, audience_tags = list(materials), list(audience_tags)
    assign_brands, assign_regions, assign_stores = list(assign_brands), list(assign_regions), list(assign_stores)
    segments = list(dict.fromkeys(audience_segments))
    errors = task_errors(group=group, title=title, copy_text=copy_text, starts_at=starts_at, deadline=deadline,
                         brand=brand, materials=materials, product=product, live_session=live_session,
                         audience_segments=segments, assign_brands=assign_brands, assign_regions=assign_regions,
                         assign_stores=assign_stores)
    if errors:
        raise ApplicationError(ErrorCode.INVALID, "The task is incomplete.", fields=errors)
    task = GuideTask.objects.create(group=group, brand=brand, title=title.strip(), copy_text=copy_text,
                                    product=product, live_session=live_session, audience_segments=segments,
                                    starts_at=starts_at, deadline=deadline, created_by=created_by)
    task.materials.set(materials)
    task.audience_tags.set(audience_tags)
    task.assign_brands.set(assign_brands)
    task.assign_regions.set(assign_regions)
    task.assign_stores.set(assign_stores)
    return task


def task_assignees(task: GuideTask) -> QuerySet[Guide]:
    """The active guides a task goes to (see the module docstring)."""
    guides = Guide.objects.filter(left_at__isnull=True, store__brand__group_id=task.group_id)
    if task.brand_id is not None:
        guides = guides.filter(store__brand_id=task.brand_id)
    chosen = Q()
    brand_ids = list(task.assign_brands.values_list("pk", flat=True))
    region_ids = list(task.assign_regions.values_list("pk", flat=True))
    store_ids = list(task.assign_stores.values_list("pk", flat=True))
    if brand_ids:
        chosen |= Q(store__brand_id__in=brand_ids)
    if region_ids:
        chosen |= Q(store__region_id__in=region_ids)
    if store_ids:
        chosen |= Q(store_id__in=store_ids)
    return guides.filter(chosen) if chosen else guides


def audience_sizes(*, task: GuideTask, guide_ids: Iterable[int]) -> dict[int, int]:
    """Per guide, how many of their bound members the task's audience holds (one query; absent means 0)."""
    guide_ids = list(guide_ids)
    if not guide_ids:
        return {}
    bindings = audience_bindings(task=task, guide_ids=guide_ids)
    rows = bindings.values("guide_id").annotate(n=Count("member_id", distinct=True)).values_list("guide_id", "n")
    return dict(rows.order_by())


def _audience_values_by_group(task: GuideTask) -> dict[int, list[int]]:
    values_by_group: dict[int, list[int]] = defaultdict(list)
    for value_id, tag_group_id in task.audience_tags.values_list("pk", "tag_group_id"):
        values_by_group[tag_group_id].append(value_id)
    return values_by_group


def audience_bindings(*, task: GuideTask, guide_ids: Iterable[int]) -> QuerySet[GuideBinding]:
    """The current bindings of these guides whose member is in the task's audience (see the module docstring)."""
    bindings = GuideBinding.objects.filter(guide_id__in=list(guide_ids), ended_at__isnull=True)
    if task.brand_id is not None:
        bindings = bindings.filter(brand_id=task.brand_id)
    for value_ids in _audience_values_by_group(task).values():
        bindings = bindings.filter(Exists(MemberTag.objects.filter(member_id=OuterRef("member_id"),
                                                                   tag_value_id__in=value_ids)))
    if task.audience_segments:
        bindings = bindings.filter(Exists(MemberRfm.objects.filter(
            member_id=OuterRef("member_id"), brand_id=OuterRef("brand_id"), segment__in=task.audience_segments)))
    return bindings


@dataclass(frozen=True)
class AudienceMember:
    """One member of an assignment's audience as the task page lists it (issue 23 #8).

    ``reasons`` say why the member is in the audience: the task's tag values they hold and their RFML class
    (empty when the task names no audience: every bound member). ``sent`` is whether the assignment was executed
    while the member was bound (the text went to them); ``opened`` whether they opened the shared link.
    """

    member_id: int
    name: str
    phone: str
    reasons: list[str]
    sent: bool
    opened: bool


@dataclass(frozen=True)
class Audience:
    members: list[AudienceMember]
    total: int


def task_audience(*, assignment: TaskAssignment, actor: Actor, user=None, limit: int = 100) -> Audience:
    """Who the assignment's audience is now: its guide's bound members matching the task, in the viewer's scope
    (a guide: their own bound members), the first ``limit`` by name. Phones follow the phone rule."""
    task = assignment.task
    bindings = scoped(audience_bindings(task=task, guide_ids=[assignment.guide_id]), actor)
    first_bound: dict[int, dt.datetime] = {}
    for member_id, started_at in bindings.values_list("member_id", "started_at").order_by("started_at"):
        first_bound.setdefault(member_id, started_at)
    members = list(Member.objects.filter(pk__in=list(first_bound)).order_by("name", "pk")[:limit])
    ids = [m.pk for m in members]
    tag_values = [v for values in _audience_values_by_group(task).values() for v in values]
    reasons: dict[int, list[str]] = defaultdict(list)
    # Words rendered in the viewer's language (standard groups and values by code).
    for tag in (MemberTag.objects.filter(member_id__in=ids, tag_value_id__in=tag_values)
                .select_related("tag_value__tag_group").order_by("tag_value__tag_group__code", "tag_value__code")):
        reasons[tag.member_id].append(str(tag.tag_value))
    if task.audience_segments:
        labels = dict(Segment.choices)
        rfm = MemberRfm.objects.filter(member_id__in=ids, segment__in=task.audience_segments)
        if task.brand_id is not None:
            rfm = rfm.filter(brand_id=task.brand_id)
        for member_id, segment in rfm.values_list("member_id", "segment").order_by("brand_id"):
            reasons[member_id].append(str(labels.get(segment, segment)))
    share = assignment.share
    opened = set(scoped(BehaviourEvent.objects.filter(share_token=share.code, member_id__in=ids), actor)
                 .values_list("member_id", flat=True)) if share else set()
    executed = assignment.executed_at
    visibility = PhoneVisibility(actor=actor, user=user, members=members)
    rows = [AudienceMember(member_id=m.pk, name=m.name or m.code, phone=visibility.phone(m),
                           reasons=list(dict.fromkeys(reasons[m.pk])),
                           sent=executed is not None and first_bound[m.pk] <= executed, opened=m.pk in opened)
            for m in members]
    return Audience(members=rows, total=len(first_bound))


@transaction.atomic
def task_publish(*, task: GuideTask, at: dt.datetime | None = None) -> int:
    """Publish a task: one assignment per assignee with their audience size. Returns how many were added."""
    at = at or timezone.now()
    task = GuideTask.objects.select_for_update().get(pk=task.pk)
    if task.status == GuideTask.Status.CLOSED:
        raise ApplicationError(GuidesErrorCode.TASK_NOT_OPEN, "This task is closed.", status=409)
    if task.deadline <= at:
        raise ApplicationError(GuidesErrorCode.DEADLINE_PASSED, "The deadline has passed; set a later one first.",
                               status=409, fields={"deadline": ["Already passed."]})
    already = set(task.assignments.values_list("guide_id", flat=True))
    new_ids = [pk for pk in task_assignees(task).order_by("pk").values_list("pk", flat=True) if pk not in already]
    sizes = audience_sizes(task=task, guide_ids=new_ids)
    TaskAssignment.objects.bulk_create(
        [TaskAssignment(task=task, guide_id=pk, audience_size=sizes.get(pk, 0)) for pk in new_ids],
        batch_size=2000, ignore_conflicts=True)
    if new_ids and abs((timezone.now() - at).total_seconds()) > 60:
        # Back-dated publishing (the demo, imports): assigned_at follows the publishing time.
        TaskAssignment.objects.filter(task=task, guide_id__in=new_ids).update(assigned_at=at)
    if task.status != GuideTask.Status.PUBLISHED:
        task.status = GuideTask.Status.PUBLISHED
        task.save(update_fields=["status"])
    return len(new_ids)


def task_close(*, task: GuideTask) -> GuideTask:
    """Stop a task: nobody can execute it any more; its figures stay."""
    GuideTask.objects.filter(pk=task.pk).update(status=GuideTask.Status.CLOSED)
    task.status = GuideTask.Status.CLOSED
    return task


# ---------------------------------------------------------------------------- tasks: the guide's side

class AssignmentState(StrEnum):
    OPEN = "open"
    DONE = "done"
    OVERDUE = "overdue"


def assignment_state(assignment: TaskAssignment, *, now: dt.datetime | None = None) -> AssignmentState:
    now = now or timezone.now()
    if assignment.executed_at is not None:
        return AssignmentState.DONE
    if assignment.task.deadline < now or assignment.task.status == GuideTask.Status.CLOSED:
        return AssignmentState.OVERDUE
    return AssignmentState.OPEN


def assignments_of(*, actor: Actor) -> QuerySet[TaskAssignment]:
    """The viewer's own assignments of published or closed tasks (a guide's; none for office staff)."""
    if actor.guide_id is None:
        return TaskAssignment.objects.none()
    return (scoped(TaskAssignment.objects.filter(guide_id=actor.guide_id, task__status__in=LIVE_STATUSES), actor)
            .select_related("task", "task__brand", "share").order_by("task__deadline", "pk"))


def assignments_by_state(*, actor: Actor, now: dt.datetime | None = None) -> dict[str, list[TaskAssignment]]:
    """The viewer's assignments split into open (soonest deadline first), overdue and done (latest first)."""
    now = now or timezone.now()
    split: dict[str, list[TaskAssignment]] = {state.value: [] for state in AssignmentState}
    for assignment in assignments_of(actor=actor):
        split[assignment_state(assignment, now=now)].append(assignment)
    split[AssignmentState.DONE].sort(key=lambda a: a.executed_at, reverse=True)
    split[AssignmentState.OVERDUE].sort(key=lambda a: a.task.deadline, reverse=True)
    return split


@transaction.atomic
def task_execute(*, assignment: TaskAssignment, at: dt.datetime | None = None) -> TaskAssignment:
    """One tap: record the execution, share the task, record the audience reached. A second tap changes nothing."""
    at = at or timezone.now()
    assignment = (TaskAssignment.objects.select_for_update().select_related("task", "guide", "guide__store")
                  .get(pk=assignment.pk))
    if assignment.executed_at is not None:
        return assignment
    task = assignment.task
    if task.status != GuideTask.Status.PUBLISHED:
        raise ApplicationError(GuidesErrorCode.TASK_NOT_OPEN, "This task is closed.", status=409)
    if at < task.starts_at:
        raise ApplicationError(GuidesErrorCode.TASK_NOT_STARTED, "This task has not started yet.", status=409)
    if at > task.deadline:
        raise ApplicationError(GuidesErrorCode.TASK_OVERDUE, "The deadline of this task has passed.", status=409)
    share = share_create(sharer=Sharer(group_id=task.group_id, guide=assignment.guide), target="task", task=task,
                         at=at)
    assignment.executed_at = at
    assignment.share = share
    assignment.reached = audience_sizes(task=task, guide_ids=[assignment.guide_id]).get(assignment.guide_id, 0)
    assignment.save(update_fields=["executed_at", "share", "reached"])
    return assignment


# ---------------------------------------------------------------------------- execution rates

GROUP_BY_FIELDS: dict[str, tuple[str, str, str]] = {
    "guide": ("guide_id", "guide__code", "guide__name"),
    "store": ("guide__store_id", "guide__store__code", "guide__store__name"),
    "region": ("guide__store__region_id", "guide__store__region__code", "guide__store__region__name"),
}


@dataclass(frozen=True)
class ExecutionRate:
    """Task execution of one guide, store or region."""

    id: int
    code: str
    name: str
    brand: str
    assigned: int
    executed: int
    audience: int
    reached: int

    @property
    def rate(self) -> Decimal:
        if not self.assigned:
            return Decimal("0.0000")
        return (Decimal(self.executed) / Decimal(self.assigned)).quantize(RATE_PLACES, rounding=ROUND_HALF_UP)


def tasks_in_scope(*, actor: Actor) -> QuerySet[GuideTask]:
    """Published and closed tasks the viewer may see (group-wide and their brand's), newest deadline first."""
    return scoped(GuideTask.objects.filter(status__in=LIVE_STATUSES), actor).select_related("brand").order_by(
        "-deadline", "-pk")


def execution_rates(*, actor: Actor, group_by: str, task: GuideTask | None = None) -> list[ExecutionRate]:
    """Execution per guide, store or region over the viewer's scope, optionally for one task (one query)."""
    if group_by not in GROUP_BY_FIELDS:
        raise ApplicationError(ErrorCode.INVALID, "Unknown grouping.",
                               fields={"group_by": ["Choose guide, store or region."]})
    key, code, name = GROUP_BY_FIELDS[group_by]
    rows = scoped(TaskAssignment.objects.filter(task__status__in=LIVE_STATUSES), actor)
    if task is not None:
        rows = rows.filter(task=task)
    grouped = (rows.values(key, code, name, "guide__store__brand__code")
               .annotate(assigned=Count("pk"), executed=Count("pk", filter=Q(executed_at__isnull=False)),
                         audience=Sum("audience_size"), reached=Sum("reached"))
               .order_by(code, key))
    return [ExecutionRate(id=row[key], code=row[code], name=row[name], brand=row["guide__store__brand__code"],
                          assigned=row["assigned"], executed=row["executed"], audience=row["audience"] or 0,
                          reached=row["reached"] or 0) for row in grouped]


def execution_total(rows: Iterable[ExecutionRate]) -> ExecutionRate:
    """The rows added up (the scope's overall rate)."""
    rows = list(rows)
    return ExecutionRate(id=0, code="", name="", brand="", assigned=sum(r.assigned for r in rows),
                         executed=sum(r.executed for r in rows), audience=sum(r.audience for r in rows),
                         reached=sum(r.reached for r in rows))
