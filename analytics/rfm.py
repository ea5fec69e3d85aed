"""RFML segmentation (DOMAIN.md "RFML segmentation", issue 5) and the consumption cycle, set-based.

One run for one brand as of a local date:

* The brand's purchases (``mall.selectors.purchases``: paid, net > 0) up to the
  end of ``as_of`` are streamed in ONE query as (member, local date, net) into
  numpy/pandas: ``COPY (SELECT …) TO STDOUT`` on PostgreSQL, a plain cursor on
  SQLite. A purchase's date is the local date (settings.TIME_ZONE) the order
  was placed (``ordered_at``), as in the sales facts and attribution.
* Members with a purchase in (as_of − window_days, as_of] are classified:
  R recent when recency_days < median, F high when frequency > median, M high
  when monetary > median (ordinary medians over those members; a value equal to
  the median is never recent/high). Members whose purchases all lie before the
  window are ``lapsed``: they keep their figures but get no class.
* The consumption cycle is computed in the same pass (see ``consumption_cycle``)
  and stored on the run and on each member row.
* Writes are bulk: the run, an upsert of every member's row (COPY into a temp
  table + INSERT … ON CONFLICT on PostgreSQL), class-change history only for
  members whose class or stage changed, deletion of rows of members who no
  longer have a purchase, and the class as a member tag in the brand's "RFML"
  tag group.

Money is handled in integer cents from the moment it is read, so every sum is
exact; medians are kept doubled (integers) so ties are compared exactly.
"""

from __future__ import annotations

import datetime as dt
import io
import json
import time
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal

import numpy as np
import pandas as pd
from django.db import connection, transaction
from django.db.models.functions import TruncDate
from django.utils import timezone

from analytics.models import LifecycleStage, MemberRfm, RfmClassChange, RfmRun, Segment, SegmentationSettings
from mall.models import Order
from mall.selectors import purchases
from members.models import MemberTag, TagGroup, TagSource, TagValue
from retail_crm.locks import job_lock
from retail_crm.models import Brand

EPOCH = dt.date(1970, 1, 1)
RFML_TAG_GROUP = "rfml"
SEGMENT_SLUGS = [s.value for s in Segment]
STAGES = [s.value for s in LifecycleStage]


def _day_number(day: dt.date) -> int:
    return (day - EPOCH).days


def _date(number) -> dt.date | None:
    if number is None or pd.isna(number):
        return None
    return EPOCH + dt.timedelta(days=int(number))


def segmentation_settings_for(brand: Brand) -> SegmentationSettings:
    """The brand's settings row, or an unsaved one holding the defaults."""
    return SegmentationSettings.objects.filter(brand=brand).first() or SegmentationSettings(brand=brand)


def local_today() -> dt.date:
    return timezone.localdate(timezone.now(), timezone=timezone.get_default_timezone())


# ---------------------------------------------------------------------------- reading purchases

@dataclass(frozen=True)
class PurchaseArrays:
    """A brand's purchases up to as_of: member id, local day number (days since 1970-01-01), net in cents."""

    member_id: np.ndarray
    day: np.ndarray
    cents: np.ndarray


def _purchase_query(brand: Brand, as_of: dt.date):
    tz = timezone.get_default_timezone()
    end = dt.datetime.combine(as_of + dt.timedelta(days=1), dt.time.min, tzinfo=tz)
    orders = Order.objects.filter(brand_id=brand.pk, member__isnull=False, ordered_at__lt=end)
    qs = purchases(orders).annotate(day=TruncDate("ordered_at", tzinfo=tz)).values_list("member_id", "day", "net")
    return qs.order_by().query.sql_with_params()


def load_purchases(*, brand: Brand, as_of: dt.date) -> PurchaseArrays:
    """Stream (member, local date, net) of the brand's purchases up to the end of as_of in one query."""
    sql, params = _purchase_query(brand, as_of)
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            raw = cursor.cursor
            literal = raw.mogrify(sql, params).decode()
            buffer = io.BytesIO()
            raw.copy_expert(f"COPY ({literal}) TO STDOUT WITH (FORMAT csv)", buffer)
            buffer.seek(0)
            frame = pd.read_csv(buffer, header=None, names=["member_id", "day", "net"],
                                dtype={"member_id": "int64", "day": "string", "net": "float64"}, engine="c")
            del buffer
            days = pd.to_datetime(frame["day"], format="%Y-%m-%d").to_numpy().astype("datetime64[D]")
        else:
            cursor.execute(sql, params)
            rows = cursor.fetchall()
            frame = pd.DataFrame(rows, columns=["member_id", "day", "net"])
            days = pd.to_datetime(frame["day"].astype(str), format="%Y-%m-%d").to_numpy().astype("datetime64[D]")
    # Every net amount has two decimals, so rounding net × 100 recovers the exact cents.
    cents = np.rint(frame["net"].to_numpy(dtype="float64") * 100).astype("int64")
    return PurchaseArrays(member_id=frame["member_id"].to_numpy(dtype="int64"),
                          day=days.astype("int64"), cents=cents)


# ---------------------------------------------------------------------------- the computation

def twice_median(values: np.ndarray) -> int:
    """Twice the ordinary median (mean of the two middle values for an even count), exact in integers."""
    ordered = np.sort(values)
    n = len(ordered)
    return int(ordered[(n - 1) // 2]) + int(ordered[n // 2])


def _half(twice: int, places: str = "0.01") -> Decimal:
    return (Decimal(twice) / 2).quantize(Decimal(places), rounding=ROUND_HALF_UP)


def classify(*, recent: np.ndarray, f_high: np.ndarray, m_high: np.ndarray) -> np.ndarray:
    """The eight classes of DOMAIN.md's table from the three high/low judgements."""
    prefix = np.where(m_high, "important_", "general_")
    suffix = np.select([recent & f_high, recent & ~f_high, ~recent & f_high], ["value", "develop", "retain"],
                       default="winback")
    return np.char.add(prefix.astype("U10"), suffix.astype("U7")).astype(object)


@dataclass(frozen=True)
class CycleResult:
    """Per-member own cycles (median days between consecutive purchase dates) and the brand's cycle."""

    member_cycles: pd.Series  # index: member id, value: float days (multiples of 0.5)
    brand_cycle: Decimal | None  # median of member_cycles, None when no member bought on two dates


def consumption_cycle(arrays: PurchaseArrays) -> CycleResult:
    """The consumption cycle (消费周期) from every purchase up to as_of.

    Gaps are taken between a member's consecutive *distinct* purchase dates:
    two orders on one day are one shopping trip, not a zero-day cycle. So a
    member counts when they bought on at least two different dates.
    """
    if len(arrays.member_id) == 0:
        return CycleResult(member_cycles=pd.Series(dtype="float64"), brand_cycle=None)
    order = np.lexsort((arrays.day, arrays.member_id))
    members, days = arrays.member_id[order], arrays.day[order]
    distinct = np.ones(len(members), dtype=bool)
    distinct[1:] = (members[1:] != members[:-1]) | (days[1:] != days[:-1])
    members, days = members[distinct], days[distinct]
    same = members[1:] == members[:-1]
    gaps = (days[1:] - days[:-1])[same]
    if len(gaps) == 0:
        return CycleResult(member_cycles=pd.Series(dtype="float64"), brand_cycle=None)
    member_cycles = pd.Series(gaps, dtype="float64").groupby(members[1:][same], sort=False).median()
    # Member cycles are multiples of 0.5, so twice them is an exact integer and so is the brand's doubled median.
    brand = twice_median(np.rint(member_cycles.to_numpy() * 2).astype("int64"))
    return CycleResult(member_cycles=member_cycles, brand_cycle=(Decimal(brand) / 4).quantize(Decimal("0.01")))


@dataclass(frozen=True)
class RfmComputation:
    """What one run computes, before anything is written."""

    members: pd.DataFrame  # one row per member with a purchase ever (up to as_of), index member_id
    twice_median_recency: int | None
    twice_median_frequency: int | None
    twice_median_cents: int | None
    brand_cycle: Decimal | None
    cycle_used: int | None  # whole days used for next_expected_on (override or rounded measured cycle)


def rfm_compute(*, arrays: PurchaseArrays, as_of: dt.date, window_days: int, mature_after_days: int,
                cycle_override: int | None = None) -> RfmComputation:
    """Vectorised RFML over one brand's purchases; see the module docstring for the rules."""
    as_of_n = _day_number(as_of)
    frame = pd.DataFrame({"member_id": arrays.member_id, "day": arrays.day, "cents": arrays.cents})
    ever = frame.groupby("member_id", sort=True).agg(first_day=("day", "min"), last_day=("day", "max"),
                                                     purchases_total=("day", "size"))
    window = frame[frame["day"] > as_of_n - window_days]
    inwin = window.groupby("member_id", sort=False).agg(frequency=("day", "size"), cents=("cents", "sum"))
    del frame, window
    out = ever.join(inwin, how="left")
    classified = out["frequency"].notna().to_numpy()
    out["frequency"] = out["frequency"].fillna(0).astype("int64")
    out["cents"] = out["cents"].fillna(0).astype("int64")
    out["lifetime_days"] = (out["last_day"] - out["first_day"]).astype("int64")
    recency = (as_of_n - out["last_day"]).astype("int64").to_numpy()
    out["recency_days"] = pd.array(np.where(classified, recency, 0), dtype="Int64")
    out.loc[~classified, "recency_days"] = pd.NA

    mature = (out["purchases_total"] >= 2) & (out["lifetime_days"] >= mature_after_days)
    stage = np.select([~classified, out["purchases_total"].to_numpy() == 1, mature.to_numpy()],
                      ["lapsed", "new", "mature"], default="growing")
    out["lifecycle_stage"] = stage.astype(object)

    segment = np.full(len(out), "", dtype=object)
    tm_r = tm_f = tm_m = None
    if classified.any():
        r = recency[classified]
        f = out["frequency"].to_numpy()[classified]
        m = out["cents"].to_numpy()[classified]
        tm_r, tm_f, tm_m = twice_median(r), twice_median(f), twice_median(m)
        # Doubled values against doubled medians: a value equal to the median is neither recent nor high.
        segment[classified] = classify(recent=2 * r < tm_r, f_high=2 * f > tm_f, m_high=2 * m > tm_m)
    out["segment"] = segment

    cycles = consumption_cycle(arrays)
    out["cycle_days"] = cycles.member_cycles.reindex(out.index)
    cycle_used = cycle_override
    if cycle_used is None and cycles.brand_cycle is not None:
        cycle_used = int(cycles.brand_cycle.quantize(Decimal("1"), rounding=ROUND_HALF_UP))
    if cycle_used:
        out["next_expected_day"] = pd.array(out["last_day"].to_numpy() + cycle_used, dtype="Int64")
    else:
        out["next_expected_day"] = pd.array([pd.NA] * len(out), dtype="Int64")
    return RfmComputation(members=out, twice_median_recency=tm_r, twice_median_frequency=tm_f,
                          twice_median_cents=tm_m, brand_cycle=cycles.brand_cycle, cycle_used=cycle_used)


# ---------------------------------------------------------------------------- writing

_MEMBER_COLUMNS = ["member_id", "recency_days", "frequency", "cents", "lifetime_days", "purchases_total",
                   "first_day", "last_day", "segment", "lifecycle_stage", "cycle_days", "next_expected_day"]


def _previous_state(brand: Brand) -> pd.DataFrame:
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT member_id, segment, lifecycle_stage FROM {MemberRfm._meta.db_table} "  # noqa: S608
                       "WHERE brand_id = %s", [brand.pk])
        rows = cursor.fetchall()
    return pd.DataFrame(rows, columns=["member_id", "segment", "lifecycle_stage"]).set_index("member_id")


def _csv(frame: pd.DataFrame) -> io.StringIO:
    buffer = io.StringIO()
    frame.to_csv(buffer, header=False, index=False, na_rep="")
    buffer.seek(0)
    return buffer


def _upsert_members_pg(brand: Brand, run: RfmRun, members: pd.DataFrame) -> None:
    table = MemberRfm._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute(
            "CREATE TEMP TABLE rfm_stage (member_id bigint, recency_days integer, frequency integer, "
            "cents bigint, lifetime_days integer, purchases_total integer, first_day integer, last_day integer, "
            "segment varchar(20), lifecycle_stage varchar(10), cycle_days numeric(8,2), next_expected_day integer)"
            " ON COMMIT DROP")
        cursor.cursor.copy_expert("COPY rfm_stage FROM STDIN WITH (FORMAT csv)",
                                  _csv(members.reset_index()[_MEMBER_COLUMNS]))
        cursor.execute(
            f"INSERT INTO {table} (member_id, brand_id, run_id, recency_days, frequency, monetary, "  # noqa: S608
            "lifetime_days, purchases_total, first_purchase_on, last_purchase_on, segment, lifecycle_stage, "
            "cycle_days, next_expected_on, updated_at) "
            "SELECT member_id, %s, %s, recency_days, frequency, (cents::numeric / 100)::numeric(14,2), "
            "lifetime_days, purchases_total, DATE '1970-01-01' + first_day, DATE '1970-01-01' + last_day, "
            "COALESCE(segment, ''), lifecycle_stage, cycle_days, DATE '1970-01-01' + next_expected_day, now() "
            "FROM rfm_stage "
            "ON CONFLICT (member_id, brand_id) DO UPDATE SET run_id = EXCLUDED.run_id, "
            "recency_days = EXCLUDED.recency_days, frequency = EXCLUDED.frequency, monetary = EXCLUDED.monetary, "
            "lifetime_days = EXCLUDED.lifetime_days, purchases_total = EXCLUDED.purchases_total, "
            "first_purchase_on = EXCLUDED.first_purchase_on, last_purchase_on = EXCLUDED.last_purchase_on, "
            "segment = EXCLUDED.segment, lifecycle_stage = EXCLUDED.lifecycle_stage, "
            "cycle_days = EXCLUDED.cycle_days, next_expected_on = EXCLUDED.next_expected_on, "
            "updated_at = EXCLUDED.updated_at",
            [brand.pk, run.pk])
        cursor.execute("DROP TABLE rfm_stage")


def _upsert_members_orm(brand: Brand, run: RfmRun, members: pd.DataFrame) -> None:
    rows = []
    for rec in members.reset_index()[_MEMBER_COLUMNS].itertuples(index=False):
        rows.append(MemberRfm(
            member_id=int(rec.member_id), brand=brand, run=run,
            recency_days=None if pd.isna(rec.recency_days) else int(rec.recency_days),
            frequency=int(rec.frequency), monetary=Decimal(int(rec.cents)) / 100,
            lifetime_days=int(rec.lifetime_days), purchases_total=int(rec.purchases_total),
            first_purchase_on=_date(rec.first_day), last_purchase_on=_date(rec.last_day), segment=rec.segment,
            lifecycle_stage=rec.lifecycle_stage,
            cycle_days=None if pd.isna(rec.cycle_days) else Decimal(str(rec.cycle_days)).quantize(Decimal("0.01")),
            next_expected_on=_date(rec.next_expected_day)))
    MemberRfm.objects.bulk_create(
        rows, batch_size=2000, update_conflicts=True, unique_fields=["member", "brand"],
        update_fields=["run", "recency_days", "frequency", "monetary", "lifetime_days", "purchases_total",
                       "first_purchase_on", "last_purchase_on", "segment", "lifecycle_stage", "cycle_days",
                       "next_expected_on", "updated_at"])


def _write_changes(brand: Brand, run: RfmRun, previous: pd.DataFrame, members: pd.DataFrame) -> int:
    """History rows for members whose class or stage changed (first run: from ''; gone: to '')."""
    now = members[["segment", "lifecycle_stage"]]
    both = previous.merge(now, how="outer", left_index=True, right_index=True, suffixes=("_from", "_to")).fillna("")
    changed = both[(both["segment_from"] != both["segment_to"])
                   | (both["lifecycle_stage_from"] != both["lifecycle_stage_to"])]
    if changed.empty:
        return 0
    changed = changed.reset_index()
    if connection.vendor == "postgresql":
        out = pd.DataFrame({"member_id": changed["member_id"], "brand_id": brand.pk, "run_id": run.pk,
                            "from_segment": changed["segment_from"], "to_segment": changed["segment_to"],
                            "from_stage": changed["lifecycle_stage_from"], "to_stage": changed["lifecycle_stage_to"],
                            "changed_on": run.as_of.isoformat()})
        with connection.cursor() as cursor:
            cursor.cursor.copy_expert(
                f"COPY {RfmClassChange._meta.db_table} (member_id, brand_id, run_id, from_segment, to_segment, "
                "from_stage, to_stage, changed_on) FROM STDIN WITH (FORMAT csv, "
                "FORCE_NOT_NULL (from_segment, to_segment, from_stage, to_stage))", _csv(out))
    else:
        RfmClassChange.objects.bulk_create(
            [RfmClassChange(member_id=int(r.member_id), brand=brand, run=run, from_segment=r.segment_from,
                            to_segment=r.segment_to, from_stage=r.lifecycle_stage_from,
                            to_stage=r.lifecycle_stage_to, changed_on=run.as_of)
             for r in changed.itertuples(index=False)], batch_size=2000)
    return len(changed)


def rfml_tag_group(brand: Brand) -> TagGroup:
    """The brand's "RFML" tag group with one value per class slug (created on first use)."""
    group, _ = TagGroup.objects.get_or_create(group_id=brand.group_id, brand=brand, code=RFML_TAG_GROUP,
                                              defaults={"name": "RFML", "multi_valued": False})
    have = set(TagValue.objects.filter(tag_group=group).values_list("code", flat=True))
    TagValue.objects.bulk_create([TagValue(tag_group=group, code=s.value, name=str(s.label)[:60], sort=i)
                                  for i, s in enumerate(Segment) if s.value not in have])
    return group


def _write_tags(brand: Brand, run: RfmRun) -> None:
    """One rfml tag per classified member: stale ones (class changed, lapsed, gone) removed, new ones added."""
    group = rfml_tag_group(brand)
    tags, values, rfm = MemberTag._meta.db_table, TagValue._meta.db_table, MemberRfm._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute(
            f"DELETE FROM {tags} WHERE source = %s "  # noqa: S608
            f"AND tag_value_id IN (SELECT id FROM {values} WHERE tag_group_id = %s) "
            f"AND NOT EXISTS (SELECT 1 FROM {rfm} r JOIN {values} tv ON tv.code = r.segment "
            f"WHERE r.brand_id = %s AND tv.tag_group_id = %s AND r.member_id = {tags}.member_id "
            f"AND tv.id = {tags}.tag_value_id)",
            [TagSource.RFML.value, group.pk, brand.pk, group.pk])
        cursor.execute(
            f"INSERT INTO {tags} (member_id, tag_value_id, source, assigned_at, reason, evidence) "  # noqa: S608
            f"SELECT r.member_id, tv.id, %s, %s, %s, %s FROM {rfm} r "
            f"JOIN {values} tv ON tv.tag_group_id = %s AND tv.code = r.segment "
            f"WHERE r.brand_id = %s AND r.segment <> '' AND NOT EXISTS "
            f"(SELECT 1 FROM {tags} mt WHERE mt.member_id = r.member_id AND mt.tag_value_id = tv.id)",
            [TagSource.RFML.value, timezone.now(), f"RFML class as of {run.as_of.isoformat()}",
             json.dumps({"rfm_run": run.pk, "as_of": run.as_of.isoformat()}), group.pk, brand.pk])


@transaction.atomic
def rfm_recompute(*, brand: Brand, as_of: dt.date | None = None, window_days: int | None = None) -> RfmRun:
    """Recompute RFML classes, lifecycle stages and the consumption cycle of one brand; store the run.

    ``as_of`` defaults to the local today and ``window_days`` to the brand's
    setting. Safe to run twice: the member rows, tags and the absence of
    history rows for unchanged members make a second run a no-op apart from a
    new RfmRun row.
    """
    started = time.monotonic()
    started_at = timezone.now()
    config = segmentation_settings_for(brand)
    as_of = as_of or local_today()
    window_days = window_days or config.window_days
    if window_days <= 0:
        raise ValueError("window_days must be positive")
    # One run per brand at a time, so the previous-state snapshot and the upsert cannot interleave.
    job_lock(f"analytics.rfm.{brand.pk}")
    arrays = load_purchases(brand=brand, as_of=as_of)
    result = rfm_compute(arrays=arrays, as_of=as_of, window_days=window_days,
                         mature_after_days=config.mature_after_days, cycle_override=config.cycle_days)
    del arrays
    members = result.members
    classified = members[members["segment"] != ""]
    counts = {slug: 0 for slug in SEGMENT_SLUGS}
    counts.update({k: int(v) for k, v in classified["segment"].value_counts().items()})
    stage_counts = {stage: 0 for stage in STAGES}
    stage_counts.update({k: int(v) for k, v in members["lifecycle_stage"].value_counts().items()})
    run = RfmRun.objects.create(
        brand=brand, as_of=as_of, window_days=window_days,
        median_recency_days=None if result.twice_median_recency is None else _half(result.twice_median_recency),
        median_frequency=None if result.twice_median_frequency is None else _half(result.twice_median_frequency),
        # Cents → yuan; a median between two cents shows rounded half up (comparisons used the exact value).
        median_monetary=None if result.twice_median_cents is None
        else (Decimal(result.twice_median_cents) / 200).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP),
        members=len(classified), lapsed=stage_counts["lapsed"], counts=counts, stage_counts=stage_counts,
        cycle_days=(Decimal(result.cycle_used) if config.cycle_days else result.brand_cycle),
        started_at=started_at)
    previous = _previous_state(brand)
    if connection.vendor == "postgresql":
        _upsert_members_pg(brand, run, members)
    else:
        _upsert_members_orm(brand, run, members)
    # Every member with a purchase now carries this run; the rest no longer have any purchase.
    MemberRfm.objects.filter(brand=brand).exclude(run=run).delete()
    MemberRfm.objects.filter(brand=brand, run__isnull=True).delete()
    _write_changes(brand, run, previous, members)
    _write_tags(brand, run)
    run.duration_ms = int((time.monotonic() - started) * 1000)
    run.save(update_fields=["duration_ms"])
    return run


def rfm_member_merge(*, survivor, absorbed) -> dict[str, int]:
    """Merge hook: history and care items follow the survivor; the absorbed member's current rows go.

    The survivor's figures are recomputed by the next run (the orders have moved to it).
    """
    from analytics.models import CareItem

    moved = RfmClassChange.objects.filter(member=absorbed).update(member=survivor)
    MemberRfm.objects.filter(member=absorbed).delete()
    clash = CareItem.objects.filter(member=survivor).values_list("day", "guide_id", "brand_id")
    taken = set(clash)
    items = list(CareItem.objects.filter(member=absorbed))
    keep = [i.pk for i in items if (i.day, i.guide_id, i.brand_id) not in taken]
    CareItem.objects.filter(member=absorbed).exclude(pk__in=keep).delete()
    care = CareItem.objects.filter(pk__in=keep).update(member=survivor)
    return {"rfm_changes": moved, "care_items": care}
