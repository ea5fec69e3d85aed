"""livestream.services: scheduling live sessions (排班) and moving them through their life.

DOMAIN.md "Store livestreams": HQ or brand staff plan store sessions per week; a store cannot run
two sessions at once and a guide cannot host two at once. Those conflicts are refused with 409.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable

from django.db import transaction

from livestream.errors import LivestreamErrorCode
from livestream.models import LiveSession
from mall.models import Product
from retail_crm.errors import ApplicationError, ErrorCode
from retail_crm.models import Brand, Guide, Store
from retail_crm.scoping import Actor, actor_for, in_scope

SCHEDULER_ROLES = ("hq", "brand_operator")


def _actor(actor) -> Actor:
    return actor if isinstance(actor, Actor) else actor_for(actor)


def _invalid(field: str, message: str) -> ApplicationError:
    return ApplicationError(ErrorCode.INVALID, message, status=400, fields={field: [message]})


def _overlapping(start: dt.datetime, end: dt.datetime):
    """Non-cancelled sessions whose planned time overlaps [start, end); touching ends do not overlap."""
    return (LiveSession.objects.exclude(status=LiveSession.Status.CANCELLED)
            .filter(planned_start__lt=end, planned_end__gt=start))


def _describe(session: LiveSession) -> str:
    return (f'"{session.title}" (#{session.pk}, {session.planned_start.isoformat()} – '
            f'{session.planned_end.isoformat()})')


def _refuse_conflicts(*, host_store: Store | None, host_guide: Guide | None, planned_start: dt.datetime,
                      planned_end: dt.datetime, moving: LiveSession | None = None) -> None:
    """409 when the store or the guide already has another non-cancelled session overlapping the time.

    Every scheduler touching this store or guide is serialised: the rows are locked (stores before guides,
    each table in primary-key order so two schedulers never wait on each other in a cycle), then checked.
    ``moving`` is the session being moved, which never clashes with itself.
    """
    if host_store is not None:
        list(Store.objects.select_for_update().filter(pk=host_store.pk).order_by("pk"))
    if host_guide is not None:
        list(Guide.objects.select_for_update().filter(pk=host_guide.pk).order_by("pk"))
    clashing = _overlapping(planned_start, planned_end)
    if moving is not None:
        clashing = clashing.exclude(pk=moving.pk)
    if host_store is not None:
        other = clashing.filter(host_store=host_store).order_by("planned_start", "pk").first()
        if other is not None:
            raise ApplicationError(LivestreamErrorCode.STORE_BUSY,
                                   f"Store {host_store.code} already has session {_describe(other)} at that time.",
                                   status=409, params={"store": host_store.code, "session": other})
    if host_guide is not None:
        other = clashing.filter(host_guide=host_guide).order_by("planned_start", "pk").first()
        if other is not None:
            raise ApplicationError(LivestreamErrorCode.GUIDE_BUSY,
                                   f"Guide {host_guide.code} already hosts session {_describe(other)} at that time.",
                                   status=409, params={"guide": host_guide.code, "session": other})



@transaction.atomic
def session_schedule(*, brand: Brand, kind: str, title: str, planned_start: dt.datetime, planned_end: dt.datetime,
                     host_store: Store | None = None, host_guide: Guide | None = None,
                     follows: LiveSession | None = None, platform: str = LiveSession.Platform.MINI_PROGRAM,
                     product_ids: Iterable[int] = (), actor) -> LiveSession:
    """Plan one live session after checking who asks, the host rules and the conflicts.

    Raises 403 unless the actor is HQ or a brand operator, 404 for a brand, store or guide outside the
    actor's scope, 400 with field messages for bad input, and 409 when the store or the guide already has
    an overlapping non-cancelled session (the message names it). A store session following an HQ central
    session without its own product list takes the HQ session's products.
    """
    actor = _actor(actor)
    if actor.role not in SCHEDULER_ROLES and not actor.is_superuser:
        raise ApplicationError(LivestreamErrorCode.SCHEDULE_FORBIDDEN,
                               "Only HQ or brand operators can schedule live sessions.", status=403)
    if not in_scope(brand, actor):
        raise ApplicationError(ErrorCode.NOT_FOUND, "No such brand.", status=404)
    if host_store is not None and not in_scope(host_store, actor):
        raise ApplicationError(ErrorCode.NOT_FOUND, "No such store.", status=404)
    if host_guide is not None and not in_scope(host_guide, actor):
        raise ApplicationError(ErrorCode.NOT_FOUND, "No such guide.", status=404)

    title = (title or "").strip()
    if not title:
        raise _invalid("title", "A title is required.")
    if kind not in LiveSession.Kind.values:
        raise _invalid("kind", f"Unknown kind {kind!r}.")
    if platform not in LiveSession.Platform.values:
        raise _invalid("platform", f"Unknown platform {platform!r}.")
    if planned_end <= planned_start:
        raise _invalid("planned_end", "The planned end must be after the planned start.")
    if kind == LiveSession.Kind.STORE:
        if host_store is None:
            raise _invalid("host_store", "A store session needs a host store.")
        if host_store.brand_id != brand.pk:
            raise _invalid("host_store", "The host store belongs to another brand.")
        if host_guide is not None and host_guide.store_id != host_store.pk:
            raise _invalid("host_guide", "The host guide does not work in the host store.")
    else:
        if host_store is not None:
            raise _invalid("host_store", "An HQ central session has no host store.")
        if follows is not None:
            raise _invalid("follows", "Only a store session can follow an HQ central session.")
    if host_guide is not None:
        if host_guide.left_at is not None and host_guide.left_at <= planned_start.date():
            raise _invalid("host_guide", "The host guide has left.")
        if host_store is None and host_guide.store.brand_id != brand.pk:
            raise _invalid("host_guide", "The host guide works for another brand.")
    if follows is not None:
        if follows.kind != LiveSession.Kind.HQ_CENTRAL:
            raise _invalid("follows", "A store session can only follow an HQ central session.")
        if follows.brand_id != brand.pk:
            raise _invalid("follows", "The followed session belongs to another brand.")
        if follows.status == LiveSession.Status.CANCELLED:
            raise _invalid("follows", "The followed session was cancelled.")
    product_ids = sorted(set(product_ids))
    products = list(Product.objects.filter(brand=brand, pk__in=product_ids))
    if len(products) != len(product_ids):
        unknown = sorted(set(product_ids) - {p.pk for p in products})
        raise _invalid("product_ids", f"Unknown products for this brand: {unknown}.")

    _refuse_conflicts(host_store=host_store, host_guide=host_guide, planned_start=planned_start,
                      planned_end=planned_end)
    session = LiveSession.objects.create(brand=brand, kind=kind, title=title, host_store=host_store,
                                         host_guide=host_guide, follows=follows, platform=platform,
                                         planned_start=planned_start, planned_end=planned_end)
    if not product_ids and follows is not None:
        # HQ shares its product list with the stores that mirror its session (the "1" feeds the "N").
        products = list(follows.products.all())
    if products:
        session.products.set(products)
    return session


def _locked(session: LiveSession) -> LiveSession:
    """Re-read the session under a row lock so two transitions of one session run one after the other."""
    return LiveSession.objects.select_for_update().get(pk=session.pk)


def _refuse(session: LiveSession, action: str) -> ApplicationError:
    return ApplicationError(ErrorCode.INVALID_TRANSITION,
                            f"Cannot {action} session #{session.pk}: it is {session.status}.", status=409)


@transaction.atomic
def session_start(session: LiveSession, at: dt.datetime) -> LiveSession:
    """A planned session goes live at ``at`` (its actual start)."""
    locked = _locked(session)
    if locked.status != LiveSession.Status.PLANNED:
        raise _refuse(locked, "start")
    locked.status = LiveSession.Status.LIVE
    locked.actual_start = at
    locked.save(update_fields=["status", "actual_start"])
    return locked


@transaction.atomic
def session_end(session: LiveSession, at: dt.datetime) -> LiveSession:
    """A live session ends at ``at`` (its actual end, not before its actual start)."""
    locked = _locked(session)
    if locked.status != LiveSession.Status.LIVE:
        raise _refuse(locked, "end")
    if at < locked.actual_start:
        raise _invalid("at", "A session cannot end before it started.")
    locked.status = LiveSession.Status.ENDED
    locked.actual_end = at
    locked.save(update_fields=["status", "actual_end"])
    # Its final figures are computed as soon as the end is committed, not at the next two-minute beat.
    from livestream.tasks import session_stats_refresh_task

    transaction.on_commit(lambda: session_stats_refresh_task.delay(locked.pk))
    return locked


@transaction.atomic
def session_cancel(session: LiveSession) -> LiveSession:
    """A planned session is called off; it no longer blocks its store or guide."""
    locked = _locked(session)
    if locked.status != LiveSession.Status.PLANNED:
        raise _refuse(locked, "cancel")
    locked.status = LiveSession.Status.CANCELLED
    locked.save(update_fields=["status"])
    return locked


@transaction.atomic
def session_move(*, session: LiveSession, planned_start: dt.datetime, planned_end: dt.datetime,
                 actor) -> LiveSession:
    """Move a planned session to another time, with the same rules and conflict checks as planning it.

    403 unless HQ or a brand operator, 404 outside the actor's scope, 400 for an end not after the start,
    409 when the session is no longer planned or when its store or guide is busy at the new time. A
    store session that follows an HQ central session keeps following it (the store may air it later).
    """
    actor = _actor(actor)
    if actor.role not in SCHEDULER_ROLES and not actor.is_superuser:
        raise ApplicationError(LivestreamErrorCode.SCHEDULE_FORBIDDEN,
                               "Only HQ or brand operators can schedule live sessions.", status=403)
    if not in_scope(session, actor):
        raise ApplicationError(ErrorCode.NOT_FOUND, "No such session.", status=404)
    if planned_end <= planned_start:
        raise _invalid("planned_end", "The planned end must be after the planned start.")
    locked = _locked(session)
    if locked.status != LiveSession.Status.PLANNED:
        raise _refuse(locked, "move")
    _refuse_conflicts(host_store=locked.host_store, host_guide=locked.host_guide, planned_start=planned_start,
                      planned_end=planned_end, moving=locked)
    locked.planned_start, locked.planned_end = planned_start, planned_end
    locked.save(update_fields=["planned_start", "planned_end"])
    return locked
