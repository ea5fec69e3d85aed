"""retail_crm.phones: one stored form per mobile number, a mask and a display form."""

import pytest

from retail_crm.phones import InvalidPhone, display_phone, mask_phone, normalise_phone


@pytest.mark.parametrize(
    "raw",
    [
        "13812345678",
        "138 1234 5678",
        "+86 138-1234-5678",
        "8613812345678",
        "008613812345678",
        "+8613812345678",
        "(+86) 138.1234.5678",
        "  13812345678\n",
    ],
)
def test_normalise_phone_gives_one_stored_form_for_every_way_of_writing_a_mainland_mobile(raw):
    assert normalise_phone(raw) == "+8613812345678"


@pytest.mark.parametrize(
    ("raw", "stored"),
    [
        ("13012345678", "+8613012345678"),
        ("19912345678", "+8619912345678"),
        ("+1 415 555 0123", "+14155550123"),
        ("0044 20 7946 0958", "+442079460958"),
        ("+852 9123 4567", "+85291234567"),
    ],
)
def test_normalise_phone_keeps_the_digits_of_other_valid_numbers(raw, stored):
    assert normalise_phone(raw) == stored


def test_normalise_phone_is_idempotent_on_its_own_output():
    stored = normalise_phone("138 1234 5678")

    assert normalise_phone(stored) == stored == "+8613812345678"


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ("12345", "'12345' is not an 11-digit mainland mobile number"),
        ("1381234567a", "'1381234567a' contains characters that are not part of a phone number"),
        ("", "empty phone number"),
        ("   ", "empty phone number"),
        (None, "empty phone number"),
        ("+86 12812345678", "'+86 12812345678' is not a valid mainland mobile number"),
        ("12812345678", "'12812345678' is not a valid mainland mobile number"),
        ("861381234567", "'861381234567' is not an 11-digit mainland mobile number"),
        ("+86 1381234567", "'+86 1381234567' is not a valid mainland mobile number"),
        ("+1234567", "'+1234567' is not a valid international number"),
        ("+1234567890123456", "'+1234567890123456' is not a valid international number"),
        ("+", "'+' is not a valid international number"),
        ("138/1234/5678", "'138/1234/5678' contains characters that are not part of a phone number"),
    ],
)
def test_normalise_phone_rejects_what_is_not_a_storable_number(raw, message):
    with pytest.raises(InvalidPhone) as excinfo:
        normalise_phone(raw)

    assert str(excinfo.value) == message


def test_invalid_phone_is_a_value_error():
    assert issubclass(InvalidPhone, ValueError)


@pytest.mark.parametrize(
    "raw",
    [
        "１３８１２３４５６７８",  # typed with a full-width (全角) IME
        "138１２３４５６７８",  # IME switched half-way through
        "＋８６ １３８－１２３４－５６７８",
    ],
)
def test_normalise_phone_turns_full_width_digits_into_the_same_ascii_stored_form(raw):
    # The stored form is the key for exact look-ups: it must be the same ASCII
    # string however the digits were typed, never a mix of widths.
    assert normalise_phone(raw) == "+8613812345678"


def test_normalise_phone_rejects_digits_of_other_scripts_instead_of_storing_them():
    with pytest.raises(InvalidPhone) as excinfo:
        normalise_phone("13\u066812345678")  # ARABIC-INDIC DIGIT EIGHT in the middle

    assert str(excinfo.value) == "'13\u066812345678' contains characters that are not part of a phone number"


@pytest.mark.parametrize(
    ("stored", "masked"),
    [
        ("+8613812345678", "138****5678"),
        ("+14155550123", "141****0123"),
        ("+85291234567", "852****4567"),
        ("+1234567", "*******"),
        ("", ""),
    ],
)
def test_mask_phone(stored, masked):
    assert mask_phone(stored) == masked


@pytest.mark.parametrize(
    ("stored", "shown"),
    [
        ("+8613812345678", "13812345678"),
        ("+14155550123", "+14155550123"),
        ("", ""),
    ],
)
def test_display_phone(stored, shown):
    assert display_phone(stored) == shown
