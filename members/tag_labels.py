"""Words for tags, rendered in the viewer's language at display time.

The database keeps codes and parameters (DOMAIN.md "Translations"): a standard
tag group is known by its ``code`` and a computed tag's reason by
``MemberTag.reason_code`` + ``reason_params``. This module turns them into
words with gettext, so a group created while one language was active reads
right in the other. Groups and values staff created by hand keep the name they
typed; hand and import tags keep the reason the operator typed.

No model imports at module level: ``members.models`` calls in here.
"""

from __future__ import annotations

from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from retail_crm.vocabulary import Channel, Segment

RFML_GROUP_CODE = "rfml"

# The standard tag groups (members.tags.DEFAULT_RULES and the RFML group), by code.
STANDARD_GROUP_NAMES = {
    "shoe-size": _("Shoe size"),
    "clothing-size": _("Clothing size"),
    "colour-preference": _("Colour preference"),
    "material-preference": _("Material preference"),
    "discount-preference": _("Discount preference"),
    "favourite-category": _("Favourite category"),
    "price-band": _("Price band"),
    "preferred-channel": _("Preferred channel"),
    "preferred-store": _("Preferred store"),
    RFML_GROUP_CODE: _("RFML class"),
}

# Fixed values of standard groups whose stored name is a word (not data such as "XL" or a store name).
STANDARD_VALUE_NAMES = {
    ("discount-preference", "discount-sensitive"): _("Discount-sensitive"),
}


class TagReason:
    """Codes of computed tags' reasons (``MemberTag.reason_code``); the parameters each takes."""

    RULE_TOP_QUANTITY = "rule_top_quantity"  # part, total (items)
    RULE_TOP_SPEND = "rule_top_spend"  # part, total (money)
    RULE_SHARE = "rule_share"  # part, total (money), field, compare
    RULE_BAND = "rule_band"  # average
    RFML_CLASS = "rfml_class"  # as_of
    BEHAVIOUR_WINDOW = "behaviour_window"  # rule, kind (EventKind), count, days


def tag_group_label(*, code: str, name: str, brand_id: int | None = None) -> str:
    """The group's name in the active language: the standard name for a standard brand group, else ``name``."""
    standard = STANDARD_GROUP_NAMES.get(code)
    if standard is None or brand_id is None:
        return name
    return str(standard)


def tag_value_label(*, group_code: str, code: str, name: str, group_brand_id: int | None = None) -> str:
    """A value's name in the active language: RFML classes, channels and fixed words are rendered from codes."""
    if group_brand_id is None:
        return name
    if group_code == RFML_GROUP_CODE:
        return str(Segment(code).label) if code in Segment.values else name
    if group_code == "preferred-channel":
        return str(Channel(code).label) if code in Channel.values else name
    standard = STANDARD_VALUE_NAMES.get((group_code, code))
    return str(standard) if standard is not None else name


def tag_reason_text(*, reason_code: str, params: dict, reason: str, rule_label: str, value_label: str) -> str:
    """A tag's reason in the active language; rows without a code (hand tags, older rows) show ``reason``."""
    p = params or {}
    try:
        if reason_code == TagReason.RULE_TOP_QUANTITY:
            return gettext("{rule}: {value} ({part} of {total} items)").format(
                rule=rule_label, value=value_label, part=p["part"], total=p["total"])
        if reason_code == TagReason.RULE_TOP_SPEND:
            return gettext("{rule}: {value} ({part} of {total} spent)").format(
                rule=rule_label, value=value_label, part=p["part"], total=p["total"])
        if reason_code == TagReason.RULE_SHARE:
            from members.models import TagRuleField

            field = p.get("field", "")
            field_label = str(TagRuleField(field).label) if field in TagRuleField.values else field
            what = f"{field_label.lower()} ≥ {p['compare']}"
            return gettext("{rule}: {part} of {total} spent at {what}").format(
                rule=rule_label, part=p["part"], total=p["total"], what=what)
        if reason_code == TagReason.RULE_BAND:
            return gettext("{rule}: {value} (average {average})").format(
                rule=rule_label, value=value_label, average=p["average"])
        if reason_code == TagReason.BEHAVIOUR_WINDOW:
            from members.models import EventKind

            kind = p["kind"]
            kind_label = str(EventKind(kind).label) if kind in EventKind.values else kind
            return gettext("{rule}: {kind} {count} times in the last {days} days").format(
                rule=rule_label, kind=kind_label.lower(), count=p["count"], days=p["days"])
        if reason_code == TagReason.RFML_CLASS:
            return gettext("RFML class as of %(date)s") % {"date": p["as_of"]}
    except (KeyError, ValueError):
        pass
    return reason
