"""Celery tasks for RFML, consumption cycles and care lists: thin, take ids, safe to run twice.

They keep the names they were registered under in ``analytics`` (``analytics.tasks.…``), so queued messages,
the beat schedule and the ``analytics`` queue route still find them.
"""

from __future__ import annotations

import datetime as dt

from celery import shared_task

from retail_crm.models import Brand
from segments.care import care_list_build
from segments.rfm import local_today, rfm_recompute


@shared_task(name="analytics.tasks.rfm_recompute_brand")
def rfm_recompute_brand(brand_id: int, as_of: str | None = None) -> dict:
    """RFML and the consumption cycle of one brand (as of a local date, default today)."""
    brand = Brand.objects.get(pk=brand_id)
    run = rfm_recompute(brand=brand, as_of=dt.date.fromisoformat(as_of) if as_of else None)
    return {"brand": brand.code, "run": run.pk, "members": run.members, "lapsed": run.lapsed,
            "duration_ms": run.duration_ms}


@shared_task(name="analytics.tasks.rfm_recompute_all")
def rfm_recompute_all() -> list[int]:
    """Nightly: one recompute task per active brand, all as of the same local date."""
    as_of = local_today().isoformat()
    brand_ids = list(Brand.objects.filter(is_active=True).order_by("pk").values_list("pk", flat=True))
    for brand_id in brand_ids:
        rfm_recompute_brand.delay(brand_id, as_of)
    return brand_ids


@shared_task(name="analytics.tasks.care_lists_build_today")
def care_lists_build_today() -> dict:
    """Daily: today's care list of every active brand (rebuilding keeps items already done)."""
    day = local_today()
    return {brand.code: care_list_build(brand=brand, day=day)
            for brand in Brand.objects.filter(is_active=True).order_by("pk")}
