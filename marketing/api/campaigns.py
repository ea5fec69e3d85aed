"""Campaign API for staff: create, list, read, launch, cancel, results. HQ and brand operators write."""

from __future__ import annotations

from decimal import Decimal

from django.conf import settings
from drf_spectacular.utils import extend_schema
from rest_framework import generics, serializers, status
from rest_framework.response import Response
from rest_framework.views import APIView

from mall.models import CouponTemplate
from marketing.campaigns import VariantSpec, campaign_cancel, campaign_create, campaign_launch
from marketing.models import Audience, Campaign, Channel, HoldReason
from marketing.results import campaign_results
from marketing.selectors import campaign_list
from retail_crm.api.pagination import StandardPagination
from retail_crm.api.views import ScopedMixin
from retail_crm.errors import ApplicationError, ErrorCode
from retail_crm.models import Brand
from retail_crm.scoping import scoped

WRITE_ROLES = frozenset({"hq", "brand_operator"})

CONTENT_HELP = ('Channel → its content. sms, subscribe: {"template": provider template id, "params": list or object '
                'of texts}; official_account: {"template", "params": object, "url"?, "miniprogram"?: {"pagepath"}}; '
                'wecom: {"text"?, "miniprogram"?: {"title", "pic_media_id", "page"}, "link"?: {"title", "url", '
                '"desc"}}; guide_task: {"reason", "action"?}. Texts may hold {name} (not in wecom), {guide}, {link} '
                "and {coupon}.")


def _require_writer(actor) -> None:
    if not actor.is_superuser and actor.role not in WRITE_ROLES:
        raise ApplicationError(ErrorCode.PERMISSION_DENIED, "Your role may not manage campaigns.", status=403)


def _campaign_in_scope(actor, pk: int) -> Campaign:
    campaign = campaign_list(actor=actor).filter(pk=pk).first()
    if campaign is None:
        raise ApplicationError(ErrorCode.NOT_FOUND, "No such campaign.", status=404)
    return campaign


class VariantSerializer(serializers.Serializer):
    class Meta:
        ref_name = "CampaignVariant"

    id = serializers.IntegerField(read_only=True)
    name = serializers.CharField(max_length=20)
    weight = serializers.IntegerField(min_value=1, max_value=99, help_text="Share of the members not held out (%)")
    content = serializers.JSONField(help_text=CONTENT_HELP)


class RunSerializer(serializers.Serializer):
    class Meta:
        ref_name = "CampaignRun"

    id = serializers.IntegerField()
    scheduled_for = serializers.DateTimeField()
    started_at = serializers.DateTimeField()
    status = serializers.CharField(help_text="resolving, queued, cancelled or failed")
    resolved_at = serializers.DateTimeField(allow_null=True)
    error = serializers.CharField(help_text="Why the run failed (its audience no longer validates); else empty")


class CampaignOutputSerializer(serializers.Serializer):
    class Meta:
        ref_name = "Campaign"

    id = serializers.IntegerField()
    brand = serializers.CharField(source="brand.code")
    audience = serializers.IntegerField(source="audience_id")
    audience_name = serializers.CharField(source="audience.name")
    name = serializers.CharField()
    channels = serializers.ListField(child=serializers.ChoiceField(choices=Channel.choices))
    content = serializers.JSONField()
    variants = VariantSerializer(many=True, source="variants.all")
    link = serializers.CharField()
    tracking_link = serializers.SerializerMethodField(help_text="The link without a member (e.g. for a group post)")
    coupon_template = serializers.IntegerField(source="coupon_template_id", allow_null=True)
    schedule = serializers.ChoiceField(choices=Campaign.Schedule.choices)
    send_at = serializers.DateTimeField(allow_null=True)
    recur_time = serializers.TimeField(allow_null=True)
    recur_weekday = serializers.IntegerField(allow_null=True)
    ends_at = serializers.DateTimeField(allow_null=True)
    next_run_at = serializers.DateTimeField(allow_null=True)
    holdout_percent = serializers.DecimalField(max_digits=4, decimal_places=2)
    attribution_days = serializers.IntegerField()
    status = serializers.ChoiceField(choices=Campaign.Status.choices)
    created_at = serializers.DateTimeField()
    launched_at = serializers.DateTimeField(allow_null=True)
    cancelled_at = serializers.DateTimeField(allow_null=True)

    def get_tracking_link(self, campaign) -> str:
        return f"{settings.MARKETING_LINK_BASE_URL}{campaign.link_code}" if campaign.link_code else ""


class CampaignDetailOutputSerializer(CampaignOutputSerializer):
    class Meta:
        ref_name = "CampaignDetail"

    runs = RunSerializer(many=True, source="runs.all")


class CampaignListCreateApi(ScopedMixin, generics.ListAPIView):
    """Campaigns in your scope (newest first); HQ and brand operators create drafts."""

    class FilterSerializer(serializers.Serializer):
        class Meta:
            ref_name = "CampaignFilter"

        status = serializers.ChoiceField(required=False, choices=Campaign.Status.choices)
        brand = serializers.CharField(required=False, max_length=32, help_text="Brand code")

    class InputSerializer(serializers.Serializer):
        class Meta:
            ref_name = "CampaignInput"

        brand = serializers.CharField(max_length=32, help_text="Brand code")
        audience = serializers.IntegerField(help_text="Audience id (of the same brand)")
        name = serializers.CharField(max_length=80)
        channels = serializers.ListField(child=serializers.ChoiceField(choices=Channel.choices), min_length=1,
                                         max_length=len(Channel.values), help_text="In fallback order")
        content = serializers.JSONField(required=False, default=dict, help_text=CONTENT_HELP + " Not with variants.")
        variants = VariantSerializer(many=True, required=False, default=list)
        link = serializers.CharField(required=False, default="", allow_blank=True, max_length=500,
                                     help_text="https page in the storefront or mini-program the tracking link opens")
        coupon_template = serializers.IntegerField(required=False, allow_null=True, default=None,
                                                   help_text="Issued to each member sent to, when the message goes")
        schedule = serializers.ChoiceField(choices=Campaign.Schedule.choices, default=Campaign.Schedule.NOW)
        send_at = serializers.DateTimeField(required=False, allow_null=True, default=None)
        recur_time = serializers.TimeField(required=False, allow_null=True, default=None,
                                           help_text="Local time of each run (daily, weekly)")
        recur_weekday = serializers.IntegerField(required=False, allow_null=True, default=None, min_value=0,
                                                 max_value=6, help_text="0 = Monday (weekly)")
        ends_at = serializers.DateTimeField(required=False, allow_null=True, default=None)
        holdout_percent = serializers.DecimalField(max_digits=4, decimal_places=2, min_value=Decimal("0"),
                                                   max_value=Decimal("50"), default=Decimal("0"))
        attribution_days = serializers.IntegerField(min_value=1, max_value=30, default=7)

    serializer_class = CampaignOutputSerializer
    pagination_class = StandardPagination
    filter_backends: list = []

    def get_queryset(self):
        query = self.FilterSerializer(data=self.request.query_params)
        query.is_valid(raise_exception=True)
        return campaign_list(actor=self.actor, status=query.validated_data.get("status"),
                             brand_code=query.validated_data.get("brand"))

    @extend_schema(tags=["marketing"], parameters=[FilterSerializer])
    def get(self, request, *args, **kwargs):
        return super().get(request, *args, **kwargs)

    @extend_schema(tags=["marketing"], request=InputSerializer, responses={201: CampaignDetailOutputSerializer})
    def post(self, request):
        _require_writer(self.actor)
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        values = data.validated_data
        brand = scoped(Brand.objects.all(), self.actor).filter(code=values["brand"]).first()
        if brand is None:
            raise ApplicationError(ErrorCode.INVALID, "No such brand.",
                                   fields={"brand": ["No such brand in your scope."]})
        audience = scoped(Audience.objects.all(), self.actor).filter(pk=values["audience"]).first()
        if audience is None:
            raise ApplicationError(ErrorCode.INVALID, "No such audience.",
                                   fields={"audience": ["No such audience in your scope."]})
        coupon_template = None
        if values["coupon_template"] is not None:
            coupon_template = scoped(CouponTemplate.objects.all(), self.actor).filter(
                pk=values["coupon_template"]).first()
            if coupon_template is None:
                raise ApplicationError(ErrorCode.INVALID, "No such coupon template.",
                                       fields={"coupon_template": ["No such coupon template in your scope."]})
        campaign = campaign_create(
            brand=brand, audience=audience, name=values["name"], channels=values["channels"],
            content=values["content"], link=values["link"], coupon_template=coupon_template,
            variants=[VariantSpec(name=v["name"], weight=v["weight"], content=v["content"])
                      for v in values["variants"]],
            schedule=values["schedule"], send_at=values["send_at"], recur_time=values["recur_time"],
            recur_weekday=values["recur_weekday"], ends_at=values["ends_at"],
            holdout_percent=values["holdout_percent"], attribution_days=values["attribution_days"],
            created_by=request.user)
        campaign = _campaign_in_scope(self.actor, campaign.pk)
        return Response(CampaignDetailOutputSerializer(campaign).data, status=status.HTTP_201_CREATED)


class CampaignDetailApi(ScopedMixin, APIView):
    """One campaign with its variants and runs; 404 outside your scope."""

    @extend_schema(tags=["marketing"], responses=CampaignDetailOutputSerializer)
    def get(self, request, pk: int):
        return Response(CampaignDetailOutputSerializer(_campaign_in_scope(self.actor, pk)).data)


class CampaignLaunchApi(ScopedMixin, APIView):
    """Launch a draft: "now" starts its run at once; "at" and recurring campaigns are scheduled. 409 unless
    the campaign is a draft (also when two launches race: one wins)."""

    @extend_schema(tags=["marketing"], request=None, responses=CampaignDetailOutputSerializer)
    def post(self, request, pk: int):
        campaign = _campaign_in_scope(self.actor, pk)
        _require_writer(self.actor)
        campaign_launch(campaign=campaign)
        return Response(CampaignDetailOutputSerializer(_campaign_in_scope(self.actor, pk)).data)


class CampaignCancelApi(ScopedMixin, APIView):
    """Cancel a campaign: no more runs, and its messages not yet gone are held back. 409 if cancelled already."""

    @extend_schema(tags=["marketing"], request=None, responses=CampaignDetailOutputSerializer)
    def post(self, request, pk: int):
        campaign = _campaign_in_scope(self.actor, pk)
        _require_writer(self.actor)
        campaign_cancel(campaign=campaign)
        return Response(CampaignDetailOutputSerializer(_campaign_in_scope(self.actor, pk)).data)


class LiftSerializer(serializers.Serializer):
    class Meta:
        ref_name = "CampaignLift"

    treated = serializers.IntegerField(help_text="Members sent to")
    treated_converted = serializers.IntegerField(help_text="Of them, paid an order of the brand within the window")
    holdout = serializers.IntegerField(help_text="Held-out members the rules would have let through")
    holdout_converted = serializers.IntegerField()
    treated_rate = serializers.FloatField()
    holdout_rate = serializers.FloatField()
    difference = serializers.FloatField(help_text="treated_rate − holdout_rate")
    ci_low = serializers.FloatField(help_text="95 % interval of the difference (Newcombe hybrid score)")
    ci_high = serializers.FloatField()
    relative = serializers.FloatField(allow_null=True, help_text="difference ÷ holdout_rate")
    method = serializers.CharField()


class FiguresSerializer(serializers.Serializer):
    class Meta:
        ref_name = "CampaignFigures"

    audience = serializers.IntegerField()
    holdout = serializers.IntegerField()
    held = serializers.DictField(child=serializers.IntegerField(),
                                 help_text=f"Reason ({', '.join(HoldReason.values)}) → members held back")
    pending = serializers.IntegerField(help_text="Queued, waiting for the morning or for the guide to confirm (WeCom)")
    sent = serializers.IntegerField(help_text="Handed to the provider, or to the guide as a personal task")
    delivered = serializers.IntegerField()
    failed = serializers.IntegerField()
    clicks = serializers.IntegerField()
    clicked = serializers.IntegerField(help_text="Members who clicked")
    converted = serializers.IntegerField(help_text="Members with a paid order carried to the campaign")
    orders = serializers.IntegerField()
    sales = serializers.DecimalField(max_digits=14, decimal_places=2, help_text="Net of refunds")
    lift = LiftSerializer(allow_null=True)


class VariantResultSerializer(serializers.Serializer):
    class Meta:
        ref_name = "CampaignVariantResult"

    id = serializers.IntegerField(source="variant_id")
    name = serializers.CharField()
    figures = FiguresSerializer()


class RunResultSerializer(serializers.Serializer):
    class Meta:
        ref_name = "CampaignRunResult"

    id = serializers.IntegerField(source="run.pk")
    scheduled_for = serializers.DateTimeField(source="run.scheduled_for")
    started_at = serializers.DateTimeField(source="run.started_at")
    status = serializers.CharField(source="run.status")
    error = serializers.CharField(source="run.error")
    figures = FiguresSerializer()
    variants = VariantResultSerializer(many=True)


class CampaignResultsApi(ScopedMixin, APIView):
    """A campaign's results in total, per run and per variant, with the lift against the holdout.

    Campaign conversion (orders paid within the attribution window after a click on the campaign's link,
    last click wins) is reported beside the store and guide sales credit, never instead of it.
    """

    class OutputSerializer(serializers.Serializer):
        class Meta:
            ref_name = "CampaignResults"

        campaign = serializers.IntegerField(source="campaign.pk")
        status = serializers.CharField(source="campaign.status")
        attribution_days = serializers.IntegerField(source="campaign.attribution_days")
        figures = FiguresSerializer()
        runs = RunResultSerializer(many=True)
        variants = VariantResultSerializer(many=True)

    @extend_schema(tags=["marketing"], responses=OutputSerializer)
    def get(self, request, pk: int):
        results = campaign_results(_campaign_in_scope(self.actor, pk))
        return Response(self.OutputSerializer(results).data)
