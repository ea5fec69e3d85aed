"""Journeys: the platform reacts to what a member does, step by step (DOMAIN.md, "Reaching members").

A trigger enrols a member (:func:`journey_enrol`): an event handler (``marketing.handlers``: an order created,
a cart item added, products viewed repeatedly, a product favourited, an in-store try-on the guide recorded, a
new member, an RFML class entered by a same-day update) or the daily scan (:func:`journeys_daily`: birthdays,
the marketing day and the lapse point of the brand's cycle, RFML classes entered by the nightly run).
Each enrolment carries the trigger's key, unique per journey and member, so a trigger delivered twice enrols
once; the journey's re-entry rule (once ever, once per period, every time) is checked under a lock on the
member. A share of the members
entering, by a hash of member and journey (the same members every time), is held out: recorded, never acted
on, compared with the others for the lift.

The executor (:func:`journeys_advance`, every minute from beat and kicked after each enrolment commits)
claims due enrolments with ``SKIP LOCKED`` and runs their steps until a wait or the end: a wait ends a fixed
time after the step was reached (counted from when it fell due, so a late executor does not push the
journey later); a check the member fails ends the journey; every action goes through the app's services:
messages through ``message_send`` (consent, quiet hours, the cap, the care window; source
``journey:<j>/step:<s>/enrolment:<e>``, so a retried step never sends twice), coupons through the mall's
issuing, personal tasks onto the care list (``segments.care.care_task_add``), tags through the members app.
Each step leaves one :class:`JourneyStepLog` row (unique per enrolment and step) in the transaction of its
action. An ``order_paid`` of the brand after entering converts the member (:func:`journeys_order_paid`): with
``exit_on_conversion`` the remaining steps stop.
"""

from __future__ import annotations

import datetime as dt
import logging
import re
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from decimal import Decimal

from django.db import transaction
from django.db.models import Count, Exists, F, Max, OuterRef, Q
from django.utils import timezone

from mall.coupon_campaigns import coupons_issue_to
from mall.models import PAID_STATUSES, CartItem, CouponTemplate, Order, OrderLine, Product
from marketing.audiences import audience_rows
from marketing.campaigns import CONTENT_KEYS, TEMPLATE_CHANNELS, _content_errors, member_bucket
from marketing.models import (
    Audience,
    Channel,
    Delivery,
    Journey,
    JourneyEnrolment,
    JourneyStep,
    JourneyStepLog,
    MessageKind,
)
from marketing.results import Lift, lift_of
from marketing.services import message_send
from members.models import BehaviourEvent, BrandMembership, EventKind, GuideBinding, Member, MemberTag, TagValue
from members.tags import member_tag_assign, member_tag_remove
from retail_crm.errors import ApplicationError, ErrorCode
from retail_crm.vocabulary import Segment
from segments.care import care_calendar_for, care_task_add
from segments.models import MemberRfm, RfmClassChange

logger = logging.getLogger(__name__)

Trigger = Journey.Trigger
Kind = JourneyStep.Kind
Outcome = JourneyStepLog.Outcome
Status = JourneyEnrolment.Status

ADVANCE_BATCH = 200  # enrolments claimed per transaction
RETRY_AFTER = dt.timedelta(minutes=5)  # an enrolment whose step failed is looked at again after this
ENROL_CHUNK = 2000  # members locked and written per transaction when many enter at once
SCAN_GRACE_DAYS = 6  # a cycle point reached up to this many days ago still enters (the scan missed a day)
HOLDOUT_SALT = 1_000_003  # journeys hash members apart from campaigns of the same id
MAX_STEPS = 20  # steps a journey may have
CONDITIONS = ("paid_since_entry", "ordered_since_entry", "ordered_product_since_entry", "in_audience", "has_tag")
_VARIABLE = re.compile(r"\{([^{}]*)\}")


# ---------------------------------------------------------------------------- validation

def _int_param(params: dict, name: str, errors: dict, *, low: int, high: int, required: bool = True) -> None:
    value = params.get(name)
    if value is None and not required:
        return
    if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
        errors.setdefault(name, []).append(f"Give a whole number from {low} to {high}.")


def journey_trigger_params_errors(*, trigger: str, params) -> dict[str, list[str]]:
    """What is wrong with a trigger's parameters ({} when nothing)."""
    if trigger not in Trigger.values:
        return {"trigger": [f"Give one of {', '.join(Trigger.values)}."]}
    if not isinstance(params, dict):
        return {"trigger_params": ["Give an object."]}
    allowed = {Trigger.PRODUCT_VIEWS: {"views", "days", "product_ids"}, Trigger.BIRTHDAY: {"days_before"},
               Trigger.FAVOURITE: {"days", "product_ids"}, Trigger.CLASS_ENTERED: {"classes"}}
    errors: dict[str, list[str]] = {}
    unknown = set(params) - allowed.get(trigger, set())
    if unknown:
        errors["trigger_params"] = [f"Unknown for this trigger: {', '.join(sorted(unknown))}."]
    if trigger == Trigger.PRODUCT_VIEWS:
        _int_param(params, "views", errors, low=1, high=100)
        _int_param(params, "days", errors, low=1, high=30)
    if trigger == Trigger.FAVOURITE:  # days optional: FAVOURITE_DAYS
        _int_param(params, "days", errors, low=1, high=30, required=False)
    if trigger in (Trigger.PRODUCT_VIEWS, Trigger.FAVOURITE):
        ids = params.get("product_ids", [])
        if not isinstance(ids, list) or not all(isinstance(i, int) and not isinstance(i, bool) for i in ids):
            errors.setdefault("product_ids", []).append("Give a list of product ids.")
    if trigger == Trigger.BIRTHDAY:
        _int_param(params, "days_before", errors, low=0, high=30, required=False)
    if trigger == Trigger.CLASS_ENTERED:
        classes = params.get("classes")
        if not isinstance(classes, list) or not classes or len(set(classes)) != len(classes) \
                or any(not isinstance(c, str) or c not in Segment.values for c in classes):
            errors["classes"] = ["Give one or more RFML classes."]
    return errors


def journey_step_params_errors(*, brand_id: int, kind: str, params) -> list[str]:
    """What is wrong with one step's parameters ([] when nothing); ids must name things of the brand."""
    if kind not in Kind.values:
        return [f"Give one of {', '.join(Kind.values)}."]
    if not isinstance(params, dict):
        return ["Give an object."]
    errors: dict[str, list[str]] = {}
    if kind == Kind.WAIT:
        _int_param(params, "minutes", errors, low=1, high=60 * 24 * 60)
    elif kind == Kind.CHECK:
        condition = params.get("condition")
        if condition not in CONDITIONS:
            errors["condition"] = [f"Give one of {', '.join(CONDITIONS)}."]
        if not isinstance(params.get("expect"), bool):
            errors["expect"] = ["Give true or false: the answer that lets the member go on."]
        if condition == "in_audience" and not Audience.objects.filter(pk=params.get("audience"),
                                                                      brand_id=brand_id).exists():
            errors["audience"] = ["Give a saved audience of the brand."]
        if condition == "has_tag" and not _tag_value_of(params.get("tag_value"), brand_id):
            errors["tag_value"] = ["Give a tag value of the brand's group."]
    elif kind == Kind.SEND:
        channels = params.get("channels")
        if not isinstance(channels, list) or not channels or len(set(channels)) != len(channels) \
                or any(c not in Channel.values for c in channels):
            errors["channels"] = [f"Give distinct channels from {', '.join(Channel.values)}."]
        else:
            template = params.get("coupon_template")
            if template is not None and not _coupon_template_of(template, brand_id):
                errors["coupon_template"] = ["Give a coupon template of the brand."]
            if content_errors := _content_errors(params.get("content"), channels, has_link=bool(params.get("link")),
                                                 has_coupon=template is not None):
                errors["content"] = content_errors
    elif kind == Kind.COUPON:
        if not _coupon_template_of(params.get("coupon_template"), brand_id):
            errors["coupon_template"] = ["Give a coupon template of the brand."]
    elif kind == Kind.GUIDE_TASK:
        reason, action = params.get("reason"), params.get("action", "")
        if not isinstance(reason, str) or not 0 < len(reason) <= 200:
            errors["reason"] = ["Give the reason (1–200 characters)."]
        if not isinstance(action, str) or len(action) > 200:
            errors["action"] = ["The suggested script is at most 200 characters."]
    elif not _tag_value_of(params.get("tag_value"), brand_id):
        errors["tag_value"] = ["Give a tag value of the brand's group."]
    return [f"{name}: {message}" for name, messages in errors.items() for message in messages]


def _coupon_template_of(pk, brand_id: int) -> CouponTemplate | None:
    if not isinstance(pk, int) or isinstance(pk, bool):
        return None
    return CouponTemplate.objects.filter(pk=pk, brand_id=brand_id).first()


def _tag_value_of(pk, brand_id: int) -> TagValue | None:
    if not isinstance(pk, int) or isinstance(pk, bool):
        return None
    return (TagValue.objects.filter(pk=pk, tag_group__group__brands__pk=brand_id)
            .filter(Q(tag_group__brand__isnull=True) | Q(tag_group__brand_id=brand_id)).first())


def journey_check(*, journey: Journey) -> None:
    """400 with field messages when the journey or any of its steps is not valid (before it is activated)."""
    errors = journey_trigger_params_errors(trigger=journey.trigger, params=journey.trigger_params)
    if journey.reentry == Journey.Reentry.PER_PERIOD and not journey.reentry_days:
        errors["reentry_days"] = ["Give the period in days."]
    steps = list(journey.steps.order_by("position"))
    if not steps:
        errors["steps"] = ["Give at least one step."]
    for step in steps:
        for message in journey_step_params_errors(brand_id=journey.brand_id, kind=step.kind, params=step.params):
            errors.setdefault("steps", []).append(f"#{step.position}: {message}")
    if errors:
        raise ApplicationError(ErrorCode.INVALID, "The journey is not valid.", fields=errors)


# ---------------------------------------------------------------------------- editing and status

@dataclass(frozen=True)
class StepSpec:
    kind: str
    params: dict


def journey_save(*, journey: Journey | None, brand, name: str, trigger: str, trigger_params: dict, reentry: str,
                 reentry_days: int | None, holdout_percent: Decimal, exit_on_conversion: bool, conversion_days: int,
                 steps: Sequence[StepSpec]) -> Journey:
    """Create a draft journey of ``brand`` (``journey`` None) or rewrite a draft's settings and steps (in the
    order given). Checked as the admin checks it: 400 with field messages (a step's under ``steps.<index>``,
    each "param: message"); 409 for a journey that is no longer a draft (its members are on their way)."""
    if journey is not None and journey.status != Journey.Status.DRAFT:
        raise ApplicationError(ErrorCode.INVALID_TRANSITION, "Only a draft journey can be edited.", status=409,
                               params={"status": journey.status})
    errors = journey_trigger_params_errors(trigger=trigger, params=trigger_params)
    name = (name or "").strip()
    if not 0 < len(name) <= 80:
        errors["name"] = ["A name of 1–80 characters is required."]
    elif Journey.objects.filter(brand=brand, name=name).exclude(pk=journey.pk if journey else None).exists():
        errors["name"] = ["The brand already has a journey of that name."]
    if reentry not in Journey.Reentry.values:
        errors["reentry"] = [f"Give one of {', '.join(Journey.Reentry.values)}."]
    elif reentry == Journey.Reentry.PER_PERIOD and not (isinstance(reentry_days, int) and 1 <= reentry_days <= 3650):
        errors["reentry_days"] = ["Give the period in days."]
    if not isinstance(holdout_percent, Decimal) or not 0 <= holdout_percent <= 50:
        errors["holdout_percent"] = ["Give 0 to 50."]
    if not isinstance(conversion_days, int) or not 1 <= conversion_days <= 60:
        errors["conversion_days"] = ["Give 1 to 60 days."]
    if len(steps) > MAX_STEPS:
        errors["steps"] = [f"At most {MAX_STEPS} steps."]
    for index, step in enumerate(steps):
        if messages := journey_step_params_errors(brand_id=brand.pk, kind=step.kind, params=step.params):
            errors[f"steps.{index}"] = messages
    if errors:
        raise ApplicationError(ErrorCode.INVALID, "The journey is not valid.", fields=errors)
    with transaction.atomic():
        journey = journey or Journey(status=Journey.Status.DRAFT)
        journey.group_id, journey.brand = brand.group_id, brand
        journey.name, journey.trigger, journey.trigger_params = name, trigger, trigger_params
        journey.reentry = reentry
        journey.reentry_days = reentry_days if reentry == Journey.Reentry.PER_PERIOD else None
        journey.holdout_percent, journey.exit_on_conversion = holdout_percent, exit_on_conversion
        journey.conversion_days = conversion_days
        journey.save()
        journey.steps.all().delete()  # a draft: no enrolment and no log refers to them
        JourneyStep.objects.bulk_create(JourneyStep(journey=journey, position=position, kind=step.kind,
                                                    params=step.params) for position, step in enumerate(steps))
    return journey


# Which statuses each change of status starts from.
TRANSITIONS = {
    "activate": ((Journey.Status.DRAFT, Journey.Status.PAUSED), Journey.Status.ACTIVE),
    "pause": ((Journey.Status.ACTIVE,), Journey.Status.PAUSED),
    "end": ((Journey.Status.DRAFT, Journey.Status.ACTIVE, Journey.Status.PAUSED), Journey.Status.ENDED),
}


def journey_transition(*, journey: Journey, action: str) -> Journey:
    """Activate (a draft or paused journey, checked first: 400), pause (an active one: triggers enrol no one and
    the executor leaves its members where they are) or end it (members on their way exit at their next step).
    409 when the journey's status does not allow the change."""
    if action not in TRANSITIONS:
        raise ApplicationError(ErrorCode.INVALID, "Unknown action.")
    with transaction.atomic():
        journey = Journey.objects.select_for_update().get(pk=journey.pk)
        sources, target = TRANSITIONS[action]
        if journey.status not in sources:
            raise ApplicationError(ErrorCode.INVALID_TRANSITION, f"A journey that is {journey.status} cannot {action}.",
                                   status=409, params={"status": journey.status, "action": action})
        if action == "activate":
            journey_check(journey=journey)
        journey.status = target
        journey.save(update_fields=["status", "updated_at"])
    return journey


# ---------------------------------------------------------------------------- entering

def is_held_out(member_id: int, journey: Journey) -> bool:
    """Whether the member is in the journey's control group (the same answer every time they enter)."""
    return member_bucket(member_id, HOLDOUT_SALT + journey.pk) % 10000 < int(journey.holdout_percent * 100)


def _advance_soon() -> None:
    from marketing.tasks import journeys_advance_task

    transaction.on_commit(lambda: journeys_advance_task.delay(), robust=True)


def journey_enrol(*, journey: Journey, candidates: Iterable[tuple[int, str]], at: dt.datetime) -> int:
    """Enrol members entering ``journey`` at ``at``: ``candidates`` are (member id, trigger key) pairs.

    A pair already enrolled is skipped (a trigger delivered twice enrols once), and so is a member the
    journey's re-entry rule keeps out (once ever: any enrolment before; once per period: one entered within
    ``reentry_days`` before ``at``). Members are locked in id order while checked and written. The
    executor is kicked once the enrolments commit. Returns how many enrolments were written.
    """
    if journey.status != Journey.Status.ACTIVE:
        return 0
    pairs = list(dict.fromkeys(candidates))
    written = 0
    by_member: dict[int, list[str]] = defaultdict(list)
    for member_id, key in pairs:
        by_member[member_id].append(key[:80])
    ids = sorted(by_member)
    for start in range(0, len(ids), ENROL_CHUNK):
        chunk = ids[start:start + ENROL_CHUNK]
        with transaction.atomic():
            list(Member.objects.select_for_update().filter(pk__in=chunk).order_by("pk").values_list("pk", flat=True))
            existing = JourneyEnrolment.objects.filter(journey=journey, member_id__in=chunk)
            seen = set(existing.values_list("member_id", "trigger_key"))
            if journey.reentry == Journey.Reentry.ONCE:
                blocked = {member_id for member_id, _ in seen}
            elif journey.reentry == Journey.Reentry.PER_PERIOD:
                since = at - dt.timedelta(days=journey.reentry_days or 0)
                blocked = set(existing.filter(entered_at__gt=since).values_list("member_id", flat=True))
            else:
                blocked = set()
            rows = []
            for member_id in chunk:
                for key in by_member[member_id]:
                    if member_id in blocked or (member_id, key) in seen:
                        continue
                    if journey.reentry != Journey.Reentry.EVERY_TIME:
                        blocked.add(member_id)
                    held = is_held_out(member_id, journey)
                    rows.append(JourneyEnrolment(
                        journey=journey, member_id=member_id, trigger_key=key, entered_at=at,
                        status=Status.HELD_OUT if held else Status.ACTIVE, next_run_at=None if held else at))
            JourneyEnrolment.objects.bulk_create(rows, ignore_conflicts=True)
            if any(row.status == Status.ACTIVE for row in rows):
                _advance_soon()
            written += len(rows)
    return written


def _active_journeys(brand_id: int, trigger: str) -> list[Journey]:
    return list(Journey.objects.filter(brand_id=brand_id, trigger=trigger, status=Journey.Status.ACTIVE)
                .order_by("pk"))


def journeys_order_created(*, order_id: int) -> int:
    """``order_created``: the member enters the brand's unpaid-order journeys (its wait and check steps say
    "still unpaid after N minutes"), at the time the order was made."""
    order = Order.objects.filter(pk=order_id).only("member_id", "brand_id", "ordered_at").first()
    if order is None or order.member_id is None:
        return 0
    return sum(journey_enrol(journey=journey, candidates=[(order.member_id, f"order:{order.pk}")],
                             at=order.ordered_at)
               for journey in _active_journeys(order.brand_id, Trigger.ORDER_UNPAID))


def journeys_cart_item_added(*, member_id: int, brand_id: int, sku_id: int, at: str) -> int:
    """``cart_item_added``: the member enters the brand's abandoned-cart journeys at the time of the addition."""
    moment = dt.datetime.fromisoformat(at) if at else timezone.now()
    return sum(journey_enrol(journey=journey, candidates=[(member_id, f"cart:{sku_id}:{moment.isoformat()}")],
                             at=moment)
               for journey in _active_journeys(brand_id, Trigger.CART_ABANDONED))


def journeys_member_joined(*, member_id: int, brand_id: int) -> int:
    """``member_joined``: the new member enters the brand's welcome journeys, at the time they joined."""
    joined_at = (BrandMembership.objects.filter(member_id=member_id, brand_id=brand_id)
                 .values_list("joined_at", flat=True).first())
    if joined_at is None:
        return 0
    return sum(journey_enrol(journey=journey, candidates=[(member_id, "joined")], at=joined_at)
               for journey in _active_journeys(brand_id, Trigger.MEMBER_JOINED))


def journeys_try_on_recorded(*, event_id: int, member_id: int, brand_id: int, product_code: str, at: str) -> int:
    """``try_on_recorded``: a member who tried a product on in a store enters the brand's try-on journeys, at
    the time of the try-on; the key names the event and the product (the check step
    ``ordered_product_since_entry`` reads the product from it)."""
    moment = dt.datetime.fromisoformat(at) if at else timezone.now()
    key = f"try_on:{event_id}:{product_code}"
    return sum(journey_enrol(journey=journey, candidates=[(member_id, key)], at=moment)
               for journey in _active_journeys(brand_id, Trigger.TRY_ON))


def _trigger_product(trigger_key: str) -> Q | None:
    """The product the enrolment's trigger was about, as a filter on order lines (None: no product)."""
    kind, _, rest = trigger_key.partition(":")
    if kind == "try_on":
        return Q(sku__product__code=rest.partition(":")[2])
    if kind in ("views", "favourite"):  # views:<product code or id>:<day>, favourite:<product code or id>:<day>
        product = rest.rpartition(":")[0]
        by_code = Q(sku__product__code=product)
        return by_code | Q(sku__product_id=int(product)) if product.isdigit() else by_code
    if kind == "cart":  # cart:<sku id>:<time>
        sku = rest.partition(":")[0]
        return Q(sku_id=int(sku)) if sku.isdigit() else None
    return None


def _product_object_ids(brand_id: int, product_ids: Sequence[int]) -> list[str]:
    """How behaviour events may name these products: by code (the mini-program, the audiences, the behaviour
    tags and the demo do) or by id (as text)."""
    codes = Product.objects.filter(brand_id=brand_id, pk__in=list(product_ids)).values_list("code", flat=True)
    return sorted({*codes, *(str(pk) for pk in product_ids)})


def _ordered_products(brand_id: int, member_ids: set[int], objects: set[str], since: dt.datetime) -> dict:
    """(member, object id) → the latest order time of that product since ``since``, the product named by its
    code or its id as the events name it."""
    ids = {int(o) for o in objects if o.isdigit()}
    lines = OrderLine.objects.filter(order__brand_id=brand_id, order__member_id__in=member_ids,
                                     order__ordered_at__gte=since)
    ordered: dict[tuple[int, str], dt.datetime] = {}
    lines = lines.filter(Q(sku__product_id__in=ids) | Q(sku__product__code__in=objects))
    for member_id, product_id, code, at in lines.values_list("order__member_id", "sku__product_id",
                                                             "sku__product__code", "order__ordered_at"):
        for object_id in (str(product_id), code):
            ordered[(member_id, object_id)] = max(at, ordered.get((member_id, object_id), at))
    return ordered


def product_views_candidates(*, journey: Journey, member_ids: Sequence[int] | None,
                             now: dt.datetime) -> list[tuple[int, str]]:
    """Members among ``member_ids`` (None: every member) who viewed one product at least ``views`` times in the
    last ``days`` days (up to ``now``) and ordered none of it in that time; the key names the product and the
    local day, so a member enters at most once a day per product (the re-entry rule may say less often)."""
    params = journey.trigger_params
    since = now - dt.timedelta(days=params["days"])
    views = (BehaviourEvent.objects.filter(brand_id=journey.brand_id, kind=EventKind.PRODUCT_VIEW,
                                           occurred_at__gt=since, occurred_at__lte=now)
             .exclude(object_id=""))
    views = (views.filter(member_id__isnull=False) if member_ids is None
             else views.filter(member_id__in=list(member_ids)))
    if params.get("product_ids"):
        views = views.filter(object_id__in=_product_object_ids(journey.brand_id, params["product_ids"]))
    pairs = [(member_id, object_id) for member_id, object_id, _ in
             views.values("member_id", "object_id").annotate(n=Count("pk")).filter(n__gte=params["views"])
             .values_list("member_id", "object_id", "n")]
    if not pairs:
        return []
    ordered = _ordered_products(journey.brand_id, {m for m, _ in pairs}, {o for _, o in pairs},
                                since + dt.timedelta(microseconds=1))
    day = timezone.localdate(now).isoformat()
    return sorted((member_id, f"views:{object_id}:{day}") for member_id, object_id in pairs
                  if (member_id, object_id) not in ordered)


FAVOURITE_DAYS = 1  # a favourite trigger without ``days``: favourites of the last day


def favourite_candidates(*, journey: Journey, member_ids: Sequence[int] | None,
                         now: dt.datetime) -> list[tuple[int, str]]:
    """Members among ``member_ids`` (None: every member) who favourited a product (of ``product_ids``, when
    given) in the last ``days`` days (default ``FAVOURITE_DAYS``, up to ``now``) and have not ordered it since
    their latest favourite of it; the key names the product and the local day, so a member enters at most
    once a day per product (the re-entry rule may say less often)."""
    params = journey.trigger_params
    since = now - dt.timedelta(days=params.get("days", FAVOURITE_DAYS))
    favourites = (BehaviourEvent.objects.filter(brand_id=journey.brand_id, kind=EventKind.FAVOURITE,
                                                occurred_at__gt=since, occurred_at__lte=now)
                  .exclude(object_id=""))
    favourites = (favourites.filter(member_id__isnull=False) if member_ids is None
                  else favourites.filter(member_id__in=list(member_ids)))
    if params.get("product_ids"):
        favourites = favourites.filter(object_id__in=_product_object_ids(journey.brand_id, params["product_ids"]))
    latest = {(member_id, object_id): at for member_id, object_id, at in
              favourites.values("member_id", "object_id").annotate(at=Max("occurred_at"))
              .values_list("member_id", "object_id", "at")}
    if not latest:
        return []
    ordered = _ordered_products(journey.brand_id, {m for m, _ in latest}, {o for _, o in latest},
                                min(latest.values()))
    day = timezone.localdate(now).isoformat()
    return sorted((member_id, f"favourite:{object_id}:{day}") for (member_id, object_id), at in latest.items()
                  if not ((member_id, object_id) in ordered and ordered[(member_id, object_id)] >= at))


BEHAVIOUR_TRIGGERS = {Trigger.PRODUCT_VIEWS: product_views_candidates, Trigger.FAVOURITE: favourite_candidates}


def journeys_behaviour_recorded(*, brand_id: int, member_ids: Sequence[int], now: dt.datetime | None = None) -> int:
    """``behaviour_recorded``: members of the batch who now meet a product-views or a favourite trigger enter
    its journey."""
    now = now or timezone.now()
    entered = 0
    for trigger, candidates_of in BEHAVIOUR_TRIGGERS.items():
        for journey in _active_journeys(brand_id, trigger):
            if journey_trigger_params_errors(trigger=journey.trigger, params=journey.trigger_params):
                logger.error("journey %s: its trigger parameters are not valid; skipped", journey.pk)
                continue
            entered += journey_enrol(journey=journey, at=now,
                                     candidates=candidates_of(journey=journey, member_ids=member_ids, now=now))
    return entered


def journeys_rfml_class_changed(*, member_id: int, brand_id: int, to_segment: str, on: str,
                                now: dt.datetime | None = None) -> int:
    """``rfml_class_changed`` (a same-day update moved the member's RFML class): the member enters the brand's
    class-entered journeys that chose the new class, with the daily scan's key (``class:<class>:<day>``), so
    the scan that finds the same change later enrols no one twice."""
    if not to_segment:
        return 0
    now = now or timezone.now()
    entered = 0
    for journey in _active_journeys(brand_id, Trigger.CLASS_ENTERED):
        if journey_trigger_params_errors(trigger=journey.trigger, params=journey.trigger_params):
            logger.error("journey %s: its trigger parameters are not valid; skipped", journey.pk)
            continue
        if to_segment in journey.trigger_params["classes"]:
            entered += journey_enrol(journey=journey, candidates=[(member_id, f"class:{to_segment}:{on}")], at=now)
    return entered


def _birthday_candidates(journey: Journey, today: dt.date) -> list[tuple[int, str]]:
    day = today + dt.timedelta(days=journey.trigger_params.get("days_before", 0))
    dates = Q(member__birthday__month=day.month, member__birthday__day=day.day)
    if (day.month, day.day) == (2, 28) and not _is_leap(day.year):
        dates |= Q(member__birthday__month=2, member__birthday__day=29)
    ids = (BrandMembership.objects.filter(dates, brand_id=journey.brand_id, member__merged_into__isnull=True)
           .values_list("member_id", flat=True))
    return [(member_id, f"birthday:{day.year}") for member_id in ids]


def _is_leap(year: int) -> bool:
    return year % 4 == 0 and (year % 100 != 0 or year % 400 == 0)


def _cycle_candidates(journey: Journey, today: dt.date) -> list[tuple[int, str]]:
    """Members whose days since their last purchase reached the brand's marketing day (and not yet the lapse
    point) or the lapse point, at most ``SCAN_GRACE_DAYS`` ago; one entry per last purchase."""
    calendar = care_calendar_for(journey.brand)
    if calendar.cycle_days is None:
        return []
    if journey.trigger == Trigger.MARKETING_DAY:
        first, last = calendar.marketing_day, min(calendar.marketing_day + SCAN_GRACE_DAYS, calendar.lapse_day - 1)
    else:
        first, last = calendar.lapse_day, calendar.lapse_day + SCAN_GRACE_DAYS
    if last < first:
        return []
    rows = MemberRfm.objects.filter(brand_id=journey.brand_id, last_purchase_on__gte=today - dt.timedelta(days=last),
                                    last_purchase_on__lte=today - dt.timedelta(days=first))
    return [(member_id, f"{journey.trigger}:{last_on.isoformat()}")
            for member_id, last_on in rows.values_list("member_id", "last_purchase_on")]


def _class_entered_candidates(journey: Journey, today: dt.date) -> list[tuple[int, str]]:
    """Members whose RFML class changed into one of the journey's ``classes`` (by a run or a same-day update)
    at most ``SCAN_GRACE_DAYS`` ago and who are still in it; one entry per class and day of the change."""
    still = MemberRfm.objects.filter(member_id=OuterRef("member_id"), brand_id=journey.brand_id,
                                     segment=OuterRef("to_segment"))
    rows = (RfmClassChange.objects.filter(brand_id=journey.brand_id, to_segment__in=journey.trigger_params["classes"],
                                          changed_on__gte=today - dt.timedelta(days=SCAN_GRACE_DAYS),
                                          changed_on__lte=today)
            .exclude(from_segment=F("to_segment")).filter(Exists(still)))
    return sorted({(member_id, f"class:{to}:{on.isoformat()}")
                   for member_id, to, on in rows.values_list("member_id", "to_segment", "changed_on")})


DAILY_SCANS = {Trigger.BIRTHDAY: _birthday_candidates, Trigger.MARKETING_DAY: _cycle_candidates,
               Trigger.LAPSE_POINT: _cycle_candidates, Trigger.CLASS_ENTERED: _class_entered_candidates}


@dataclass(frozen=True)
class DailyResult:
    journeys: int
    entered: int


def journeys_daily(*, now: dt.datetime | None = None) -> DailyResult:
    """The daily triggers: birthdays, the points of the brand's cycle and RFML classes entered, for every active
    journey of them."""
    now = now or timezone.now()
    today = timezone.localdate(now)
    journeys = list(Journey.objects.filter(trigger__in=list(DAILY_SCANS), status=Journey.Status.ACTIVE)
                    .select_related("brand").order_by("pk"))
    entered = 0
    for journey in journeys:
        if journey_trigger_params_errors(trigger=journey.trigger, params=journey.trigger_params):
            logger.error("journey %s: its trigger parameters are not valid; skipped", journey.pk)
            continue
        entered += journey_enrol(journey=journey, candidates=DAILY_SCANS[journey.trigger](journey, today), at=now)
    return DailyResult(journeys=len(journeys), entered=entered)


# ---------------------------------------------------------------------------- the preview

EVENT_TRIGGERS = (Trigger.ORDER_UNPAID, Trigger.CART_ABANDONED, Trigger.MEMBER_JOINED)
PREVIEW_EVENT_DAYS = 7


def journey_entering_today(*, journey: Journey, now: dt.datetime | None = None) -> list[int]:
    """Ids of the members the journey's trigger picks today: the daily scan's (birthday, cycle points, RFML
    classes entered) or the members who meet the product-views or favourite condition now; the very functions
    the triggers enrol from, before the re-entry rule and the holdout. Only for those triggers (the others fire
    on events)."""
    now = now or timezone.now()
    if journey.trigger in DAILY_SCANS:
        pairs = DAILY_SCANS[journey.trigger](journey, timezone.localdate(now))
    elif journey.trigger in BEHAVIOUR_TRIGGERS:
        pairs = BEHAVIOUR_TRIGGERS[journey.trigger](journey=journey, member_ids=None, now=now)
    else:
        raise ValueError(f"{journey.trigger} fires on events, not on a scan")
    return sorted({member_id for member_id, _key in pairs})


@dataclass(frozen=True)
class JourneyPreview:
    basis: str  # "today": members who would enter today; "events": such events in the last PREVIEW_EVENT_DAYS
    count: int


def journey_preview(*, journey: Journey, now: dt.datetime | None = None) -> JourneyPreview | None:
    """About how many members would enter: today's (scanned and behaviour triggers, :func:`journey_entering_today`,
    re-entry and holdout not applied), or for the event triggers the trigger's events of the last 7 days (orders
    of members, cart items added and still in a cart, new members of the brand). None when the trigger's
    parameters are not valid."""
    now = now or timezone.now()
    if journey_trigger_params_errors(trigger=journey.trigger, params=journey.trigger_params):
        return None
    if journey.trigger not in EVENT_TRIGGERS:
        return JourneyPreview(basis="today", count=len(journey_entering_today(journey=journey, now=now)))
    since = now - dt.timedelta(days=PREVIEW_EVENT_DAYS)
    if journey.trigger == Trigger.ORDER_UNPAID:
        rows = Order.objects.filter(brand_id=journey.brand_id, member__isnull=False, ordered_at__gt=since,
                                   ordered_at__lte=now)
    elif journey.trigger == Trigger.CART_ABANDONED:
        rows = CartItem.objects.filter(sku__brand_id=journey.brand_id, updated_at__gt=since, updated_at__lte=now)
    else:
        rows = BrandMembership.objects.filter(brand_id=journey.brand_id, joined_at__gt=since, joined_at__lte=now)
    return JourneyPreview(basis="events", count=rows.count())


# ---------------------------------------------------------------------------- converting

def journeys_order_paid(*, order_id: int) -> int:
    """``order_paid``: members who entered a journey of the order's brand before paying, within its conversion
    window, are converted; those still on their way stop there when the journey exits on conversion.
    Held-out members are marked converted too (for the lift) and stay held out. Returns how many were marked."""
    order = Order.objects.filter(pk=order_id).only("member_id", "brand_id", "paid_at", "status").first()
    if order is None or order.member_id is None or order.paid_at is None or order.status not in PAID_STATUSES:
        return 0
    marked = 0
    rows = (JourneyEnrolment.objects.select_for_update()
            .filter(member_id=order.member_id, journey__brand_id=order.brand_id, entered_at__lte=order.paid_at,
                    converted_at__isnull=True).select_related("journey").order_by("pk"))
    with transaction.atomic():
        for row in rows:
            if order.paid_at > row.entered_at + dt.timedelta(days=row.journey.conversion_days):
                continue
            row.converted_at = order.paid_at
            fields = ["converted_at"]
            if row.status in (Status.ACTIVE, Status.WAITING) and row.journey.exit_on_conversion:
                row.status, row.exit_reason, row.exited_at, row.next_run_at = (
                    Status.CONVERTED, "converted", order.paid_at, None)
                fields += ["status", "exit_reason", "exited_at", "next_run_at"]
            row.save(update_fields=fields)
            marked += 1
    return marked


# ---------------------------------------------------------------------------- the executor

@dataclass(frozen=True)
class AdvanceResult:
    advanced: int  # enrolments looked at
    actions: int  # steps that acted (sent or held a message, issued, tasked, tagged)
    failed: int  # enrolments whose step raised (tried again after RETRY_AFTER)


def _render(value, values: dict[str, str]):
    if isinstance(value, str):
        return _VARIABLE.sub(lambda m: values.get(m.group(1), m.group(0)), value)
    if isinstance(value, dict):
        return {key: _render(item, values) for key, item in value.items()}
    if isinstance(value, list):
        return [_render(item, values) for item in value]
    return value


def _message_content(step: JourneyStep, member: Member, brand_id: int) -> dict:
    """Each channel's content with ``{name}``, ``{guide}``, ``{link}``, ``{coupon}`` filled in, and the coupon
    template (issued by the dispatcher when the message goes), as a campaign's deliveries carry them."""
    params = step.params
    template_id = params.get("coupon_template")
    guide = (GuideBinding.objects.filter(member=member, brand_id=brand_id, ended_at__isnull=True)
             .values_list("guide__name", flat=True).first())
    coupon = CouponTemplate.objects.filter(pk=template_id).values_list("name", flat=True).first() if template_id else ""
    values = {"name": member.name, "guide": guide or "", "link": params.get("link", ""), "coupon": coupon or ""}
    content = {}
    for channel in params["channels"]:
        entry = params["content"][channel]
        rendered = {key: _render(entry[key], values) for key in CONTENT_KEYS[channel] if key in entry}
        if channel in TEMPLATE_CHANNELS:
            rendered.setdefault("params", [])
        if template_id:
            rendered["coupon_template"] = template_id
        content[channel] = rendered
    return content


def _check(condition: str, params: dict, enrolment: JourneyEnrolment, brand_id: int, now: dt.datetime) -> bool:
    member_id = enrolment.member_id
    if condition == "paid_since_entry":
        return Order.objects.filter(member_id=member_id, brand_id=brand_id, paid_at__gte=enrolment.entered_at,
                                    paid_at__lte=now).exists()
    if condition == "ordered_since_entry":
        # Orders after entering; an order that was the trigger itself (the unpaid-order journey) does not count.
        orders = Order.objects.filter(member_id=member_id, brand_id=brand_id, ordered_at__gte=enrolment.entered_at,
                                      ordered_at__lte=now)
        if enrolment.trigger_key.startswith("order:"):
            orders = orders.exclude(pk=enrolment.trigger_key.removeprefix("order:"))
        return orders.exists()
    if condition == "ordered_product_since_entry":
        # An order of the brand made since entering with a line of the trigger's product (cancelled ones count
        # too: the member acted on it); a trigger without a product: any order since entering.
        product = _trigger_product(enrolment.trigger_key)
        lines = OrderLine.objects.filter(order__member_id=member_id, order__brand_id=brand_id,
                                         order__ordered_at__gte=enrolment.entered_at, order__ordered_at__lte=now)
        return lines.filter(product).exists() if product is not None else lines.exists()
    if condition == "in_audience":
        audience = Audience.objects.select_related("brand").get(pk=params["audience"])
        return audience_rows(brand=audience.brand, definition=audience.definition, at=now).filter(
            member_id=member_id).exists()
    return MemberTag.objects.filter(member_id=member_id, tag_value_id=params["tag_value"]).exists()


def _act(step: JourneyStep, enrolment: JourneyEnrolment, journey: Journey, now: dt.datetime) -> JourneyStepLog:
    """Run one action step for one enrolment; returns its (unsaved) log row."""
    log = JourneyStepLog(enrolment=enrolment, step=step, at=now)
    member = enrolment.member
    params = step.params
    source = f"journey:{journey.pk}/step:{step.pk}/enrolment:{enrolment.pk}"
    if step.kind == Kind.SEND:
        delivery = message_send(member=member, brand=journey.brand, kind=MessageKind.MARKETING,
                                channels=params["channels"], source=source,
                                content=_message_content(step, member, journey.brand_id), at=now)
        log.delivery = delivery
        held = delivery.status == Delivery.Status.HELD
        log.outcome, log.detail = (Outcome.HELD, delivery.hold_reason) if held else (Outcome.SENT, delivery.channel)
    elif step.kind == Kind.COUPON:
        template = CouponTemplate.objects.select_related("brand").get(pk=params["coupon_template"])
        try:
            coupons_issue_to(template=template, members=Member.objects.filter(pk=member.pk), at=now,
                             once_per_member=False)
            log.outcome, log.detail = Outcome.ISSUED, template.name[:200]
        except ApplicationError as exc:
            log.outcome, log.detail = Outcome.SKIPPED, exc.message[:200]
    elif step.kind == Kind.GUIDE_TASK:
        item = care_task_add(member=member, brand=journey.brand, day=timezone.localdate(now),
                             reason=params["reason"], action=params.get("action", ""), source=source)
        if item is None:
            log.outcome, log.detail = Outcome.SKIPPED, "no active guide and no store manager"
        else:
            log.outcome, log.detail = Outcome.TASK, f"care-item:{item.pk}"
    else:
        tag_value = TagValue.objects.select_related("tag_group").get(pk=params["tag_value"])
        try:
            if step.kind == Kind.TAG_ADD:
                if MemberTag.objects.filter(member=member, tag_value=tag_value).exists():
                    log.outcome, log.detail = Outcome.SKIPPED, "already held"
                else:
                    member_tag_assign(member=member, tag_value=tag_value, reason=journey.name[:200], at=now,
                                      evidence={"journey": journey.pk, "step": step.pk})
                    log.outcome = Outcome.TAGGED
            else:
                member_tag_remove(member=member, tag_value=tag_value, reason=f"journey {journey.pk}")
                log.outcome = Outcome.UNTAGGED
        except ApplicationError as exc:
            log.outcome, log.detail = Outcome.SKIPPED, exc.message[:200]
    return log


def _end(enrolment: JourneyEnrolment, status: str, reason: str, now: dt.datetime) -> None:
    enrolment.status, enrolment.exit_reason, enrolment.exited_at, enrolment.next_run_at = status, reason, now, None


def _advance_one(enrolment: JourneyEnrolment, journey: Journey, steps: list[JourneyStep], now: dt.datetime) -> int:
    """Run ``enrolment``'s steps from its position until a wait that has not ended, or the end; returns how
    many steps acted. The caller holds the enrolment's row lock and saves it."""
    logs = {log.step_id: log for log in JourneyStepLog.objects.filter(enrolment=enrolment)}
    base = enrolment.next_run_at or now  # when it fell due: waits are counted from here, not from a late run
    actions = 0
    if journey.status == Journey.Status.ENDED:
        _end(enrolment, Status.EXITED, "journey_ended", now)
        return 0
    for step in steps:
        if step.position < enrolment.position:
            continue
        log = logs.get(step.pk)
        if step.kind == Kind.WAIT:
            if log is None:  # the wait starts: it ends a fixed time after the step fell due
                end = base + dt.timedelta(minutes=step.params["minutes"])
                log = JourneyStepLog.objects.create(enrolment=enrolment, step=step, at=base, outcome=Outcome.WAITING,
                                                    detail=f"until {end.isoformat()}")
            elif log.outcome == Outcome.WAITED:  # ended before (its log keeps the end)
                end = log.at
            else:
                end = log.at + dt.timedelta(minutes=step.params["minutes"])
            if end > now:
                enrolment.status, enrolment.next_run_at = Status.WAITING, end
                return actions
            JourneyStepLog.objects.filter(pk=log.pk).update(outcome=Outcome.WAITED, at=end)
            base = end
        elif log is not None:  # done before (a retry after the step's transaction committed): never again
            pass
        elif step.kind == Kind.CHECK:
            passed = _check(step.params["condition"], step.params, enrolment, journey.brand_id, now)
            ok = passed == step.params["expect"]
            JourneyStepLog.objects.create(enrolment=enrolment, step=step, at=now,
                                          outcome=Outcome.PASSED if ok else Outcome.FAILED,
                                          detail=f"{step.params['condition']}={passed}")
            if not ok:
                _end(enrolment, Status.EXITED, "check_failed", now)
                enrolment.position = step.position + 1
                return actions
        else:
            _act(step, enrolment, journey, now).save()
            actions += 1
        enrolment.position = step.position + 1
        enrolment.status = Status.ACTIVE
    _end(enrolment, Status.COMPLETED, "", now)
    return actions


def journeys_advance(*, now: dt.datetime | None = None, limit: int = 10 * ADVANCE_BATCH) -> AdvanceResult:
    """Run every due enrolment of an active journey (at most ``limit`` this call) until its next wait or its
    end. Claimed ``ADVANCE_BATCH`` at a time with ``SKIP LOCKED`` (so several executors share the work), each
    enrolment in its own savepoint: one that fails is logged and looked at again after ``RETRY_AFTER``."""
    now = now or timezone.now()
    advanced = actions = failed = 0
    steps_of: dict[int, list[JourneyStep]] = {}
    journeys: dict[int, Journey] = {}
    while advanced < limit:
        with transaction.atomic():
            rows = list(JourneyEnrolment.objects.select_for_update(skip_locked=True, of=("self",))
                        .filter(status__in=[Status.ACTIVE, Status.WAITING], next_run_at__lte=now,
                                journey__status__in=[Journey.Status.ACTIVE, Journey.Status.ENDED])
                        .order_by("next_run_at", "pk")[:ADVANCE_BATCH])
            wanted = {row.journey_id for row in rows} - set(journeys)
            for journey in Journey.objects.filter(pk__in=wanted).select_related("brand"):
                journeys[journey.pk] = journey
                steps_of[journey.pk] = list(journey.steps.order_by("position"))
            members = Member.objects.in_bulk({row.member_id for row in rows})
            for row in rows:
                row.member = members[row.member_id]
                try:
                    with transaction.atomic():
                        actions += _advance_one(row, journeys[row.journey_id], steps_of[row.journey_id], now)
                        row.save(update_fields=["position", "status", "next_run_at", "exit_reason", "exited_at"])
                except Exception:
                    logger.exception("journey enrolment %s: a step failed; trying again later", row.pk)
                    JourneyEnrolment.objects.filter(pk=row.pk).update(next_run_at=now + RETRY_AFTER)
                    failed += 1
            advanced += len(rows)
        if len(rows) < ADVANCE_BATCH:
            break
    return AdvanceResult(advanced=advanced, actions=actions, failed=failed)


# ---------------------------------------------------------------------------- results

@dataclass
class StepFigures:
    position: int
    kind: str
    entered: int = 0  # enrolments that reached the step
    waiting: int = 0  # enrolments waiting at it now
    acted: int = 0  # messages sent or on their way, coupons issued, tasks given, tags changed
    held: dict[str, int] = field(default_factory=dict)  # messages held back, by reason
    converted: int = 0  # enrolments that reached the step and converted


@dataclass
class JourneyFigures:
    entered: int = 0  # holdout included
    held_out: int = 0
    on_the_way: int = 0  # active or waiting
    completed: int = 0
    exited: int = 0
    converted: int = 0  # holdout included
    steps: list[StepFigures] = field(default_factory=list)
    lift: Lift | None = None


ACTED = (Outcome.SENT, Outcome.ISSUED, Outcome.TASK, Outcome.TAGGED, Outcome.UNTAGGED)


def journey_results(*, journey: Journey) -> JourneyFigures:
    """The journey's figures: members per status, per step (entered, waiting, acted, held by reason,
    converted) and the lift of the members acted on against the holdout (conversion within the window)."""
    figures = JourneyFigures()
    enrolments = JourneyEnrolment.objects.filter(journey=journey)
    counts: dict[str, int] = {}
    for status, converted_at in enrolments.values_list("status", "converted_at"):
        figures.entered += 1
        figures.converted += converted_at is not None
        counts[status] = counts.get(status, 0) + 1
    figures.held_out = counts.get(Status.HELD_OUT, 0)
    figures.on_the_way = counts.get(Status.ACTIVE, 0) + counts.get(Status.WAITING, 0)
    figures.completed = counts.get(Status.COMPLETED, 0)
    figures.exited = counts.get(Status.EXITED, 0) + counts.get(Status.CONVERTED, 0)
    holdout_converted = enrolments.filter(status=Status.HELD_OUT, converted_at__isnull=False).count()
    treated = figures.entered - figures.held_out
    figures.lift = lift_of(treated, figures.converted - holdout_converted, figures.held_out, holdout_converted)

    logs = JourneyStepLog.objects.filter(step__journey=journey)
    by_step: dict[int, StepFigures] = {}
    for step in journey.steps.order_by("position"):
        by_step[step.pk] = StepFigures(position=step.position, kind=step.kind)
        figures.steps.append(by_step[step.pk])
    for step_id, outcome, status, hold_reason, converted_at, enrolment_status in logs.values_list(
            "step_id", "outcome", "delivery__status", "delivery__hold_reason", "enrolment__converted_at",
            "enrolment__status"):
        row = by_step[step_id]
        row.entered += 1
        row.converted += converted_at is not None
        if outcome == Outcome.WAITING and enrolment_status == Status.WAITING:
            row.waiting += 1
        if status == Delivery.Status.HELD:  # held when decided, or at send time (an opt-out, a purchase)
            row.held[hold_reason] = row.held.get(hold_reason, 0) + 1
        elif outcome in ACTED and status != Delivery.Status.FAILED:
            row.acted += 1
    return figures
