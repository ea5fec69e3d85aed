"""Forms of the workbench's QR, share, material and task pages: parsing and per-field errors, no business rules."""

from __future__ import annotations

from django import forms
from django.utils.translation import gettext_lazy as _

from guides.library import GROUP_BY_FIELDS
from guides.models import Material, Share


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
