"""Audiences: which members of one brand to reach, saved as data and compiled into ONE query.

An :class:`~marketing.models.Audience` holds a ``definition``: a JSON object whose keys are conditions.
Every key is optional and the conditions given are ANDed; ``{}`` is every member of the brand. A member
is in a brand's audience only through their membership of THAT brand, and every condition is read for
that brand (its RFML row, its orders, its guides, its points, its coupon templates, its behaviour), so an
audience never holds a member of another brand, whatever else the member holds in the group.

Days are local days (``settings.TIME_ZONE``); "today" is the day of the moment the audience is evaluated.
"The last N days" means N local days with today included (``"days": 1`` is today only). Ids and codes
must belong to the audience's brand (tag values: the brand's or group-wide ones); anything else, an
unknown key or a value of the wrong type is refused with a 400 whose ``fields`` say where, e.g.
``{"definition.behaviour.0.days": ["At most 30."]}``.

::

    {
      "tags": {"any": [12, 13], "all": [20], "none": [31]},     # TagValue ids; at least one list
      "rfml_classes": ["important_value", "important_retain"],   # MemberRfm.segment (retail_crm.vocabulary)
      "lifecycle_stages": ["growing", "mature"],                 # new, growing, mature, lapsed
      "care_stages": ["market", "winback"],                      # care, market, winback (see below)
      "last_purchase": {"min_days": 40, "max_days": 90,          # days since the last purchase, both ends in;
                        "min_cycles": 0.9, "max_cycles": 2},     # or in multiples of the brand's cycle
      "behaviour": [                                             # each clause must hold (AND)
        {"event": "product_view", "products": ["P001"], "days": 30, "min": 3},
        {"event": "favourite", "categories": ["连衣裙"], "days": 30, "min": 2, "max": 5}
      ],
      "purchase": [                                              # each clause must hold (AND)
        {"days": 30, "bought": false},                           # no purchase in the last 30 days
        {"same_period_last_year_days": 30, "categories": ["羽绒服"]},
        {"from": "2025-01-01", "to": "2025-06-30", "order_value": {"min": "500.00"}}
      ],
      "wecom_friend": true,                                      # a WeCom contact of a guide of the brand
      "guides": [7], "stores": [3], "regions": [2],              # bound now to a guide / of a store / region
      "join_stores": [3, 4],                                     # joined the brand at one of these stores
      "join_channels": ["guide_qr", "store_card"],               # members.models.JoinChannel
      "joined": {"from": "2025-01-01", "to": "2025-12-31"},      # local days, both ends in
      "points": {"min": 100, "max": 5000},                       # the brand's points balance, both ends in
      "coupons": {"held": true, "templates": [4]}                # unused coupons; no templates: any of the brand
    }

What each condition reads:

* ``tags``: the member's tags (``members.MemberTag``). ``any``: holds at least one value; ``all``: every one;
  ``none``: none of them. Each list holds 1–50 ids.
* ``rfml_classes``, ``lifecycle_stages``, ``last_purchase``, ``care_stages``: the member's RFML row for the
  brand as of the latest RFML run (``MemberRfm``; its ``last_purchase_on``). Members without a row (never
  bought) match none of them. ``*_cycles`` need the brand's consumption cycle (the settings override, else
  the latest run's): ``min_cycles`` x means at least ⌈x × cycle⌉ days, ``max_cycles`` y at most ⌊y × cycle⌋.
* ``care_stages``: the care calendar of the guides' care lists, computed for every member (bound or not)
  from d = days since the last purchase, the brand's cycle C, care days, marketing day (C − offset) and
  lapse day (⌈lapse factor × C⌉): ``winback`` d ≥ 1 and (lifecycle stage lapsed, or d ≥ lapse day);
  ``care`` 1 ≤ d ≤ care days, not winback; ``market`` d ≥ marketing day and d > care days, not winback.
* ``behaviour``: the member's events in the brand (``members.BehaviourEvent``) of one ``event`` (product_view,
  favourite, add_to_cart, share) in the last ``days`` (1–30; raw events are kept at least 31 days).
  ``products`` (product codes) or ``categories`` (product categories) narrow it to those products; without
  them every event of the kind counts (read from the daily counters, the same figures). The count must be
  at least ``min`` (default 1) and at most ``max`` (optional); ``"min": 0, "max": 0`` means none at all.
* ``purchase``: the member's purchases in the brand (a paid order with paid − refunded > 0, dated by the
  local day it was placed, as RFML counts them). The window is one of ``days`` (the last N days),
  ``same_period_last_year_days`` (N days starting on today's date one year ago, e.g. 30 on 2026-03-10:
  2025-03-10 to 2025-04-08), ``from``/``to`` (local days, either may be left out) or none (ever).
  ``categories`` keeps orders with a line of those product categories; ``order_value`` {min, max} keeps
  orders whose net amount (paid − refunded, CNY) lies in the band, both ends in. ``bought`` (default true):
  false means no such purchase.
* ``wecom_friend``: true: the member is (still) a WeCom contact of a guide of the brand; false: of none.
* ``guides``, ``stores``, ``regions``: the member's current binding for the brand is to one of these guides,
  of one of these stores (the binding's store), of a store of one of these regions. Members without a
  bound guide match none of them.
* ``join_stores``, ``join_channels``, ``joined``: the brand membership's store, join channel and local
  join day.
* ``points``: the sum of the member's points entries in the brand (0 without any), read from their
  maintained balance row (``members.PointsBalance``).
* ``coupons``: ``held`` true (default): holds an unused coupon (available, not yet expired) of one of
  ``templates`` (ids of the brand's coupon templates), or of any template of the brand without the list;
  false: holds none.

The definition compiles into ONE query, no Python loop over members: the brand's membership rows
(``members_brandmembership``, one per member) filtered by ``EXISTS`` / ``NOT EXISTS`` / ``IN`` subqueries,
which PostgreSQL runs as hash semi- and anti-joins. Validation and a few look-ups of the brand's own small
tables (its guides, coupon templates, products of a category, stores of a region) run before it.

* :func:`audience_members` → ``QuerySet[Member]`` (``SELECT … FROM members_member WHERE id IN (…)``): export it,
  iterate it, use it in another queryset (``member__in=…``);
* :func:`audience_count` → int (the preview; counts the membership rows, no member-table join);
* :func:`audience_rows` → ``QuerySet[BrandMembership]``, the lean form (``.values("member_id")``);
* :func:`audience_member_ids_sql` → ``(sql, params)`` selecting one column, ``member_id``, for set-based
  writes (``INSERT … SELECT``).

Run queries over large audiences inside :func:`audience_query_settings` (``audience_count`` and the export
do): on PostgreSQL it gives the query room to hash the member sets it excludes and turns JIT off.

Each validates the definition against the brand first (an :class:`~retail_crm.errors.ApplicationError`, 400,
when a saved definition no longer fits, e.g. a tag value was deleted) unless handed an already validated
:class:`AudienceDefinition` (from :func:`audience_definition_clean`).
"""

from __future__ import annotations

import datetime as dt
import itertools
import math
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

from django.db import IntegrityError, connection, transaction
from django.db.models import Count, Exists, OuterRef, Q, QuerySet, Subquery, Sum
from django.db.models.deletion import ProtectedError
from django.utils import timezone

from mall.models import Coupon, CouponStatus, CouponTemplate, Order, Product, Sku
from mall.selectors import purchases
from marketing.models import Audience
from members.models import (
    BehaviourEvent,
    BrandMembership,
    EventKind,
    GuideBinding,
    JoinChannel,
    Member,
    MemberDailyActivity,
    MemberTag,
    PointsBalance,
    TagValue,
    WeComFriendship,
)
from members.selectors import PhoneVisibility
from retail_crm.errors import ApplicationError, ErrorCode
from retail_crm.models import Brand, Guide, Region, Store
from retail_crm.scoping import Actor, scoped
from retail_crm.vocabulary import LifecycleStage, Segment
from segments.care import CareCalendar, care_calendar_for
from segments.models import MemberRfm

MAX_IDS = 50
MAX_CLAUSES = 10
MAX_BEHAVIOUR_DAYS = 30  # raw events are kept at least 31 days (members.events.MIN_RETENTION_DAYS)
MAX_DAYS = 3660
MAX_COUNT = 100_000
MAX_POINTS = 10**9
MAX_AMOUNT = Decimal("100000000")
AUDIENCE_WORK_MEM = "64MB"  # see audience_query_settings
CARE_STAGES = ("care", "market", "winback")
BEHAVIOUR_EVENTS = {
    EventKind.PRODUCT_VIEW.value: "product_views",
    EventKind.FAVOURITE.value: "favourites",
    EventKind.ADD_TO_CART.value: "add_to_carts",
    EventKind.SHARE.value: "shares",
}
FIELD = "definition"

TOP_KEYS = frozenset({"tags", "rfml_classes", "lifecycle_stages", "care_stages", "last_purchase", "behaviour",
                      "purchase", "wecom_friend", "guides", "stores", "regions", "join_stores", "join_channels",
                      "joined", "points", "coupons"})


# ---------------------------------------------------------------------------- the validated definition

@dataclass(frozen=True)
class BehaviourRule:
    """At least ``least`` and at most ``most`` events of ``event`` in the last ``days`` (of these products)."""

    event: str
    days: int
    least: int
    most: int | None
    products: tuple[str, ...] = ()
    categories: tuple[str, ...] = ()


@dataclass(frozen=True)
class PurchaseRule:
    """A purchase (or, ``bought`` false, none) on local days ``first``–``last`` (None: open) matching the rest."""

    bought: bool
    days: int | None = None
    last_year_days: int | None = None
    first: dt.date | None = None
    last: dt.date | None = None
    categories: tuple[str, ...] = ()
    value_min: Decimal | None = None
    value_max: Decimal | None = None


@dataclass(frozen=True)
class AudienceDefinition:
    """A definition checked against its brand: every id exists there, every value has its type."""

    brand_id: int
    tags_any: tuple[int, ...] = ()
    tags_all: tuple[int, ...] = ()
    tags_none: tuple[int, ...] = ()
    rfml_classes: tuple[str, ...] = ()
    lifecycle_stages: tuple[str, ...] = ()
    care_stages: tuple[str, ...] = ()
    recency_min_days: int | None = None
    recency_max_days: int | None = None
    recency_min_cycles: Decimal | None = None
    recency_max_cycles: Decimal | None = None
    behaviour: tuple[BehaviourRule, ...] = ()
    purchases: tuple[PurchaseRule, ...] = ()
    wecom_friend: bool | None = None
    guides: tuple[int, ...] = ()
    stores: tuple[int, ...] = ()
    regions: tuple[int, ...] = ()
    join_stores: tuple[int, ...] = ()
    join_channels: tuple[str, ...] = ()
    joined_from: dt.date | None = None
    joined_to: dt.date | None = None
    points_min: int | None = None
    points_max: int | None = None
    coupons_held: bool | None = None
    coupon_templates: tuple[int, ...] = ()

    @property
    def uses_cycle(self) -> bool:
        return bool(self.care_stages) or self.recency_min_cycles is not None or self.recency_max_cycles is not None


class _Errors:
    """Messages per dotted field, collected so one answer names every problem."""

    def __init__(self) -> None:
        self.fields: dict[str, list[str]] = {}

    def add(self, path: str, message: str) -> None:
        self.fields.setdefault(f"{FIELD}.{path}" if path else FIELD, []).append(message)

    def has(self, path: str) -> bool:
        prefix = f"{FIELD}.{path}"
        return any(key == prefix or key.startswith(prefix + ".") for key in self.fields)


def _object(value, path: str, keys: frozenset[str], errors: _Errors) -> dict | None:
    if not isinstance(value, dict):
        errors.add(path, "Expected an object.")
        return None
    for key in value:
        if key not in keys:
            errors.add(f"{path}.{key}" if path else str(key), "Unknown condition." if not path else "Unknown key.")
    return value


def _int(value, path: str, errors: _Errors, *, low: int, high: int) -> int | None:
    if isinstance(value, bool) or not isinstance(value, int):
        errors.add(path, "Expected a whole number.")
        return None
    if not low <= value <= high:
        errors.add(path, f"Must be between {low} and {high}.")
        return None
    return value


def _bool(value, path: str, errors: _Errors) -> bool | None:
    if not isinstance(value, bool):
        errors.add(path, "Expected true or false.")
        return None
    return value


def _decimal(value, path: str, errors: _Errors, *, places: int, high: Decimal) -> Decimal | None:
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        errors.add(path, "Expected a number.")
        return None
    try:
        number = Decimal(str(value).strip())
    except InvalidOperation:
        errors.add(path, "Expected a number.")
        return None
    if not number.is_finite() or number < 0 or number > high:
        errors.add(path, f"Must be between 0 and {high}.")
        return None
    if number != number.quantize(Decimal(1).scaleb(-places)):
        errors.add(path, f"At most {places} decimal places.")
        return None
    return number


def _date(value, path: str, errors: _Errors) -> dt.date | None:
    if not isinstance(value, str):
        errors.add(path, "Expected a date (YYYY-MM-DD).")
        return None
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        errors.add(path, "Expected a date (YYYY-MM-DD).")
        return None


def _list(value, path: str, errors: _Errors, *, item: type, choices=None, most: int = MAX_IDS) -> tuple:
    """A non-empty list of distinct ints or strings (of ``choices`` when given), order kept."""
    if not isinstance(value, list) or not value:
        errors.add(path, "Expected a non-empty list.")
        return ()
    if len(value) > most:
        errors.add(path, f"At most {most} items.")
        return ()
    out = []
    for index, entry in enumerate(value):
        if item is int and (isinstance(entry, bool) or not isinstance(entry, int)):
            errors.add(f"{path}.{index}", "Expected an id (a whole number).")
        elif item is str and (not isinstance(entry, str) or not entry.strip() or len(entry) > 64):
            errors.add(f"{path}.{index}", "Expected a text of 1–64 characters.")
        elif choices is not None and entry not in choices:
            errors.add(f"{path}.{index}", f"Unknown value {entry!r}; one of: {', '.join(sorted(choices))}.")
        else:
            entry = entry.strip() if item is str else entry
            if entry not in out:
                out.append(entry)
    return tuple(out)


def _range(low, high, path: str, errors: _Errors, high_name: str = "max") -> None:
    if low is not None and high is not None and low > high:
        errors.add(f"{path}.{high_name}", "Must not be below the minimum.")


def _parse(definition, errors: _Errors) -> dict:
    """Shapes and types, no database: the keyword arguments of AudienceDefinition (less the brand)."""
    out: dict = {}
    if _object(definition, "", TOP_KEYS, errors) is None:
        return out
    d = definition
    if "tags" in d and (tags := _object(d["tags"], "tags", frozenset({"any", "all", "none"}), errors)) is not None:
        if not any(key in tags for key in ("any", "all", "none")):
            errors.add("tags", "Give any, all or none.")
        for key in ("any", "all", "none"):
            if key in tags:
                out[f"tags_{key}"] = _list(tags[key], f"tags.{key}", errors, item=int)
    if "rfml_classes" in d:
        out["rfml_classes"] = _list(d["rfml_classes"], "rfml_classes", errors, item=str,
                                    choices=frozenset(Segment.values))
    if "lifecycle_stages" in d:
        out["lifecycle_stages"] = _list(d["lifecycle_stages"], "lifecycle_stages", errors, item=str,
                                        choices=frozenset(LifecycleStage.values))
    if "care_stages" in d:
        out["care_stages"] = _list(d["care_stages"], "care_stages", errors, item=str, choices=frozenset(CARE_STAGES))
    if "last_purchase" in d:
        keys = frozenset({"min_days", "max_days", "min_cycles", "max_cycles"})
        recency = _object(d["last_purchase"], "last_purchase", keys, errors)
        if recency is not None:
            if not keys & set(recency):
                errors.add("last_purchase", "Give min_days, max_days, min_cycles or max_cycles.")
            for key in ("min_days", "max_days"):
                if key in recency:
                    out[f"recency_{key}"] = _int(recency[key], f"last_purchase.{key}", errors, low=0, high=MAX_DAYS)
            for key in ("min_cycles", "max_cycles"):
                if key in recency:
                    out[f"recency_{key}"] = _decimal(recency[key], f"last_purchase.{key}", errors, places=2,
                                                     high=Decimal(100))
            _range(out.get("recency_min_days"), out.get("recency_max_days"), "last_purchase", errors, "max_days")
            _range(out.get("recency_min_cycles"), out.get("recency_max_cycles"), "last_purchase", errors,
                   "max_cycles")
    if "behaviour" in d:
        out["behaviour"] = _parse_behaviour(d["behaviour"], errors)
    if "purchase" in d:
        out["purchases"] = _parse_purchases(d["purchase"], errors)
    if "wecom_friend" in d:
        out["wecom_friend"] = _bool(d["wecom_friend"], "wecom_friend", errors)
    for key in ("guides", "stores", "regions", "join_stores"):
        if key in d:
            out[key] = _list(d[key], key, errors, item=int)
    if "join_channels" in d:
        out["join_channels"] = _list(d["join_channels"], "join_channels", errors, item=str,
                                     choices=frozenset(JoinChannel.values))
    if "joined" in d and (joined := _object(d["joined"], "joined", frozenset({"from", "to"}), errors)) is not None:
        if not joined:
            errors.add("joined", "Give from, to or both.")
        if "from" in joined:
            out["joined_from"] = _date(joined["from"], "joined.from", errors)
        if "to" in joined:
            out["joined_to"] = _date(joined["to"], "joined.to", errors)
        _range(out.get("joined_from"), out.get("joined_to"), "joined", errors, "to")
    if "points" in d and (points := _object(d["points"], "points", frozenset({"min", "max"}), errors)) is not None:
        if not points:
            errors.add("points", "Give min, max or both.")
        for key in ("min", "max"):
            if key in points:
                out[f"points_{key}"] = _int(points[key], f"points.{key}", errors, low=-MAX_POINTS, high=MAX_POINTS)
        _range(out.get("points_min"), out.get("points_max"), "points", errors)
    if "coupons" in d:
        coupons = _object(d["coupons"], "coupons", frozenset({"held", "templates"}), errors)
        if coupons is not None:
            out["coupons_held"] = _bool(coupons["held"], "coupons.held", errors) if "held" in coupons else True
            if "templates" in coupons:
                out["coupon_templates"] = _list(coupons["templates"], "coupons.templates", errors, item=int)
    return {key: value for key, value in out.items() if value is not None}


def _parse_behaviour(value, errors: _Errors) -> tuple[BehaviourRule, ...]:
    if not isinstance(value, list) or not value or len(value) > MAX_CLAUSES:
        errors.add("behaviour", f"Expected a list of 1–{MAX_CLAUSES} conditions.")
        return ()
    keys = frozenset({"event", "days", "min", "max", "products", "categories"})
    rules = []
    for index, clause in enumerate(value):
        path = f"behaviour.{index}"
        if _object(clause, path, keys, errors) is None:
            continue
        event = clause.get("event")
        if event not in BEHAVIOUR_EVENTS:
            errors.add(f"{path}.event", f"One of: {', '.join(BEHAVIOUR_EVENTS)}.")
        if "days" not in clause:
            errors.add(f"{path}.days", "This field is required.")
        days = _int(clause.get("days"), f"{path}.days", errors, low=1, high=MAX_BEHAVIOUR_DAYS) \
            if "days" in clause else None
        least = _int(clause["min"], f"{path}.min", errors, low=0, high=MAX_COUNT) if "min" in clause else 1
        most = _int(clause["max"], f"{path}.max", errors, low=0, high=MAX_COUNT) if "max" in clause else None
        _range(least, most, path, errors)
        if least == 0 and most is None and "min" in clause:
            errors.add(f"{path}.min", "With min 0 give a max (e.g. 0 for none at all).")
        if "products" in clause and "categories" in clause:
            errors.add(f"{path}.categories", "Give products or categories, not both.")
        products = _list(clause["products"], f"{path}.products", errors, item=str) if "products" in clause else ()
        categories = _list(clause["categories"], f"{path}.categories", errors, item=str) \
            if "categories" in clause else ()
        if not errors.has(path):
            rules.append(BehaviourRule(event=event, days=days, least=least, most=most, products=products,
                                       categories=categories))
    return tuple(rules)


def _parse_purchases(value, errors: _Errors) -> tuple[PurchaseRule, ...]:
    if not isinstance(value, list) or not value or len(value) > MAX_CLAUSES:
        errors.add("purchase", f"Expected a list of 1–{MAX_CLAUSES} conditions.")
        return ()
    keys = frozenset({"bought", "days", "same_period_last_year_days", "from", "to", "categories", "order_value"})
    rules = []
    for index, clause in enumerate(value):
        path = f"purchase.{index}"
        if _object(clause, path, keys, errors) is None:
            continue
        windows = [key for key in ("days", "same_period_last_year_days") if key in clause]
        if len(windows) + bool({"from", "to"} & set(clause)) > 1:
            errors.add(path, "Give one window: days, same_period_last_year_days, or from/to.")
        rule: dict = {"bought": _bool(clause["bought"], f"{path}.bought", errors) if "bought" in clause else True}
        if "days" in clause:
            rule["days"] = _int(clause["days"], f"{path}.days", errors, low=1, high=MAX_DAYS)
        if "same_period_last_year_days" in clause:
            rule["last_year_days"] = _int(clause["same_period_last_year_days"], f"{path}.same_period_last_year_days",
                                          errors, low=1, high=366)
        if "from" in clause:
            rule["first"] = _date(clause["from"], f"{path}.from", errors)
        if "to" in clause:
            rule["last"] = _date(clause["to"], f"{path}.to", errors)
        _range(rule.get("first"), rule.get("last"), path, errors, "to")
        if "categories" in clause:
            rule["categories"] = _list(clause["categories"], f"{path}.categories", errors, item=str)
        if "order_value" in clause:
            band = _object(clause["order_value"], f"{path}.order_value", frozenset({"min", "max"}), errors)
            if band is not None:
                if not band:
                    errors.add(f"{path}.order_value", "Give min, max or both.")
                for key in ("min", "max"):
                    if key in band:
                        rule[f"value_{key}"] = _decimal(band[key], f"{path}.order_value.{key}", errors, places=2,
                                                        high=MAX_AMOUNT)
                _range(rule.get("value_min"), rule.get("value_max"), f"{path}.order_value", errors)
        if not errors.has(path):
            rules.append(PurchaseRule(**rule))
    return tuple(rules)


def _check_ids(model_qs: QuerySet, ids: tuple[int, ...], path: str, what: str, errors: _Errors) -> None:
    if not ids:
        return
    found = set(model_qs.filter(pk__in=ids).values_list("pk", flat=True))
    missing = [str(pk) for pk in ids if pk not in found]
    if missing:
        errors.add(path, f"No such {what} in the audience's brand: {', '.join(missing)}.")


def _check_names(rows: QuerySet, field: str, names: tuple[str, ...], path: str, what: str, errors: _Errors) -> None:
    if not names:
        return
    found = set(rows.filter(**{f"{field}__in": names}).values_list(field, flat=True))
    missing = [name for name in names if name not in found]
    if missing:
        errors.add(path, f"No such {what} in the audience's brand: {', '.join(missing)}.")


def audience_definition_clean(*, brand: Brand, definition, actor: Actor | None = None) -> AudienceDefinition:
    """Check ``definition`` for ``brand`` (and, given an actor, against what the actor may see).

    Raises ``ApplicationError`` (400, ``invalid``) with a message per dotted field for unknown keys, wrong
    types, impossible ranges, and ids, codes or categories that are not the brand's (or not visible).
    """
    errors = _Errors()
    values = _parse(definition, errors)

    def visible(queryset: QuerySet) -> QuerySet:
        return scoped(queryset, actor) if actor is not None else queryset

    own_or_group_wide = Q(tag_group__brand=brand) | Q(tag_group__brand__isnull=True,
                                                      tag_group__group_id=brand.group_id)
    tag_values = visible(TagValue.objects.filter(own_or_group_wide))
    for key in ("any", "all", "none"):
        _check_ids(tag_values, values.get(f"tags_{key}", ()), f"tags.{key}", "tag value", errors)
    _check_ids(visible(Guide.objects.filter(store__brand=brand)), values.get("guides", ()), "guides", "guide", errors)
    _check_ids(visible(Store.objects.filter(brand=brand)), values.get("stores", ()), "stores", "store", errors)
    _check_ids(visible(Store.objects.filter(brand=brand)), values.get("join_stores", ()), "join_stores", "store",
               errors)
    _check_ids(visible(Region.objects.filter(brand=brand)), values.get("regions", ()), "regions", "region", errors)
    _check_ids(visible(CouponTemplate.objects.filter(brand=brand)), values.get("coupon_templates", ()),
               "coupons.templates", "coupon template", errors)
    products = Product.objects.filter(brand=brand)
    for index, rule in enumerate(values.get("behaviour", ())):
        _check_names(products, "code", rule.products, f"behaviour.{index}.products", "product", errors)
        _check_names(products, "category", rule.categories, f"behaviour.{index}.categories", "product category",
                     errors)
    for index, rule in enumerate(values.get("purchases", ())):
        _check_names(products, "category", rule.categories, f"purchase.{index}.categories", "product category",
                     errors)
    result = AudienceDefinition(brand_id=brand.pk, **values)
    if result.uses_cycle and not errors.fields and care_calendar_for(brand).cycle_days is None:
        path = "care_stages" if result.care_stages else "last_purchase"
        errors.add(path, "The brand has no consumption cycle yet (no RFML run and no cycle set).")
    if errors.fields:
        raise ApplicationError(ErrorCode.INVALID, "The audience definition is not valid.", fields=errors.fields)
    return result


# ---------------------------------------------------------------------------- one query

def _local_midnight(day: dt.date) -> dt.datetime:
    return timezone.make_aware(dt.datetime.combine(day, dt.time.min))


def _one_year_before(day: dt.date) -> dt.date:
    try:
        return day.replace(year=day.year - 1)
    except ValueError:  # 29 February
        return day.replace(year=day.year - 1, day=28)


def _counted(rows: QuerySet, count) -> QuerySet:
    """Per member: the rows' count (or sum), for HAVING."""
    return rows.order_by().values("member_id").annotate(n=count)


def _count_between(rows: QuerySet, count, least: int, most: int | None, any_row: QuerySet) -> Q:
    """Members with ``least`` ≤ count ≤ ``most`` (a member without rows counts 0).

    "At least one" and "none" are plain (NOT) EXISTS on ``any_row`` (rows that count, correlated on the
    member), which PostgreSQL runs as semi- and anti-joins; other bounds compare per-member aggregates.
    """
    q = Q()
    if least == 1:
        q &= Q(Exists(any_row))
    elif least > 1:
        q &= Q(member_id__in=_counted(rows, count).filter(n__gte=least).values("member_id"))
    if most == 0:
        q &= ~Q(Exists(any_row))
    elif most is not None:
        q &= ~Q(member_id__in=_counted(rows, count).filter(n__gt=most).values("member_id"))
    return q


def _behaviour_q(rule: BehaviourRule, brand_id: int, today: dt.date) -> Q:
    first_day = today - dt.timedelta(days=rule.days - 1)
    if not rule.products and not rule.categories:
        column = BEHAVIOUR_EVENTS[rule.event]
        # Only days with such events: the same sums from far fewer rows (most days count other kinds).
        rows = MemberDailyActivity.objects.filter(brand_id=brand_id, day__gte=first_day, day__lte=today,
                                                  **{f"{column}__gt": 0})
        return _count_between(rows, Sum(column), rule.least, rule.most, rows.filter(member_id=OuterRef("member_id")))
    codes = rule.products or tuple(Product.objects.filter(brand_id=brand_id, category__in=rule.categories)
                                   .order_by("code").values_list("code", flat=True))
    rows = BehaviourEvent.objects.filter(brand_id=brand_id, kind=rule.event, member__isnull=False,
                                         occurred_at__gte=_local_midnight(first_day),
                                         occurred_at__lt=_local_midnight(today + dt.timedelta(days=1)),
                                         object_type="product", object_id__in=codes)
    return _count_between(rows, Count("pk"), rule.least, rule.most, rows.filter(member_id=OuterRef("member_id")))


def _purchase_q(rule: PurchaseRule, brand_id: int, today: dt.date) -> Q:
    orders = Order.objects.filter(brand_id=brand_id, member_id=OuterRef("member_id"))
    first, last = rule.first, rule.last
    if rule.days is not None:
        first, last = today - dt.timedelta(days=rule.days - 1), today
    elif rule.last_year_days is not None:
        first = _one_year_before(today)
        last = first + dt.timedelta(days=rule.last_year_days - 1)
    if first is not None:
        orders = orders.filter(ordered_at__gte=_local_midnight(first))
    if last is not None:
        orders = orders.filter(ordered_at__lt=_local_midnight(last + dt.timedelta(days=1)))
    orders = purchases(orders)
    if rule.value_min is not None:
        orders = orders.filter(net__gte=rule.value_min)
    if rule.value_max is not None:
        orders = orders.filter(net__lte=rule.value_max)
    if rule.categories:
        skus = Sku.objects.filter(product__brand_id=brand_id, product__category__in=rule.categories)
        orders = orders.filter(lines__sku_id__in=list(skus.order_by("pk").values_list("pk", flat=True)))
    q = Q(Exists(orders))
    return q if rule.bought else ~q


def _care_stage_q(stages: tuple[str, ...], calendar: CareCalendar, today: dt.date) -> Q:
    """The care list's decision (analytics.care.care_decide) on MemberRfm columns, for every member at once."""

    def before(days: int) -> dt.date:
        return today - dt.timedelta(days=days)

    bought = Q(last_purchase_on__lte=before(1))
    winback = bought & (Q(lifecycle_stage=LifecycleStage.LAPSED)
                        | (Q(last_purchase_on__lte=before(calendar.lapse_day)) if calendar.cycle_days else Q(pk=None)))
    not_winback = ~Q(lifecycle_stage=LifecycleStage.LAPSED)
    if calendar.cycle_days:
        not_winback &= Q(last_purchase_on__gt=before(calendar.lapse_day))
    q = Q(pk=None)  # nothing, until a stage is added
    if "winback" in stages:
        q |= winback
    if "care" in stages:
        q |= bought & Q(last_purchase_on__gte=before(calendar.care_days)) & not_winback
    if "market" in stages and calendar.cycle_days:
        q |= Q(last_purchase_on__lte=before(max(calendar.marketing_day, calendar.care_days + 1))) & not_winback
    return q


def _rfm_q(d: AudienceDefinition, brand: Brand, today: dt.date) -> Q | None:
    """One EXISTS on the member's RFML row for the brand carrying every RFML-based condition."""
    filters = Q()
    if d.rfml_classes:
        filters &= Q(segment__in=d.rfml_classes)
    if d.lifecycle_stages:
        filters &= Q(lifecycle_stage__in=d.lifecycle_stages)
    low, high = d.recency_min_days, d.recency_max_days
    calendar = care_calendar_for(brand) if d.uses_cycle else None
    if calendar is not None and calendar.cycle_days is None:
        raise ApplicationError(ErrorCode.INVALID, "The brand has no consumption cycle yet.",
                               fields={f"{FIELD}.last_purchase": ["The brand has no consumption cycle yet."]})
    if d.recency_min_cycles is not None:
        days = math.ceil(d.recency_min_cycles * calendar.cycle_days)
        low = days if low is None else max(low, days)
    if d.recency_max_cycles is not None:
        days = math.floor(d.recency_max_cycles * calendar.cycle_days)
        high = days if high is None else min(high, days)
    if low is not None:
        filters &= Q(last_purchase_on__lte=today - dt.timedelta(days=low))
    if high is not None:
        filters &= Q(last_purchase_on__gte=today - dt.timedelta(days=high))
    if d.care_stages:
        filters &= _care_stage_q(d.care_stages, calendar, today)
    if not filters:
        return None
    return Q(Exists(MemberRfm.objects.filter(filters, member=OuterRef("member_id"), brand_id=brand.pk)))


def _points_q(low: int | None, high: int | None, brand_id: int) -> Q:
    # The balance rows, kept with every points entry: one row per member and brand to compare, instead of
    # summing the brand's whole ledger per member on every count.
    balances = PointsBalance.objects.filter(brand_id=brand_id)
    if (low is None or low <= 0) and (high is None or high >= 0):
        # 0 is in the range, so members without a balance row belong: leave out the balances outside it.
        # NOT EXISTS (an anti-join) rather than NOT IN: PostgreSQL shares one parallel hash of those rows
        # between its workers, where NOT IN's hashed subplan is built again by every worker.
        outside = Q()
        if low is not None:
            outside |= Q(balance__lt=low)
        if high is not None:
            outside |= Q(balance__gt=high)
        return ~Q(Exists(balances.filter(outside, member_id=OuterRef("member_id"))))
    if low is not None:
        balances = balances.filter(balance__gte=low)
    if high is not None:
        balances = balances.filter(balance__lte=high)
    return Q(member_id__in=balances.values("member_id"))


def _ids(queryset: QuerySet) -> list[int]:
    return list(queryset.order_by("pk").values_list("pk", flat=True))


def audience_rows(*, brand: Brand, definition, at: dt.datetime | None = None) -> QuerySet[BrandMembership]:
    """The brand memberships of the audience's members: one row per member (a member joins a brand once).

    The lean form of the audience (no join to the member table) that counting and set-based writes use.
    Small look-ups of the brand's own rows (its guides, templates, products of a category, stores of a
    region) are read once here and written into the query as lists, so PostgreSQL estimates each condition
    from the column statistics of one table.
    """
    d = _definition_for(brand, definition)
    at = at or timezone.now()
    today = timezone.localdate(at)
    member = OuterRef("member_id")
    conditions = [Q(brand_id=brand.pk),
                  # A merged-away member keeps no memberships; this guards the count against one that did.
                  ~Q(Exists(Member.objects.filter(pk=member, merged_into__isnull=False)))]
    if d.join_channels:
        conditions.append(Q(join_channel__in=d.join_channels))
    if d.joined_from is not None:
        conditions.append(Q(joined_at__gte=_local_midnight(d.joined_from)))
    if d.joined_to is not None:
        conditions.append(Q(joined_at__lt=_local_midnight(d.joined_to + dt.timedelta(days=1))))

    tags = MemberTag.objects.filter(member=member)
    if d.tags_any:
        conditions.append(Q(Exists(tags.filter(tag_value_id__in=d.tags_any))))
    conditions += [Q(Exists(tags.filter(tag_value_id=pk))) for pk in d.tags_all]
    if d.tags_none:
        conditions.append(~Q(Exists(tags.filter(tag_value_id__in=d.tags_none))))
    rfm = _rfm_q(d, brand, today)
    if rfm is not None:
        conditions.append(rfm)
    conditions += [_behaviour_q(rule, brand.pk, today) for rule in d.behaviour]
    conditions += [_purchase_q(rule, brand.pk, today) for rule in d.purchases]
    if d.wecom_friend is not None:
        guides = _ids(Guide.objects.filter(store__brand_id=brand.pk))
        friends = Q(Exists(WeComFriendship.objects.filter(member=member, removed_at__isnull=True,
                                                          guide_id__in=guides)))
        conditions.append(friends if d.wecom_friend else ~friends)
    bound = GuideBinding.objects.filter(member=member, brand_id=brand.pk, ended_at__isnull=True)
    if d.guides:
        conditions.append(Q(Exists(bound.filter(guide_id__in=d.guides))))
    if d.stores:
        conditions.append(Q(Exists(bound.filter(store_id__in=d.stores))))
    if d.regions:
        stores = _ids(Store.objects.filter(brand_id=brand.pk, region_id__in=d.regions))
        conditions.append(Q(Exists(bound.filter(store_id__in=stores))))
    if d.join_stores:
        conditions.append(Q(store_id__in=d.join_stores))
    if d.points_min is not None or d.points_max is not None:
        conditions.append(_points_q(d.points_min, d.points_max, brand.pk))
    if d.coupons_held is not None:
        templates = list(d.coupon_templates) or _ids(CouponTemplate.objects.filter(brand_id=brand.pk))
        coupons = Coupon.objects.filter(member=member, status=CouponStatus.AVAILABLE, valid_to__gt=at,
                                        template_id__in=templates)
        conditions.append(Q(Exists(coupons)) if d.coupons_held else ~Q(Exists(coupons)))
    return BrandMembership.objects.filter(*conditions)


def _definition_for(brand: Brand, definition) -> AudienceDefinition:
    if isinstance(definition, AudienceDefinition):
        if definition.brand_id != brand.pk:
            raise ValueError("the definition was validated for another brand")
        return definition
    return audience_definition_clean(brand=brand, definition=definition)


def audience_members(*, brand: Brand, definition, at: dt.datetime | None = None) -> QuerySet[Member]:
    """The brand's members matching ``definition`` (a dict as saved, or a validated AudienceDefinition).

    One lazy queryset over ``Member`` (no ordering); ``at`` is the moment it is evaluated for (now).
    """
    rows = audience_rows(brand=brand, definition=definition, at=at)
    return Member.objects.filter(pk__in=rows.values("member_id"))


@contextmanager
def audience_query_settings():
    """Run audience queries as they are planned for (PostgreSQL: ``SET LOCAL work_mem``, ``jit``).

    A few conditions ("at most N events", a points range that includes 0) exclude a set of members; with
    PostgreSQL's default 4 MB of work memory the planner would rescan that set for every member instead of
    hashing it once. JIT compilation costs more than it saves on these sub-second counts. Opens a
    transaction (a savepoint inside one); on other databases it only does that.
    """
    with transaction.atomic():
        if connection.vendor != "postgresql":
            yield
            return
        with connection.cursor() as cursor:
            # set_config(…, true) is SET LOCAL. Inside an enclosing transaction (a campaign's) the old values
            # come back afterwards: explicitly on success, by the savepoint's rollback on an error.
            cursor.execute("SELECT current_setting('work_mem'), current_setting('jit'), "
                           "set_config('work_mem', %s, true), set_config('jit', 'off', true)", [AUDIENCE_WORK_MEM])
            work_mem, jit = cursor.fetchone()[:2]
        yield
        with connection.cursor() as cursor:
            cursor.execute("SELECT set_config('work_mem', %s, true), set_config('jit', %s, true)", [work_mem, jit])


def audience_count(*, brand: Brand, definition, at: dt.datetime | None = None) -> int:
    """How many members ``definition`` holds for ``brand`` now (or at ``at``): one COUNT query."""
    rows = audience_rows(brand=brand, definition=definition, at=at)
    with audience_query_settings():
        return rows.count()


def audience_member_ids_sql(*, brand: Brand, definition, at: dt.datetime | None = None) -> tuple[str, tuple]:
    """``(sql, params)`` of ``SELECT member_id`` for the audience, to embed in a set-based write.

    E.g. ``INSERT INTO … (member_id, …) SELECT a.member_id, … FROM ({sql}) AS a`` with ``params``, run
    inside ``audience_query_settings()``.
    """
    rows = audience_rows(brand=brand, definition=definition, at=at).order_by()
    sql, params = rows.values("member_id").query.sql_with_params()
    return sql, tuple(params)


# ---------------------------------------------------------------------------- saved audiences

AUDIENCE_ROLES = frozenset({"hq", "brand_operator"})


def audience_access_check(actor: Actor) -> None:
    """Audiences are for HQ and brand operators (and platform superusers): 403 for every other role."""
    if not actor.is_superuser and actor.role not in AUDIENCE_ROLES:
        raise ApplicationError(ErrorCode.PERMISSION_DENIED, "Only HQ or brand operators work with audiences.",
                               status=403)


def audience_list(*, actor: Actor) -> QuerySet[Audience]:
    """The saved audiences of the brands in the actor's scope, by brand and name (403 for other roles)."""
    audience_access_check(actor)
    return scoped(Audience.objects.select_related("brand"), actor).order_by("brand__code", "name", "pk")


def audience_get(*, actor: Actor, pk: int) -> Audience:
    """One saved audience in the actor's scope; 404 outside it (403 for roles that have no audiences)."""
    audience = audience_list(actor=actor).filter(pk=pk).first()
    if audience is None:
        raise ApplicationError(ErrorCode.NOT_FOUND, "No such audience.", status=404)
    return audience


def audience_brand(*, actor: Actor, code: str | None) -> Brand:
    """The brand an audience is for: ``code`` in the actor's scope, or a brand operator's own brand."""
    audience_access_check(actor)
    if not code:
        if actor.brand_id is not None:
            return Brand.objects.get(pk=actor.brand_id)
        raise ApplicationError(ErrorCode.INVALID, "Say which brand.", fields={"brand": ["This field is required."]})
    brand = scoped(Brand.objects.filter(code=code), actor).first()
    if brand is None:
        raise ApplicationError(ErrorCode.INVALID, "No such brand.", fields={"brand": ["No such brand in your scope."]})
    return brand


def _name(name: str) -> str:
    name = (name or "").strip()
    if not name or len(name) > 80:
        raise ApplicationError(ErrorCode.INVALID, "Give the audience a name.",
                               fields={"name": ["A name of 1–80 characters is required."]})
    return name


def _save(audience: Audience, fields: list[str] | None = None) -> Audience:
    try:
        with transaction.atomic():
            audience.save(update_fields=fields)
    except IntegrityError:
        raise ApplicationError(ErrorCode.CONFLICT, "The brand already has an audience of that name.", status=409,
                               fields={"name": ["The brand already has an audience of that name."]}) from None
    return audience


def audience_create(*, actor: Actor, brand: Brand, name: str, definition: dict, user=None) -> Audience:
    """Save a named, validated definition for ``brand`` (409 when the brand has that name already)."""
    audience_access_check(actor)
    audience_definition_clean(brand=brand, definition=definition, actor=actor)
    return _save(Audience(group_id=brand.group_id, brand=brand, name=_name(name), definition=definition,
                          created_by=user if getattr(user, "pk", None) else None))


def audience_update(*, actor: Actor, audience: Audience, name: str | None = None,
                    definition: dict | None = None) -> Audience:
    """Rename the audience and/or replace its definition (validated as on creation)."""
    audience_access_check(actor)
    fields = ["updated_at"]
    if name is not None:
        audience.name = _name(name)
        fields.append("name")
    if definition is not None:
        audience_definition_clean(brand=audience.brand, definition=definition, actor=actor)
        audience.definition = definition
        fields.append("definition")
    return _save(audience, fields)


def audience_delete(*, actor: Actor, audience: Audience) -> None:
    """Delete a saved audience; 409 while something (a campaign) still uses it."""
    audience_access_check(actor)
    try:
        audience.delete()
    except ProtectedError:
        raise ApplicationError(ErrorCode.CONFLICT, "The audience is in use and cannot be deleted.",
                               status=409) from None


@dataclass(frozen=True)
class AudienceSize:
    """How many members a saved audience held at the moment it was counted."""

    count: int
    counted_at: dt.datetime


def audience_size(*, audience: Audience, at: dt.datetime | None = None) -> AudienceSize:
    """Count the saved audience now (or at ``at``): one COUNT query, never cached.

    400 (the ApplicationError of ``audience_definition_clean``, a message per field) when the saved definition
    no longer fits its brand, e.g. a tag value or guide it names was deleted since.
    """
    at = at or timezone.now()
    return AudienceSize(count=audience_count(brand=audience.brand, definition=audience.definition, at=at),
                        counted_at=at)


# ---------------------------------------------------------------------------- export

EXPORT_COLUMNS = ("member_code", "name", "phone", "brand", "store", "guide", "rfml_class", "last_purchase_on")
EXPORT_CHUNK = 2000


@dataclass(frozen=True)
class ExportRow:
    """One member of an exported audience, phone already masked or whole for the viewer."""

    member_code: str
    name: str
    phone: str
    brand: str
    store: str
    guide: str
    rfml_class: str
    last_purchase_on: dt.date | None


def audience_export_rows(*, audience: Audience, actor: Actor, user, at: dt.datetime | None = None
                         ) -> Iterator[ExportRow]:
    """The audience's members, by member id, as export rows, streamed from one query.

    The definition is checked at once (a 400 before the first row, not halfway through a download); the
    rows are read lazily. ``store`` is the store where the member joined the brand, ``guide`` the current
    bound guide's code for the brand; phones are whole only where ``PhoneVisibility`` allows the viewer
    (else 138****1234), decided per chunk of rows (two small queries each).
    """
    brand = audience.brand
    members = audience_members(brand=brand, definition=audience.definition, at=at)
    membership = BrandMembership.objects.filter(member=OuterRef("pk"), brand_id=brand.pk)
    binding = GuideBinding.objects.filter(member=OuterRef("pk"), brand_id=brand.pk, ended_at__isnull=True)
    rfm = MemberRfm.objects.filter(member=OuterRef("pk"), brand_id=brand.pk)
    rows = (members.only("pk", "code", "name", "phone")
            .annotate(store_code=Subquery(membership.values("store__code")[:1]),
                      guide_code=Subquery(binding.values("guide__code")[:1]),
                      rfml_class=Subquery(rfm.values("segment")[:1]),
                      last_purchase=Subquery(rfm.values("last_purchase_on")[:1]))
            .order_by("pk"))
    return _export_chunks(rows, brand_code=brand.code, actor=actor, user=user)


def _export_chunks(rows: QuerySet[Member], *, brand_code: str, actor: Actor, user) -> Iterator[ExportRow]:
    # One transaction for the whole stream: the rows come from one cursor (PostgreSQL: server-side).
    with audience_query_settings():
        stream = rows.iterator(chunk_size=EXPORT_CHUNK)
        while chunk := list(itertools.islice(stream, EXPORT_CHUNK)):
            phones = PhoneVisibility(actor=actor, user=user, members=chunk)
            for member in chunk:
                yield ExportRow(member_code=member.code, name=member.name, phone=phones.phone(member),
                                brand=brand_code, store=member.store_code or "", guide=member.guide_code or "",
                                rfml_class=member.rfml_class or "", last_purchase_on=member.last_purchase)
