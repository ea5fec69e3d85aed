"""Workbench forms: they parse and check input (errors per field, in the active language); no business rules.

The member list and care list first, then the QR, share, material and task pages.
"""

from __future__ import annotations

from django import forms
from django.utils.translation import gettext_lazy as _

from guides.library import GROUP_BY_FIELDS
from guides.models import Material, Share
from guides.selectors import MemberFilters
from segments.models import LifecycleStage, Segment

OUTCOME_MAX = 200


class MemberFilterForm(forms.Form):
    """Search and filters of "My members" (GET). Every field is optional."""

    WECOM_CHOICES = [("", _("Any")), ("yes", _("WeCom friend")), ("no", _("Not a WeCom friend"))]

    q = forms.CharField(label=_("Search"), required=False, max_length=50,
                        widget=forms.TextInput(attrs={"type": "search", "placeholder": _("Name, phone or code"),
                                                      "autocomplete": "off"}))
    tag = forms.TypedChoiceField(label=_("Tag"), required=False, coerce=int, empty_value=None)
    segment = forms.ChoiceField(label=_("RFML class"), required=False,
                                choices=[("", _("Any"))] + list(Segment.choices))
    stage = forms.ChoiceField(label=_("Lifecycle stage"), required=False,
                              choices=[("", _("Any"))] + list(LifecycleStage.choices))
    bound_since = forms.DateField(label=_("Bound since"), required=False,
                                  widget=forms.DateInput(attrs={"type": "date"}))
    purchased_from = forms.DateField(label=_("Last purchase from"), required=False,
                                     widget=forms.DateInput(attrs={"type": "date"}))
    purchased_until = forms.DateField(label=_("Last purchase until"), required=False,
                                      widget=forms.DateInput(attrs={"type": "date"}))
    wecom = forms.ChoiceField(label=_("WeCom"), required=False, choices=WECOM_CHOICES)

    def __init__(self, *args, tag_values=(), **kwargs):
        super().__init__(*args, **kwargs)
        groups: dict[str, list] = {}
        for value in tag_values:
            groups.setdefault(value.tag_group.label, []).append((value.pk, value.label))
        self.fields["tag"].choices = [("", _("Any"))] + list(groups.items())

    def clean(self):
        data = super().clean()
        start, end = data.get("purchased_from"), data.get("purchased_until")
        if start and end and start > end:
            self.add_error("purchased_until", _("Must not be before “Last purchase from”."))
        return data

    def filters(self) -> MemberFilters:
        """The valid filters (call after is_valid(); fields with errors filter nothing)."""
        data = getattr(self, "cleaned_data", {})
        return MemberFilters(q=data.get("q") or "", tag=data.get("tag"), segment=data.get("segment") or "",
                             stage=data.get("stage") or "", bound_since=data.get("bound_since"),
                             purchased_from=data.get("purchased_from"), purchased_until=data.get("purchased_until"),
                             wecom=data.get("wecom") or "")

    @property
    def active_count(self) -> int:
        """How many filters beyond the search are set (shown on the folded filter box)."""
        data = getattr(self, "cleaned_data", {})
        return sum(1 for name in self.fields if name != "q" and data.get(name) not in (None, ""))


class CareDoneForm(forms.Form):
    """Mark a care item done: what came of the contact."""

    outcome = forms.CharField(label=_("Outcome"), max_length=OUTCOME_MAX,
                              widget=forms.TextInput(attrs={"list": "care-outcomes", "autocomplete": "off",
                                                            "placeholder": _("What came of it?")}))


# ---------------------------------------------------------------------------- QR, shares, materials, tasks


class RevokeTokenForm(forms.Form):
    """Revoking is for good: the checkbox is the confirmation."""

    confirm = forms.BooleanField(
        label=_("I understand: members scanning this code will no longer be bound to me"),
        error_messages={"required": _("Tick the box to confirm.")})


class ShareForm(forms.Form):
    """What to share: a target and, except for the mall home, the id of the thing."""

    target = forms.ChoiceField(label=_("Share"), choices=Share.Target.choices)
    id = forms.IntegerField(label=_("Item"), required=False, min_value=1, max_value=2**63 - 1)

    def clean(self):
        data = super().clean()
        if data.get("target") and data["target"] != Share.Target.MALL and not data.get("id"):
            self.add_error("id", _("Choose what to share."))
        return data


class ProductSearchForm(forms.Form):
    q = forms.CharField(label=_("Search products"), required=False, max_length=50,
                        widget=forms.TextInput(attrs={"type": "search", "placeholder": _("Product name or code")}))


class MaterialFilterForm(forms.Form):
    kind = forms.ChoiceField(label=_("Kind"), required=False, choices=[("", _("All"))] + Material.Kind.choices)


class ExecutionFilterForm(forms.Form):
    GROUP_BY_CHOICES = [("guide", _("Guide")), ("store", _("Store")), ("region", _("Region"))]

    group_by = forms.ChoiceField(label=_("Per"), required=False, choices=GROUP_BY_CHOICES)
    task = forms.IntegerField(label=_("Task"), required=False, min_value=1, max_value=2**63 - 1)

    def clean_group_by(self):
        value = self.cleaned_data.get("group_by") or ""  # empty: the view picks one for the viewer's level
        assert not value or value in GROUP_BY_FIELDS
        return value
