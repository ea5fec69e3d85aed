"""The marketing services' refusals in the viewer's language.

The services answer the API in English (its clients branch on codes and field paths); a page says the same
in Chinese or English. Each message shape the services use is matched here once, with its values carried
over; a message with no shape here is shown with a general sentence in front of the original.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

# What the services call the brand's rows, as the audience validation names them.
_THINGS = {
    "tag value": gettext_lazy("tag values"),
    "guide": gettext_lazy("guides"),
    "store": gettext_lazy("stores"),
    "region": gettext_lazy("regions"),
    "coupon template": gettext_lazy("coupon templates"),
    "product": gettext_lazy("products"),
    "product category": gettext_lazy("product categories"),
}


def _between(m: re.Match) -> str:
    return _("Must be between %(low)s and %(high)s.") % {"low": m["low"], "high": m["high"]}


def _no_such(m: re.Match) -> str:
    what = _THINGS.get(m["what"])
    if what is None:
        return _("Not found in this brand: %(items)s.") % {"items": m["items"]}
    return _("This brand has no such %(what)s: %(items)s.") % {"what": what, "items": m["items"]}


_SHAPES: list[tuple[re.Pattern, Callable[[re.Match], str]]] = [
    # journeys (marketing.journeys)
    (re.compile(r"Give a whole number from (?P<low>\d+) to (?P<high>\d+)\.$"),
     lambda m: _("Give a whole number from %(low)s to %(high)s.") % {"low": m["low"], "high": m["high"]}),
    (re.compile(r"Give one of .*$"), lambda m: _("Choose one of the options.")),
    (re.compile(r"Unknown for this trigger: (?P<keys>.*)\.$"),
     lambda m: _("Not used by this trigger: %(keys)s.") % {"keys": m["keys"]}),
    (re.compile(r"At most (?P<n>\d+) steps\.$"), lambda m: _("At most %(n)s steps.") % {"n": m["n"]}),
    (re.compile(r"Must be between (?P<low>-?[\d.]+) and (?P<high>-?[\d.]+)\.$"), _between),
    (re.compile(r"No such (?P<what>[a-z ]+) in the audience's brand: (?P<items>.*)\.$"), _no_such),
    (re.compile(r"At most (?P<n>\d+) items\.$"), lambda m: _("At most %(n)s items.") % {"n": m["n"]}),
    (re.compile(r"At most (?P<n>\d+) decimal places\.$"),
     lambda m: _("At most %(n)s decimal places.") % {"n": m["n"]}),
    (re.compile(r"Expected a list of 1–(?P<n>\d+) conditions\.$"),
     lambda m: _("Give 1 to %(n)s conditions.") % {"n": m["n"]}),
    (re.compile(r"Unknown value (?P<value>.+); one of: .*$"),
     lambda m: _("Unknown value %(value)s.") % {"value": m["value"]}),
    (re.compile(r"One of: product_view, .*$"), lambda m: _("Choose a behaviour.")),
    # campaigns (marketing.campaigns.campaign_create)
    (re.compile(r"Give distinct channels from .*$"), lambda m: _("Choose different channels.")),
    (re.compile(r"Use an https link to one of: (?P<hosts>.*)\.$"),
     lambda m: _("Give an https link on one of: %(hosts)s.") % {"hosts": m["hosts"]}),
    (re.compile(r"unknown variable (?P<name>\{[^}]*\}); use .*$"),
     lambda m: _("Unknown variable %(name)s; use {name}, {guide}, {link} or {coupon}.") % {"name": m["name"]}),
]

_EXACT = {
    # journeys (marketing.journeys)
    "Give an object.": gettext_lazy("Expected a JSON object."),
    "Give a list of product ids.": gettext_lazy("Give products of the brand."),
    "Give one or more RFML classes.": gettext_lazy("Choose one or more RFML classes."),
    "Give true or false: the answer that lets the member go on.": gettext_lazy(
        "Choose the answer that lets the member go on."),
    "Give a saved audience of the brand.": gettext_lazy("Choose a saved audience of the journey's brand."),
    "Give a tag value of the brand's group.": gettext_lazy("Choose a tag of the journey's brand."),
    "Give a coupon template of the brand.": gettext_lazy("Choose a coupon of the journey's brand."),
    "Give the reason (1–200 characters).": gettext_lazy("Give the reason (1 to 200 characters)."),
    "The suggested script is at most 200 characters.": gettext_lazy(
        "The suggested script has at most 200 characters."),
    "Give the period in days.": gettext_lazy("Give the period in days."),
    "Give at least one step.": gettext_lazy("Give at least one step."),
    "The brand already has a journey of that name.": gettext_lazy("This brand already has a journey of that name."),
    "Give 1 to 60 days.": gettext_lazy("Give 1 to 60 days."),
    "Expected an object.": gettext_lazy("Expected a JSON object."),
    "Unknown condition.": gettext_lazy("Unknown condition."),
    "Unknown key.": gettext_lazy("Unknown condition."),
    "Expected a whole number.": gettext_lazy("Enter a whole number."),
    "Expected true or false.": gettext_lazy("Expected true or false."),
    "Expected a number.": gettext_lazy("Enter a number."),
    "Expected a date (YYYY-MM-DD).": gettext_lazy("Enter a date (YYYY-MM-DD)."),
    "Expected a non-empty list.": gettext_lazy("Choose at least one."),
    "Expected an id (a whole number).": gettext_lazy("Enter a whole number."),
    "Expected a text of 1–64 characters.": gettext_lazy("Each code has 1 to 64 characters."),
    "Must not be below the minimum.": gettext_lazy("Must not be below the minimum."),
    "This field is required.": gettext_lazy("This field is required."),
    "With min 0 give a max (e.g. 0 for none at all).": gettext_lazy(
        "With at least 0 times, give at most (0: none at all)."),
    "The brand has no consumption cycle yet (no RFML run and no cycle set).": gettext_lazy(
        "This brand has no consumption cycle yet (no RFML run and no cycle set)."),
    "The brand has no consumption cycle yet.": gettext_lazy(
        "This brand has no consumption cycle yet (no RFML run and no cycle set)."),
    "A name of 1–80 characters is required.": gettext_lazy("Give a name of 1 to 80 characters."),
    "The brand already has an audience of that name.": gettext_lazy("This brand already has an audience of that name."),
    "No such brand in your scope.": gettext_lazy("Not found in your scope."),
    # campaigns (marketing.campaigns.campaign_create); content messages come without their channel
    "The audience belongs to another brand.": gettext_lazy("The audience belongs to another brand."),
    "The coupon template belongs to another brand.": gettext_lazy(
        "This coupon belongs to another brand than the audience."),
    "Give 0 to 50.": gettext_lazy("Give 0 to 50."),
    "Give 1 to 30 days.": gettext_lazy("Give 1 to 30 days."),
    "Required for a campaign at a time.": gettext_lazy("Give the time to send at."),
    "Required for a recurring campaign.": gettext_lazy("Give the time of each run."),
    "Give 0 (Monday) to 6 (Sunday).": gettext_lazy("Choose the weekday."),
    "Only for a weekly campaign.": gettext_lazy("Only for a weekly campaign."),
    "Only for a recurring campaign.": gettext_lazy("Only for a daily or weekly campaign."),
    "give a template id (1–64 characters).": gettext_lazy("Give the template id (1 to 64 characters)."),
    "params must be a list, or an object, of texts of at most 500 characters.": gettext_lazy(
        "Each field has at most 500 characters."),
    "params must be an object (template field → text).": gettext_lazy(
        "Write each line as “field: text”."),
    "give a text, a miniprogram card and/or a link card.": gettext_lazy("Give the text."),
    "text must be 1–1000 characters.": gettext_lazy("The text has 1 to 1000 characters."),
    "give the reason (1–200 characters) and, if you like, the action (up to 200).": gettext_lazy(
        "Give the reason (1 to 200 characters) and, if you like, what to do (up to 200)."),
    "{name} cannot be used: a WeCom group send carries one text to all of a guide's members.": gettext_lazy(
        "{name} cannot be used: a WeCom group send is one text to all of a guide's members."),
    "{link} needs the campaign's link.": gettext_lazy("{link} needs the campaign's link."),
    "{coupon} needs a coupon template.": gettext_lazy("{coupon} needs a coupon."),
    "Give two or more variants with distinct names and weights adding up to 100.": gettext_lazy(
        "The two variants' shares are each 1 to 99 and add up to 100."),
    "Every variant must offer the same subscribe-message template.": gettext_lazy(
        "Both variants must use the same subscribe-message template."),
}


def refusal_text(message: str) -> str:
    """``message`` (a service's English message) in the active language."""
    if message in _EXACT:
        return str(_EXACT[message])
    for pattern, render in _SHAPES:
        match = pattern.match(message)
        if match:
            return render(match)
    return _("Not accepted: %(reason)s") % {"reason": message}
