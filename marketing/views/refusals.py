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
]

_EXACT = {
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
