"""A guide's own phone on the admin guide pages follows the members' rule (members.selectors.PhoneVisibility):
whole for the guide themself and for staff holding ``members.view_full_phone`` whose scope covers the guide;
masked (139****0011) for every other role, who then cannot change it either. The world is
tests/factories_member_staff.py: g-e1-1 works in store a-e1 (brand-a, region east).
"""

import pytest
from django.contrib.auth import get_user_model

from tests.factories_member_staff import build_member_world, world_user

pytestmark = pytest.mark.django_db

ADMIN = "/admin/retail_crm/guide/"
WHOLE, MASKED = "13900000011", "139****0011"


@pytest.fixture
def world():
    world = build_member_world()
    guide = world.guides["g-e1-1"]
    guide.phone = "+8613900000011"
    guide.save(update_fields=["phone"])
    return world


def change_page(client, user, guide):
    client.force_login(user)
    return client.get(f"{ADMIN}{guide.pk}/change/")


@pytest.mark.parametrize(("key", "full_phone", "whole"), [
    ("g-e1-1", False, True),  # the guide's own page (view only for a guide)
    ("store-a-e1", False, False),
    ("store-a-e1", True, True),
    ("region-east", False, False),
    ("region-east", True, True),
    ("brand-a", False, False),
    ("brand-a", True, True),
    ("hq", False, False),
    ("hq", True, True),
])
def test_admin_guide_change_page_phone_by_role(world, client, key, full_phone, whole):
    response = change_page(client, world_user(world, key, full_phone=full_phone), world.guides["g-e1-1"])

    assert response.status_code == 200
    html = response.content.decode()
    shown, hidden = (WHOLE, MASKED) if whole else (MASKED, WHOLE)
    assert shown in html
    assert hidden not in html
    assert ("phone" in response.context["adminform"].form.fields) is (whole and key != "g-e1-1")


def test_superuser_sees_the_whole_phone(world, client):
    root = get_user_model().objects.create_superuser("root", "root@example.com", "pw")
    html = change_page(client, root, world.guides["g-e1-1"]).content.decode()
    assert WHOLE in html
    assert MASKED not in html


def test_full_phone_permission_outside_the_scope_shows_nothing(world, client):
    response = change_page(client, world_user(world, "brand-b", full_phone=True), world.guides["g-e1-1"])
    assert response.status_code == 302
    assert response.url == "/admin/"


def test_a_masked_manager_saving_the_guide_keeps_the_phone(world, client):
    guide = world.guides["g-e1-1"]
    client.force_login(world_user(world, "store-a-e1"))
    response = client.post(f"{ADMIN}{guide.pk}/change/", {
        "code": guide.code, "name": "林小雨", "store": guide.store_id, "role": guide.role, "user": "",
        "hired_at": "2024-01-01", "left_at": ""})
    assert response.status_code == 302, response.context["adminform"].form.errors
    guide.refresh_from_db()
    assert (guide.name, guide.phone) == ("林小雨", "+8613900000011")


def test_the_add_page_lets_a_manager_type_a_new_guides_phone(world, client):
    client.force_login(world_user(world, "store-a-e1"))
    response = client.get(f"{ADMIN}add/")
    assert response.status_code == 200
    assert "phone" in response.context["adminform"].form.fields
