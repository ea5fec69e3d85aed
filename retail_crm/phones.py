"""Phone numbers: one normal form for exact look-ups, one mask for display.

Mainland mobile numbers are stored E.164-style (+8613812345678) so the same
person typed as "138 1234 5678", "+86-138-1234-5678" or "8613812345678" is
found by an indexed equality look-up, never a scan.
"""

from __future__ import annotations

import re
import unicodedata

# ASCII digits only: \d would also accept full-width and other scripts' digits.
_DIGITS = re.compile(r"[0-9]+")


class InvalidPhone(ValueError):
    """The text is not a phone number we can store."""


def normalise_phone(raw: str) -> str:
    """Return the stored form of a phone number, or raise InvalidPhone."""
    # NFKC turns full-width digits and signs (common from Chinese input methods) into ASCII.
    text = unicodedata.normalize("NFKC", raw or "").strip()
    if not text:
        raise InvalidPhone("empty phone number")
    if re.search(r"[^0-9\s+\-().]", text):
        raise InvalidPhone(f"{raw!r} contains characters that are not part of a phone number")
    digits = "".join(_DIGITS.findall(text))
    international = text.startswith("+") or text.startswith("00")
    if text.startswith("00"):
        digits = digits[2:]
    if not international and len(digits) == 11 and digits.startswith("1"):
        digits = "86" + digits
    elif not international and len(digits) == 13 and digits.startswith("86"):
        pass
    elif not international:
        raise InvalidPhone(f"{raw!r} is not an 11-digit mainland mobile number")
    if digits.startswith("86"):
        national = digits[2:]
        if not (len(national) == 11 and national.startswith("1") and national[1] in "3456789"):
            raise InvalidPhone(f"{raw!r} is not a valid mainland mobile number")
    elif not 8 <= len(digits) <= 15:
        raise InvalidPhone(f"{raw!r} is not a valid international number")
    return "+" + digits


def mask_phone(stored: str) -> str:
    """138****5678 for mainland numbers; the national part similarly masked otherwise."""
    if not stored:
        return ""
    national = stored[3:] if stored.startswith("+86") else stored.lstrip("+")
    if len(national) <= 7:
        return "*" * len(national)
    return f"{national[:3]}****{national[-4:]}"


def display_phone(stored: str) -> str:
    """The whole number in the form people read it (no +86 for mainland numbers)."""
    return stored[3:] if stored.startswith("+86") else stored
