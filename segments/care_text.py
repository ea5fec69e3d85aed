"""Care-list words, rendered in the viewer's language from the codes a care item stores.

``CareItem.reason_code`` + ``reason_params`` say why a member is on a guide's
list; the suggested action follows from the code and whether the member is
important. Items written before the codes existed keep their stored text.
No model imports: ``segments.models`` calls in here.
"""

from __future__ import annotations

from django.utils.translation import gettext


class CareReason:
    """Reason codes and the parameters each takes (whole days)."""

    LAPSED = "lapsed"  # days, cycle
    NO_PURCHASE_IN_WINDOW = "no_purchase_in_window"  # days
    CARE_PERIOD = "care_period"  # days, care
    DUE = "due"  # days, cycle
    CAMPAIGN = "campaign"  # a campaign routed this important member to their guide (marketing's guide_task)
    JOURNEY = "journey"  # a journey's step asked the guide (or the store manager) to contact the member


def care_reason_text(*, reason_code: str, params: dict, fallback: str = "") -> str:
    """Why the member is on the list, in the active language."""
    p = params or {}
    try:
        if reason_code == CareReason.LAPSED:
            return gettext("Last purchase %(days)d days ago; cycle %(cycle)d days; lapsed") % {
                "days": p["days"], "cycle": p["cycle"]}
        if reason_code == CareReason.NO_PURCHASE_IN_WINDOW:
            return gettext("Last purchase %(days)d days ago; no purchase in the RFML window") % {"days": p["days"]}
        if reason_code == CareReason.CARE_PERIOD:
            return gettext("Purchased %(days)d days ago; care period of %(care)d days, no marketing") % {
                "days": p["days"], "care": p["care"]}
        if reason_code == CareReason.DUE:
            return gettext("Last purchase %(days)d days ago; cycle %(cycle)d days") % {
                "days": p["days"], "cycle": p["cycle"]}
    except (KeyError, TypeError):
        pass
    return fallback


def care_action_text(*, reason_code: str, important: bool, fallback: str = "") -> str:
    """What the guide should do, in the active language."""
    if reason_code in (CareReason.LAPSED, CareReason.NO_PURCHASE_IN_WINDOW):
        return (gettext("Call in person and offer a gift (coupon or salon invitation)") if important
                else gettext("Send a win-back coupon or points reminder with a mall link"))
    if reason_code == CareReason.CARE_PERIOD:
        return gettext("Thank them and check the fit; no promotion")
    if reason_code == CareReason.DUE:
        return (gettext("Call in person with matching new arrivals") if important
                else gettext("Share matching new arrivals or a coupon"))
    return fallback
