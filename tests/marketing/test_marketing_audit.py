"""marketing.selectors.deliveries_rule_breaches and ``manage.py deliveries_audit``: what was sent, against the rules.

Hand-made deliveries with chosen ``sent_at`` values (created directly, as if sent by an older dispatcher), each
rule broken exactly once beside its edges that are not breaches. Default rules: at most 2 marketing messages
in 7 days, quiet hours 21:00–09:00, no marketing for 15 days after a purchase. Times are Shanghai local
(2030-03-04 is a Monday).
"""

from __future__ import annotations

import datetime as dt
import itertools
from io import StringIO
from zoneinfo import ZoneInfo

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from marketing.models import ChannelOptOut, Delivery, ReachRules
from marketing.rules import Rules
from marketing.selectors import deliveries_rule_breaches
from retail_crm.models import RetailGroup
from tests.factories import BrandFactory, BrandMembershipFactory, MemberFactory, OrderFactory

pytestmark = pytest.mark.django_db
SH = ZoneInfo("Asia/Shanghai")
_sources = itertools.count(1)


def at(day: int, hour: int, minute: int = 0) -> dt.datetime:
    return dt.datetime(2030, 3, day, hour, minute, tzinfo=SH)


def member_of(brand):
    member = MemberFactory(group=brand.group)
    BrandMembershipFactory(member=member, brand=brand)
    return member


def sent(member, brand, when: dt.datetime | None, *, kind="marketing", channel="sms", status="sent") -> Delivery:
    n = next(_sources)
    return Delivery.objects.create(member=member, brand=brand, kind=kind, channel=channel, source=f"audit:{n}",
                                   dedupe_key=f"audit:{n}|{member.pk}", status=status, planned_at=when or at(1, 10),
                                   send_after=when or at(1, 10), sent_at=when)


def paid(member, brand, when: dt.datetime):
    OrderFactory(brand=brand, member=member, ordered_at=when, paid_at=when)


@pytest.fixture
def brand():
    return BrandFactory(code="WA")


@pytest.fixture
def each_rule_broken_once(brand):
    """Each rule broken once, its edges beside it: 21 messages checked, to 9 members (a tenth has none sent)."""
    capped, two_in_seven, spaced = member_of(brand), member_of(brand), member_of(brand)
    # Three within 7 days (the third 6 days 23:59 after the first), and a fourth: still one member.
    for when in (at(4, 10), at(6, 10), at(11, 9, 59), at(12, 10)):
        sent(capped, brand, when)
    for when in (at(4, 10), at(10, 10)):  # exactly 2 in 7 days
        sent(two_in_seven, brand, when)
    for when in (at(4, 10), at(8, 10), at(11, 10)):  # the first and the third exactly 7 days apart
        sent(spaced, brand, when)

    night, day = member_of(brand), member_of(brand)
    sent(night, brand, at(4, 21))  # the start of the quiet hours: a breach
    sent(night, brand, at(4, 23), kind="service")  # service messages know no quiet hours
    sent(day, brand, at(5, 9), status="delivered")  # the end of the quiet hours: allowed
    sent(day, brand, at(5, 20, 59), channel="guide_task", status="to_guide")

    bought, bought_long_ago, bought_after = member_of(brand), member_of(brand), member_of(brand)
    paid(bought, brand, at(1, 10))
    sent(bought, brand, at(15, 10))  # 14 days after the purchase: a breach
    sent(bought, brand, at(2, 10), kind="service")  # service messages know no care window
    paid(bought_long_ago, brand, at(1, 9, 59))
    sent(bought_long_ago, brand, at(16, 10))  # 15 days and 1 minute after: allowed
    paid(bought_after, brand, at(5, 10))
    sent(bought_after, brand, at(5, 9, 30))  # the order came after the message

    left_sms, unsent = member_of(brand), member_of(brand)
    ChannelOptOut.objects.create(member=left_sms, channel="sms", source="sms_reply", opted_out_at=at(4, 12))
    sent(left_sms, brand, at(4, 11), kind="service")  # before the opt-out
    sent(left_sms, brand, at(4, 12), kind="service")  # at the same moment: not yet opted out
    sent(left_sms, brand, at(4, 13), kind="service")  # after: a breach
    sent(left_sms, brand, at(4, 14), kind="service", channel="subscribe")  # another channel
    # Not sent: held back, waiting, a failed receipt (sent_at set, then failed): none is checked.
    sent(unsent, brand, None, status="held")
    sent(unsent, brand, None, status="waiting")
    sent(unsent, brand, at(4, 23), status="failed")
    return brand


def test_each_rule_broken_once_is_counted_once_and_the_edges_are_not(each_rule_broken_once, django_assert_num_queries):
    with django_assert_num_queries(5):  # brands, their rules, the deliveries, the orders, the opt-outs
        found = deliveries_rule_breaches()

    assert found == {"messages": 21, "members": 9, "frequency_cap": 1, "quiet_hours": 1, "care_window": 1,
                     "opted_out": 1, "rules": {"WA": Rules()}}


def test_since_checks_later_messages_and_counts_earlier_ones_in_the_frequency_window(each_rule_broken_once):
    found = deliveries_rule_breaches(since=dt.date(2030, 3, 11))

    # From 11 March: capped's 11th and 12th (each the third within 7 days with the earlier ones), spaced's 11th,
    # bought's 15th, bought_long_ago's 16th.
    assert found == {"messages": 5, "members": 4, "frequency_cap": 1, "quiet_hours": 0, "care_window": 1,
                     "opted_out": 0, "rules": {"WA": Rules()}}


def test_each_brand_s_own_rules_apply(brand):
    ReachRules.objects.create(group=brand.group, brand=brand, cap_messages=3, quiet_start=dt.time(22),
                              quiet_end=dt.time(8), care_days=3)
    other = BrandFactory(code="MB", group=brand.group)
    member = member_of(brand)
    for when in (at(4, 21, 30), at(5, 8), at(6, 10)):  # 3 in 7 days, none in 22:00–08:00: allowed for WA
        sent(member, brand, when)
    sent(member, other, at(7, 10))  # the fourth within 7 days, sent for MB, whose cap (the default) is 2
    paid(member, brand, at(20, 10))
    sent(member, brand, at(23, 10, 1))  # 3 days and 1 minute after: allowed for WA
    sent(member, other, at(23, 10, 2))  # within MB's 15 days

    found = deliveries_rule_breaches()

    assert (found["frequency_cap"], found["quiet_hours"], found["care_window"]) == (1, 0, 1)
    assert found["rules"] == {"MB": Rules(), "WA": Rules(quiet_start=dt.time(22), quiet_end=dt.time(8),
                                                         cap_messages=3, cap_days=7, care_days=3)}


def test_a_group_is_checked_alone(each_rule_broken_once):
    elsewhere = BrandFactory(code="XB", group=RetailGroup.objects.create(code="other", name="Other"))
    sent(member_of(elsewhere), elsewhere, at(4, 22))

    mine = deliveries_rule_breaches(group_id=each_rule_broken_once.group_id)
    theirs = deliveries_rule_breaches(group_id=elsewhere.group_id)
    nobody = deliveries_rule_breaches(group_id=elsewhere.group_id, since=dt.date(2030, 3, 5))

    assert (mine["messages"], mine["quiet_hours"], set(mine["rules"])) == (21, 1, {"WA"})
    assert (theirs["messages"], theirs["members"], theirs["quiet_hours"], set(theirs["rules"])) == (1, 1, 1, {"XB"})
    assert nobody == {"messages": 0, "members": 0, "frequency_cap": 0, "quiet_hours": 0, "care_window": 0,
                      "opted_out": 0, "rules": {}}


def test_the_command_prints_one_line_per_rule_and_exits_1_on_a_breach(each_rule_broken_once):
    out = StringIO()
    with pytest.raises(CommandError) as failed:
        call_command("deliveries_audit", "--group", "grp", stdout=out)

    assert out.getvalue().splitlines() == [
        "21 messages sent to 9 members checked (group grp)",
        "frequency cap (at most 2 in 7 days): 1 member",
        "quiet hours (21:00-09:00): 1 message",
        "care window (no marketing for 15 days after a purchase): 1 message",
        "opted out (sent on a channel the member had left): 1 message",
    ]
    assert (failed.value.returncode, str(failed.value)) == (
        1, "reach rules broken: frequency cap, quiet hours, care window, opted out")


def test_the_command_exits_0_when_nothing_was_broken(each_rule_broken_once):
    out = StringIO()
    call_command("deliveries_audit", "--since", "2030-03-16", stdout=out)  # bought_long_ago's message only

    assert out.getvalue().splitlines() == [
        "1 message sent to 1 member checked (every group, since 2030-03-16)",
        "frequency cap (at most 2 in 7 days): 0 members",
        "quiet hours (21:00-09:00): 0 messages",
        "care window (no marketing for 15 days after a purchase): 0 messages",
        "opted out (sent on a channel the member had left): 0 messages",
    ]


def test_the_command_refuses_an_unknown_group_or_a_bad_date(each_rule_broken_once):
    with pytest.raises(CommandError, match="--group nope: no such retail group"):
        call_command("deliveries_audit", "--group", "nope", stdout=StringIO())
    with pytest.raises(CommandError, match="--since '2030-13-01': expected a date as YYYY-MM-DD"):
        call_command("deliveries_audit", "--since", "2030-13-01", stdout=StringIO())
