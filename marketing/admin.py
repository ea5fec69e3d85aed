"""Marketing in the admin: the reach rules are edited here; deliveries and consents are read-only records."""

from django.contrib import admin

from marketing.models import Campaign, ChannelOptOut, Delivery, ReachRules, SubscribeConsent, WeComGroupSend
from retail_crm.admin_scoping import READ_ONLY, ScopedModelAdmin


@admin.register(ReachRules)
class ReachRulesAdmin(ScopedModelAdmin):
    write_roles = frozenset({"hq", "brand_operator"})
    list_display = ("group", "brand", "quiet_start", "quiet_end", "cap_messages", "cap_days", "care_days")


@admin.register(Delivery)
class DeliveryAdmin(ScopedModelAdmin):
    write_roles = READ_ONLY
    list_display = ("planned_at", "member", "brand", "channel", "kind", "source", "status", "hold_reason")
    list_filter = ("status", "kind", "channel", "hold_reason")
    search_fields = ("source", "member__code")
    readonly_fields = [f.name for f in Delivery._meta.fields]


@admin.register(ChannelOptOut)
class ChannelOptOutAdmin(ScopedModelAdmin):
    write_roles = READ_ONLY
    list_display = ("member", "channel", "source", "opted_out_at")
    list_filter = ("channel",)


@admin.register(SubscribeConsent)
class SubscribeConsentAdmin(ScopedModelAdmin):
    write_roles = READ_ONLY
    list_display = ("member", "template_id", "remaining", "updated_at")
    readonly_fields = ("member", "template_id", "remaining", "updated_at")


@admin.register(Campaign)
class CampaignAdmin(ScopedModelAdmin):
    """Campaigns are created, launched and cancelled through the API (and its pages); here they are read."""

    write_roles = READ_ONLY
    list_display = ("name", "brand", "schedule", "status", "holdout_percent", "launched_at", "next_run_at")
    list_filter = ("status", "schedule")
    search_fields = ("name",)
    readonly_fields = [f.name for f in Campaign._meta.fields]


@admin.register(WeComGroupSend)
class WeComGroupSendAdmin(ScopedModelAdmin):
    write_roles = READ_ONLY
    list_display = ("created_at", "source", "brand", "guide", "msgid", "checked_at", "closed_at")
    list_filter = (("closed_at", admin.EmptyFieldListFilter),)
    search_fields = ("source", "msgid", "sender")
    readonly_fields = [f.name for f in WeComGroupSend._meta.fields]
