"""Marketing in the admin: the reach rules are edited here; deliveries and consents are read-only records."""

from django import forms
from django.contrib import admin
from django.utils.translation import gettext_lazy as _

from marketing.journeys import journey_step_params_errors, journey_trigger_params_errors
from marketing.models import (
    Campaign,
    ChannelOptOut,
    Delivery,
    Journey,
    JourneyEnrolment,
    JourneyStep,
    JourneyStepLog,
    ReachRules,
    SubscribeConsent,
    WeComGroupSend,
)
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


class JourneyForm(forms.ModelForm):
    """The trigger's parameters are checked against the trigger; the group follows the brand."""

    class Meta:
        model = Journey
        fields = ("brand", "name", "trigger", "trigger_params", "status", "reentry", "reentry_days",
                  "holdout_percent", "exit_on_conversion", "conversion_days")

    def clean(self):
        data = super().clean()
        trigger = data.get("trigger")
        if trigger:
            for name, messages in journey_trigger_params_errors(trigger=trigger,
                                                                params=data.get("trigger_params")).items():
                self.add_error("trigger_params" if name not in self.fields else name, messages)
        if data.get("reentry") == Journey.Reentry.PER_PERIOD and not data.get("reentry_days"):
            self.add_error("reentry_days", _("Give the period in days."))
        return data


class JourneyStepFormSet(forms.BaseInlineFormSet):
    """Each step's parameters are checked against its kind and the journey's brand; an active journey needs
    at least one step."""

    def clean(self):
        super().clean()
        brand = self.instance.brand if self.instance.brand_id else None
        kept = 0
        for form in self.forms:
            if not getattr(form, "cleaned_data", None) or form.cleaned_data.get("DELETE"):
                continue
            kept += 1
            if brand is not None and form.cleaned_data.get("kind"):
                errors = journey_step_params_errors(brand_id=brand.pk, kind=form.cleaned_data["kind"],
                                                    params=form.cleaned_data.get("params"))
                if errors:
                    form.add_error("params", errors)
        if self.instance.status == Journey.Status.ACTIVE and kept == 0:
            raise forms.ValidationError(_("An active journey needs at least one step."))


class JourneyStepInline(admin.TabularInline):
    model = JourneyStep
    formset = JourneyStepFormSet
    extra = 0
    fields = ("position", "kind", "params")
    ordering = ("position",)


@admin.register(Journey)
class JourneyAdmin(ScopedModelAdmin):
    """Journeys are read and edited here (trigger, re-entry, holdout, steps); their pages come later."""

    write_roles = frozenset({"hq", "brand_operator"})
    form = JourneyForm
    inlines = [JourneyStepInline]
    list_display = ("name", "brand", "trigger", "status", "reentry", "holdout_percent", "updated_at")
    list_filter = ("status", "trigger")
    search_fields = ("name",)

    def save_model(self, request, obj, form, change):
        obj.group_id = obj.brand.group_id
        super().save_model(request, obj, form, change)


class JourneyStepLogInline(admin.TabularInline):
    model = JourneyStepLog
    extra = 0
    can_delete = False
    fields = ("step", "at", "outcome", "detail", "delivery")
    readonly_fields = fields

    def has_add_permission(self, request, obj=None):
        return False


@admin.register(JourneyEnrolment)
class JourneyEnrolmentAdmin(ScopedModelAdmin):
    write_roles = READ_ONLY
    list_display = ("entered_at", "journey", "member", "status", "position", "next_run_at", "exit_reason",
                    "converted_at")
    list_filter = ("status",)
    search_fields = ("member__code", "journey__name")
    readonly_fields = [f.name for f in JourneyEnrolment._meta.fields]
    inlines = [JourneyStepLogInline]
