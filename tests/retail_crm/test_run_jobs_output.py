"""`run_jobs` prints one readable line per job (name, summary in words and numbers, seconds) and a total,
never a Python repr (dataclasses, Decimal, datetime)."""

import datetime as dt
import re
from io import StringIO

import pytest
from django.core.management import call_command
from django.utils import timezone

from attribution.services import AttributionRunResult
from members.models import BehaviourEvent, EventKind
from retail_crm.jobs import JOBS
from tests.factories import BrandMembershipFactory, GuideFactory, MemberFactory, OrderFactory

pytestmark = pytest.mark.django_db

LINE = re.compile(r"^(?P<name>[a-z_.]+): (?P<summary>[^{}]+) \((?P<seconds>\d+\.\d) s\)$")


def run_jobs() -> list[str]:
    out = StringIO()
    call_command("run_jobs", stdout=out)
    return out.getvalue().splitlines()


def test_a_small_run_prints_one_readable_line_per_job_and_a_total():
    guide = GuideFactory()
    brand = guide.store.brand
    member = MemberFactory(group=brand.group)
    BrandMembershipFactory(member=member, brand=brand, store=guide.store)
    now = timezone.now()
    for days in (3, 2):
        OrderFactory(brand=brand, member=member, store=guide.store, guide=guide, ordered_at=now - dt.timedelta(days))
    # Two product views on one local day: the activity job's summary was a raw dataclass repr before.
    day = timezone.localtime(now - dt.timedelta(days=2)).replace(hour=12, minute=0, second=0, microsecond=0)
    for minutes in (0, 5):
        BehaviourEvent.objects.create(brand=brand, member=member, kind=EventKind.PRODUCT_VIEW,
                                      occurred_at=day + dt.timedelta(minutes=minutes))

    lines = run_jobs()

    assert len(lines) == len(JOBS) + 1
    matches = [LINE.match(line) for line in lines[:-1]]
    assert all(matches), lines
    assert [m["name"] for m in matches] == [job.name for job in JOBS]
    summaries = {m["name"]: m["summary"] for m in matches}
    assert summaries["members.activity"] == (f"daily activity for {day.date()}..{day.date()}: 1 brand-days, "
                                             "1 rows written, 0 replaced")
    assert summaries["livestream.stats"] == "figures of 0 live sessions"
    assert summaries["analytics.attribution"].startswith("2 orders, ")
    assert summaries["analytics.rfm"].startswith(f"{brand.code} 1 classified, 0 lapsed, ")
    assert re.fullmatch(r"\d+ jobs done in \d+\.\d s", lines[-1]) and lines[-1].startswith(f"{len(JOBS)} jobs ")
    text = "\n".join(lines)
    for repr_marker in ("{", "}", "Decimal(", "datetime.", "Result(", "None", "date("):
        assert repr_marker not in text


def test_summaries_write_counts_with_thousands_separators_and_no_reprs(monkeypatch):
    """The example from the issue: big counts are grouped, the result objects never printed whole."""
    from attribution import services

    monkeypatch.setattr(services, "attribute_all",
                        lambda brand_id=None: AttributionRunResult(orders=126764, purchases=120000,
                                                                   rows_written=2233669, seconds=35.6))
    attribution = next(job for job in JOBS if job.name == "analytics.attribution")
    assert attribution.run(None) == "126,764 orders, 2,233,669 credit rows written"

