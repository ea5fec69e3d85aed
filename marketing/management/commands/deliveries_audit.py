"""``manage.py deliveries_audit [--group CODE] [--since YYYY-MM-DD]``: the messages actually sent, checked
against the reach rules, one line per rule; exits 1 when any rule was broken (for a nightly check)."""

from __future__ import annotations

import datetime as dt

from django.core.management.base import BaseCommand, CommandError

from marketing.rules import Rules
from marketing.selectors import BREACHES, deliveries_rule_breaches
from retail_crm.models import RetailGroup

NAMES = {"frequency_cap": "frequency cap", "quiet_hours": "quiet hours", "care_window": "care window",
         "opted_out": "opted out"}
UNITS = {"frequency_cap": "member"}  # the others count messages


def _date(value: str) -> dt.date:
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        raise CommandError(f"--since {value!r}: expected a date as YYYY-MM-DD") from None


def _describe(rule: str, rules: Rules) -> str:
    if rule == "frequency_cap":
        return f"at most {rules.cap_messages} in {rules.cap_days} days"
    if rule == "quiet_hours":
        return f"{rules.quiet_start:%H:%M}-{rules.quiet_end:%H:%M}"
    if rule == "care_window":
        return f"no marketing for {rules.care_days} days after a purchase"
    return "sent on a channel the member had left"


def _rule_text(rule: str, rules: dict[str, Rules]) -> str:
    """The rule as it was applied: one wording when every brand has the same, else each brand's."""
    if rule == "opted_out" or len({_describe(rule, r) for r in rules.values()}) <= 1:
        return _describe(rule, next(iter(rules.values()), Rules()))
    return "; ".join(f"{code}: {_describe(rule, r)}" for code, r in rules.items())


def _count(n: int, unit: str) -> str:
    return f"{n} {unit}{'' if n == 1 else 's'}"


class Command(BaseCommand):
    help = ("Check the messages actually sent against the reach rules (frequency cap, quiet hours, care window, "
            "opt-outs) under each brand's rules; one line per rule, exit status 1 when any was broken.")

    def add_arguments(self, parser):
        parser.add_argument("--group", help="retail group code (default: every group)")
        parser.add_argument("--since", help="YYYY-MM-DD, local: messages sent from that day's midnight on")

    def handle(self, *args, group=None, since=None, **options):
        group_id = None
        if group is not None:
            group_id = RetailGroup.objects.filter(code=group).values_list("pk", flat=True).first()
            if group_id is None:
                raise CommandError(f"--group {group}: no such retail group")
        found = deliveries_rule_breaches(group_id=group_id, since=_date(since) if since else None)
        scope = f"group {group}" if group else "every group"
        self.stdout.write(f"{_count(found['messages'], 'message')} sent to {_count(found['members'], 'member')} "
                          f"checked ({scope}{f', since {since}' if since else ''})")
        for rule in BREACHES:
            self.stdout.write(f"{NAMES[rule]} ({_rule_text(rule, found['rules'])}): "
                              f"{_count(found[rule], UNITS.get(rule, 'message'))}")
        broken = [NAMES[rule] for rule in BREACHES if found[rule]]
        if broken:
            raise CommandError(f"reach rules broken: {', '.join(broken)}", returncode=1)
