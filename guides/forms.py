"""Workbench forms: they parse and check input (errors per field, in the active language); no business rules."""

from __future__ import annotations

from django import forms
from django.utils.translation import gettext_lazy as _

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
