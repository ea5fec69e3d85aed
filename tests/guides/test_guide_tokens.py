"""guides.services: the guide's exclusive QR / share token (signed, rotatable, revocable)."""

from __future__ import annotations

import pytest
from django.core import signing

from guides.models import GuideToken
from guides.services import (
    guide_token_current,
    guide_token_issue,
    guide_token_resolve,
    guide_token_revoke,
    guide_token_rotate,
)
from retail_crm.errors import ApplicationError
from tests.factories import GuideFactory, UserFactory

pytestmark = pytest.mark.django_db


def test_current_issues_a_token_once_and_then_returns_the_same_one():
    guide = GuideFactory()
    first = guide_token_current(guide=guide)
    assert guide_token_current(guide=guide) == first
    assert GuideToken.objects.filter(guide=guide).count() == 1
    assert guide_token_resolve(first.token).guide == guide


def test_rotation_issues_a_new_current_token_and_the_old_one_still_resolves():
    guide = GuideFactory()
    old = guide_token_current(guide=guide)
    new = guide_token_rotate(guide=guide)
    assert new.token != old.token
    assert guide_token_current(guide=guide) == new
    assert guide_token_resolve(old.token).token == old


def test_a_revoked_token_is_refused_for_new_bindings_but_resolves_for_history():
    guide = GuideFactory()
    token = guide_token_current(guide=guide)
    guide_token_revoke(token=token)
    with pytest.raises(ApplicationError) as refused:
        guide_token_resolve(token.token)
    assert (refused.value.code, refused.value.status) == ("revoked_token", 400)
    assert guide_token_resolve(token.token, allow_revoked=True).guide == guide
    assert guide_token_current(guide=guide) != token  # a fresh one is issued


@pytest.mark.parametrize("value", ["", "abc", "abc:def", "x" * 90])
def test_forged_or_mistyped_tokens_are_refused_without_naming_anyone(value):
    GuideFactory()
    with pytest.raises(ApplicationError) as refused:
        guide_token_resolve(value)
    assert (refused.value.code, refused.value.status) == ("invalid_token", 400)
    assert refused.value.fields == {"token": ["Not a valid guide token."]}


def test_a_correctly_signed_value_that_was_never_issued_is_unknown():
    forged = signing.Signer(salt="guides.token").sign("never-issued")
    with pytest.raises(ApplicationError) as refused:
        guide_token_resolve(forged)
    assert refused.value.fields == {"token": ["Unknown guide token."]}


def test_a_value_signed_for_another_purpose_is_refused():
    guide = GuideFactory()
    raw = guide_token_current(guide=guide).token.rsplit(":", 1)[0]
    other_salt = signing.Signer(salt="something.else").sign(raw)
    with pytest.raises(ApplicationError):
        guide_token_resolve(other_salt)


def test_office_staff_hold_tokens_without_a_guide_row():
    user = UserFactory(username="office-1")
    token = guide_token_issue(staff_user=user)
    resolved = guide_token_resolve(token.token)
    assert resolved.guide is None and resolved.token.staff_user == user
    with pytest.raises(ApplicationError):
        guide_token_issue()
