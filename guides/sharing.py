"""Shares (one tap: a product, material, livestream, task or the mall as a link) and their funnels.

A share gets its own code, signed like a guide token and made under the sharer's
current token (``guides.services``), so the mini-program passes it wherever a
share token goes: behaviour events, the cart, the order. The funnel of a share is
then counted from the rows carrying its code:

* **views (PV)**: behaviour events ``product_view``, ``material_view`` or
  ``live_watch`` with the code, a viewer's views of one share within one
  window (``SHARE_VIEW_WINDOW_MINUTES``, default 30, fixed clock windows)
  counting **once**: one visitor opening a share 100 times in 12:00–12:30 is
  one view (``members.share_views`` has the rule and why it is applied when
  counting); **visitors (UV)**: distinct people among them (a logged-in member
  counts once, an anonymous visitor id once);
* **add to cart**: ``add_to_cart`` events with the code (events, not people);
* **orders**: every order placed with the code (GMV sense: unpaid, cancelled and
  refunded ones included);
* **paid**: those orders that are purchases (``mall.selectors.purchases``: paid,
  net of refunds above zero), with their net sales;
* **associated sales (连带)**: in those paid orders, the net (amount − refunded)
  of the lines of *other* products than the one shared. A share has a shared
  product when it is a product share, or a material or task share whose material
  or task names a product. Shares with no product (a livestream, the mall home,
  a material or task without a product) have **no associated sales (0)**: every
  line they bring is the direct sale itself.

Every funnel function takes a set of shares and answers with a fixed number of
queries (five), whatever the number of shares.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Hashable, Iterable
from dataclasses import dataclass
from decimal import Decimal
from urllib.parse import urlencode

from django.conf import settings
from django.db import transaction
from django.db.models import Count, DecimalField, ExpressionWrapper, F, Q, QuerySet, Sum
from django.utils import timezone
from django.utils.translation import gettext as _

from guides.errors import GuidesErrorCode
from guides.models import GuideTask, Material, Share
from guides.services import guide_token_current, signed_code_new
from mall.models import Order, OrderLine, Product
from mall.selectors import purchases
from members.models import BehaviourEvent, EventKind
from members.share_views import share_view_key
from retail_crm.errors import ApplicationError
from retail_crm.models import Guide

ZERO = Decimal("0.00")
VIEW_KINDS = (EventKind.PRODUCT_VIEW, EventKind.MATERIAL_VIEW, EventKind.LIVE_WATCH)


# ---------------------------------------------------------------------------- who shares

@dataclass(frozen=True)
class Sharer:
    """Who shares: a guide (store managers are guides too), or an office staff login (all-staff distribution)."""

    group_id: int
    guide: Guide | None = None
    staff_user: object | None = None  # the User, when there is no guide row

    def token_owner(self) -> dict:
        return {"guide": self.guide} if self.guide is not None else {"staff_user": self.staff_user}

    def share_filter(self) -> Q:
        if self.guide is not None:
            return Q(guide=self.guide)
        return Q(guide__isnull=True, staff_user=self.staff_user)


def sharer_for(user, actor) -> Sharer | None:
    """The sharer a staff login acts as; None for logins outside any group (platform operators)."""
    if not actor.is_staff_member or actor.group_id is None:
        return None
    if actor.guide_id is not None:
        guide = Guide.objects.select_related("store", "store__brand").filter(pk=actor.guide_id).first()
        if guide is not None:
            return Sharer(group_id=actor.group_id, guide=guide)
    return Sharer(group_id=actor.group_id, staff_user=user)


# ---------------------------------------------------------------------------- links and text

def _landing(params: dict) -> str:
    base = settings.MINIPROGRAM_JOIN_URL
    return f"{base}{'&' if '?' in base else '?'}{urlencode(params)}"


def join_link(token: str) -> str:
    """What a guide's exclusive QR code encodes: the mini-program landing page with the token (scan = join + bind)."""
    return _landing({"token": token})


def _target_id(share: Share) -> int | None:
    return {Share.Target.PRODUCT: share.product_id, Share.Target.MATERIAL: share.material_id,
            Share.Target.LIVE: share.live_session_id, Share.Target.TASK: share.task_id}.get(share.target)


def share_link(share: Share) -> str:
    """The link a share sends: the landing page with the share code, the page to open and its object."""
    params = {"token": share.code, "page": share.target}
    object_id = _target_id(share)
    if object_id is not None:
        params["id"] = object_id
    return _landing(params)


def share_text(share: Share) -> str:
    """The text the guide copies and sends with the link."""
    link = share_link(share)
    if share.target == Share.Target.TASK and share.task is not None:
        head = share.task.copy_text
    elif share.target == Share.Target.MATERIAL and share.material is not None:
        head = share.material.body or share.material.title
    elif share.target == Share.Target.PRODUCT and share.product is not None:
        head = _("%(name)s — have a look:") % {"name": share.product.name}
    elif share.target == Share.Target.LIVE and share.live_session is not None:
        start = timezone.localtime(share.live_session.planned_start)
        head = _("Live: %(title)s, %(when)s") % {"title": share.live_session.title,
                                                 "when": start.strftime("%m-%d %H:%M")}
    else:
        head = _("Our mini-program mall, every brand of the group:")
    return f"{head}\n{link}"


# ---------------------------------------------------------------------------- creating a share

def _object_group_and_brand(*, target: str, product, material, live_session, task) -> tuple[int | None, int | None]:
    if target == Share.Target.PRODUCT:
        return product.brand.group_id, product.brand_id
    if target == Share.Target.MATERIAL:
        return material.group_id, material.brand_id
    if target == Share.Target.LIVE:
        return live_session.brand.group_id, live_session.brand_id
    if target == Share.Target.TASK:
        return task.group_id, task.brand_id
    return None, None


@transaction.atomic
def share_create(*, sharer: Sharer, target: str, product: Product | None = None, material: Material | None = None,
                 live_session=None, task: GuideTask | None = None, at=None) -> Share:
    """One tap: a new share of one thing, with its own code, made under the sharer's current token.

    The caller has checked that the sharer may see the object; this refuses an
    object of another group and a target without its object (400, per field).
    """
    objects = {Share.Target.PRODUCT: product, Share.Target.MATERIAL: material, Share.Target.LIVE: live_session,
               Share.Target.TASK: task}
    if target not in Share.Target.values:
        raise ApplicationError(GuidesErrorCode.INVALID_TARGET, "Choose what to share.",
                               fields={"target": [f"Not one of {', '.join(Share.Target.values)}."]})
    if target != Share.Target.MALL and objects[target] is None:
        raise ApplicationError(GuidesErrorCode.INVALID_TARGET, "Choose what to share.",
                               fields={"id": ["This field is required."]})
    group_id, brand_id = _object_group_and_brand(target=target, product=product, material=material,
                                                 live_session=live_session, task=task)
    if group_id is not None and group_id != sharer.group_id:
        raise ApplicationError(GuidesErrorCode.INVALID_TARGET, "This cannot be shared here.",
                               fields={"id": ["Not part of your group."]})
    # A material or task that shows a product shares that product too: the funnel's associated sales need it.
    if target == Share.Target.MATERIAL:
        product = material.product
    elif target == Share.Target.TASK:
        product, live_session = task.product, task.live_session
    if brand_id is None and target == Share.Target.TASK and product is not None:
        brand_id = product.brand_id
    if brand_id is None and sharer.guide is not None:
        brand_id = sharer.guide.store.brand_id
    token = guide_token_current(**sharer.token_owner())
    return Share.objects.create(
        code=signed_code_new(), group_id=sharer.group_id, guide_token=token, guide=sharer.guide,
        staff_user=sharer.staff_user if sharer.guide is None else None, brand_id=brand_id, target=target,
        product=product, material=material if target == Share.Target.MATERIAL else None,
        live_session=live_session if target in (Share.Target.LIVE, Share.Target.TASK) else None,
        task=task if target == Share.Target.TASK else None, created_at=at or timezone.now())


def shareable_products(*, actor, query: str = "") -> QuerySet[Product]:
    """Products a staff member may share: every listed product of the group's mall, any brand.

    The mall is public (the mini-program lists it to anyone), and a guide selling
    another brand is the cross-brand guided selling the group wants (DOMAIN.md),
    so this is wider than the product admin's scope on purpose.
    """
    rows = Product.objects.filter(brand__group_id=actor.group_id, brand__is_active=True, is_active=True)
    query = (query or "").strip()
    if query:
        rows = rows.filter(Q(name__icontains=query) | Q(code__icontains=query))
    return rows.select_related("brand").order_by("brand__code", "code")


def shareable_live_sessions(*, actor, now=None) -> QuerySet:
    """Livestreams a staff member may share: the group's planned or running sessions not yet over (public too)."""
    from livestream.models import LiveSession

    now = now or timezone.now()
    return (LiveSession.objects.filter(brand__group_id=actor.group_id, status__in=[LiveSession.Status.PLANNED,
                                                                                    LiveSession.Status.LIVE],
                                       planned_end__gte=now)
            .select_related("brand", "host_store").order_by("planned_start", "pk"))


def shares_of(sharer: Sharer) -> QuerySet[Share]:
    """The sharer's own shares, newest first, with what each shared."""
    return (Share.objects.filter(sharer.share_filter())
            .select_related("product", "material", "live_session", "task", "guide_token")
            .order_by("-created_at", "-pk"))


# ---------------------------------------------------------------------------- funnels

@dataclass(frozen=True)
class ShareFunnel:
    """share → views (PV/UV) → add to cart → orders → paid → associated sales (see the module docstring)."""

    shares: int = 0
    views: int = 0
    visitors: int = 0
    add_to_cart: int = 0
    orders: int = 0
    paid_orders: int = 0
    paid_amount: Decimal = ZERO
    associated_amount: Decimal = ZERO

    @property
    def conversion(self) -> Decimal | None:
        """Paid orders per visitor, or None before anyone came."""
        if not self.visitors:
            return None
        return (Decimal(self.paid_orders) / Decimal(self.visitors)).quantize(Decimal("0.0001"))


_NET = ExpressionWrapper(F("amount") - F("refunded_amount"), output_field=DecimalField(max_digits=14,
                                                                                        decimal_places=2))


def _funnels(shares: Iterable[tuple[str, int | None]], key_of: Callable[[str], Hashable]) -> dict:
    """Funnels per key for ``(code, shared product id)`` pairs; ``key_of`` maps a code to its key. Five queries."""
    product_of: dict[str, int | None] = {}
    for code, product_id in shares:
        product_of[code] = product_id
    if not product_of:
        return {}
    codes = list(product_of)
    sums: dict[Hashable, dict] = defaultdict(lambda: defaultdict(int))
    for code in codes:
        sums[key_of(code)]["shares"] += 1

    events = (BehaviourEvent.objects.filter(share_token__in=codes).values("share_token")
              .annotate(views=Count(share_view_key(), filter=Q(kind__in=VIEW_KINDS), distinct=True),
                        carts=Count("pk", filter=Q(kind=EventKind.ADD_TO_CART))).order_by())
    for row in events:
        bucket = sums[key_of(row["share_token"])]
        bucket["views"] += row["views"]
        bucket["add_to_cart"] += row["carts"]

    # Visitors: distinct people per key (one person on two shares of a guide is one visitor of the guide).
    people: dict[Hashable, set] = defaultdict(set)
    seen = (BehaviourEvent.objects.filter(share_token__in=codes, kind__in=VIEW_KINDS)
            .values_list("share_token", "member_id", "visitor_id").distinct().order_by())
    for code, member_id, visitor_id in seen:
        people[key_of(code)].add(("m", member_id) if member_id is not None else ("v", visitor_id))

    placed = Order.objects.filter(share_token__in=codes)
    for code, count in placed.values("share_token").annotate(n=Count("pk")).values_list("share_token", "n").order_by():
        sums[key_of(code)]["orders"] += count

    paid = purchases(placed)
    for code, count, amount in (paid.values("share_token").annotate(n=Count("pk"), amount=Sum("net"))
                                .values_list("share_token", "n", "amount").order_by()):
        bucket = sums[key_of(code)]
        bucket["paid_orders"] += count
        bucket["paid_amount"] += amount or ZERO

    lines = (OrderLine.objects.filter(order__in=paid.values("pk"))
             .values("order__share_token", "sku__product_id").annotate(net=Sum(_NET))
             .values_list("order__share_token", "sku__product_id", "net").order_by())
    for code, product_id, net in lines:
        shared = product_of.get(code)
        if shared is not None and product_id != shared:
            sums[key_of(code)]["associated_amount"] += net or ZERO

    result = {}
    for key, bucket in sums.items():
        result[key] = ShareFunnel(
            shares=bucket["shares"], views=bucket["views"], visitors=len(people.get(key, ())),
            add_to_cart=bucket["add_to_cart"], orders=bucket["orders"], paid_orders=bucket["paid_orders"],
            paid_amount=Decimal(bucket["paid_amount"]).quantize(ZERO),
            associated_amount=Decimal(bucket["associated_amount"]).quantize(ZERO))
    return result


def share_funnels(shares: Iterable[Share]) -> dict[int, ShareFunnel]:
    """The funnel of each share, keyed by share id (shares nobody opened get an empty funnel)."""
    shares = list(shares)
    pk_of = {share.code: share.pk for share in shares}
    found = _funnels(((s.code, s.product_id) for s in shares), pk_of.__getitem__)
    return {share.pk: found.get(share.pk, ShareFunnel(shares=1)) for share in shares}


def share_funnel_total(shares: QuerySet[Share]) -> ShareFunnel:
    """One funnel over a set of shares (visitors counted once across them)."""
    found = _funnels(shares.values_list("code", "product_id"), lambda _code: "all")
    return found.get("all", ShareFunnel())


def share_funnels_by_guide(shares: QuerySet[Share]) -> dict[int | None, ShareFunnel]:
    """One funnel per sharing guide (None: office staff shares) over a set of shares, e.g. a store's."""
    rows = list(shares.values_list("code", "product_id", "guide_id"))
    guide_of = {code: guide_id for code, _product, guide_id in rows}
    return _funnels(((code, product) for code, product, _guide in rows), guide_of.__getitem__)
