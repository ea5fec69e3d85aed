"""Member tags (标签): tag groups and values, manual/import assignment, and the rule engine.

Rule tags are derived from a member's *purchases* (``mall.selectors.purchases``,
read through the ``member_purchase_lines`` hook mall answers) of one brand: the
order lines whose brand is that brand, net of line refunds (a fully refunded
line counts for nothing; a partly refunded one counts its net amount and,
proportionally, its quantity). An admin defines a rule as
(tag group, order-line field, aggregation, threshold, optional lookback window,
optional category filter); see :class:`members.models.TagRule`.

Aggregations, per member over the rule's lines that have a value for the field:

* ``top_quantity``: the value bought in the largest quantity; passes when its
  share of the quantity is at least the threshold.
* ``top_spend``: the value with the largest net spend; passes when its share of
  the spend is at least the threshold.
* ``share_at_least``: the share of spend on lines whose (numeric) field is at
  least ``compare_value``; passes when that share is at least the threshold and
  above zero, giving the rule's fixed value (e.g. "discount-sensitive").
* ``average_band``: the quantity-weighted average of a numeric field, put into
  the bands between the rule's edges ("<200", "200-500", "≥1000").

Ties (``top_*``): the larger quantity (``top_quantity``) or spend
(``top_spend``) wins; then the other measure, larger first; then the value
that sorts first alphabetically. Every rule also needs ``min_quantity`` items.

Set-based: one query per brand into a pandas frame (COPY on PostgreSQL), all
rules vectorised, then a diff against the rule-sourced MemberTag rows of the
brand's tag groups. On PostgreSQL the wanted rows go to a temporary table and
one DELETE, one UPDATE and one INSERT … SELECT apply the diff; elsewhere the
ORM does it with bulk_create/bulk_update and chunked deletes. Recomputing with
unchanged data writes nothing; each run logs its phase timings. Manual, import,
RFML and behaviour tags are never touched by rules; in a single-valued group a
member holding such a tag gets no rule value.
"""

from __future__ import annotations

import datetime as dt
import io
import json
import logging
import re
import time
from dataclasses import dataclass
from decimal import Decimal

import numpy as np
import pandas as pd
from django.db import IntegrityError, connection, transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from members.errors import MembersErrorCode
from members.models import (
    NUMERIC_TAG_RULE_FIELDS,
    Member,
    MemberTag,
    TagGroup,
    TagRule,
    TagRuleAggregation,
    TagRuleField,
    TagSource,
    TagValue,
)
from members.tag_labels import TagReason
from retail_crm import hooks
from retail_crm.errors import ApplicationError
from retail_crm.models import Brand, RetailGroup, Store
from retail_crm.vocabulary import Channel

logger = logging.getLogger(__name__)

HAND_SOURCES = frozenset({TagSource.MANUAL, TagSource.IMPORT})
_LOCK_CLASS = 7301  # advisory-lock namespace for tag recomputes (PostgreSQL)


# ---------------------------------------------------------------------------- groups, values, hand tags

def tag_group_get_or_create(*, group: RetailGroup, code: str, name: str, brand: Brand | None = None,
                            multi_valued: bool = False) -> TagGroup:
    """The tag group ``code`` of ``brand`` (or group-wide when ``brand`` is None), created if missing."""
    lookup = {"group": group, "brand": brand, "code": code}
    try:
        with transaction.atomic():
            tag_group, _created = TagGroup.objects.get_or_create(
                **lookup, defaults={"name": name, "multi_valued": multi_valued})
    except IntegrityError:  # created concurrently: the unique constraint decided, read the winner
        tag_group = TagGroup.objects.get(**lookup)
    return tag_group


def tag_value_get_or_create(*, tag_group: TagGroup, code: str, name: str | None = None, sort: int = 0) -> TagValue:
    """The value ``code`` of ``tag_group``, created if missing (name defaults to the code)."""
    try:
        with transaction.atomic():
            value, _created = TagValue.objects.get_or_create(
                tag_group=tag_group, code=code[:60], defaults={"name": (name or code)[:60], "sort": sort})
    except IntegrityError:
        value = TagValue.objects.get(tag_group=tag_group, code=code[:60])
    return value


def _check_tag_fits_member(member: Member, tag_value: TagValue) -> None:
    tag_group = tag_value.tag_group
    if tag_group.group_id != member.group_id:
        raise ApplicationError(MembersErrorCode.TAG_OTHER_GROUP, "This tag belongs to another group.",
                               fields={"tag_value": ["This tag belongs to another group."]})
    if tag_group.brand_id is not None and not member.memberships.filter(brand_id=tag_group.brand_id).exists():
        message = "This tag belongs to a brand the member has not joined."
        raise ApplicationError(MembersErrorCode.TAG_BRAND_NOT_JOINED, message, fields={"tag_value": [message]})


@transaction.atomic
def member_tag_assign(*, member: Member, tag_value: TagValue, reason: str, source: str = TagSource.MANUAL,
                      assigned_by=None, evidence: dict | None = None, at: dt.datetime | None = None) -> MemberTag:
    """Give ``member`` the tag ``tag_value`` by hand (``manual``) or from an import (``import``).

    Assigning a value the member already holds makes that row a hand tag with the
    new reason (an operator confirming a rule value takes it out of the rules'
    hands). In a single-valued group the member's other value is replaced,
    whatever its source: the operator's word wins over a computed value.
    """
    if source not in HAND_SOURCES:
        raise ApplicationError(MembersErrorCode.TAG_SOURCE_INVALID, "Only manual or import tags are assigned by hand.",
                               fields={"source": ["Only manual or import tags are assigned by hand."]})
    _check_tag_fits_member(member, tag_value)
    # Lock the member row: two operators tagging one member at once cannot both keep a single-valued slot.
    Member.objects.select_for_update().filter(pk=member.pk).first()
    now = at or timezone.now()
    if not tag_value.tag_group.multi_valued:
        MemberTag.objects.filter(member=member, tag_value__tag_group_id=tag_value.tag_group_id) \
            .exclude(tag_value=tag_value).delete()
    row, _created = MemberTag.objects.update_or_create(
        member=member, tag_value=tag_value,
        defaults={"source": source, "assigned_at": now, "reason": reason[:200], "reason_code": "", "reason_params": {},
                  "evidence": evidence or {},
                  "assigned_by": assigned_by})
    return row


@transaction.atomic
def member_tag_remove(*, member: Member, tag_value: TagValue, reason: str = "", removed_by=None) -> None:
    """Take a manual or import tag off ``member``; computed tags (rules, RFML, behaviour) are refused.

    Removing a computed tag would only last until the next recompute, so it is
    refused (409); change or deactivate the rule instead.
    """
    row = MemberTag.objects.select_for_update().filter(member=member, tag_value=tag_value).first()
    if row is None:
        raise ApplicationError(MembersErrorCode.TAG_NOT_HELD, "The member does not hold this tag.", status=404)
    if row.source not in HAND_SOURCES:
        raise ApplicationError(MembersErrorCode.TAG_COMPUTED,
                               f"This tag comes from {row.source} and is recomputed; it cannot be removed by hand.",
                               status=409)
    row.delete()
    logger.info("member tag removed: member=%s tag_value=%s by=%s reason=%s", member.pk, tag_value.pk,
                getattr(removed_by, "pk", None), reason)


@transaction.atomic
def member_tags_merge(*, survivor: Member, absorbed: Member) -> int:
    """Move ``absorbed``'s tags to ``survivor`` on a member merge; returns how many rows moved.

    Where both hold the same value, or both hold a value of a single-valued
    group, the earlier assignment is kept and the other row is dropped, so the
    survivor never holds a value twice nor two values of a single-valued group.
    """
    mine = list(MemberTag.objects.select_related("tag_value__tag_group").filter(member=survivor))
    by_value = {row.tag_value_id: row for row in mine}
    single_by_group = {row.tag_value.tag_group_id: row for row in mine if not row.tag_value.tag_group.multi_valued}
    moved = 0
    for row in MemberTag.objects.select_related("tag_value__tag_group").filter(member=absorbed) \
            .order_by("assigned_at", "pk"):
        tag_group = row.tag_value.tag_group
        rival = by_value.get(row.tag_value_id) or (None if tag_group.multi_valued else
                                                   single_by_group.get(tag_group.pk))
        if rival is not None:
            if rival.assigned_at <= row.assigned_at:
                row.delete()
                continue
            rival.delete()
            by_value.pop(rival.tag_value_id, None)
        row.member = survivor
        row.save(update_fields=["member"])
        by_value[row.tag_value_id] = row
        if not tag_group.multi_valued:
            single_by_group[tag_group.pk] = row
        moved += 1
    return moved


# ---------------------------------------------------------------------------- default rules

@dataclass(frozen=True)
class DefaultRule:
    code: str
    name: str
    field: str
    aggregation: str
    threshold: str = "0"
    lookback_days: int | None = None
    category_filter: str = ""
    category_mode: str = TagRule.CategoryMode.INCLUDE
    compare_value: str | None = None
    value_code: str = ""
    value_name: str = ""
    bands: str = ""


SHOE_WORDS = "鞋,shoe,sneaker,boot"
# Sizes of accessories (bags, hats, belts…) say nothing about a clothing size.
NOT_CLOTHING_WORDS = SHOE_WORDS + ",包,bag,帽,hat,首饰,jewel,腰带,belt,围巾,scarf"

DEFAULT_RULES = (
    DefaultRule("shoe-size", "Shoe size", TagRuleField.SIZE, TagRuleAggregation.TOP_QUANTITY,
                category_filter=SHOE_WORDS),
    DefaultRule("clothing-size", "Clothing size", TagRuleField.SIZE, TagRuleAggregation.TOP_QUANTITY,
                category_filter=NOT_CLOTHING_WORDS, category_mode=TagRule.CategoryMode.EXCLUDE),
    DefaultRule("colour-preference", "Colour preference", TagRuleField.COLOUR, TagRuleAggregation.TOP_SPEND,
                threshold="0.4", lookback_days=365),
    DefaultRule("material-preference", "Material preference", TagRuleField.MATERIAL, TagRuleAggregation.TOP_SPEND,
                threshold="0.4", lookback_days=365),
    DefaultRule("discount-preference", "Discount preference", TagRuleField.DISCOUNT_RATE,
                TagRuleAggregation.SHARE_AT_LEAST, threshold="0.5", lookback_days=365, compare_value="0.300",
                value_code="discount-sensitive", value_name="Discount-sensitive"),
    DefaultRule("favourite-category", "Favourite category", TagRuleField.CATEGORY, TagRuleAggregation.TOP_SPEND,
                threshold="0.3", lookback_days=365),
    DefaultRule("price-band", "Price band", TagRuleField.UNIT_PRICE, TagRuleAggregation.AVERAGE_BAND,
                lookback_days=365, bands="200,500,1000"),
    DefaultRule("preferred-channel", "Preferred channel", TagRuleField.CHANNEL, TagRuleAggregation.TOP_SPEND,
                threshold="0.5", lookback_days=365),
    DefaultRule("preferred-store", "Preferred store", TagRuleField.STORE, TagRuleAggregation.TOP_SPEND,
                threshold="0.5", lookback_days=365),
)


@transaction.atomic
def tag_rules_install_defaults(brand: Brand) -> list[TagRule]:
    """Install the standard rule tags of DOMAIN.md for ``brand``; idempotent.

    Each default gets a single-valued tag group of the brand. A group that
    already has a rule (an operator may have tuned it) is left alone. Returns
    the rules created by this call.
    """
    created = []
    for spec in DEFAULT_RULES:
        tag_group = tag_group_get_or_create(group=brand.group, brand=brand, code=spec.code, name=_(spec.name))
        if TagRule.objects.filter(tag_group=tag_group).exists():
            continue
        created.append(TagRule.objects.create(
            brand=brand, tag_group=tag_group, name=_(spec.name), field=spec.field, aggregation=spec.aggregation,
            threshold=Decimal(spec.threshold), lookback_days=spec.lookback_days,
            category_filter=spec.category_filter, category_mode=spec.category_mode,
            compare_value=Decimal(spec.compare_value) if spec.compare_value else None,
            value_code=spec.value_code, value_name=_(spec.value_name) if spec.value_name else "",
            bands=spec.bands, sort=len(created)))
    return created


# ---------------------------------------------------------------------------- rule engine

@dataclass(frozen=True)
class TagRecomputeResult:
    """What one recompute did: rows written per kind, members with lines, rules evaluated."""

    created: int
    updated: int
    deleted: int
    members: int
    rules: int


LINE_COLUMNS = ("member_id", "ordered_at", "quantity", "amount", "refunded", "unit_price", "line_list_price",
                "sku_list_price", "colour", "size", "material", "category", "season", "channel", "store_id")

hooks.declare(
    "member_purchase_lines",
    "brand: Brand, member_ids: list[int] | None (None: every buyer) -> a pandas DataFrame, one row per order "
    "line of the brand's purchases (mall.selectors.purchases) with a member, columns members.tags.LINE_COLUMNS: "
    "member_id, quantity int64; ordered_at datetime64 UTC; amount, refunded, unit_price, line_list_price, "
    "sku_list_price int64 cents (sku_list_price 0 without a SKU price); colour, size, material, category, "
    "season, channel pandas category (no value: NaN); store_id Int64. One query. Exactly one provider.")

_RESULT_COLUMNS = ["member_id", "code", "name", "sort", "evidence", "reason_code", "params"]


def _params(rule: TagRule, **values: str) -> str:
    """A rule tag's reason parameters as JSON text (rendered in the viewer's language by members.tag_labels)."""
    return json.dumps({"rule": rule.name, **values}, ensure_ascii=False)


def _has_copy() -> bool:
    if connection.vendor != "postgresql":
        return False
    with connection.cursor() as cursor:
        return hasattr(cursor.cursor, "copy_expert")


def _load_lines(brand: Brand, member_ids: list[int] | None) -> pd.DataFrame:
    """The brand's purchased order lines with a member, net of line refunds, money in integer cents."""
    frame = hooks.call_one("member_purchase_lines", brand=brand, member_ids=member_ids)
    frame["net"] = frame["amount"] - frame["refunded"]
    frame = frame[frame["net"] > 0].copy()
    frame["qty"] = frame["quantity"] * frame["net"] / frame["amount"]
    # The line's own list price is the one the sale was made against; the SKU's is the fallback.
    frame["list_c"] = frame["line_list_price"].where(frame["line_list_price"] > 0, frame["sku_list_price"])
    return frame


# Text for evidence and reasons: one pass over plain Python ints per column (numpy scalars format slowly).

def _money_text(cents) -> list[str]:
    whole, part = np.divmod(np.asarray(cents, dtype="int64"), 100)
    return [f"{w}.{p:02d}" for w, p in zip(whole.tolist(), part.tolist(), strict=True)]


def _milli_text(milli) -> list[str]:
    whole, part = np.divmod(np.asarray(milli, dtype="int64"), 1000)
    return [f"{w}.{p:03d}" for w, p in zip(whole.tolist(), part.tolist(), strict=True)]


def _qty_text(quantities) -> list[str]:
    whole, part = np.divmod(np.rint(np.asarray(quantities, dtype="float64") * 100).astype("int64"), 100)
    return [str(w) if p == 0 else f"{w}.{p:02d}".rstrip("0") for w, p in zip(whole.tolist(), part.tolist(),
                                                                               strict=True)]


def _share_milli(part: pd.Series, whole: pd.Series) -> pd.Series:
    """floor(1000 · part / whole): a share shown to three places that passes a threshold exactly when the
    true share does (thresholds have three decimals)."""
    if np.issubdtype(part.dtype, np.integer) and np.issubdtype(whole.dtype, np.integer):
        return (part * 1000) // whole
    return np.floor(part * 1000 / whole + 1e-9).astype("int64")


def _rule_lines(rule: TagRule, lines: pd.DataFrame, as_of: dt.datetime) -> pd.DataFrame:
    """The lines a rule reads: its window, its categories, and a value for its field."""
    keep = pd.Series(True, index=lines.index)
    if rule.lookback_days:
        keep &= lines["ordered_at"] >= pd.Timestamp(as_of - dt.timedelta(days=rule.lookback_days))
    words = [w.strip().lower() for w in rule.category_filter.split(",") if w.strip()]
    if words:
        # Match the few distinct categories, not the million lines.
        hits = [c for c in lines["category"].cat.categories if any(w in str(c).lower() for w in words)]
        matched = lines["category"].isin(hits)
        keep &= matched if rule.category_mode == TagRule.CategoryMode.INCLUDE else ~matched
    if rule.field == TagRuleField.DISCOUNT_RATE:
        keep &= lines["list_c"] > 0
    elif rule.field == TagRuleField.STORE:
        keep &= lines["store_id"].notna()
    elif rule.field != TagRuleField.UNIT_PRICE:
        keep &= lines[rule.field].notna()
    return lines[keep]


def _labels_for(rule: TagRule, brand: Brand) -> tuple[dict | None, dict | None]:
    """(store id → value code, value code → display name) for fields whose stored value is not the label."""
    if rule.field == TagRuleField.STORE:
        stores = list(Store.objects.filter(brand__group_id=brand.group_id).values_list("pk", "code", "name"))
        return {pk: code for pk, code, _n in stores}, {code: name for _p, code, name in stores}
    if rule.field == TagRuleField.CHANNEL:
        return None, {value: str(label) for value, label in Channel.choices}
    return None, None


def _top(rule: TagRule, lines: pd.DataFrame, brand: Brand) -> pd.DataFrame:
    """``top_quantity`` / ``top_spend``: each member's leading value, if its share passes the threshold."""
    key = "store_id" if rule.field == TagRuleField.STORE else rule.field
    per_value = lines.groupby(["member_id", key], observed=True, sort=False) \
        .agg(qty=("qty", "sum"), spend=("net", "sum")).reset_index()
    codes, names = _labels_for(rule, brand)
    per_value["code"] = (per_value[key].map(codes) if codes else per_value[key]).astype(str).str.slice(0, 60)
    totals = per_value.groupby("member_id", sort=False).agg(total_qty=("qty", "sum"), total_spend=("spend", "sum"))
    by_quantity = rule.aggregation == TagRuleAggregation.TOP_QUANTITY
    order = ["qty", "spend"] if by_quantity else ["spend", "qty"]
    per_value = per_value.sort_values(["member_id", *order, "code"], ascending=[True, False, False, True],
                                      kind="stable")
    best = per_value.drop_duplicates("member_id").join(totals, on="member_id")
    best = best[best["total_qty"] >= rule.min_quantity - 1e-9]
    share = _share_milli(best["qty"], best["total_qty"]) if by_quantity else \
        _share_milli(best["spend"], best["total_spend"])
    best = best.assign(share=share)
    best = best[best["share"] >= int(rule.threshold * 1000)].reset_index(drop=True)
    code_list = best["code"].tolist()
    name_list = [names.get(c, c)[:60] for c in code_list] if names else code_list
    share_t, spend_t = _milli_text(best["share"]), _money_text(best["spend"])
    if by_quantity:
        qty_t, total_t = _qty_text(best["qty"]), _qty_text(best["total_qty"])
        evidence = [f'{{"rule": "{rule.pk}", "share": "{s}", "spend": "{m}", "quantity": "{q}", '
                    f'"total_quantity": "{t}"}}' for s, m, q, t in zip(share_t, spend_t, qty_t, total_t, strict=True)]
        code, params = TagReason.RULE_TOP_QUANTITY, [_params(rule, part=q, total=t) for q, t in zip(qty_t, total_t,
                                                                                                   strict=True)]
    else:
        total_t = _money_text(best["total_spend"])
        evidence = [f'{{"rule": "{rule.pk}", "share": "{s}", "spend": "{m}", "total_spend": "{t}"}}'
                    for s, m, t in zip(share_t, spend_t, total_t, strict=True)]
        code, params = TagReason.RULE_TOP_SPEND, [_params(rule, part=m, total=t) for m, t in zip(spend_t, total_t,
                                                                                                 strict=True)]
    return pd.DataFrame({"member_id": best["member_id"].to_numpy(), "code": code_list, "name": name_list,
                         "sort": 0, "evidence": evidence, "reason_code": code, "params": params})


def _share_at_least(rule: TagRule, lines: pd.DataFrame) -> pd.DataFrame:
    """``share_at_least``: members whose spend with field ≥ compare value is a large enough share."""
    compare_milli = int(rule.compare_value * 1000)
    # Exact integer comparisons: unit ≤ (1 − c)·list for a discount rate, unit ≥ c for a price.
    if rule.field == TagRuleField.DISCOUNT_RATE:
        hit = lines["unit_price"] * 1000 <= (1000 - compare_milli) * lines["list_c"]
    else:
        hit = lines["unit_price"] * 1000 >= compare_milli * 100
    frame = pd.DataFrame({"member_id": lines["member_id"], "qty": lines["qty"], "spend": lines["net"],
                          "hit": lines["net"].where(hit, 0)})
    per_member = frame.groupby("member_id", sort=True).agg(qty=("qty", "sum"), spend=("spend", "sum"),
                                                           hit=("hit", "sum")).reset_index()
    per_member["share"] = _share_milli(per_member["hit"], per_member["spend"])
    passed = per_member[(per_member["qty"] >= rule.min_quantity - 1e-9) & (per_member["hit"] > 0)
                        & (per_member["share"] >= int(rule.threshold * 1000))]
    share_t, hit_t, total_t = _milli_text(passed["share"]), _money_text(passed["hit"]), _money_text(passed["spend"])
    evidence = [f'{{"rule": "{rule.pk}", "share": "{s}", "spend": "{m}", "total_spend": "{t}"}}'
                for s, m, t in zip(share_t, hit_t, total_t, strict=True)]
    params = [_params(rule, part=m, total=t, field=rule.field, compare=str(rule.compare_value))
              for m, t in zip(hit_t, total_t, strict=True)]
    return pd.DataFrame({"member_id": passed["member_id"].to_numpy(), "code": rule.value_code[:60],
                         "name": (rule.value_name or rule.value_code)[:60], "sort": 0, "evidence": evidence,
                         "reason_code": TagReason.RULE_SHARE, "params": params})


def _band_labels(edges: list[Decimal]) -> list[str]:
    texts = [format(e.normalize(), "f") for e in edges]
    return [f"<{texts[0]}", *(f"{a}-{b}" for a, b in zip(texts, texts[1:], strict=False)), f"≥{texts[-1]}"]


def _average_band(rule: TagRule, lines: pd.DataFrame) -> pd.DataFrame:
    """``average_band``: the quantity-weighted average of the field, placed in the rule's bands."""
    if rule.field == TagRuleField.UNIT_PRICE:
        numeric = lines["unit_price"] / 100
    else:
        numeric = 1 - lines["unit_price"] / lines["list_c"]
    frame = pd.DataFrame({"member_id": lines["member_id"], "qty": lines["qty"], "spend": lines["net"],
                          "weighted": numeric * lines["qty"]})
    per_member = frame.groupby("member_id", sort=True).agg(qty=("qty", "sum"), spend=("spend", "sum"),
                                                           weighted=("weighted", "sum")).reset_index()
    per_member = per_member[per_member["qty"] >= rule.min_quantity - 1e-9]
    average = (per_member["weighted"] / per_member["qty"]).round(6).to_numpy()
    edges = rule.band_edges()
    labels = _band_labels(edges)
    band = np.searchsorted(np.array([float(e) for e in edges]), average, side="right")
    codes = [labels[b][:60] for b in band.tolist()]
    decimals = 2 if rule.field == TagRuleField.UNIT_PRICE else 3
    averages = [f"{a:.{decimals}f}" for a in average.tolist()]
    qty_t, spend_t = _qty_text(per_member["qty"]), _money_text(per_member["spend"])
    evidence = [f'{{"rule": "{rule.pk}", "spend": "{m}", "average": "{a}", "quantity": "{q}"}}'
                for m, a, q in zip(spend_t, averages, qty_t, strict=True)]
    params = [_params(rule, average=a) for a in averages]
    return pd.DataFrame({"member_id": per_member["member_id"].to_numpy(), "code": codes, "name": codes,
                         "sort": band, "evidence": evidence, "reason_code": TagReason.RULE_BAND, "params": params})


def _evaluate(rule: TagRule, lines: pd.DataFrame, brand: Brand, as_of: dt.datetime) -> pd.DataFrame:
    """One rule over the brand's lines: a frame of (member_id, code, name, sort, evidence, reason)."""
    selected = _rule_lines(rule, lines, as_of)
    if selected.empty:
        return pd.DataFrame(columns=_RESULT_COLUMNS)
    if rule.aggregation == TagRuleAggregation.SHARE_AT_LEAST:
        return _share_at_least(rule, selected)
    if rule.aggregation == TagRuleAggregation.AVERAGE_BAND:
        return _average_band(rule, selected)
    return _top(rule, selected, brand)


def _runnable(rule: TagRule) -> bool:
    """A rule saved around the form's checks (shell, fixtures) is skipped rather than crashing the run."""
    numeric = rule.field in NUMERIC_TAG_RULE_FIELDS
    if rule.aggregation in (TagRuleAggregation.TOP_QUANTITY, TagRuleAggregation.TOP_SPEND):
        return not numeric
    if rule.aggregation == TagRuleAggregation.SHARE_AT_LEAST:
        return numeric and rule.compare_value is not None and bool(rule.value_code)
    try:
        rule.band_edges()
    except (ValueError, ArithmeticError):
        return False
    return numeric


def _with_tag_value_ids(wanted: pd.DataFrame) -> pd.DataFrame:
    """Add ``tag_value_id`` for each (tag_group_id, code), creating the values that do not exist yet."""
    group_ids = [int(g) for g in wanted["tag_group_id"].unique()]

    def existing() -> pd.DataFrame:
        rows = TagValue.objects.filter(tag_group_id__in=group_ids).values_list("pk", "tag_group_id", "code")
        return pd.DataFrame.from_records(list(rows), columns=["tag_value_id", "tag_group_id", "code"]) \
            .astype({"tag_value_id": "int64", "tag_group_id": "int64", "code": object})

    pairs = wanted[["tag_group_id", "code", "name", "sort"]].drop_duplicates(["tag_group_id", "code"])
    known = existing()
    missing = pairs.merge(known, on=["tag_group_id", "code"], how="left")
    missing = missing[missing["tag_value_id"].isna()]
    if not missing.empty:
        TagValue.objects.bulk_create(
            [TagValue(tag_group_id=int(g), code=c, name=n, sort=int(s))
             for g, c, n, s in missing[["tag_group_id", "code", "name", "sort"]].itertuples(index=False)],
            ignore_conflicts=True)
        known = existing()
    return wanted.merge(known, on=["tag_group_id", "code"], how="inner")


def _without_held(wanted: pd.DataFrame, member_ids: list[int] | None) -> pd.DataFrame:
    """Drop what hand, import, RFML or behaviour tags already decide.

    In a single-valued group such a tag takes the member's one slot; in a
    multi-valued group the same value simply is already held.
    """
    held = MemberTag.objects.filter(tag_value__tag_group_id__in=[int(g) for g in wanted["tag_group_id"].unique()]) \
        .exclude(source=TagSource.RULE)
    if member_ids is not None:
        held = held.filter(member_id__in=member_ids)
    held = pd.DataFrame.from_records(list(held.values_list("member_id", "tag_value_id", "tag_value__tag_group_id")),
                                     columns=["member_id", "tag_value_id", "tag_group_id"]).astype("int64")
    if held.empty:
        return wanted
    slot = wanted.merge(held[["member_id", "tag_group_id"]].drop_duplicates(), how="left",
                        on=["member_id", "tag_group_id"], indicator="slot")["slot"].eq("both").to_numpy()
    same = wanted.merge(held[["member_id", "tag_value_id"]].drop_duplicates(), how="left",
                        on=["member_id", "tag_value_id"], indicator="same")["same"].eq("both").to_numpy()
    single = ~wanted["multi"].to_numpy(dtype=bool)
    return wanted[~((single & slot) | same)]


def _rule_tags_sql(brand: Brand, member_ids: list[int] | None) -> tuple[str, list]:
    """SQL condition (alias ``m``) for the rule-sourced tags a recompute owns: the brand's tag groups."""
    value, group = TagValue._meta.db_table, TagGroup._meta.db_table
    # Only table names from model metadata are interpolated; every value is a query parameter.
    sql = (f"m.source = %s AND m.tag_value_id IN (SELECT v.id FROM {value} v JOIN {group} g "  # noqa: S608
           f"ON g.id = v.tag_group_id WHERE g.brand_id = %s)")
    params: list = [TagSource.RULE.value, brand.pk]
    if member_ids is not None:
        sql += " AND m.member_id = ANY(%s)"
        params.append(list(member_ids))
    return sql, params


_NEEDS_ESCAPE = re.compile(r"[\\\t\n\r]")


def _copy_escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n").replace("\r", "\\r")


class _Timer:
    """Seconds per phase, for the log line a slow nightly run is diagnosed from."""

    def __init__(self) -> None:
        self.laps: dict[str, float] = {}
        self._last = time.perf_counter()

    def lap(self, name: str) -> None:
        now = time.perf_counter()
        self.laps[name] = round(now - self._last, 2)
        self._last = now

    def __str__(self) -> str:
        return ", ".join(f"{name} {seconds:.2f} s" for name, seconds in self.laps.items())


def _apply_postgres(brand: Brand, member_ids: list[int] | None, wanted: pd.DataFrame,
                    now: dt.datetime) -> tuple[int, int, int]:
    """Diff in the database: the wanted rows go to a temporary table by COPY, then one DELETE, one UPDATE
    and one INSERT … SELECT do the work (no million-row round trip back to Python)."""
    table = MemberTag._meta.db_table
    owned, params = _rule_tags_sql(brand, member_ids)
    # COPY text format, built in one pass: evidence is digits and fixed keys; reason parameters hold the
    # rule's name (admin text), so the few with a backslash are escaped (JSON already escapes tabs, newlines).
    reason_params = [_copy_escape(r) if _NEEDS_ESCAPE.search(r) else r for r in wanted["params"].tolist()]
    payload = "".join(f"{m}\t{v}\t{c}\t{r}\t{e}\n" for m, v, c, r, e in zip(
        wanted["member_id"].tolist(), wanted["tag_value_id"].tolist(), wanted["reason_code"].tolist(), reason_params,
        wanted["evidence"].tolist(), strict=True))
    buffer = io.BytesIO(payload.encode())
    del payload
    timer = _Timer()
    with connection.cursor() as cursor:
        # Hash joins over a brand's million tags fit in memory instead of spilling in 4 MB batches.
        cursor.execute("SET LOCAL work_mem = '256MB'")
        cursor.execute("DROP TABLE IF EXISTS pg_temp.member_tag_wanted")
        cursor.execute("CREATE TEMPORARY TABLE member_tag_wanted (member_id bigint NOT NULL, "
                       "tag_value_id bigint NOT NULL, reason_code text NOT NULL, reason_params jsonb NOT NULL, "
                       "evidence jsonb NOT NULL) ON COMMIT DROP")
        cursor.cursor.copy_expert("COPY member_tag_wanted FROM STDIN", buffer)
        cursor.execute("ANALYZE member_tag_wanted")
        timer.lap("copy_in")
        cursor.execute(f"DELETE FROM {table} m WHERE {owned} AND NOT EXISTS (SELECT 1 FROM member_tag_wanted w "  # noqa: S608
                       "WHERE w.member_id = m.member_id AND w.tag_value_id = m.tag_value_id)", params)
        deleted = cursor.rowcount
        timer.lap("delete")
        cursor.execute(f"UPDATE {table} m SET evidence = w.evidence, reason = '', reason_code = w.reason_code, "  # noqa: S608
                       "reason_params = w.reason_params FROM member_tag_wanted w "
                       f"WHERE w.member_id = m.member_id AND w.tag_value_id = m.tag_value_id AND {owned} "
                       "AND (m.evidence <> w.evidence OR m.reason_code <> w.reason_code "
                       "OR m.reason_params <> w.reason_params OR m.reason <> '')", params)
        updated = cursor.rowcount
        timer.lap("update")
        cursor.execute(f"INSERT INTO {table} (member_id, tag_value_id, source, assigned_at, reason, reason_code, "  # noqa: S608
                       "reason_params, evidence) SELECT w.member_id, w.tag_value_id, %s, %s, '', w.reason_code, "
                       "w.reason_params, w.evidence FROM member_tag_wanted w "
                       f"WHERE NOT EXISTS (SELECT 1 FROM {table} m WHERE m.member_id = w.member_id "
                       "AND m.tag_value_id = w.tag_value_id)", [TagSource.RULE.value, now])
        created = cursor.rowcount
        timer.lap("insert")
        cursor.execute("DROP TABLE member_tag_wanted")
        if created + deleted > 50_000:
            # Fresh statistics after a bulk change, or the next run's planner walks the tags value by value.
            cursor.execute(f"ANALYZE {table}")
            timer.lap("analyze")
    logger.info("tag recompute apply, brand %s: %s", brand.pk, timer)
    return created, updated, deleted


def _apply_orm(brand: Brand, member_ids: list[int] | None, wanted: pd.DataFrame,
               now: dt.datetime) -> tuple[int, int, int]:
    """The same diff through the ORM, for databases without COPY (SQLite in development and tests)."""
    owned = MemberTag.objects.filter(source=TagSource.RULE, tag_value__tag_group__brand=brand)
    if member_ids is not None:
        owned = owned.filter(member_id__in=member_ids)
    existing = pd.DataFrame.from_records(
        list(owned.values_list("pk", "member_id", "tag_value_id", "evidence", "reason", "reason_code",
                               "reason_params")),
        columns=["pk", "member_id", "tag_value_id", "old_evidence", "old_reason", "old_code", "old_params"]) \
        .astype({"pk": "int64", "member_id": "int64", "tag_value_id": "int64"})
    diff = wanted[["member_id", "tag_value_id", "evidence", "reason_code", "params"]].merge(
        existing, on=["member_id", "tag_value_id"], how="outer", indicator=True)
    to_create = diff[diff["_merge"] == "left_only"]
    to_delete = [int(pk) for pk in diff.loc[diff["_merge"] == "right_only", "pk"]]
    both = diff[diff["_merge"] == "both"]
    updates = []
    for pk, evidence, code, params, old_evidence, old_reason, old_code, old_params in \
            both[["pk", "evidence", "reason_code", "params", "old_evidence", "old_reason", "old_code",
                  "old_params"]].itertuples(index=False):
        evidence, params = json.loads(evidence), json.loads(params)
        if evidence != old_evidence or code != old_code or params != old_params or old_reason:
            updates.append(MemberTag(pk=int(pk), evidence=evidence, reason="", reason_code=code,
                                     reason_params=params))
    for start in range(0, len(to_delete), 20_000):
        MemberTag.objects.filter(pk__in=to_delete[start:start + 20_000]).delete()
    MemberTag.objects.bulk_update(updates, ["evidence", "reason", "reason_code", "reason_params"], batch_size=2000)
    MemberTag.objects.bulk_create(
        [MemberTag(member_id=int(m), tag_value_id=int(v), source=TagSource.RULE, assigned_at=now, reason="",
                   reason_code=c, reason_params=json.loads(p), evidence=json.loads(e))
         for m, v, c, p, e in to_create[["member_id", "tag_value_id", "reason_code", "params", "evidence"]]
         .itertuples(index=False)],
        batch_size=5000)
    return len(to_create), len(updates), len(to_delete)


def _lock(brand: Brand) -> None:
    # Recomputes of one brand (nightly run, per-member runs after orders) take turns: both diff then write.
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(%s, %s)", [_LOCK_CLASS, brand.pk])


def _recompute(brand: Brand, member_ids: list[int] | None, as_of: dt.datetime | None) -> TagRecomputeResult:
    as_of = as_of or timezone.now()
    timer = _Timer()
    _lock(brand)
    rules = [rule for rule in TagRule.objects.select_related("tag_group")
             .filter(brand=brand, is_active=True, tag_group__brand=brand).order_by("sort", "pk") if _runnable(rule)]
    lines = _load_lines(brand, member_ids) if rules else pd.DataFrame(columns=[*LINE_COLUMNS, "net", "qty"])
    timer.lap("load")
    results = []
    for position, rule in enumerate(rules):
        frame = _evaluate(rule, lines, brand, as_of)
        if not frame.empty:
            results.append(frame.assign(tag_group_id=rule.tag_group_id, position=position,
                                        multi=rule.tag_group.multi_valued))
    wanted = pd.concat(results, ignore_index=True) if results else \
        pd.DataFrame(columns=[*_RESULT_COLUMNS, "tag_group_id", "position", "multi", "tag_value_id"])
    wanted = wanted.astype({"member_id": "int64", "tag_group_id": "int64", "code": object})
    if not wanted.empty:
        multi = wanted["multi"].astype(bool)
        # Single-valued groups: the first rule (priority, then id) decides for each member.
        single = wanted[~multi].sort_values("position", kind="stable").drop_duplicates(["tag_group_id", "member_id"])
        wanted = _with_tag_value_ids(pd.concat([single, wanted[multi]]))
        wanted = wanted.sort_values("position", kind="stable").drop_duplicates(["member_id", "tag_value_id"])
        wanted = _without_held(wanted, member_ids)
    wanted = wanted.astype({"tag_value_id": "int64"})
    timer.lap("rules")
    apply = _apply_postgres if _has_copy() else _apply_orm
    created, updated, deleted = apply(brand, member_ids, wanted, as_of)
    timer.lap("apply")
    logger.info("tag recompute, brand %s, %s members: %s", brand.pk, "all" if member_ids is None else len(member_ids),
                timer)
    return TagRecomputeResult(created=created, updated=updated, deleted=deleted,
                              members=int(lines["member_id"].nunique()) if not lines.empty else 0,
                              rules=len(rules))


@transaction.atomic
def brand_tags_recompute(brand: Brand, *, as_of: dt.datetime | None = None) -> TagRecomputeResult:
    """Recompute every rule tag of ``brand`` for all its buyers (nightly); idempotent.

    Members who no longer qualify (refunds, a lookback window passing, a rule
    switched off) lose the rule tag; hand, import, RFML and behaviour tags stay.
    """
    return _recompute(brand, None, as_of)


@transaction.atomic
def member_tags_recompute(member: Member, brand: Brand, *, as_of: dt.datetime | None = None) -> TagRecomputeResult:
    """Recompute ``member``'s rule tags of ``brand`` (after an order or a refund); idempotent."""
    return _recompute(brand, [member.pk], as_of)
