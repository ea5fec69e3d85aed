"""The issue's cross-check: orders go in through ``import_orders``, ``recompute_rfml`` runs, and the CSV that
``export_rfml`` writes is compared row by row with an independent pandas computation made from the import CSV
itself (nothing read back from the database).
"""

from __future__ import annotations

import csv
import datetime as dt
import random
from decimal import Decimal

import pandas as pd
import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from mall.importing import ORDER_COLUMNS
from tests.factories import BrandFactory, RetailGroupFactory

pytestmark = pytest.mark.django_db

AS_OF = dt.date(2025, 6, 30)
WINDOW = 365
HEADER = "member_code,recency_days,frequency,monetary,lifetime_days,segment,lifecycle_stage"


def write_orders(path, seed: int = 7) -> None:
    """About 45 members with 0–9 orders each over 2024-01-01 … 2025-07-05 (some after as_of), 1–3 lines an
    order, times that include the minutes around local midnight; some orders fully or partly refunded."""
    rng = random.Random(seed)
    rows = []
    number = 0
    for m in range(45):
        code = f"X{m:03d}"
        for _ in range(rng.choice([0, 1, 1, 2, 3, 4, 6, 9])):
            number += 1
            day = dt.date(2024, 1, 1) + dt.timedelta(days=rng.randrange(0, 552))
            minute = rng.choice([0, 1, 30, 12 * 60, 23 * 60 + 59, rng.randrange(0, 24 * 60)])
            moment = f"{day.isoformat()}T{minute // 60:02d}:{minute % 60:02d}:00"
            refund_kind = rng.random()
            for _line in range(rng.choice([1, 1, 2, 3])):
                paid = Decimal(rng.randrange(100, 90000)) / 100
                refunded = paid if refund_kind < 0.12 else (
                    (paid * Decimal("0.25")).quantize(Decimal("0.01")) if refund_kind < 0.25 else Decimal("0.00"))
                rows.append({"order_no": f"EX{number:05d}", "ordered_at": moment, "channel": "mini_program",
                             "store_code": "", "guide_code": "", "member_code": code, "member_phone": "",
                             "sku_code": "", "quantity": "1", "unit_price": str(paid), "paid_amount": str(paid),
                             "refunded_amount": str(refunded)})
    with open(path, "w", newline="", encoding="utf-8") as out:
        writer = csv.DictWriter(out, fieldnames=ORDER_COLUMNS)
        writer.writeheader()
        writer.writerows(rows)


def expected_from_csv(path) -> pd.DataFrame:
    """RFML of the issue computed straight from the import CSV with pandas."""
    lines = pd.read_csv(path, dtype=str)
    lines["paid_cents"] = lines["paid_amount"].map(lambda v: int(Decimal(v) * 100))
    lines["refunded_cents"] = lines["refunded_amount"].map(lambda v: int(Decimal(v) * 100))
    orders = lines.groupby("order_no").agg(member=("member_code", "first"), at=("ordered_at", "first"),
                                           paid=("paid_cents", "sum"), refunded=("refunded_cents", "sum"))
    orders["net"] = orders["paid"] - orders["refunded"]
    # ordered_at is written in local time: its date is the purchase date.
    orders["date"] = pd.to_datetime(orders["at"]).dt.date
    buys = orders[(orders["net"] > 0) & (orders["date"] <= AS_OF)]
    ever = buys.groupby("member").agg(first=("date", "min"), last=("date", "max"), total=("net", "size"))
    start = AS_OF - dt.timedelta(days=WINDOW)
    window = buys[buys["date"] > start].groupby("member").agg(frequency=("net", "size"), cents=("net", "sum"))
    rfm = window.join(ever)
    rfm["recency_days"] = rfm["last"].map(lambda d: (AS_OF - d).days)
    rfm["lifetime_days"] = (rfm["last"] - rfm["first"]).map(lambda delta: delta.days)
    med_r, med_f, med_m = rfm["recency_days"].median(), rfm["frequency"].median(), rfm["cents"].median()
    recent, f_high, m_high = rfm["recency_days"] < med_r, rfm["frequency"] > med_f, rfm["cents"] > med_m
    rfm["segment"] = [
        ("important_" if m else "general_") + ("value" if r and f else "develop" if r else "retain" if f else "winback")
        for r, f, m in zip(recent, f_high, m_high, strict=True)]
    rfm["lifecycle_stage"] = ["new" if total == 1 else "mature" if lifetime >= 180 else "growing"
                              for total, lifetime in zip(rfm["total"], rfm["lifetime_days"], strict=True)]
    rfm["monetary"] = rfm["cents"].map(lambda c: f"{Decimal(int(c)) / 100:.2f}")
    rfm = rfm.reset_index().rename(columns={"member": "member_code"}).sort_values("member_code")
    out = rfm[["member_code", "recency_days", "frequency", "monetary", "lifetime_days", "segment",
               "lifecycle_stage"]]
    return out.astype(str).reset_index(drop=True), set(ever.index) - set(window.index)


def test_export_matches_an_independent_pandas_computation(tmp_path, capsys):
    BrandFactory(group=RetailGroupFactory(), code="womens")
    orders_csv, export_csv = tmp_path / "orders.csv", tmp_path / "rfml.csv"
    write_orders(orders_csv)

    call_command("import_orders", str(orders_csv), "--brand", "womens")
    call_command("recompute_rfml", "--brand", "womens", "--as-of", AS_OF.isoformat())
    call_command("export_rfml", "--brand", "womens", "--output", str(export_csv))

    expected, lapsed = expected_from_csv(orders_csv)
    text = export_csv.read_text(encoding="utf-8")
    assert text.splitlines()[0] == HEADER
    got = pd.read_csv(export_csv, dtype=str)
    assert len(got) == len(expected)
    for (_, mine), (_, theirs) in zip(got.iterrows(), expected.iterrows(), strict=True):
        assert mine.to_dict() == theirs.to_dict()
    # The data set exercises what it should: several classes and stages, and lapsed members left out.
    assert len(set(expected["segment"])) >= 5
    assert set(expected["lifecycle_stage"]) == {"new", "growing", "mature"}
    assert lapsed and lapsed.isdisjoint(set(got["member_code"]))
    assert f"{len(expected)} members written to {export_csv}" in capsys.readouterr().out


def test_export_to_stdout_with_two_decimals(tmp_path, capsys):
    BrandFactory(group=RetailGroupFactory(), code="womens")
    orders_csv = tmp_path / "orders.csv"
    orders_csv.write_text(",".join(ORDER_COLUMNS) + "\n"
                          "A1,2025-06-01T10:00:00,mini_program,,,M1,,,1,100.50,100.50,0.50\n"
                          "A2,2025-06-20T10:00:00,mini_program,,,M2,,,1,30,30,0\n"
                          "A3,2023-06-20T10:00:00,mini_program,,,M3,,,1,30,30,0\n", encoding="utf-8")
    call_command("import_orders", str(orders_csv), "--brand", "womens")
    call_command("recompute_rfml", "--brand", "womens", "--as-of", "2025-06-30")
    capsys.readouterr()

    call_command("export_rfml", "--brand", "womens")

    # M1 R 29, F 1, M 100.00; M2 R 10, F 1, M 30.00; medians R 19.5, F 1, M 65: M1 → important_winback,
    # M2 → general_develop. M3 bought only in 2023: lapsed, not exported.
    assert capsys.readouterr().out == (HEADER + "\n"
                                       "M1,29,1,100.00,0,important_winback,new\n"
                                       "M2,10,1,30.00,0,general_develop,new\n")


@pytest.mark.parametrize("args, message", [
    (["--brand", "nope"], "--brand nope: no such brand"),
    (["--brand", "womens"], "brand womens has no RFML run yet: run recompute_rfml --brand womens first"),
    (["--brand", "womens", "--output", "/nonexistent-dir/x.csv"], None),
])
def test_export_refuses_bad_arguments(args, message):
    brand = BrandFactory(group=RetailGroupFactory(), code="womens")
    if message is None:
        from segments.rfm import rfm_recompute

        rfm_recompute(brand=brand, as_of=AS_OF)
        message = "--output /nonexistent-dir/x.csv: No such file or directory"
    with pytest.raises(CommandError) as caught:
        call_command("export_rfml", *args)
    assert str(caught.value) == message
