"""Members: one identity per person per group, memberships per brand, guide bindings."""

from __future__ import annotations

from decimal import Decimal

from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _
from django.utils.translation import pgettext_lazy

from members.tag_labels import STANDARD_GROUP_NAMES, TagReason, tag_group_label, tag_reason_text, tag_value_label
from retail_crm.scoping import ScopePaths


def _member_store_rule(actor) -> Q:
    # A store sees members who joined there and members currently bound to one of its guides.
    return Q(memberships__store_id=actor.store_id) | Q(bindings__store_id=actor.store_id,
                                                        bindings__ended_at__isnull=True)


def _member_region_rule(actor) -> Q:
    # Like the store rule, one level up: joined in the region, or bound to a guide of one of its stores.
    return Q(memberships__store__region_id=actor.region_id) | Q(bindings__store__region_id=actor.region_id,
                                                                 bindings__ended_at__isnull=True)


def _member_guide_rule(actor) -> Q:
    # A guide sees only the members currently bound to them.
    return Q(bindings__guide_id=actor.guide_id, bindings__ended_at__isnull=True)


class JoinChannel(models.TextChoices):
    STORE_CARD = "store_card", _("Store card opening")
    PAY_AS_JOIN = "pay_as_join", _("Payment is membership")
    GUIDE_QR = "guide_qr", _("Guide QR scan")
    LIVESTREAM = "livestream", _("Livestream")
    PARCEL_CARD = "parcel_card", _("Parcel card")
    COMMUNITY = "community", _("Community / group buy")
    IMPORT = "import", _("Import")


class Member(models.Model):
    """A person known to the group, found by phone or WeChat ids; profile data is personal data."""

    class Gender(models.TextChoices):
        UNKNOWN = "", _("Unknown")
        FEMALE = "F", _("Female")
        MALE = "M", _("Male")

    group = models.ForeignKey("retail_crm.RetailGroup", on_delete=models.PROTECT, related_name="members")
    code = models.CharField(_("member code"), max_length=40)
    phone = models.CharField(_("phone"), max_length=20, blank=True, help_text=_("Stored as +86…; masked in lists"))
    unionid = models.CharField(max_length=64, blank=True)
    openid = models.CharField(max_length=64, blank=True)
    # The member's openid in the group's official account (公众号), linked through the unionid when the
    # member follows it; template messages need it. Cleared when WeChat says the member no longer follows.
    oa_openid = models.CharField(max_length=64, blank=True)
    name = models.CharField(_("name"), max_length=50, blank=True)
    gender = models.CharField(_("gender"), max_length=1, choices=Gender.choices, blank=True, default="")
    birthday = models.DateField(_("birthday"), null=True, blank=True)
    address = models.CharField(_("address"), max_length=200, blank=True)
    clothing_size = models.CharField(_("clothing size"), max_length=10, blank=True)
    shoe_size = models.CharField(_("shoe size"), max_length=10, blank=True)
    preferred_colours = models.JSONField(_("preferred colours"), default=list, blank=True)
    preferred_styles = models.JSONField(_("preferred styles"), default=list, blank=True)
    preferred_materials = models.JSONField(_("preferred materials"), default=list, blank=True)
    created_at = models.DateTimeField(_("created at"), db_index=True)
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)
    merged_into = models.ForeignKey("self", on_delete=models.PROTECT, null=True, blank=True, related_name="+",
                                    help_text=_("Set when this record was merged into another member"))

    scope_paths = ScopePaths(group="group", brand="memberships__brand", region=_member_region_rule,
                             store=_member_store_rule, guide=_member_guide_rule, multi=True)

    class Meta:
        verbose_name = _("member")
        verbose_name_plural = _("members")
        constraints = [
            models.UniqueConstraint(fields=["group", "code"], name="member_code_unique_per_group"),
            models.UniqueConstraint(fields=["group", "phone"], condition=~Q(phone=""),
                                    name="member_phone_unique_per_group"),
            models.UniqueConstraint(fields=["group", "unionid"], condition=~Q(unionid=""),
                                    name="member_unionid_unique_per_group"),
            models.UniqueConstraint(fields=["group", "openid"], condition=~Q(openid=""),
                                    name="member_openid_unique_per_group"),
            models.UniqueConstraint(fields=["group", "oa_openid"], condition=~Q(oa_openid=""),
                                    name="member_oa_openid_unique_per_group"),
        ]
        permissions = [
            # Granted to roles (auth groups) that may see whole phone numbers; the bound guide always may.
            ("view_full_phone", _("Can see members' whole phone numbers")),
        ]

    def __str__(self) -> str:
        return self.code


class BrandMembership(models.Model):
    """A member's membership of one brand: when, how and where they joined."""

    member = models.ForeignKey(Member, on_delete=models.CASCADE, related_name="memberships")
    brand = models.ForeignKey("retail_crm.Brand", on_delete=models.PROTECT, related_name="memberships")
    joined_at = models.DateTimeField(_("joined at"))
    join_channel = models.CharField(_("join channel"), max_length=20, choices=JoinChannel.choices)
    store = models.ForeignKey("retail_crm.Store", on_delete=models.PROTECT, null=True, blank=True,
                              related_name="memberships", help_text=_("Store where the member joined"))
    live_session = models.ForeignKey("livestream.LiveSession", on_delete=models.SET_NULL, null=True, blank=True,
                                     related_name="joined_memberships",
                                     help_text=_("The livestream the member joined through, if any"))
    tier = models.CharField(_("tier"), max_length=20, default="standard")

    scope_paths = ScopePaths(group="brand__group", brand="brand", region="store__region", store="store",
                             guide=lambda a: Q(member__bindings__guide_id=a.guide_id,
                                               member__bindings__ended_at__isnull=True,
                                               member__bindings__brand=models.F("brand")),
                             multi=True)

    class Meta:
        verbose_name = _("brand membership")
        verbose_name_plural = _("brand memberships")
        constraints = [models.UniqueConstraint(fields=["member", "brand"], name="one_membership_per_brand")]
        indexes = [models.Index(fields=["brand", "joined_at"])]

    def __str__(self) -> str:
        return f"{self.member.code}@{self.brand.code}"


class GuideBinding(models.Model):
    """A period in which a guide is the member's exclusive guide for a brand (专属导购).

    History is kept: a rebinding ends the current row and starts a new one. At
    most one open row per member and brand, enforced by the database.
    """

    class Reason(models.TextChoices):
        QR_SCAN = "qr_scan", _("QR scan")
        SHARE_LINK = "share_link", _("Share link")
        STORE_PURCHASE = "store_purchase", _("Store purchase")
        TRANSFER = "transfer", _("Transfer")
        GUIDE_LEFT = "guide_left", _("Guide left")
        SERVICE_LAPSE = "service_lapse", _("Service lapse")
        IMPORT = "import", _("Import")

    member = models.ForeignKey(Member, on_delete=models.CASCADE, related_name="bindings")
    brand = models.ForeignKey("retail_crm.Brand", on_delete=models.PROTECT, related_name="+")
    guide = models.ForeignKey("retail_crm.Guide", on_delete=models.PROTECT, related_name="bindings")
    store = models.ForeignKey("retail_crm.Store", on_delete=models.PROTECT, related_name="+",
                              help_text=_("The guide's store when the binding started"))
    started_at = models.DateTimeField(_("started at"))
    ended_at = models.DateTimeField(_("ended at"), null=True, blank=True)
    reason = models.CharField(_("reason"), max_length=20, choices=Reason.choices)
    last_served_at = models.DateTimeField(_("last served at"), null=True, blank=True,
                                          help_text=_("Last contact by the guide; drives the service-lapse rule"))

    scope_paths = ScopePaths(group="brand__group", brand="brand", region="store__region", store="store",
                             guide="guide")

    class Meta:
        verbose_name = _("guide binding")
        verbose_name_plural = _("guide bindings")
        constraints = [
            models.UniqueConstraint(fields=["member", "brand"], condition=Q(ended_at__isnull=True),
                                    name="one_open_binding_per_member_brand"),
        ]
        indexes = [models.Index(fields=["guide", "ended_at"])]

    def __str__(self) -> str:
        return f"{self.member_id}→{self.guide_id}"


class BindingPolicy(models.Model):
    """Per-brand binding rules. Without a row, the defaults below apply (DOMAIN.md)."""

    brand = models.OneToOneField("retail_crm.Brand", on_delete=models.CASCADE, related_name="binding_policy")
    protect_first_binding = models.BooleanField(
        _("protect the first binding"), default=True,
        help_text=_("A purchase or scan through another guide does not move the member"))
    service_lapse_days = models.PositiveIntegerField(
        _("service lapse (days)"), null=True, blank=True, default=90,
        help_text=_("After this many days without contact the member may be rebound; empty: never"))

    scope_paths = ScopePaths(group="brand__group", brand="brand")

    class Meta:
        verbose_name = _("binding policy")
        verbose_name_plural = _("binding policies")

    def __str__(self) -> str:
        return f"{self.brand_id}"


class PointsEntry(models.Model):
    """One immutable movement of a member's points in one brand; the balance is the sum."""

    class Reason(models.TextChoices):
        EARN = "earn", _("Earned on a paid order")
        SPEND = "spend", _("Spent at checkout")
        REVERSE = "reverse", _("Reversed by a refund")
        RELEASE = "release", _("Spent points returned (order cancelled, expired or refunded)")
        ADJUST = "adjust", _("Manual adjustment")
        EXPIRE = "expire", _("Expired")
        IMPORT = "import", _("Import")

    member = models.ForeignKey(Member, on_delete=models.PROTECT, related_name="points_entries")
    brand = models.ForeignKey("retail_crm.Brand", on_delete=models.PROTECT, related_name="+")
    delta = models.IntegerField(_("points"))
    reason = models.CharField(_("reason"), max_length=10, choices=Reason.choices)
    order = models.ForeignKey("mall.Order", on_delete=models.PROTECT, null=True, blank=True, related_name="+")
    refund = models.ForeignKey("mall.Refund", on_delete=models.PROTECT, null=True, blank=True, related_name="+",
                               help_text=_("The refund that reversed or returned these points"))
    note = models.CharField(_("note"), max_length=200, blank=True)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)

    scope_paths = ScopePaths(group="brand__group", brand="brand",
                             region=lambda a: Q(member__memberships__store__region_id=a.region_id),
                             store=lambda a: Q(member__memberships__store_id=a.store_id),
                             guide=lambda a: Q(member__bindings__guide_id=a.guide_id,
                                               member__bindings__ended_at__isnull=True), multi=True)

    class Meta:
        verbose_name = _("points entry")
        verbose_name_plural = _("points entries")
        constraints = [
            # An order earns (or is reversed, or spends) once: redelivered events cannot double-credit.
            models.UniqueConstraint(fields=["member", "brand", "order", "reason"],
                                    condition=Q(order__isnull=False, refund__isnull=True),
                                    name="points_once_per_order_and_reason"),
            # Each refund reverses earned points (and returns spent ones) once.
            models.UniqueConstraint(fields=["refund", "reason"], condition=Q(refund__isnull=False),
                                    name="points_once_per_refund_and_reason"),
            models.CheckConstraint(condition=~Q(delta=0), name="points_entry_not_zero"),
        ]
        indexes = [models.Index(fields=["member", "brand"])]

    def __str__(self) -> str:
        return f"{self.member_id}@{self.brand_id}: {self.delta:+d}"


class PointsBalance(models.Model):
    """A member's points balance in one brand: the sum of their ledger entries there, kept with every entry.

    A projection, not a second truth: ``points_post`` adds each entry's delta in the entry's transaction, and
    ``points_balances_rebuild`` recomputes it from the ledger after writes around it (merges, seeds, bulk loads).
    It exists so that "members with at least / at most N points" reads one row per member (an index range on
    (brand, balance) when few qualify) instead of summing the whole ledger. There is a row for every (member,
    brand) with entries, even when they sum to 0; a member without a row has 0 points. It may be negative: a
    refund takes back points already spent.
    """

    # The row only mirrors entries, which protect their member and brand: it goes with them. No index of
    # their own: the unique (member, brand) serves look-ups by member, the range index those by brand.
    member = models.ForeignKey(Member, on_delete=models.CASCADE, related_name="points_balances", db_index=False)
    brand = models.ForeignKey("retail_crm.Brand", on_delete=models.CASCADE, related_name="+", db_index=False)
    balance = models.IntegerField(_("points balance"))

    scope_paths = ScopePaths(group="brand__group", brand="brand",
                             region=lambda a: Q(member__memberships__store__region_id=a.region_id),
                             store=lambda a: Q(member__memberships__store_id=a.store_id),
                             guide=lambda a: Q(member__bindings__guide_id=a.guide_id,
                                               member__bindings__ended_at__isnull=True), multi=True)

    class Meta:
        verbose_name = _("points balance")
        verbose_name_plural = _("points balances")
        constraints = [
            models.UniqueConstraint(fields=["member", "brand"], name="one_points_balance_per_member_brand"),
        ]
        # Audiences: WHERE brand_id = ? AND balance > ? (or < ?), member ids read from the index alone.
        indexes = [models.Index(fields=["brand", "balance", "member"], name="points_balance_brand_range")]

    def __str__(self) -> str:
        return f"{self.member_id}@{self.brand_id}: {self.balance}"


class MemberMerge(models.Model):
    """Audit of one merge: who was absorbed into whom, what moved, who did it."""

    survivor = models.ForeignKey(Member, on_delete=models.PROTECT, related_name="merges")
    absorbed = models.ForeignKey(Member, on_delete=models.PROTECT, related_name="+")
    absorbed_snapshot = models.JSONField(_("absorbed member before the merge"))
    moved = models.JSONField(_("rows moved, per kind"))
    reason = models.CharField(_("reason"), max_length=200)
    merged_by = models.ForeignKey("auth.User", on_delete=models.PROTECT, null=True, blank=True, related_name="+")
    merged_at = models.DateTimeField(_("merged at"), auto_now_add=True)

    scope_paths = ScopePaths(group="survivor__group")

    class Meta:
        verbose_name = _("member merge")
        verbose_name_plural = _("member merges")

    def __str__(self) -> str:
        return f"{self.absorbed_id} → {self.survivor_id}"


def _by_guide_store(prefix: str) -> ScopePaths:
    """Scope for rows that hang off a guide (``prefix`` is the lookup to that guide)."""
    return ScopePaths(group=f"{prefix}__store__brand__group", brand=f"{prefix}__store__brand",
                      region=f"{prefix}__store__region", store=f"{prefix}__store", guide=prefix)


class WeComFriendship(models.Model):
    """The member is a WeCom (企业微信) external contact of a guide: since when, removed when.

    Removing and re-adding keeps history: a removal closes the open row, a
    re-add opens a new one. At most one open row per member and guide.
    """

    class Source(models.TextChoices):
        CALLBACK = "callback", _("WeCom callback")
        API = "api", _("Staff API")
        IMPORT = "import", _("Import")

    member = models.ForeignKey(Member, on_delete=models.CASCADE, related_name="wecom_friendships")
    guide = models.ForeignKey("retail_crm.Guide", on_delete=models.PROTECT, related_name="wecom_friendships")
    external_userid = models.CharField(_("WeCom external user id"), max_length=64, blank=True)
    added_at = models.DateTimeField(_("added at"))
    removed_at = models.DateTimeField(_("removed at"), null=True, blank=True)
    source = models.CharField(_("source"), max_length=10, choices=Source.choices)

    scope_paths = _by_guide_store("guide")

    class Meta:
        verbose_name = _("WeCom friendship")
        verbose_name_plural = _("WeCom friendships")
        constraints = [
            models.UniqueConstraint(fields=["member", "guide"], condition=Q(removed_at__isnull=True),
                                    name="one_open_wecom_friendship_per_member_guide"),
            models.CheckConstraint(condition=Q(removed_at__isnull=True) | Q(removed_at__gte=models.F("added_at")),
                                   name="wecom_removed_after_added"),
        ]
        indexes = [models.Index(fields=["guide", "removed_at"]), models.Index(fields=["external_userid"])]

    def __str__(self) -> str:
        return f"{self.member_id}~{self.guide_id}"


class EventKind(models.TextChoices):
    PRODUCT_VIEW = "product_view", _("Product view")
    FAVOURITE = "favourite", _("Favourite")
    SHARE = "share", _("Share")
    ADD_TO_CART = "add_to_cart", _("Add to cart")
    ORDER_UNPAID = "order_unpaid", _("Order created, unpaid")
    LIVE_WATCH = "live_watch", _("Livestream watch")
    MATERIAL_VIEW = "material_view", _("Material view")
    TRY_ON = "try_on", _("Tried on in store")


class BehaviourEvent(models.Model):
    """One raw behaviour event from the mini-program, by a member or an anonymous visitor.

    Raw rows are kept for a retention period; segmentation and the dashboard
    read the daily per-member counters (MemberDailyActivity) built from them.
    ``client_event_id`` lets a client resend a batch without double-counting.
    """

    brand = models.ForeignKey("retail_crm.Brand", on_delete=models.PROTECT, related_name="+")
    member = models.ForeignKey(Member, on_delete=models.CASCADE, null=True, blank=True, related_name="events")
    visitor_id = models.CharField(_("anonymous visitor id"), max_length=64, blank=True)
    kind = models.CharField(_("kind"), max_length=20, choices=EventKind.choices)
    occurred_at = models.DateTimeField(_("occurred at"))
    received_at = models.DateTimeField(_("received at"), auto_now_add=True)
    object_type = models.CharField(_("object type"), max_length=20, blank=True)
    object_id = models.CharField(_("object id"), max_length=64, blank=True)
    share_token = models.CharField(_("share token"), max_length=100, blank=True)
    guide = models.ForeignKey("retail_crm.Guide", on_delete=models.SET_NULL, null=True, blank=True,
                              related_name="+", help_text=_("The sharing guide, resolved from the share token"))
    client_event_id = models.CharField(_("client event id"), max_length=64, blank=True)
    store = models.ForeignKey("retail_crm.Store", on_delete=models.SET_NULL, null=True, blank=True,
                              related_name="+", db_index=False,
                              help_text=_("The store of an in-store event (a try-on the guide recorded)"))

    scope_paths = ScopePaths(group="brand__group", brand="brand", region="guide__store__region",
                             store="guide__store", guide="guide")

    class Meta:
        verbose_name = _("behaviour event")
        verbose_name_plural = _("behaviour events")
        constraints = [
            models.CheckConstraint(condition=Q(member__isnull=False) | ~Q(visitor_id=""),
                                   name="event_has_member_or_visitor"),
            models.UniqueConstraint(fields=["brand", "client_event_id"], condition=~Q(client_event_id=""),
                                    name="event_client_id_unique_per_brand"),
        ]
        indexes = [
            models.Index(fields=["occurred_at"]),
            models.Index(fields=["member", "occurred_at"]),
            models.Index(fields=["guide", "occurred_at"]),
            models.Index(fields=["share_token"], condition=~Q(share_token=""), name="event_share_token_idx"),
            # Audiences: "viewed / favourited / carted these products N times in the last days".
            models.Index(fields=["brand", "kind", "object_id", "occurred_at"], name="event_object_kind_time"),
        ]

    def __str__(self) -> str:
        return f"{self.kind}@{self.occurred_at:%Y-%m-%d %H:%M}"


class MemberDailyActivity(models.Model):
    """Per member, brand and local day: how many events of each kind (built from raw events)."""

    member = models.ForeignKey(Member, on_delete=models.CASCADE, related_name="daily_activity")
    brand = models.ForeignKey("retail_crm.Brand", on_delete=models.PROTECT, related_name="+")
    day = models.DateField(_("day"))
    product_views = models.PositiveIntegerField(default=0)
    favourites = models.PositiveIntegerField(default=0)
    shares = models.PositiveIntegerField(default=0)
    add_to_carts = models.PositiveIntegerField(default=0)
    orders_unpaid = models.PositiveIntegerField(default=0)
    live_watches = models.PositiveIntegerField(default=0)
    material_views = models.PositiveIntegerField(default=0)
    try_ons = models.PositiveIntegerField(default=0)

    scope_paths = ScopePaths(group="brand__group", brand="brand",
                             region=lambda a: Q(member__memberships__store__region_id=a.region_id),
                             store=lambda a: Q(member__memberships__store_id=a.store_id),
                             guide=lambda a: Q(member__bindings__guide_id=a.guide_id,
                                               member__bindings__ended_at__isnull=True), multi=True)

    class Meta:
        verbose_name = _("member daily activity")
        verbose_name_plural = _("member daily activity")
        constraints = [models.UniqueConstraint(fields=["member", "brand", "day"], name="one_activity_row_per_day")]
        indexes = [models.Index(fields=["brand", "day"])]

    def __str__(self) -> str:
        return f"{self.member_id}@{self.brand_id} {self.day}"


class MemberToken(models.Model):
    """A mini-program session: the bearer token a member's front end sends (stored hashed)."""

    member = models.ForeignKey(Member, on_delete=models.CASCADE, related_name="tokens")
    key_hash = models.CharField(max_length=64, unique=True)
    openid = models.CharField(max_length=64, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField()
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name = _("member token")
        verbose_name_plural = _("member tokens")
        indexes = [models.Index(fields=["member", "expires_at"])]

    def __str__(self) -> str:
        return f"token of {self.member_id}"


def _group_or_own_brand(actor) -> Q:
    # Group-wide definitions are visible to everyone in the group; brand ones to that brand's staff.
    return Q(group_id=actor.group_id, brand__isnull=True) | Q(brand_id=actor.brand_id)


def _group_or_brand_of(level: str):
    def rule(actor) -> Q:
        brand_ids = Q(**{f"stores__{'pk' if level == 'store' else level}": getattr(actor, f"{level}_id")})
        from retail_crm.models import Brand

        return Q(group_id=actor.group_id, brand__isnull=True) | Q(brand__in=Brand.objects.filter(brand_ids))
    return rule


class TagGroup(models.Model):
    """A group of tag values (标签组), e.g. "shoe size" or "RFML class"; group-wide or for one brand."""

    group = models.ForeignKey("retail_crm.RetailGroup", on_delete=models.PROTECT, related_name="tag_groups")
    brand = models.ForeignKey("retail_crm.Brand", on_delete=models.PROTECT, null=True, blank=True,
                              related_name="tag_groups", help_text=_("Empty: the tag group is group-wide"))
    code = models.SlugField(_("code"), max_length=40)
    name = models.CharField(_("name"), max_length=60)
    multi_valued = models.BooleanField(_("several values per member"), default=False,
                                       help_text=_("Off: a member holds at most one value of this group"))
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)

    scope_paths = ScopePaths(group="group", brand=_group_or_own_brand, region=_group_or_brand_of("region"),
                             store=_group_or_brand_of("store"),
                             guide=lambda a: Q(group_id=a.group_id, brand__isnull=True)
                             | Q(brand__stores__guides=a.guide_id), multi=True)

    class Meta:
        verbose_name = _("tag group")
        verbose_name_plural = _("tag groups")
        constraints = [
            models.UniqueConstraint(fields=["group", "code"], condition=Q(brand__isnull=True),
                                    name="tag_group_code_unique_group_wide"),
            models.UniqueConstraint(fields=["brand", "code"], condition=Q(brand__isnull=False),
                                    name="tag_group_code_unique_per_brand"),
        ]

    def __str__(self) -> str:
        return self.label

    @property
    def label(self) -> str:
        """The name in the viewer's language (standard groups by code; staff-made groups as typed)."""
        return tag_group_label(code=self.code, name=self.name, brand_id=self.brand_id)


class TagValue(models.Model):
    """One value of a tag group (标签值), e.g. "38" in shoe size."""

    tag_group = models.ForeignKey(TagGroup, on_delete=models.CASCADE, related_name="values")
    code = models.CharField(_("code"), max_length=60)
    name = models.CharField(_("name"), max_length=60)
    sort = models.IntegerField(_("sort order"), default=0)

    scope_paths = ScopePaths(group="tag_group__group", brand=lambda a: _prefixed(_group_or_own_brand(a)),
                             region=lambda a: _prefixed(_group_or_brand_of("region")(a)),
                             store=lambda a: _prefixed(_group_or_brand_of("store")(a)),
                             guide=lambda a: Q(tag_group__group_id=a.group_id, tag_group__brand__isnull=True)
                             | Q(tag_group__brand__stores__guides=a.guide_id), multi=True)

    class Meta:
        verbose_name = _("tag value")
        verbose_name_plural = _("tag values")
        ordering = ["tag_group_id", "sort", "code"]
        constraints = [models.UniqueConstraint(fields=["tag_group", "code"], name="tag_value_code_unique")]

    def __str__(self) -> str:
        return f"{self.tag_group.label}: {self.label}"

    @property
    def label(self) -> str:
        """The value's name in the viewer's language (RFML classes, channels, fixed words by code)."""
        group = self.tag_group
        return tag_value_label(group_code=group.code, code=self.code, name=self.name, group_brand_id=group.brand_id)


def _prefixed(q: Q, prefix: str = "tag_group__") -> Q:
    """Re-root a Q written for TagGroup so it applies through ``prefix``."""
    out = Q()
    out.connector, out.negated = q.connector, q.negated
    for child in q.children:
        out.children.append(_prefixed(child, prefix) if isinstance(child, Q) else (prefix + child[0], child[1]))
    return out


class TagSource(models.TextChoices):
    RULE = "rule", _("Rule")
    RFML = "rfml", _("RFML")
    BEHAVIOUR = "behaviour", _("Behaviour")
    MANUAL = "manual", _("Manual")
    IMPORT = "import", _("Import")


class MemberTag(models.Model):
    """A member holds a tag value: where it came from, when and why (the evidence is kept)."""

    member = models.ForeignKey(Member, on_delete=models.CASCADE, related_name="tags")
    tag_value = models.ForeignKey(TagValue, on_delete=models.CASCADE, related_name="member_tags")
    source = models.CharField(_("source"), max_length=10, choices=TagSource.choices)
    assigned_at = models.DateTimeField(_("assigned at"))
    reason = models.CharField(_("reason"), max_length=200, blank=True,
                              help_text=_("Typed by the operator (manual and import tags)"))
    reason_code = models.CharField(_("reason code"), max_length=30, blank=True,
                                   help_text=_("Computed tags: the reason's code, rendered in the viewer's language"))
    reason_params = models.JSONField(_("reason parameters"), default=dict, blank=True)
    evidence = models.JSONField(_("evidence"), default=dict, blank=True)
    assigned_by = models.ForeignKey("auth.User", on_delete=models.SET_NULL, null=True, blank=True, related_name="+")

    scope_paths = ScopePaths(
        group="member__group", brand="member__memberships__brand",
        region=lambda a: Q(member__memberships__store__region_id=a.region_id)
        | Q(member__bindings__store__region_id=a.region_id, member__bindings__ended_at__isnull=True),
        store=lambda a: Q(member__memberships__store_id=a.store_id)
        | Q(member__bindings__store_id=a.store_id, member__bindings__ended_at__isnull=True),
        guide=lambda a: Q(member__bindings__guide_id=a.guide_id, member__bindings__ended_at__isnull=True),
        multi=True)

    class Meta:
        verbose_name = _("member tag")
        verbose_name_plural = _("member tags")
        constraints = [models.UniqueConstraint(fields=["member", "tag_value"], name="member_tag_unique")]
        indexes = [models.Index(fields=["tag_value", "member"])]

    def __str__(self) -> str:
        return f"{self.member_id}#{self.tag_value_id}"

    @property
    def reason_text(self) -> str:
        """Why the member holds the tag, in the viewer's language (codes rendered; typed reasons as typed)."""
        if not self.reason_code:
            return self.reason
        value = self.tag_value
        group = value.tag_group
        params = {**self.evidence, **self.reason_params} if self.reason_code == TagReason.RFML_CLASS \
            else self.reason_params
        rule_label = group.label if group.code in STANDARD_GROUP_NAMES and group.brand_id \
            else params.get("rule", group.label)
        return tag_reason_text(reason_code=self.reason_code, params=params, reason=self.reason,
                               rule_label=rule_label, value_label=value.label)


class TagRuleField(models.TextChoices):
    """Order-line fields a tag rule can read (the product's category and season come through the SKU)."""

    SIZE = "size", _("Size")
    COLOUR = "colour", _("Colour")
    MATERIAL = "material", pgettext_lazy("fabric", "Material")
    CATEGORY = "category", _("Product category")
    SEASON = "season", _("Product season")
    CHANNEL = "channel", _("Channel")
    STORE = "store", _("Store")
    UNIT_PRICE = "unit_price", _("Unit price")
    DISCOUNT_RATE = "discount_rate", _("Discount rate (1 − unit price / list price)")


#: Fields holding numbers; the others hold labels.
NUMERIC_TAG_RULE_FIELDS = frozenset({TagRuleField.UNIT_PRICE, TagRuleField.DISCOUNT_RATE})


class TagRuleAggregation(models.TextChoices):
    TOP_QUANTITY = "top_quantity", _("Most bought value (by quantity)")
    TOP_SPEND = "top_spend", _("Value with the largest share of spend")
    SHARE_AT_LEAST = "share_at_least", _("Share of spend where the field ≥ a value")
    AVERAGE_BAND = "average_band", _("Average of the field, in bands")


class TagRule(models.Model):
    """A rule that derives a tag from a member's purchases in one brand, defined in the admin without code.

    Read as: over the member's purchased order lines of ``brand`` (optionally only
    the last ``lookback_days`` days, optionally only some product categories),
    aggregate ``field`` with ``aggregation``; if the result passes ``threshold``
    the member gets the resulting value of ``tag_group`` (created on the fly,
    e.g. shoe size "38"). See members/tags.py for each aggregation's meaning.
    """

    class CategoryMode(models.TextChoices):
        INCLUDE = "include", _("Only these categories")
        EXCLUDE = "exclude", _("All but these categories")

    brand = models.ForeignKey("retail_crm.Brand", on_delete=models.CASCADE, related_name="tag_rules")
    tag_group = models.ForeignKey(TagGroup, on_delete=models.CASCADE, related_name="rules",
                                  help_text=_("A tag group of the same brand; values are created as needed"))
    name = models.CharField(_("name"), max_length=80)
    field = models.CharField(_("order-line field"), max_length=20, choices=TagRuleField.choices)
    aggregation = models.CharField(_("aggregation"), max_length=20, choices=TagRuleAggregation.choices)
    threshold = models.DecimalField(
        _("minimum share"), max_digits=4, decimal_places=3, default=0,
        validators=[MinValueValidator(0), MaxValueValidator(1)],
        help_text=_("0–1. Most bought / largest spend: the value's minimum share; share of spend: the minimum "
                    "share of spend where the field ≥ the compare value. Ignored for bands."))
    compare_value = models.DecimalField(
        _("compare value"), max_digits=12, decimal_places=3, null=True, blank=True,
        # xgettext:no-python-format
        help_text=_("Share of spend only: lines count when the field is at least this (e.g. 0.300 for 30% off)"))
    value_code = models.CharField(_("tag value code"), max_length=60, blank=True,
                                  help_text=_("Share of spend only: the value members who pass get"))
    value_name = models.CharField(_("tag value name"), max_length=60, blank=True)
    bands = models.CharField(
        _("band edges"), max_length=200, blank=True,
        help_text=_("Bands only: increasing edges separated by commas, e.g. 200,500,1000 gives "
                    "<200, 200-500, 500-1000, ≥1000"))
    min_quantity = models.PositiveIntegerField(
        _("minimum items"), default=1,
        help_text=_("The member needs at least this many items (net of refunds) in the rule's lines"))
    lookback_days = models.PositiveIntegerField(_("lookback (days)"), null=True, blank=True,
                                                help_text=_("Empty: every purchase"))
    category_filter = models.CharField(
        _("category filter"), max_length=200, blank=True,
        help_text=_("Words separated by commas; a line matches when its product category contains one "
                    "(e.g. 鞋,shoe). Empty: every category"))
    category_mode = models.CharField(_("category filter mode"), max_length=10, choices=CategoryMode.choices,
                                     default=CategoryMode.INCLUDE)
    is_active = models.BooleanField(_("active"), default=True)
    sort = models.IntegerField(_("priority"), default=0,
                               help_text=_("When two rules fill a single-valued tag group, the lower wins"))
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)

    scope_paths = ScopePaths(group="brand__group", brand="brand", region="brand__regions", store="brand__stores",
                             multi=True)

    class Meta:
        verbose_name = _("tag rule")
        verbose_name_plural = _("tag rules")
        ordering = ["brand_id", "sort", "pk"]
        constraints = [
            models.CheckConstraint(condition=Q(threshold__gte=0, threshold__lte=1), name="tag_rule_threshold_0_1"),
        ]

    def __str__(self) -> str:
        return self.label

    @property
    def label(self) -> str:
        """A standard rule is named after its standard group (in the viewer's language); others as typed."""
        group = self.tag_group
        return group.label if group.code in STANDARD_GROUP_NAMES and group.brand_id else self.name

    def band_edges(self) -> list[Decimal]:
        """The band edges as numbers (raises ValueError when they are not increasing numbers)."""
        edges = [Decimal(part.strip()) for part in self.bands.split(",") if part.strip()]
        if not edges or any(b <= a for a, b in zip(edges, edges[1:], strict=False)):
            raise ValueError("not increasing")
        return edges

    def clean(self) -> None:
        """Refuse combinations the engine cannot compute, with a message per field for the admin form."""
        errors: dict[str, str] = {}
        numeric = self.field in NUMERIC_TAG_RULE_FIELDS
        if self.aggregation in (TagRuleAggregation.TOP_QUANTITY, TagRuleAggregation.TOP_SPEND) and numeric:
            errors["aggregation"] = _("Most bought / largest spend need a label field (size, colour, …).")
        if self.aggregation in (TagRuleAggregation.SHARE_AT_LEAST, TagRuleAggregation.AVERAGE_BAND) and not numeric:
            errors["field"] = _("Share of spend and bands need a number field (unit price, discount rate).")
        if self.aggregation == TagRuleAggregation.SHARE_AT_LEAST:
            if self.compare_value is None:
                errors["compare_value"] = _("Required for a share of spend.")
            if not self.value_code:
                errors["value_code"] = _("Required for a share of spend.")
        if self.aggregation == TagRuleAggregation.AVERAGE_BAND:
            try:
                self.band_edges()
            except (ValueError, ArithmeticError):
                errors["bands"] = _("Give increasing numbers separated by commas, e.g. 200,500,1000.")
        if self.tag_group_id and self.brand_id and self.tag_group.brand_id != self.brand_id:
            errors["tag_group"] = _("Choose a tag group of the rule's brand.")
        if errors:
            raise ValidationError(errors)


#: Behaviour windows reach back at most this many days: raw events are accepted up to 30 days late and
#: kept at least 31 (members.events), so a longer window would count a shrinking history.
BEHAVIOUR_WINDOW_MAX_DAYS = 30


class BehaviourTagRule(models.Model):
    """A rule that gives a tag value for recent behaviour, e.g. "interested in sneakers: ≥ 3 sneaker views
    in 14 days"; the tag is written with source ``behaviour`` and kept current from events.

    Read as: count the member's events of ``kind`` in ``brand`` over the last ``window_days`` local days
    (today included), only those on the products ``product_codes`` or of the product ``categories`` when
    given; between ``min_count`` and ``max_count`` (both included) the member holds ``tag_value``. The
    value belongs to a multi-valued tag group of the brand (a member can have several interests). See
    members/behaviour_tags.py for when it is applied.
    """

    brand = models.ForeignKey("retail_crm.Brand", on_delete=models.CASCADE, related_name="behaviour_tag_rules")
    tag_value = models.ForeignKey(TagValue, on_delete=models.CASCADE, related_name="behaviour_rules",
                                  help_text=_("A value of a multi-valued tag group of the same brand"))
    name = models.CharField(_("name"), max_length=80)
    kind = models.CharField(_("event kind"), max_length=20, choices=EventKind.choices,
                            default=EventKind.PRODUCT_VIEW)
    product_codes = models.CharField(
        _("product codes"), max_length=500, blank=True,
        help_text=_("Product codes separated by commas; only events on these products count"))
    categories = models.CharField(
        _("product categories"), max_length=200, blank=True,
        help_text=_("Product categories separated by commas (exact names); only events on products of these "
                    "categories count. Empty with no product codes: every event of the kind counts"))
    min_count = models.PositiveIntegerField(_("at least (events)"), default=1, validators=[MinValueValidator(1)])
    max_count = models.PositiveIntegerField(_("at most (events)"), null=True, blank=True,
                                            help_text=_("Empty: no upper limit"))
    window_days = models.PositiveIntegerField(
        _("window (days)"), default=14, validators=[MinValueValidator(1), MaxValueValidator(BEHAVIOUR_WINDOW_MAX_DAYS)],
        help_text=_("The last N local days, today included (1–30)"))
    is_active = models.BooleanField(_("active"), default=True)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)

    scope_paths = ScopePaths(group="brand__group", brand="brand", region="brand__regions", store="brand__stores",
                             multi=True)

    class Meta:
        verbose_name = _("behaviour tag rule")
        verbose_name_plural = _("behaviour tag rules")
        ordering = ["brand_id", "pk"]
        constraints = [
            models.CheckConstraint(condition=Q(min_count__gte=1), name="behaviour_rule_min_count_positive"),
            models.CheckConstraint(condition=Q(max_count__isnull=True) | Q(max_count__gte=models.F("min_count")),
                                   name="behaviour_rule_max_not_below_min"),
            models.CheckConstraint(condition=Q(window_days__gte=1, window_days__lte=BEHAVIOUR_WINDOW_MAX_DAYS),
                                   name="behaviour_rule_window_1_30"),
        ]

    def __str__(self) -> str:
        return self.name

    @staticmethod
    def _split(text: str) -> tuple[str, ...]:
        return tuple(dict.fromkeys(part.strip() for part in text.replace("，", ",").split(",") if part.strip()))

    @property
    def product_code_list(self) -> tuple[str, ...]:
        return self._split(self.product_codes)

    @property
    def category_list(self) -> tuple[str, ...]:
        return self._split(self.categories)

    def clean(self) -> None:
        """Refuse rules the engine cannot apply, with a message per field for the admin form."""
        errors: dict[str, str] = {}
        if self.max_count is not None and self.min_count is not None and self.max_count < self.min_count:
            errors["max_count"] = _("Must not be below the minimum.")
        if self.product_codes.strip() and self.categories.strip():
            errors["categories"] = _("Give product codes or categories, not both.")
        if self.tag_value_id and self.brand_id:
            tag_group = self.tag_value.tag_group
            if tag_group.brand_id != self.brand_id:
                errors["tag_value"] = _("Choose a value of a tag group of the rule's brand.")
            elif not tag_group.multi_valued:
                errors["tag_value"] = _("Choose a value of a multi-valued tag group (several per member).")
        if errors:
            raise ValidationError(errors)
