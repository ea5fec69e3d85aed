"""Store-livestream KPIs in phases (DOMAIN.md "1+N": first hours and sessions, then live sales, then coaching).

A brand sets monthly targets per phase (``LivePhaseTarget``); each store is in one phase
(``StoreLivePhase``, phase 1 until HQ moves it on). A store's **progress** for a local month is measured
against the targets of the phase it is in. The figures (the dashboard's ``livestream_summary`` uses the
same definitions, so the two never disagree):

* **sessions planned**: the store's sessions planned to start in the month, cancelled ones left out;
* **sessions held**: its sessions that ended and actually started in the month;
* **hours live**: Σ (actual end − actual start) of the sessions held, in hours to the cent;
* **live sales**: Σ paid sales (net of refunds) of the sessions held, and **viewers** (Σ session UV) and
  **buyers** (Σ session buyers), all from each session's ``SessionStats`` (refreshed by the
  ``livestream.stats`` job once a session has ended);
* **conversion**: Σ buyers ÷ Σ viewers, to 4 places (none without viewers);
* **coaching**: notes on the sessions held and their average rating (the phase-3 detail).

Which figures a phase judges is the brand's choice: every target of the phase's row above zero is
judged (progress = actual ÷ target, met when actual ≥ target); a zero target is not judged. The
defaults (DOMAIN.md) are phase 1 on sessions and hours, phase 2 adding sales and conversion, phase 3
keeping them while HQ coaches.

Every read goes through ``scoped``: a store manager sees their store, a region manager their region's
stores, a guide the figures of the sessions they hosted. Only HQ and brand operators change targets and
phases (403 for anyone else, 404 outside their scope).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal

from django.db import transaction
from django.db.models import Avg, Count, DurationField, ExpressionWrapper, F, Q, Sum
from django.utils import timezone

from livestream.models import CoachingNote, LivePhase, LivePhaseTarget, LiveSession, StoreLivePhase
from retail_crm.errors import ApplicationError, ErrorCode
from retail_crm.models import Brand, Store
from retail_crm.scoping import Actor, actor_for, in_scope, scoped

#: roles that set phase targets and move stores between phases
PHASE_EDITOR_ROLES = frozenset({"hq", "brand_operator"})

CENT = Decimal("0.01")
RATIO = Decimal("0.0001")

MEASURES = ("sessions", "hours", "sales", "conversion")
#: the measures as API choices (value, label)
MEASURE_CHOICES = tuple((m, m) for m in MEASURES)


@dataclass(frozen=True)
class PhaseTargetInput:
    """One phase's monthly targets as a caller gives them."""

    phase: int
    sessions_per_month: int = 0
    hours_per_month: Decimal = Decimal("0")
    sales_per_month: Decimal = Decimal("0")
    conversion: Decimal = Decimal("0")


@dataclass(frozen=True)
class TargetProgress:
    """One judged figure: the target, what the store achieved, actual ÷ target, and whether it is met."""

    measure: str  # sessions, hours, sales or conversion
    target: Decimal
    actual: Decimal | None
    ratio: Decimal | None
    met: bool


@dataclass(frozen=True)
class StoreLiveProgress:
    """A store's month in the store-livestream programme, against the targets of its phase."""

    store_id: int
    store_code: str
    store_name: str
    month: dt.date  # the first day of the local month
    phase: int
    phase_since: dt.date | None  # None: never set, the store starts in phase 1
    sessions_planned: int
    sessions_held: int
    hours_live: Decimal
    live_sales: Decimal
    viewers: int
    buyers: int
    conversion: Decimal | None
    coaching_notes: int
    average_rating: Decimal | None
    targets: tuple[TargetProgress, ...]
    all_met: bool | None  # None when the brand set no target for the phase


def _actor(actor) -> Actor:
    return actor if isinstance(actor, Actor) else actor_for(actor)


def _invalid(field: str, message: str) -> ApplicationError:
    return ApplicationError(ErrorCode.INVALID, message, status=400, fields={field: [message]})


def _must_see(obj, actor: Actor, what: str) -> None:
    if not in_scope(obj, actor):
        raise ApplicationError(ErrorCode.NOT_FOUND, f"No such {what}.", status=404)


def _must_edit(actor: Actor, message: str) -> None:
    if not actor.is_superuser and actor.role not in PHASE_EDITOR_ROLES:
        raise ApplicationError(ErrorCode.PERMISSION_DENIED, message, status=403)


def month_bounds(month: dt.date) -> tuple[dt.datetime, dt.datetime]:
    """The local month starting on ``month``'s first day, as [start, end) aware datetimes."""
    first = month.replace(day=1)
    following = (first + dt.timedelta(days=32)).replace(day=1)
    tz = timezone.get_default_timezone()
    return (dt.datetime.combine(first, dt.time.min, tzinfo=tz), dt.datetime.combine(following, dt.time.min, tzinfo=tz))


# ---------------------------------------------------------------------------- targets

def phase_targets_for_brand(*, brand: Brand, actor) -> list[LivePhaseTarget]:
    """The brand's targets for phases 1, 2 and 3; a phase never set comes back unsaved with zeros. 404 outside."""
    actor = _actor(actor)
    _must_see(brand, actor, "brand")
    saved = {t.phase: t for t in scoped(LivePhaseTarget.objects.filter(brand=brand), actor)}
    return [saved.get(phase) or LivePhaseTarget(brand=brand, phase=phase) for phase in LivePhase.values]


@transaction.atomic
def phase_targets_set(*, brand: Brand, targets: Sequence[PhaseTargetInput], actor) -> list[LivePhaseTarget]:
    """Write the targets of the phases given (others stay as they are); returns all three phases.

    403 unless HQ or a brand operator, 404 for a brand outside the scope, 400 with field messages for a
    phase given twice, an unknown phase, a negative figure or a conversion above 1.
    """
    actor = _actor(actor)
    _must_edit(actor, "Only HQ or brand operators can set livestream targets.")
    _must_see(brand, actor, "brand")
    if not targets:
        raise _invalid("targets", "Give the targets of at least one phase.")
    seen: set[int] = set()
    for index, target in enumerate(targets):
        prefix = f"targets.{index}"
        if target.phase not in LivePhase.values:
            raise _invalid(f"{prefix}.phase", f"Unknown phase {target.phase!r}; phases are 1, 2 and 3.")
        if target.phase in seen:
            raise _invalid(f"{prefix}.phase", f"Phase {target.phase} is given twice.")
        seen.add(target.phase)
        for name in ("sessions_per_month", "hours_per_month", "sales_per_month", "conversion"):
            if getattr(target, name) < 0:
                raise _invalid(f"{prefix}.{name}", "Must be 0 or more.")
        if target.conversion > 1:
            raise _invalid(f"{prefix}.conversion", "A conversion rate is at most 1 (100%).")
    # One writer per brand at a time: the brand row lock serialises concurrent PUTs, so the
    # (brand, phase) unique constraint is never raced into an IntegrityError.
    Brand.objects.select_for_update().filter(pk=brand.pk).first()
    for target in targets:
        LivePhaseTarget.objects.update_or_create(brand=brand, phase=target.phase, defaults={
            "sessions_per_month": target.sessions_per_month, "hours_per_month": target.hours_per_month,
            "sales_per_month": target.sales_per_month, "conversion": target.conversion})
    return phase_targets_for_brand(brand=brand, actor=actor)


# ---------------------------------------------------------------------------- a store's phase

def store_phase_get(*, store: Store, actor) -> StoreLivePhase:
    """The store's phase; a store never moved is in phase 1 (unsaved row, ``since`` empty). 404 outside."""
    actor = _actor(actor)
    _must_see(store, actor, "store")
    return (scoped(StoreLivePhase.objects.filter(store=store), actor).first()
            or StoreLivePhase(store=store, phase=LivePhase.DURATION, since=None))


@transaction.atomic
def store_phase_set(*, store: Store, phase: int, since: dt.date | None = None, actor) -> StoreLivePhase:
    """Move a store to ``phase`` from ``since`` (default: today, local). Setting the phase it is already in
    keeps its ``since`` unless a new one is given. 403 unless HQ or a brand operator, 404 outside the scope.
    """
    actor = _actor(actor)
    _must_edit(actor, "Only HQ or brand operators can change a store's livestream phase.")
    _must_see(store, actor, "store")
    if phase not in LivePhase.values:
        raise _invalid("phase", f"Unknown phase {phase!r}; phases are 1, 2 and 3.")
    Store.objects.select_for_update().filter(pk=store.pk).first()
    current = StoreLivePhase.objects.filter(store=store).first()
    if current is None:
        return StoreLivePhase.objects.create(store=store, phase=phase, since=since or timezone.localdate(),
                                             updated_by_id=actor.user_id)
    if current.phase != phase or since is not None:
        current.since = since or timezone.localdate()
    current.phase = phase
    current.updated_by_id = actor.user_id
    current.save(update_fields=["phase", "since", "updated_by"])
    return current


# ---------------------------------------------------------------------------- progress

def _hours(value: dt.timedelta | None) -> Decimal:
    seconds = Decimal(int((value or dt.timedelta()).total_seconds()))
    return (seconds / Decimal(3600)).quantize(CENT, rounding=ROUND_HALF_UP)


def _judge(target: LivePhaseTarget | None, actual: dict[str, Decimal | None]) -> tuple[TargetProgress, ...]:
    if target is None:
        return ()
    wanted = {"sessions": Decimal(target.sessions_per_month), "hours": target.hours_per_month,
              "sales": target.sales_per_month, "conversion": target.conversion}
    out = []
    for measure in MEASURES:
        goal = Decimal(wanted[measure])
        if goal <= 0:
            continue
        value = actual[measure]
        ratio = None if value is None else (value / goal).quantize(RATIO, rounding=ROUND_HALF_UP)
        out.append(TargetProgress(measure=measure, target=goal, actual=value, ratio=ratio,
                                  met=value is not None and value >= goal))
    return tuple(out)


def _progress(stores: list[Store], *, brand: Brand, month: dt.date, actor: Actor) -> list[StoreLiveProgress]:
    """Progress of these stores (all of ``brand``) in one set of grouped queries, not one per store."""
    month = month.replace(day=1)
    start, end = month_bounds(month)
    store_ids = [s.pk for s in stores]
    planned = Q(planned_start__gte=start, planned_start__lt=end) & ~Q(status=LiveSession.Status.CANCELLED)
    held = Q(status=LiveSession.Status.ENDED, actual_start__gte=start, actual_start__lt=end)
    live = ExpressionWrapper(F("actual_end") - F("actual_start"), output_field=DurationField())
    sessions = scoped(LiveSession.objects.filter(kind=LiveSession.Kind.STORE, host_store_id__in=store_ids), actor)
    figures = {row["host_store_id"]: row for row in (
        sessions.filter(planned | held).values("host_store_id")
        .annotate(planned=Count("pk", filter=planned), held=Count("pk", filter=held),
                  live_time=Sum(live, filter=held), sales=Sum("stats__paid_sales", filter=held),
                  viewers=Sum("stats__viewers", filter=held), buyers=Sum("stats__buyers", filter=held))
        .order_by())}
    coaching = {row["session__host_store_id"]: row for row in (
        scoped(CoachingNote.objects.filter(session__in=sessions.filter(held).values("pk")), actor)
        .values("session__host_store_id").annotate(notes=Count("pk"), rating=Avg("rating")).order_by())}
    phases = {p.store_id: p for p in scoped(StoreLivePhase.objects.filter(store_id__in=store_ids), actor)}
    targets = {t.phase: t for t in LivePhaseTarget.objects.filter(brand=brand)}

    result = []
    for store in stores:
        row = figures.get(store.pk, {})
        notes = coaching.get(store.pk, {})
        phase = phases.get(store.pk)
        viewers, buyers = int(row.get("viewers") or 0), int(row.get("buyers") or 0)
        conversion = (Decimal(buyers) / Decimal(viewers)).quantize(RATIO, rounding=ROUND_HALF_UP) if viewers \
            else None
        hours = _hours(row.get("live_time"))
        sales = Decimal(row.get("sales") or 0).quantize(CENT, rounding=ROUND_HALF_UP)
        held_count = int(row.get("held") or 0)
        phase_number = phase.phase if phase else int(LivePhase.DURATION)
        judged = _judge(targets.get(phase_number), {"sessions": Decimal(held_count), "hours": hours,
                                                    "sales": sales, "conversion": conversion})
        rating = notes.get("rating")
        result.append(StoreLiveProgress(
            store_id=store.pk, store_code=store.code, store_name=store.name, month=month, phase=phase_number,
            phase_since=phase.since if phase else None, sessions_planned=int(row.get("planned") or 0),
            sessions_held=held_count, hours_live=hours, live_sales=sales, viewers=viewers, buyers=buyers,
            conversion=conversion, coaching_notes=int(notes.get("notes") or 0),
            average_rating=None if rating is None else Decimal(str(rating)).quantize(CENT, rounding=ROUND_HALF_UP),
            targets=judged, all_met=all(t.met for t in judged) if judged else None))
    return result


def store_progress(*, store: Store, month: dt.date, actor) -> StoreLiveProgress:
    """One store's month against the targets of its phase. 404 for a store outside the scope."""
    actor = _actor(actor)
    _must_see(store, actor, "store")
    return _progress([store], brand=store.brand, month=month, actor=actor)[0]


def brand_store_progress(*, brand: Brand, month: dt.date, actor) -> list[StoreLiveProgress]:
    """Every active store of the brand the actor sees, by code, with its phase and its month's progress.

    404 for a brand outside the scope.
    """
    actor = _actor(actor)
    _must_see(brand, actor, "brand")
    stores = list(scoped(Store.objects.filter(brand=brand, is_active=True), actor).order_by("code"))
    return _progress(stores, brand=brand, month=month, actor=actor)
