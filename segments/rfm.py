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
* The consumption cycle is computed in the same pass (see ``_own_cycles``)
  and stored on the run and on each member row.
* Writes are bulk: the run, an upsert of every member's row (binary COPY into
  a temp table, then one UPDATE … FROM and one anti-join INSERT on PostgreSQL;
  bulk_create(update_conflicts=True) on SQLite), class-change history only for
  members whose class or stage changed, deletion of rows of members who no
  longer have a purchase, and the class as a member tag in the brand's "RFML"
  tag group.
* ``MemberRfm.run`` is the run that last set the member's class or stage (the
  run of its latest RfmClassChange), not merely the latest run: rows whose
  class did not move keep their run id, so the nightly rewrite of a million
  rows changes no indexed or foreign-key column for most of them (cheaper
  updates, no foreign-key re-checks). The brand's current rows are always
  those of its latest run.

Same-day updates (``member_rfm_update``, after a payment or a refund) run one member's purchases through
the same ``rfm_compute`` and the same writer (``_write_orm``), judged against the brand's latest run
(``rfm_thresholds_of``: its medians, the monetary one kept exactly in half cents, its window and cycle);
their class changes are filed under that run, dated the day of the update. The nightly run stays the full
recompute.

Money is handled in integer cents from the moment it is read, so every sum is
exact; medians are kept doubled (integers) so ties are compared exactly.
"""

from __future__ import annotations

import datetime as dt
import io
import json
import logging
import time
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal

import numpy as np
import pandas as pd
from django.db import connection, transaction
from django.db.models import OuterRef, Subquery
from django.db.models.functions import TruncDate
from django.utils import timezone

from mall.models import Order
from mall.selectors import purchases
from members.models import Member, MemberTag, TagGroup, TagSource, TagValue
from members.tag_labels import TagReason
from retail_crm import events
from retail_crm.locks import job_lock, job_lock_shared
from retail_crm.models import Brand
from segments.models import (
    CareItem,
    LifecycleStage,
    MemberRfm,
    RfmClassChange,
    RfmRun,
    Segment,
    SegmentationSettings,
)

logger = logging.getLogger(__name__)

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


def _purchase_query(brand: Brand, as_of: dt.date, member_id: int | None = None):
    tz = timezone.get_default_timezone()
    end = dt.datetime.combine(as_of + dt.timedelta(days=1), dt.time.min, tzinfo=tz)
    orders = Order.objects.filter(brand_id=brand.pk, member__isnull=False, ordered_at__lt=end)
    if member_id is not None:
        orders = orders.filter(member_id=member_id)
    qs = purchases(orders).annotate(day=TruncDate("ordered_at", tzinfo=tz)).values_list("member_id", "day", "net")
    return qs.order_by().query.sql_with_params()


def load_purchases(*, brand: Brand, as_of: dt.date, member_id: int | None = None) -> PurchaseArrays:
    """Stream (member, local date, net) of the brand's purchases up to the end of as_of in one query
    (only one member's with ``member_id``: the same-day update)."""
    sql, params = _purchase_query(brand, as_of, member_id)
    with connection.cursor() as cursor:
        # One member's handful of rows (the same-day update) is read plainly; COPY pays off for a brand.
        if connection.vendor == "postgresql" and member_id is None:
            raw = cursor.cursor
            literal = raw.mogrify(sql, params).decode()
            buffer = io.BytesIO()
            # Dates leave the database as day numbers and net amounts as exact integer cents (numeric × 100):
            # integers are cheaper to print and to parse than dates and decimals.
            raw.copy_expert(f"COPY (SELECT q.member_id, q.day - DATE '1970-01-01', (q.net * 100)::bigint "  # noqa: S608
                            f"FROM ({literal}) AS q) TO STDOUT WITH (FORMAT csv)", buffer)
            buffer.seek(0)
            frame = pd.read_csv(buffer, header=None, names=["member_id", "day", "cents"], dtype="int64",
                                engine="c")
            del buffer
            cents = frame["cents"].to_numpy("int64")
            days = frame["day"].to_numpy("int64").astype("datetime64[D]")
        else:
            cursor.execute(sql, params)
            frame = pd.DataFrame(cursor.fetchall(), columns=["member_id", "day", "net"])
            days = pd.to_datetime(frame["day"].astype(str), format="%Y-%m-%d").to_numpy().astype("datetime64[D]")
            # SQLite hands back floats (PostgreSQL Decimals); every net amount has two decimals, so rounding × 100
            # gives exact cents.
            cents = np.rint(frame["net"].to_numpy(dtype="float64") * 100).astype("int64")
    return PurchaseArrays(member_id=frame["member_id"].to_numpy(dtype="int64"), day=days.astype("int64"),
                          cents=cents)


# ---------------------------------------------------------------------------- the computation

# Classes and stages travel as small integer codes through numpy and COPY; code 0 is "none".
SEGMENT_CODES = ["", *SEGMENT_SLUGS]
STAGE_CODES = ["", LifecycleStage.NEW.value, LifecycleStage.GROWING.value, LifecycleStage.MATURE.value,
               LifecycleStage.LAPSED.value]
NEW, GROWING, MATURE, LAPSED = 1, 2, 3, 4


def twice_median(values: np.ndarray) -> int:
    """Twice the ordinary median (mean of the two middle values for an even count), exact in integers."""
    ordered = np.sort(values)
    n = len(ordered)
    return int(ordered[(n - 1) // 2]) + int(ordered[n // 2])


def whole_days(cycle: Decimal) -> int:
    """A cycle in whole days (half up), as next_expected_on and the care calendar use it."""
    return int(cycle.quantize(Decimal("1"), rounding=ROUND_HALF_UP))


def _half(twice: int, places: str = "0.01") -> Decimal:
    return (Decimal(twice) / 2).quantize(Decimal(places), rounding=ROUND_HALF_UP)


def classify(*, recent: np.ndarray, f_high: np.ndarray, m_high: np.ndarray) -> np.ndarray:
    """Segment codes (index into SEGMENT_CODES) of DOMAIN.md's table from the three high/low judgements.

    Slugs are ordered important_{value, develop, retain, winback}, general_{…}: M picks the half,
    then R and F pick value (R, F), develop (R, not F), retain (not R, F) or win-back (neither).
    """
    return (1 + 4 * (~m_high) + 2 * (~recent) + (~f_high)).astype("int8")


@dataclass(frozen=True)
class MemberFigures:
    """One entry per member with a purchase ever (up to as_of), sorted by member id; -1 means none."""

    member_id: np.ndarray
    recency_days: np.ndarray  # -1: lapsed
    frequency: np.ndarray
    cents: np.ndarray
    lifetime_days: np.ndarray
    purchases_total: np.ndarray
    first_day: np.ndarray
    last_day: np.ndarray
    segment: np.ndarray  # code into SEGMENT_CODES
    stage: np.ndarray  # code into STAGE_CODES
    cycle2: np.ndarray  # twice the member's own cycle in days; -1: fewer than two purchase dates
    next_day: np.ndarray  # next expected purchase (day number); -1: no brand cycle

    def __len__(self) -> int:
        return len(self.member_id)

    def frame(self) -> pd.DataFrame:
        """The figures as a readable frame (slugs, dates, Decimal-free), indexed by member id."""
        out = pd.DataFrame({name: getattr(self, name) for name in self.__dataclass_fields__}).set_index("member_id")
        out["segment"] = np.array(SEGMENT_CODES, dtype=object)[self.segment]
        out["lifecycle_stage"] = np.array(STAGE_CODES, dtype=object)[self.stage]
        return out.drop(columns=["stage"])


@dataclass(frozen=True)
class RfmThresholds:
    """What a member's figures are judged against: the medians (doubled, exact) and the cycle in whole days.

    A run measures them over the brand's members; the same-day update reuses the last run's
    (``rfm_thresholds_of``).
    """

    twice_median_recency: int
    twice_median_frequency: int
    twice_median_cents: int
    cycle_used: int | None  # whole days used for next_expected_on (override, else rounded brand cycle)


@dataclass(frozen=True)
class RfmComputation:
    """What one run computes, before anything is written."""

    members: MemberFigures
    twice_median_recency: int | None
    twice_median_frequency: int | None
    twice_median_cents: int | None
    brand_cycle: Decimal | None  # median of the members' own cycles; None when nobody bought on two dates
    cycle_used: int | None  # whole days used for next_expected_on (override, else rounded brand cycle)


def _group_bounds(keys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Start and end (exclusive) of each run of equal values in a sorted array."""
    if len(keys) == 0:
        return np.zeros(0, dtype="int64"), np.zeros(0, dtype="int64")
    starts = np.flatnonzero(np.r_[True, keys[1:] != keys[:-1]])
    return starts, np.r_[starts[1:], len(keys)]


def _own_cycles(members: np.ndarray, days: np.ndarray, ids: np.ndarray) -> np.ndarray:
    """Twice each member's median gap between consecutive distinct purchase dates (-1 with fewer than two).

    ``members``/``days`` are sorted by member, then day. Two orders on one day are one shopping trip, not a
    zero-day cycle, so a member counts once they bought on two different dates.
    """
    cycle2 = np.full(len(ids), -1, dtype="int64")
    distinct = np.r_[True, (members[1:] != members[:-1]) | (days[1:] != days[:-1])] if len(members) else \
        np.zeros(0, dtype=bool)
    members, days = members[distinct], days[distinct]
    same = members[1:] == members[:-1]
    gaps = (days[1:] - days[:-1])[same]
    if len(gaps) == 0:
        return cycle2
    owners = members[1:][same]
    # Sort each member's gaps in one pass: owners are already ascending, gaps < 2**24 days.
    keyed = np.sort((owners << 24) | gaps)
    owners, gaps = keyed >> 24, keyed & ((1 << 24) - 1)
    starts, ends = _group_bounds(owners)
    counts = ends - starts
    twice = gaps[starts + (counts - 1) // 2] + gaps[starts + counts // 2]
    cycle2[np.searchsorted(ids, owners[starts])] = twice
    return cycle2


def rfm_compute(*, arrays: PurchaseArrays, as_of: dt.date, window_days: int, mature_after_days: int,
                cycle_override: int | None = None, thresholds: RfmThresholds | None = None) -> RfmComputation:
    """Vectorised RFML and consumption cycle over one brand's purchases (one sort, then group reductions).

    The medians and the cycle are measured over ``arrays`` unless ``thresholds`` are given: then every
    member is judged against those (the same-day update of one member against the last run's).
    """
    as_of_n = _day_number(as_of)
    # One sort by (member, day) through a single int64 key: member ids < 2**40, day numbers < 2**23.
    order = np.argsort((arrays.member_id << 23) | (arrays.day + (1 << 22)))
    members, days, cents = arrays.member_id[order], arrays.day[order], arrays.cents[order]
    del order
    starts, ends = _group_bounds(members)
    ids = members[starts]
    first_day, last_day = days[starts], days[ends - 1] if len(ends) else days[:0]
    purchases_total = ends - starts
    in_window = days > as_of_n - window_days
    frequency = np.add.reduceat(in_window.astype("int64"), starts) if len(ids) else starts
    monetary = np.add.reduceat(np.where(in_window, cents, 0), starts) if len(ids) else starts
    classified = frequency > 0
    # Purchases after as_of were never read, so the last purchase ever is the last one in the window.
    recency = np.where(classified, as_of_n - last_day, -1)
    lifetime = last_day - first_day
    stage = np.select([~classified, purchases_total == 1, lifetime >= mature_after_days],
                      [LAPSED, NEW, MATURE], default=GROWING).astype("int8")

    segment = np.zeros(len(ids), dtype="int8")
    tm_r = tm_f = tm_m = None
    if thresholds is not None:
        tm_r, tm_f = thresholds.twice_median_recency, thresholds.twice_median_frequency
        tm_m = thresholds.twice_median_cents
    if classified.any():
        r, f, m = recency[classified], frequency[classified], monetary[classified]
        if thresholds is None:
            tm_r, tm_f, tm_m = twice_median(r), twice_median(f), twice_median(m)
        # Doubled values against doubled medians: a value equal to the median is neither recent nor high.
        segment[classified] = classify(recent=2 * r < tm_r, f_high=2 * f > tm_f, m_high=2 * m > tm_m)

    cycle2 = _own_cycles(members, days, ids)
    measured = cycle2[cycle2 >= 0]
    # Own cycles are multiples of 0.5 days, so the brand's median is a multiple of 0.25: exact as twice/4.
    brand_cycle = (Decimal(twice_median(measured)) / 4).quantize(Decimal("0.01")) if len(measured) else None
    if thresholds is not None:
        cycle_used = thresholds.cycle_used
    else:
        cycle_used = cycle_override
        if cycle_used is None and brand_cycle is not None:
            cycle_used = whole_days(brand_cycle)
    next_day = last_day + cycle_used if cycle_used else np.full(len(ids), -1, dtype="int64")
    figures = MemberFigures(member_id=ids, recency_days=recency, frequency=frequency, cents=monetary,
                            lifetime_days=lifetime, purchases_total=purchases_total, first_day=first_day,
                            last_day=last_day, segment=segment, stage=stage, cycle2=cycle2, next_day=next_day)
    return RfmComputation(members=figures, twice_median_recency=tm_r, twice_median_frequency=tm_f,
                          twice_median_cents=tm_m, brand_cycle=brand_cycle, cycle_used=cycle_used)


# ---------------------------------------------------------------------------- writing

_PG_HEADER = b"PGCOPY\n\xff\r\n\x00" + (0).to_bytes(4, "big") + (0).to_bytes(4, "big")


def _copy_binary(cursor, table: str, columns: list[tuple[str, np.ndarray, str]]) -> None:
    """COPY integer columns into ``table`` in PostgreSQL's binary format, built in one numpy pass.

    ``columns``: (name, values, "i4" | "i8"). Every row has the same width (no NULLs: -1 stands for
    none and the SQL reading the table turns it into NULL), so the whole payload is one structured array.
    """
    n = len(columns[0][1])
    layout = [("fields", ">i2")]
    for name, _values, kind in columns:
        layout += [(f"{name}_len", ">i4"), (name, ">" + kind)]
    rows = np.empty(n, dtype=np.dtype(layout))
    rows["fields"] = len(columns)
    for name, values, kind in columns:
        rows[f"{name}_len"] = int(kind[1])
        rows[name] = values
    payload = io.BytesIO()
    payload.write(_PG_HEADER)
    payload.write(rows.tobytes())
    payload.write((-1).to_bytes(2, "big", signed=True))
    payload.seek(0)
    cursor.cursor.copy_expert(f"COPY {table} ({', '.join(c[0] for c in columns)}) FROM STDIN WITH (FORMAT binary)",
                              payload)


def _codes_sql(column: str, codes: list[str]) -> str:
    """SQL turning a code column back into its string (code 0 → '')."""
    return "(ARRAY[" + ", ".join(f"'{c}'" for c in codes) + f"])[{column} + 1]"


def _previous_state(brand: Brand, member_id: int | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(member ids ascending, segment codes, stage codes) of the brand's current rows, before this run
    (only one member's row with ``member_id``: the same-day update)."""
    table = MemberRfm._meta.db_table
    with connection.cursor() as cursor:
        if member_id is not None:
            cursor.execute(f"SELECT member_id, segment, lifecycle_stage FROM {table} "  # noqa: S608
                           "WHERE brand_id = %s AND member_id = %s", [brand.pk, member_id])
            frame = _state_frame(cursor.fetchall())
        elif connection.vendor == "postgresql":
            buffer = io.BytesIO()
            segments = ", ".join(f"'{c}'" for c in SEGMENT_CODES)
            stages = ", ".join(f"'{c}'" for c in STAGE_CODES)
            cursor.cursor.copy_expert(
                f"COPY (SELECT member_id, array_position(ARRAY[{segments}]::text[], segment::text) - 1, "  # noqa: S608
                f"array_position(ARRAY[{stages}]::text[], lifecycle_stage::text) - 1 FROM {table} "
                f"WHERE brand_id = {int(brand.pk)}) TO STDOUT WITH (FORMAT csv)", buffer)
            buffer.seek(0)
            frame = pd.read_csv(buffer, header=None, names=["member_id", "segment", "stage"], dtype="int64")
        else:
            cursor.execute(f"SELECT member_id, segment, lifecycle_stage FROM {table} WHERE brand_id = %s",  # noqa: S608
                           [brand.pk])
            frame = _state_frame(cursor.fetchall())
    frame = frame.fillna(0).sort_values("member_id")
    return (frame["member_id"].to_numpy("int64"), frame["segment"].to_numpy("int8"),
            frame["stage"].to_numpy("int8"))


def _state_frame(rows: list[tuple]) -> pd.DataFrame:
    """(member, segment slug, stage slug) rows as a frame of codes."""
    frame = pd.DataFrame(rows, columns=["member_id", "segment", "stage"])
    frame["segment"] = frame["segment"].map({c: i for i, c in enumerate(SEGMENT_CODES)})
    frame["stage"] = frame["stage"].map({c: i for i, c in enumerate(STAGE_CODES)})
    return frame


@dataclass(frozen=True)
class ClassChanges:
    """Members whose class or stage changed in this run (code 0 on the "to" side: the member is gone)."""

    member_id: np.ndarray
    from_segment: np.ndarray
    to_segment: np.ndarray
    from_stage: np.ndarray
    to_stage: np.ndarray


def class_changes(previous: tuple[np.ndarray, np.ndarray, np.ndarray], figures: MemberFigures) -> ClassChanges:
    prev_ids, prev_seg, prev_stage = previous
    ids = figures.member_id
    pos = np.searchsorted(prev_ids, ids)
    pos_ok = np.minimum(pos, max(len(prev_ids) - 1, 0))
    known = (pos < len(prev_ids)) & (prev_ids[pos_ok] == ids) if len(prev_ids) else np.zeros(len(ids), bool)
    from_seg = np.where(known, prev_seg[pos_ok] if len(prev_ids) else 0, 0).astype("int8")
    from_stage = np.where(known, prev_stage[pos_ok] if len(prev_ids) else 0, 0).astype("int8")
    changed = (from_seg != figures.segment) | (from_stage != figures.stage)
    gone = ~np.isin(prev_ids, ids, assume_unique=True)
    return ClassChanges(
        member_id=np.r_[ids[changed], prev_ids[gone]],
        from_segment=np.r_[from_seg[changed], prev_seg[gone]].astype("int8"),
        to_segment=np.r_[figures.segment[changed], np.zeros(gone.sum(), dtype="int8")],
        from_stage=np.r_[from_stage[changed], prev_stage[gone]].astype("int8"),
        to_stage=np.r_[figures.stage[changed], np.zeros(gone.sum(), dtype="int8")])


def _write_pg(brand: Brand, run: RfmRun, figures: MemberFigures, changes: ClassChanges, group: TagGroup) -> None:
    """Upsert member rows, drop rows of members without purchases, history and tags: COPY + set-based SQL."""
    rfm, history = MemberRfm._meta.db_table, RfmClassChange._meta.db_table
    tags, values = MemberTag._meta.db_table, TagValue._meta.db_table
    epoch = "DATE '1970-01-01'"
    with connection.cursor() as cursor:
        # Dropped here too (not only on commit): two runs can share one transaction (tests, run_jobs).
        cursor.execute("DROP TABLE IF EXISTS rfm_stage; DROP TABLE IF EXISTS rfm_change_stage")
        cursor.execute(
            "CREATE TEMP TABLE rfm_stage (member_id bigint, recency_days integer, frequency integer, "
            "cents bigint, lifetime_days integer, purchases_total integer, first_day integer, last_day integer, "
            "segment integer, stage integer, cycle2 integer, next_day integer) ON COMMIT DROP")
        f = figures
        _copy_binary(cursor, "rfm_stage", [
            ("member_id", f.member_id, "i8"), ("recency_days", f.recency_days, "i4"), ("frequency", f.frequency, "i4"),
            ("cents", f.cents, "i8"), ("lifetime_days", f.lifetime_days, "i4"),
            ("purchases_total", f.purchases_total, "i4"), ("first_day", f.first_day, "i4"),
            ("last_day", f.last_day, "i4"), ("segment", f.segment, "i4"), ("stage", f.stage, "i4"),
            ("cycle2", f.cycle2, "i4"), ("next_day", f.next_day, "i4")])
        cursor.execute("ANALYZE rfm_stage")
        # Existing rows are updated through one hash join and new members inserted through an anti-join:
        # much cheaper than a million speculative insertions of INSERT … ON CONFLICT.
        changed = (f"r.segment IS DISTINCT FROM {_codes_sql('s.segment', SEGMENT_CODES)} "
                   f"OR r.lifecycle_stage IS DISTINCT FROM {_codes_sql('s.stage', STAGE_CODES)}")
        assign = {
            "run_id": f"CASE WHEN {changed} THEN %(run)s ELSE r.run_id END",
            "recency_days": "NULLIF(s.recency_days, -1)", "frequency": "s.frequency",
            "monetary": "s.cents::numeric / 100", "lifetime_days": "s.lifetime_days",
            "purchases_total": "s.purchases_total", "first_purchase_on": f"{epoch} + s.first_day",
            "last_purchase_on": f"{epoch} + s.last_day", "segment": _codes_sql("s.segment", SEGMENT_CODES),
            "lifecycle_stage": _codes_sql("s.stage", STAGE_CODES), "cycle_days": "NULLIF(s.cycle2, -1)::numeric / 2",
            "next_expected_on": f"{epoch} + NULLIF(s.next_day, -1)", "updated_at": "now()"}
        cursor.execute(
            f"UPDATE {rfm} AS r SET {', '.join(f'{k} = {v}' for k, v in assign.items())} "  # noqa: S608
            "FROM rfm_stage AS s WHERE r.brand_id = %(brand)s AND r.member_id = s.member_id",
            {"brand": brand.pk, "run": run.pk})
        assign["run_id"] = "%(run)s"
        cursor.execute(
            f"INSERT INTO {rfm} (member_id, brand_id, {', '.join(assign)}) "  # noqa: S608
            f"SELECT s.member_id, %(brand)s, {', '.join(assign.values())} FROM rfm_stage AS s "
            f"WHERE NOT EXISTS (SELECT 1 FROM {rfm} AS r WHERE r.brand_id = %(brand)s AND r.member_id = s.member_id)",
            {"brand": brand.pk, "run": run.pk})
        cursor.execute(f"DELETE FROM {rfm} AS r WHERE r.brand_id = %s AND NOT EXISTS "  # noqa: S608
                       "(SELECT 1 FROM rfm_stage AS s WHERE s.member_id = r.member_id)", [brand.pk])
        if len(changes.member_id) == 0:
            return
        cursor.execute("CREATE TEMP TABLE rfm_change_stage (member_id bigint, from_segment integer, "
                       "to_segment integer, from_stage integer, to_stage integer) ON COMMIT DROP")
        c = changes
        _copy_binary(cursor, "rfm_change_stage", [
            ("member_id", c.member_id, "i8"), ("from_segment", c.from_segment, "i4"),
            ("to_segment", c.to_segment, "i4"), ("from_stage", c.from_stage, "i4"), ("to_stage", c.to_stage, "i4")])
        cursor.execute(
            f"INSERT INTO {history} (member_id, brand_id, run_id, from_segment, to_segment, from_stage, "  # noqa: S608
            "to_stage, changed_on) "
            f"SELECT member_id, %s, %s, {_codes_sql('from_segment', SEGMENT_CODES)}, "
            f"{_codes_sql('to_segment', SEGMENT_CODES)}, {_codes_sql('from_stage', STAGE_CODES)}, "
            f"{_codes_sql('to_stage', STAGE_CODES)}, %s FROM rfm_change_stage",
            [brand.pk, run.pk, run.as_of])
        # The rfml tag changes exactly when the class does: drop the old value, add the new one.
        cursor.execute(
            f"DELETE FROM {tags} t USING rfm_change_stage s, {values} v "  # noqa: S608
            "WHERE s.from_segment <> s.to_segment AND t.member_id = s.member_id AND t.tag_value_id = v.id "
            "AND v.tag_group_id = %s AND t.source = %s",
            [group.pk, TagSource.RFML.value])
        cursor.execute(
            f"INSERT INTO {tags} (member_id, tag_value_id, source, assigned_at, reason, reason_code, "  # noqa: S608
            f"reason_params, evidence) SELECT s.member_id, v.id, %s, %s, '', %s, %s, %s "
            f"FROM rfm_change_stage s JOIN {values} v "
            f"ON v.tag_group_id = %s AND v.code = {_codes_sql('s.to_segment', SEGMENT_CODES)} "
            "WHERE s.to_segment > 0 AND s.from_segment <> s.to_segment "
            "ON CONFLICT (member_id, tag_value_id) DO NOTHING",
            [TagSource.RFML.value, timezone.now(), TagReason.RFML_CLASS, _tag_params(run.as_of),
             _tag_evidence(run, run.as_of), group.pk])


def _tag_params(as_of: dt.date) -> str:
    # The reason is rendered in the viewer's language from this code and date (members.tag_labels).
    return json.dumps({"as_of": as_of.isoformat()})


def _tag_evidence(run: RfmRun, as_of: dt.date) -> str:
    return json.dumps({"rfm_run": run.pk, "as_of": as_of.isoformat()})


def _write_orm(brand: Brand, run: RfmRun, figures: MemberFigures, changes: ClassChanges, group: TagGroup,
               history: ClassChanges | None = None, as_of: dt.date | None = None) -> None:
    """The same writes through the ORM, for SQLite (development and the test suite) and for the same-day
    update of one member (on either database).

    ``history``: the class changes to store, when they differ from the ``changes`` the member rows and tags
    are written from (``rfm_backfill_monthly``'s last cut-off); by default ``changes``. ``as_of``: the day the
    figures are as of, when it is not the run's (the same-day update judged against the last run): the
    changes are dated and the tags reasoned with it.
    """
    as_of = as_of or run.as_of
    frame = figures.frame()
    rows = [MemberRfm(
        member_id=int(member_id), brand=brand, run=run,
        recency_days=None if rec.recency_days < 0 else int(rec.recency_days), frequency=int(rec.frequency),
        monetary=Decimal(int(rec.cents)) / 100, lifetime_days=int(rec.lifetime_days),
        purchases_total=int(rec.purchases_total), first_purchase_on=_date(rec.first_day),
        last_purchase_on=_date(rec.last_day), segment=rec.segment, lifecycle_stage=rec.lifecycle_stage,
        cycle_days=None if rec.cycle2 < 0 else (Decimal(int(rec.cycle2)) / 2).quantize(Decimal("0.01")),
        next_expected_on=None if rec.next_day < 0 else _date(rec.next_day))
        for member_id, rec in zip(frame.index, frame.itertuples(index=False), strict=True)]
    c = changes
    changed_ids = set(c.member_id[c.to_stage > 0].tolist())
    figures_fields = ["recency_days", "frequency", "monetary", "lifetime_days", "purchases_total",
                      "first_purchase_on", "last_purchase_on", "segment", "lifecycle_stage", "cycle_days",
                      "next_expected_on", "updated_at"]
    # As on PostgreSQL: ``run`` moves only for members whose class or stage changed (or who are new).
    for subset, fields in (([r for r in rows if r.member_id in changed_ids], ["run", *figures_fields]),
                           ([r for r in rows if r.member_id not in changed_ids], figures_fields)):
        MemberRfm.objects.bulk_create(subset, batch_size=2000, update_conflicts=True,
                                      unique_fields=["member", "brand"], update_fields=fields)
    gone = [int(m) for m in c.member_id[c.to_stage == 0]]
    for start in range(0, len(gone), 500):
        MemberRfm.objects.filter(brand=brand, member_id__in=gone[start:start + 500]).delete()
    _insert_changes(brand, run, c if history is None else history, changed_on=as_of)
    moved = c.from_segment != c.to_segment
    moved_ids = [int(m) for m in c.member_id[moved]]
    value_ids = dict(TagValue.objects.filter(tag_group=group).values_list("code", "pk"))
    for start in range(0, len(moved_ids), 500):
        MemberTag.objects.filter(member_id__in=moved_ids[start:start + 500], tag_value__tag_group=group,
                                 source=TagSource.RFML).delete()
    now = timezone.now()
    MemberTag.objects.bulk_create(
        [MemberTag(member_id=int(m), tag_value_id=value_ids[SEGMENT_CODES[code]], source=TagSource.RFML,
                   assigned_at=now, reason="", reason_code=TagReason.RFML_CLASS,
                   reason_params=json.loads(_tag_params(as_of)), evidence=json.loads(_tag_evidence(run, as_of)))
         for m, code in zip(c.member_id[moved], c.to_segment[moved], strict=True) if code > 0],
        batch_size=2000, ignore_conflicts=True)


def rfml_tag_group(brand: Brand) -> TagGroup:
    """The brand's "RFML" tag group with one value per class slug (created on first use)."""
    group, _ = TagGroup.objects.get_or_create(group_id=brand.group_id, brand=brand, code=RFML_TAG_GROUP,
                                              defaults={"name": "RFML", "multi_valued": False})
    have = set(TagValue.objects.filter(tag_group=group).values_list("code", flat=True))
    TagValue.objects.bulk_create([TagValue(tag_group=group, code=s.value, name=str(s.label)[:60], sort=i)
                                  for i, s in enumerate(Segment) if s.value not in have])
    return group


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
    # One run per brand at a time, so the previous-state snapshot and the upsert cannot interleave. (The lock
    # keeps the name it had in analytics, so workers on either side of a deploy still exclude each other.)
    job_lock(f"analytics.rfm.{brand.pk}")
    arrays = load_purchases(brand=brand, as_of=as_of)
    result = rfm_compute(arrays=arrays, as_of=as_of, window_days=window_days,
                         mature_after_days=config.mature_after_days, cycle_override=config.cycle_days)
    del arrays
    figures = result.members
    run = _run_create(brand=brand, as_of=as_of, window_days=window_days, config=config, result=result,
                      started_at=started_at)
    changes = class_changes(_previous_state(brand), figures)
    group = rfml_tag_group(brand)
    if connection.vendor == "postgresql":
        _write_pg(brand, run, figures, changes, group)
    else:
        _write_orm(brand, run, figures, changes, group)
    run.duration_ms = int((time.monotonic() - started) * 1000)
    run.save(update_fields=["duration_ms"])
    return run


def rfm_thresholds_of(run: RfmRun) -> RfmThresholds | None:
    """The medians and the cycle ``run`` judged its members against (None: it classified nobody)."""
    if run.median_recency_days is None or run.median_frequency is None or run.median_monetary is None:
        return None
    twice_cents = run.median_monetary_half_cents
    if twice_cents is None:
        # A run stored before the exact median was kept: its rounded median (exact unless between two cents).
        twice_cents = int(run.median_monetary * 200)
    # The stored recency and frequency medians are exact: halves of integers.
    return RfmThresholds(twice_median_recency=int(run.median_recency_days * 2),
                         twice_median_frequency=int(run.median_frequency * 2), twice_median_cents=twice_cents,
                         cycle_used=None if run.cycle_days is None else whole_days(run.cycle_days))


def rfm_latest_run(brand: Brand) -> RfmRun | None:
    """The brand's latest RFML run (the one its member rows, care calendar and same-day updates follow)."""
    return RfmRun.objects.filter(brand=brand).order_by("-started_at", "-pk").first()


@dataclass(frozen=True)
class MemberRfmUpdate:
    """What a same-day update did to one member's row ("" for no class, no stage: no row)."""

    run_id: int
    as_of: dt.date
    from_segment: str
    to_segment: str
    from_stage: str
    to_stage: str

    @property
    def changed(self) -> bool:
        return (self.from_segment, self.from_stage) != (self.to_segment, self.to_stage)


@transaction.atomic
def member_rfm_update(*, member_id: int, brand: Brand, as_of: dt.date | None = None) -> MemberRfmUpdate | None:
    """Same-day RFML of one member after a payment or refund: figures, class, lifecycle stage and care dates.

    The member's purchases are read as a run reads them and computed by the same ``rfm_compute``, judged
    against the brand's latest run: its medians, window and cycle (``rfm_thresholds_of``), as of ``as_of``
    (default the local today, never before the run's day). The row, a class change (dated ``as_of``, filed
    under that run) and the rfml tag are written by the run's own writer, so the member's row is what a
    full run with those thresholds gives for them; a class changed records ``rfml_class_changed``. Running it
    twice changes nothing more. Without a run
    (or a run that classified nobody) there is nothing to judge against: returns None and writes nothing.
    The nightly run stays the full recompute (new medians, every member's recency).
    """
    # Shared: updates of different members run side by side; a brand's full run waits for them and they for it.
    job_lock_shared(f"analytics.rfm.{brand.pk}")
    run = rfm_latest_run(brand)
    thresholds = None if run is None else rfm_thresholds_of(run)
    if thresholds is None:
        logger.info("same-day RFML of member %s skipped: brand %s has no RFML run with classes yet",
                    member_id, brand.code)
        return None
    # One update of a member at a time, so two deliveries cannot both file the same change.
    Member.objects.select_for_update(no_key=True).filter(pk=member_id).values_list("pk").first()
    as_of = max(as_of or local_today(), run.as_of)
    config = segmentation_settings_for(brand)
    arrays = load_purchases(brand=brand, as_of=as_of, member_id=member_id)
    figures = rfm_compute(arrays=arrays, as_of=as_of, window_days=run.window_days,
                          mature_after_days=config.mature_after_days, thresholds=thresholds).members
    previous = _previous_state(brand, member_id)
    changes = class_changes(previous, figures)
    _write_orm(brand, run, figures, changes, rfml_tag_group(brand), as_of=as_of)
    before = (SEGMENT_CODES[int(previous[1][0])], STAGE_CODES[int(previous[2][0])]) if len(previous[0]) else ("", "")
    after = (SEGMENT_CODES[int(figures.segment[0])], STAGE_CODES[int(figures.stage[0])]) if len(figures) else ("", "")
    if before[0] != after[0]:
        # Apps above react within seconds (a journey on a class entered); the nightly run records no event (it
        # moves too many members at once): their scans read its class changes instead.
        events.record("rfml_class_changed", member_id=member_id, brand_id=brand.pk, from_segment=before[0],
                      to_segment=after[0], on=as_of.isoformat())
    return MemberRfmUpdate(run_id=run.pk, as_of=as_of, from_segment=before[0], to_segment=after[0],
                           from_stage=before[1], to_stage=after[1])


def _run_create(*, brand: Brand, as_of: dt.date, window_days: int, config: SegmentationSettings,
                result: RfmComputation, started_at: dt.datetime) -> RfmRun:
    """The run row: medians, class and stage counts and the cycle of ``result``."""
    figures = result.members
    seg_counts = np.bincount(figures.segment, minlength=len(SEGMENT_CODES))
    stage_counts_arr = np.bincount(figures.stage, minlength=len(STAGE_CODES))
    counts = {slug: int(seg_counts[i + 1]) for i, slug in enumerate(SEGMENT_SLUGS)}
    stage_counts = {STAGE_CODES[i]: int(stage_counts_arr[i]) for i in range(1, len(STAGE_CODES))}
    twice_m = result.twice_median_cents
    return RfmRun.objects.create(
        brand=brand, as_of=as_of, window_days=window_days,
        median_recency_days=None if result.twice_median_recency is None else _half(result.twice_median_recency),
        median_frequency=None if result.twice_median_frequency is None else _half(result.twice_median_frequency),
        # Cents → yuan; a median between two cents shows rounded half up (comparisons used the exact value).
        median_monetary=None if twice_m is None else (Decimal(twice_m) / 200).quantize(Decimal("0.01"),
                                                                                        rounding=ROUND_HALF_UP),
        median_monetary_half_cents=twice_m,
        members=int(seg_counts[1:].sum()), lapsed=stage_counts[LifecycleStage.LAPSED], counts=counts,
        stage_counts=stage_counts,
        cycle_days=Decimal(config.cycle_days) if config.cycle_days else result.brand_cycle, started_at=started_at)


def month_ends(*, today: dt.date, months: int) -> list[dt.date]:
    """The last days of the ``months`` whole months before ``today``'s month, oldest first."""
    ends, first = [], today.replace(day=1)
    for _step in range(months):
        end = first - dt.timedelta(days=1)
        ends.append(end)
        first = end.replace(day=1)
    return ends[::-1]


@transaction.atomic
def rfm_backfill_monthly(*, brand: Brand, months: int = 12, today: dt.date | None = None) -> list[RfmRun]:
    """A year (``months``) of month-end runs for a brand without runs yet: the class history a new
    deployment (or the demo) starts from, so the class trend and the transitions have something to show.

    The purchases are read once; each month-end cut-off is computed as ``rfm_recompute`` would have on that
    day (only the purchases up to it, the brand's window and settings) and compared with the previous
    cut-off in memory. Each cut-off stores its run and its class changes; the member rows and the RFML tags
    end as of the last cut-off, so the next ``rfm_recompute`` continues the history from there. A brand that
    already has runs is left alone (history is never rewritten): returns [] then.
    """
    job_lock(f"analytics.rfm.{brand.pk}")
    if RfmRun.objects.filter(brand=brand).exists():
        return []
    config = segmentation_settings_for(brand)
    cutoffs = month_ends(today=today or local_today(), months=months)
    if not cutoffs:
        return []
    arrays = load_purchases(brand=brand, as_of=cutoffs[-1])
    previous = stored = _previous_state(brand)  # no runs: no stored rows either
    group = rfml_tag_group(brand)
    runs = []
    for position, cutoff in enumerate(cutoffs):
        started = time.monotonic()
        keep = arrays.day <= _day_number(cutoff)
        result = rfm_compute(arrays=PurchaseArrays(member_id=arrays.member_id[keep], day=arrays.day[keep],
                                                   cents=arrays.cents[keep]),
                             as_of=cutoff, window_days=config.window_days,
                             mature_after_days=config.mature_after_days, cycle_override=config.cycle_days)
        figures = result.members
        run = _run_create(brand=brand, as_of=cutoff, window_days=config.window_days, config=config, result=result,
                          started_at=timezone.now())
        changes = class_changes(previous, figures)
        if position == len(cutoffs) - 1:
            # The last cut-off also leaves the member rows and the tags: written as a run over the stored
            # state (every member's row and class tag), then its history rows replaced by the true changes
            # and each member row pointed at the run of its latest change, as rfm_recompute keeps them.
            if connection.vendor == "postgresql":
                _write_pg(brand, run, figures, class_changes(stored, figures), group)
                RfmClassChange.objects.filter(run=run).delete()
                _insert_changes(brand, run, changes)
            else:
                _write_orm(brand, run, figures, class_changes(stored, figures), group, history=changes)
            latest = RfmClassChange.objects.filter(brand=brand, member_id=OuterRef("member_id")) \
                .order_by("-run_id").values("run_id")[:1]
            MemberRfm.objects.filter(brand=brand).update(run_id=Subquery(latest))
        else:
            _insert_changes(brand, run, changes)
        order = np.argsort(figures.member_id, kind="stable")
        previous = (figures.member_id[order], figures.segment[order], figures.stage[order])
        run.duration_ms = int((time.monotonic() - started) * 1000)
        run.save(update_fields=["duration_ms"])
        runs.append(run)
    return runs


def _insert_changes(brand: Brand, run: RfmRun, c: ClassChanges, changed_on: dt.date | None = None) -> None:
    """Store class changes (dated ``changed_on``, by default the run's day) with one executemany of plain tuples
    (no model instance per row)."""
    seg, stage = SEGMENT_CODES, STAGE_CODES
    changed_on = changed_on or run.as_of
    rows = [(m, brand.pk, run.pk, seg[fs], seg[ts], stage[fg], stage[tg], changed_on) for m, fs, ts, fg, tg in zip(
        c.member_id.tolist(), c.from_segment.tolist(), c.to_segment.tolist(), c.from_stage.tolist(),
        c.to_stage.tolist(), strict=True)]
    if not rows:
        return
    table = RfmClassChange._meta.db_table
    with connection.cursor() as cursor:
        cursor.executemany(f"INSERT INTO {table} (member_id, brand_id, run_id, from_segment, to_segment, "  # noqa: S608
                           "from_stage, to_stage, changed_on) VALUES (%s, %s, %s, %s, %s, %s, %s, %s)", rows)


def rfm_member_merge(*, survivor, absorbed) -> dict[str, int]:
    """Merge hook: history and care items follow the survivor; the absorbed member's current rows go.

    The survivor's figures are recomputed by the next run (the orders have moved to it).
    """
    moved = RfmClassChange.objects.filter(member=absorbed).update(member=survivor)
    MemberRfm.objects.filter(member=absorbed).delete()
    clash = CareItem.objects.filter(member=survivor).values_list("day", "guide_id", "brand_id")
    taken = set(clash)
    items = list(CareItem.objects.filter(member=absorbed))
    keep = [i.pk for i in items if (i.day, i.guide_id, i.brand_id) not in taken]
    CareItem.objects.filter(member=absorbed).exclude(pk__in=keep).delete()
    care = CareItem.objects.filter(pk__in=keep).update(member=survivor)
    return {"rfm_changes": moved, "care_items": care}
