"""Event subscribers of the members app (subscribed in ``MembersConfig.ready``); each is safe to run twice.

Rule tags are recomputed from the member's orders, so running one twice gives the same tags.
"""

from __future__ import annotations

from members import behaviour_tags, tags
from members.models import Member
from retail_crm.models import Brand


def member_tags_after_order(*, member_id: int | None, brand_id: int) -> None:
    """A member's order was paid or refunded: recompute their rule tags of that brand (follows merges)."""
    if member_id is None:
        return
    member = Member.objects.filter(pk=member_id).first()
    brand = Brand.objects.filter(pk=brand_id).first()
    if member is None or brand is None:
        return
    while member.merged_into_id is not None:
        member = Member.objects.get(pk=member.merged_into_id)
    tags.member_tags_recompute(member, brand)


def brand_tags_after_import(*, brand_id: int) -> None:
    """Orders were imported for a brand: recompute its rule tags (set-based, the nightly job's work)."""
    brand = Brand.objects.filter(pk=brand_id).first()
    if brand is not None:
        tags.brand_tags_recompute(brand)


def behaviour_tags_after_events(*, brand_id: int, member_ids: list[int]) -> None:
    """A batch of behaviour events was stored: recompute these members' behaviour tags of that brand (nothing
    to do, and one query, when the brand has no active behaviour rule; follows merges)."""
    brand = Brand.objects.filter(pk=brand_id).first()
    if brand is None or not behaviour_tags.brand_has_rules(brand_id):
        return
    behaviour_tags.members_behaviour_tags_recompute(brand=brand,
                                                    member_ids=behaviour_tags.resolve_member_ids(member_ids))
