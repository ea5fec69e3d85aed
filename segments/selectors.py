"""Reads over RFML runs, member classes and care lists; staff reads always go through ``scoped``."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator

from django.db.models import QuerySet

from retail_crm.models import Brand
from retail_crm.scoping import Actor, scoped
from segments.models import CareItem, MemberRfm, RfmRun

RFML_EXPORT_COLUMNS = ["member_code", "recency_days", "frequency", "monetary", "lifetime_days", "segment",
                       "lifecycle_stage"]


def rfm_latest_run(*, brand: Brand) -> RfmRun | None:
    return RfmRun.objects.filter(brand=brand).order_by("-started_at", "-pk").first()


def rfm_export_rows(*, run: RfmRun) -> Iterator[tuple]:
    """Rows of the export: the classified members of the brand's current rows, which the latest run wrote
    (lapsed members have no class and are left out). ``run`` must be the brand's latest run."""
    rows = (MemberRfm.objects.filter(brand_id=run.brand_id).exclude(segment="")
            .order_by("member__code")
            .values_list("member__code", "recency_days", "frequency", "monetary", "lifetime_days", "segment",
                         "lifecycle_stage"))
    for code, recency, frequency, monetary, lifetime, segment, stage in rows.iterator(chunk_size=20000):
        yield code, recency, frequency, f"{monetary:.2f}", lifetime, segment, stage


def rfm_member_list(*, actor: Actor, brand: Brand, segment: str | None = None,
                    stage: str | None = None) -> QuerySet[MemberRfm]:
    rows = MemberRfm.objects.filter(brand=brand).select_related("member")
    if segment:
        rows = rows.filter(segment=segment)
    if stage:
        rows = rows.filter(lifecycle_stage=stage)
    return scoped(rows, actor).order_by("member__code")


def care_item_list(*, actor: Actor, day: dt.date, brand: Brand | None = None,
                   kind: str | None = None) -> QuerySet[CareItem]:
    rows = CareItem.objects.filter(day=day).select_related("member", "guide", "brand")
    if brand is not None:
        rows = rows.filter(brand=brand)
    if kind:
        rows = rows.filter(kind=kind)
    return scoped(rows, actor).order_by("-important", "kind", "member__code")
