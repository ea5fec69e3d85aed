"""Reads for staff: member search and detail, always through ``retail_crm.scoping.scoped``.

Personal data: :class:`PhoneVisibility` (and its one-member form
:func:`phone_for_viewer`) is the one place that decides whether a viewer sees a
member's whole phone number. Every staff list, detail page and admin page asks it.

What a staff user sees *about* a member (memberships, bindings, WeCom
friendships, tags, activity) is limited to the brands their scope covers: a
brand A operator reading a member who also shops at brand B sees the member's
brand A side only.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass

from django.db.models import Prefetch, Q, QuerySet, Sum
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from django.utils.translation import pgettext_lazy

from members.models import (
    BrandMembership,
    GuideBinding,
    Member,
    MemberDailyActivity,
    MemberTag,
    PointsEntry,
    TagSource,
    TagValue,
    WeComFriendship,
)
from retail_crm import hooks
from retail_crm.errors import ApplicationError, ErrorCode
from retail_crm.models import Brand, Guide, Store
from retail_crm.phones import display_phone, mask_phone
from retail_crm.scoping import Actor, scoped

RFML_TAG_GROUP = "rfml"  # the tag group the RFML run writes its class tags into
ACTIVITY_DAYS = 30
ACTIVITY_FIELDS = ("product_views", "favourites", "shares", "add_to_carts", "orders_unpaid", "live_watches",
                   "material_views", "try_ons")


# ---------------------------------------------------------------------------- phone visibility

class PhoneVisibility:
    """Who sees whole phone numbers, decided once for a viewer and a batch of members.

    Whole only for the member's currently bound guide (any brand), or for a user
    holding ``members.view_full_phone`` (superusers hold every permission) when
    the member lies in that user's scope; masked (138****1234) for everyone else.
    Two queries at most however many members: one for the viewer's own bindings,
    one for the scope check.
    """

    def __init__(self, *, actor: Actor, user, members: Iterable[Member]):
        self.actor = actor
        self.user = user
        self._member_ids = {member.pk for member in members}
        self._whole: set[int] | None = None

    def _whole_ids(self) -> set[int]:
        if self._whole is None:
            whole: set[int] = set()
            if self.actor.guide_id is not None and self._member_ids:
                whole.update(GuideBinding.objects.filter(member_id__in=self._member_ids, guide_id=self.actor.guide_id,
                                                         ended_at__isnull=True).values_list("member_id", flat=True))
            rest = self._member_ids - whole
            if rest and self._may_see_phones():
                whole.update(scoped(Member.objects.filter(pk__in=rest), self.actor).values_list("pk", flat=True))
            self._whole = whole
        return self._whole

    def _may_see_phones(self) -> bool:
        user = self.user
        if user is None or not getattr(user, "is_authenticated", False) or user.pk != self.actor.user_id:
            return False  # the permission must belong to the same person the scope was built for
        return user.has_perm("members.view_full_phone")

    def covers(self, member: Member) -> bool:
        """Whether ``member`` was in the batch this visibility was built for."""
        return member.pk in self._member_ids

    def sees_whole(self, member: Member) -> bool:
        if not self.covers(member):
            raise ValueError(f"member {member.pk} was not in the batch this visibility was built for")
        return member.pk in self._whole_ids()

    def phone(self, member: Member) -> str:
        if not member.phone:
            return ""
        return display_phone(member.phone) if self.sees_whole(member) else mask_phone(member.phone)


def phone_for_viewer(*, actor: Actor, user, member: Member) -> str:
    """The member's phone as this viewer may see it: whole or 138****1234."""
    return PhoneVisibility(actor=actor, user=user, members=[member]).phone(member)


def guide_phone_visible(*, actor: Actor, user, guide: Guide) -> bool:
    """Whether this viewer sees a guide's own phone whole: the members' rule, with the guide in the bound guide's
    place. Whole for the guide themself, or for a holder of ``members.view_full_phone`` whose scope covers the
    guide; masked for everyone else."""
    if actor.guide_id is not None and actor.guide_id == guide.pk and user is not None and user.pk == actor.user_id:
        return True
    return (PhoneVisibility(actor=actor, user=user, members=[])._may_see_phones()
            and scoped(Guide.objects.filter(pk=guide.pk), actor).exists())


def guide_phone_for_viewer(*, actor: Actor, user, guide: Guide) -> str:
    """A guide's phone as this viewer may see it: whole (138 1234 5678 as stored, without +86) or 138****5678."""
    if not guide.phone:
        return ""
    whole = guide_phone_visible(actor=actor, user=user, guide=guide)
    return display_phone(guide.phone) if whole else mask_phone(guide.phone)


# ---------------------------------------------------------------------------- search

def _invalid(field: str, message: str) -> ApplicationError:
    return ApplicationError(ErrorCode.INVALID, message, fields={field: [message]})


def _visible_brand_ids(actor: Actor) -> QuerySet:
    return scoped(Brand.objects.all(), actor).values("pk")


def tag_values_for(*, actor: Actor, tag: int | tuple[str, str]) -> QuerySet[TagValue]:
    """Tag values the actor can see matching an id or (group code, value code).

    A group code may exist once group-wide and once per brand; all visible matches count.
    """
    values = scoped(TagValue.objects.all(), actor)
    if isinstance(tag, int):
        return values.filter(pk=tag)
    group_code, value_code = tag
    return values.filter(tag_group__code=group_code, code=value_code)


def _for_brand(values: QuerySet[TagValue], brand: Brand | None) -> QuerySet[TagValue]:
    """With a brand filter, a tag or segment means that brand's (or a group-wide) tag group."""
    if brand is None:
        return values
    return values.filter(Q(tag_group__brand=brand) | Q(tag_group__brand__isnull=True))


def member_search(*, actor: Actor, phone: str | None = None, name: str | None = None,
                  tag: int | tuple[str, str] | None = None, segment: str | None = None, guide: str | None = None,
                  store: str | None = None, brand: str | None = None) -> QuerySet[Member]:
    """Live members in the actor's scope matching every given filter, newest first.

    ``phone`` must already be normalised (``retail_crm.phones.normalise_phone``):
    it is matched by equality on the indexed column, never with LIKE; a phone left
    on a merge tombstone finds the member it was merged into. With ``brand``, a tag
    or segment is read from that brand's tag groups (RFML classes differ by brand).
    ``guide`` matches the current binding; ``store`` members who joined there or
    are currently bound to one of its guides. Codes the actor cannot see are refused with a 400, the same
    as codes that do not exist, so a search never reveals what lies outside scope.
    """
    brand_obj = None
    if brand:
        brand_obj = scoped(Brand.objects.filter(code=brand), actor).first()
        if brand_obj is None:
            raise _invalid("brand", "No such brand.")
    members = Member.objects.filter(merged_into__isnull=True)
    if phone:
        # (group, phone) is the unique index: naming the group lets the database use it for the equality.
        same_phone = Member.objects.filter(phone=phone)
        if actor.group_id is not None:
            same_phone = same_phone.filter(group_id=actor.group_id)
        # Resolved to ids first (one or two rows), so the search itself starts from the primary key.
        found = {live_id or pk for pk, live_id in same_phone.values_list("pk", "merged_into_id")}
        members = members.filter(pk__in=found)
    if name:
        members = members.filter(name__icontains=name)
    if tag is not None:
        values = _for_brand(tag_values_for(actor=actor, tag=tag), brand_obj)
        if not values.exists():
            raise _invalid("tag", "No such tag value.")
        members = members.filter(pk__in=MemberTag.objects.filter(tag_value__in=values).values("member_id"))
    if segment:
        # RFML writes one "rfml" tag group per brand. A known class no run has tagged yet matches no one.
        values = _for_brand(scoped(TagValue.objects.filter(tag_group__code=RFML_TAG_GROUP, code=segment), actor),
                            brand_obj)
        members = members.filter(pk__in=MemberTag.objects.filter(tag_value__in=values).values("member_id"))
    if guide:
        guide_obj = scoped(Guide.objects.filter(code=guide), actor).first()
        if guide_obj is None:
            raise _invalid("guide", "No such guide.")
        members = members.filter(pk__in=GuideBinding.objects.filter(guide=guide_obj, ended_at__isnull=True)
                                 .values("member_id"))
    if store:
        store_obj = scoped(Store.objects.filter(code=store), actor).first()
        if store_obj is None:
            raise _invalid("store", "No such store.")
        members = members.filter(
            Q(pk__in=BrandMembership.objects.filter(store=store_obj).values("member_id"))
            | Q(pk__in=GuideBinding.objects.filter(guide__store=store_obj, ended_at__isnull=True).values("member_id")))
    if brand_obj is not None:
        members = members.filter(pk__in=BrandMembership.objects.filter(brand=brand_obj).values("member_id"))

    visible_brands = _visible_brand_ids(actor)
    return scoped(members, actor).order_by("-created_at", "-pk").prefetch_related(
        Prefetch("memberships", to_attr="visible_memberships",
                 queryset=BrandMembership.objects.filter(brand__in=visible_brands).select_related("brand")
                 .order_by("brand__code")),
        Prefetch("bindings", to_attr="current_bindings",
                 queryset=GuideBinding.objects.filter(brand__in=visible_brands, ended_at__isnull=True)
                 .select_related("guide").order_by("guide__code")),
    )


# ---------------------------------------------------------------------------- detail

@dataclass(frozen=True)
class MembershipRow:
    membership: BrandMembership
    points: int


@dataclass(frozen=True)
class ActivitySummary:
    """Behaviour counters summed over the last ``days`` local days (today included)."""

    since: dt.date
    days: int
    counts: dict[str, int]


@dataclass(frozen=True)
class MemberDetail:
    """Everything a staff user may read about one member, limited to the brands of their scope."""

    member: Member
    memberships: list[MembershipRow]
    bindings: list[GuideBinding]
    wecom_friendships: list[WeComFriendship]
    tags: list[MemberTag]
    activity: ActivitySummary
    preferences: list[PreferenceRow] = ()  # stated beside inferred (member_preferences)


hooks.declare(
    "member_journeys",
    "member: Member, brand_ids: list[int] | QuerySet -> list of journey states (marketing.selectors."
    "MemberJourneyState: journey_name, status_label, next_step_label, next_run_at, entered_at, exit_reason_label, "
    "…), the member's journeys of those brands, latest entry first")


def member_journey_states(*, member: Member, brand_ids) -> list:
    """The member's journeys of ``brand_ids`` (the brands the viewer may see), latest entry first, as the
    marketing app answers the ``member_journeys`` hook ([] when no app answers)."""
    states = [state for answer in hooks.call_all("member_journeys", member=member, brand_ids=brand_ids)
              for state in answer]
    return sorted(states, key=lambda state: state.entered_at, reverse=True)


def member_get(*, actor: Actor, member_id: int) -> Member:
    """One member in the actor's scope, or a 404 that does not say whether it exists elsewhere."""
    member = scoped(Member.objects.filter(pk=member_id), actor).select_related("merged_into").first()
    if member is None:
        raise ApplicationError(ErrorCode.NOT_FOUND, "No such member.", status=404)
    return member


def member_detail(*, actor: Actor, member_id: int, today: dt.date | None = None) -> MemberDetail:
    """Profile, memberships with points balances, binding history, WeCom friendships, tags and activity.

    A fixed number of queries (one per kind of row), whatever the member's history.
    """
    member = member_get(actor=actor, member_id=member_id)
    brands = _visible_brand_ids(actor)
    memberships = list(BrandMembership.objects.filter(member=member, brand__in=brands)
                       .select_related("brand", "store").order_by("joined_at", "pk"))
    balances = dict(PointsEntry.objects.filter(member=member, brand__in=brands).values("brand")
                    .annotate(total=Sum("delta")).values_list("brand", "total"))
    bindings = list(GuideBinding.objects.filter(member=member, brand__in=brands)
                    .select_related("brand", "guide", "store").order_by("started_at", "pk"))
    friendships = list(WeComFriendship.objects.filter(member=member, guide__store__brand__in=brands)
                       .select_related("guide").order_by("added_at", "pk"))
    tags = list(MemberTag.objects.filter(member=member, tag_value__in=scoped(TagValue.objects.all(), actor))
                .select_related("tag_value", "tag_value__tag_group", "tag_value__tag_group__brand")
                .order_by("tag_value__tag_group__code", "tag_value__tag_group__brand__code", "tag_value__sort",
                          "tag_value__code"))
    today = today or timezone.localdate()
    since = today - dt.timedelta(days=ACTIVITY_DAYS - 1)
    sums = MemberDailyActivity.objects.filter(member=member, brand__in=brands, day__gte=since, day__lte=today) \
        .aggregate(**{field: Sum(field) for field in ACTIVITY_FIELDS})
    return MemberDetail(
        member=member,
        memberships=[MembershipRow(m, balances.get(m.brand_id) or 0) for m in memberships],
        bindings=bindings,
        wecom_friendships=friendships,
        tags=tags,
        activity=ActivitySummary(since=since, days=ACTIVITY_DAYS,
                                 counts={field: sums[field] or 0 for field in ACTIVITY_FIELDS}),
        preferences=member_preferences(member=member, tags=tags),
    )


# ---------------------------------------------------------------------------- declared vs inferred preferences

#: (profile field, its label, the standard tag group whose rule infers it from purchases)
PREFERENCE_FIELDS = (
    ("clothing_size", _("Clothing size"), "clothing-size"),
    ("shoe_size", _("Shoe size"), "shoe-size"),
    ("preferred_colours", _("Colours"), "colour-preference"),
    ("preferred_materials", pgettext_lazy("fabric", "Materials"), "material-preference"),
)


@dataclass(frozen=True)
class InferredValue:
    """A value a purchase rule inferred for the member, with the brand and the rule's reason."""

    value: str
    brand_code: str
    reason: str


@dataclass(frozen=True)
class PreferenceRow:
    """One preference as the member stated it (profile) beside what their purchases say (rule tags)."""

    field: str
    label: str
    declared: list[str]
    inferred: list[InferredValue]

    @property
    def disagrees(self) -> bool:
        """The member stated a value and the purchases infer only other values."""
        return bool(self.declared and self.inferred) and not {i.value for i in self.inferred} & set(self.declared)


def member_preferences(*, member: Member, tags: Iterable[MemberTag]) -> list[PreferenceRow]:
    """The member's stated sizes, colours and materials beside the values their purchases infer.

    ``tags`` are the member's tags as ``member_detail`` reads them (values and groups selected); only
    rule tags count as inferred: a hand tag is an operator's statement, not an inference.
    """
    inferred: dict[str, list[InferredValue]] = {}
    for tag in tags:
        group = tag.tag_value.tag_group
        if tag.source == TagSource.RULE and group.brand_id is not None:
            inferred.setdefault(group.code, []).append(
                InferredValue(value=tag.tag_value.label, brand_code=group.brand.code, reason=tag.reason_text))
    rows = []
    for field, label, group_code in PREFERENCE_FIELDS:
        declared = getattr(member, field)
        declared = [str(v) for v in declared if v] if isinstance(declared, list) else ([declared] if declared else [])
        rows.append(PreferenceRow(field=field, label=str(label), declared=declared,
                                  inferred=inferred.get(group_code, [])))
    return rows
