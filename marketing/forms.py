"""The audience editor's form: the common conditions of an audience definition as form fields.

One table, :data:`CONDITIONS`, says which form field writes which key of the definition
(``marketing.audiences``' format) and how its value is read. The form builds the definition from it on the
server, and each field's widget carries the same path and kind as ``data-def`` / ``data-kind`` attributes,
from which ``static/js/audience_preview.js`` builds the very same definition in the browser for the live
size preview. Conditions the form has no field for (purchase categories, several behaviour clauses, bound
guides, cycles …) stay in the "other conditions" JSON box, so editing an audience never drops one.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass

from django import forms
from django.db.models import Q
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from mall.models import CouponTemplate
from marketing.campaigns import VariantSpec
from members.models import EventKind, JoinChannel, TagValue
from retail_crm.models import Brand, Region, Store
from retail_crm.scoping import Actor, scoped
from retail_crm.vocabulary import LifecycleStage, Segment

OTHER = "other_conditions"
_CODE_SPLIT = re.compile(r"[\s,，、]+")


@dataclass(frozen=True)
class Condition:
    """A form field writing the definition's value at ``path`` (dotted; a number is a list index).

    ``kind``: ``ids`` (a list of ids), ``strs`` (a list of codes from choices), ``codes`` (typed codes, split on
    commas and spaces), ``str`` (one code), ``int``, ``date`` (YYYY-MM-DD) or ``bool``.
    """

    field: str
    path: str
    kind: str


CONDITIONS = (
    Condition("tags_any", "tags.any", "ids"),
    Condition("tags_all", "tags.all", "ids"),
    Condition("tags_none", "tags.none", "ids"),
    Condition("rfml_classes", "rfml_classes", "strs"),
    Condition("lifecycle_stages", "lifecycle_stages", "strs"),
    Condition("care_stages", "care_stages", "strs"),
    Condition("recency_min", "last_purchase.min_days", "int"),
    Condition("recency_max", "last_purchase.max_days", "int"),
    Condition("behaviour_event", "behaviour.0.event", "str"),
    Condition("behaviour_products", "behaviour.0.products", "codes"),
    Condition("behaviour_days", "behaviour.0.days", "int"),
    Condition("behaviour_min", "behaviour.0.min", "int"),
    Condition("behaviour_max", "behaviour.0.max", "int"),
    Condition("purchase_bought", "purchase.0.bought", "bool"),
    Condition("purchase_days", "purchase.0.days", "int"),
    Condition("wecom_friend", "wecom_friend", "bool"),
    Condition("stores", "stores", "ids"),
    Condition("regions", "regions", "ids"),
    Condition("join_channels", "join_channels", "strs"),
    Condition("joined_from", "joined.from", "date"),
    Condition("joined_to", "joined.to", "date"),
    Condition("points_min", "points.min", "int"),
    Condition("points_max", "points.max", "int"),
    Condition("coupons_held", "coupons.held", "bool"),
    Condition("coupon_templates", "coupons.templates", "ids"),
)
BY_FIELD = {c.field: c for c in CONDITIONS}
BY_PATH = {c.path: c for c in CONDITIONS}
FORM_KEYS = frozenset(c.path.split(".")[0] for c in CONDITIONS)

CARE_STAGE_CHOICES = (("care", gettext_lazy("Care (just bought)")), ("market", gettext_lazy("Time to market")),
                      ("winback", gettext_lazy("Win back")))
BEHAVIOUR_CHOICES = (("", gettext_lazy("— none —")),
                     *((kind.value, kind.label) for kind in (EventKind.PRODUCT_VIEW, EventKind.FAVOURITE,
                                                              EventKind.ADD_TO_CART, EventKind.SHARE)))
ANY_YES_NO = (("", gettext_lazy("Any")), ("true", gettext_lazy("Yes")), ("false", gettext_lazy("No")))
BOUGHT_CHOICES = (("", gettext_lazy("Any")), ("true", gettext_lazy("Bought")), ("false", gettext_lazy("Did not buy")))


def _put(target: dict, path: str, value) -> None:
    """Write ``value`` at the dotted ``path``, creating objects and (for number segments) lists on the way."""
    parts = path.split(".")
    node = target
    for part, following in zip(parts, parts[1:], strict=False):
        key = int(part) if part.isdigit() else part
        if isinstance(node, list):
            while len(node) <= key:
                node.append({})
            node = node[key]
        else:
            node = node.setdefault(key, [] if following.isdigit() else {})
    last = parts[-1]
    node[last] = value


def _flatten(key: str, value) -> dict[str, object] | None:
    """``{path: leaf}`` of one top-level condition when the form has a field for every leaf, else None."""
    out: dict[str, object] = {}

    def walk(path: str, node) -> bool:
        if path in BY_PATH:
            out[path] = node
            return True
        if isinstance(node, dict):
            return all(walk(f"{path}.{k}", v) for k, v in node.items())
        if isinstance(node, list) and len(node) == 1 and isinstance(node[0], dict):
            return walk(f"{path}.0", node[0])
        return False

    return out if walk(key, value) else None


class AudienceForm(forms.Form):
    """Name and common conditions of one brand's audience; ``definition()`` is what the services take."""

    name = forms.CharField(label=gettext_lazy("Name"), max_length=80)
    tags_any = forms.TypedMultipleChoiceField(label=gettext_lazy("Has any of these tags"), coerce=int,
                                              required=False)
    tags_all = forms.TypedMultipleChoiceField(label=gettext_lazy("Has all of these tags"), coerce=int,
                                              required=False)
    tags_none = forms.TypedMultipleChoiceField(label=gettext_lazy("Has none of these tags"), coerce=int,
                                               required=False)
    rfml_classes = forms.MultipleChoiceField(label=gettext_lazy("RFML class"), choices=Segment.choices,
                                             required=False, widget=forms.CheckboxSelectMultiple)
    lifecycle_stages = forms.MultipleChoiceField(label=gettext_lazy("Lifecycle stage"),
                                                 choices=LifecycleStage.choices, required=False,
                                                 widget=forms.CheckboxSelectMultiple)
    care_stages = forms.MultipleChoiceField(label=gettext_lazy("Care stage"), choices=CARE_STAGE_CHOICES,
                                            required=False, widget=forms.CheckboxSelectMultiple)
    recency_min = forms.IntegerField(label=gettext_lazy("Days since last purchase, at least"), required=False)
    recency_max = forms.IntegerField(label=gettext_lazy("Days since last purchase, at most"), required=False)
    behaviour_event = forms.ChoiceField(label=gettext_lazy("Behaviour"), choices=BEHAVIOUR_CHOICES, required=False)
    behaviour_products = forms.CharField(label=gettext_lazy("Of products (codes)"), required=False, max_length=2000,
                                         help_text=gettext_lazy("Empty: any product."))
    behaviour_days = forms.IntegerField(label=gettext_lazy("In the last days (1–30)"), required=False)
    behaviour_min = forms.IntegerField(label=gettext_lazy("Times, at least"), required=False)
    behaviour_max = forms.IntegerField(label=gettext_lazy("Times, at most"), required=False)
    purchase_bought = forms.ChoiceField(label=gettext_lazy("Purchase"), choices=BOUGHT_CHOICES, required=False)
    purchase_days = forms.IntegerField(label=gettext_lazy("In the last days"), required=False)
    wecom_friend = forms.ChoiceField(label=gettext_lazy("WeCom friend of a guide"), choices=ANY_YES_NO,
                                     required=False)
    stores = forms.TypedMultipleChoiceField(label=gettext_lazy("Bound to a guide of these stores"), coerce=int,
                                            required=False)
    regions = forms.TypedMultipleChoiceField(label=gettext_lazy("Bound to a store of these regions"), coerce=int,
                                             required=False)
    join_channels = forms.MultipleChoiceField(label=gettext_lazy("Join channel"), choices=JoinChannel.choices,
                                              required=False, widget=forms.CheckboxSelectMultiple)
    joined_from = forms.DateField(label=gettext_lazy("Joined from"), required=False,
                                  widget=forms.DateInput(attrs={"type": "date"}))
    joined_to = forms.DateField(label=gettext_lazy("Joined until"), required=False,
                                widget=forms.DateInput(attrs={"type": "date"}))
    points_min = forms.IntegerField(label=gettext_lazy("Points, at least"), required=False)
    points_max = forms.IntegerField(label=gettext_lazy("Points, at most"), required=False)
    coupons_held = forms.ChoiceField(label=gettext_lazy("Holds an unused coupon"), choices=ANY_YES_NO,
                                     required=False)
    coupon_templates = forms.TypedMultipleChoiceField(label=gettext_lazy("Of these coupons"), coerce=int,
                                                      required=False, help_text=gettext_lazy("Empty: any coupon."))
    other_conditions = forms.CharField(
        label=gettext_lazy("Other conditions (JSON)"), required=False, max_length=20_000,
        widget=forms.Textarea(attrs={"rows": 4, "spellcheck": "false"}),
        help_text=gettext_lazy("Conditions without a field above, in the definition format of the API, e.g. "
                               "{\"purchase\": [{\"days\": 365, \"categories\": [\"连衣裙\"]}]}."))

    def __init__(self, *args, brand: Brand, actor: Actor, **kwargs):
        super().__init__(*args, **kwargs)
        self.brand = brand
        tags = scoped(TagValue.objects.filter(Q(tag_group__brand=brand) | Q(tag_group__brand__isnull=True,
                                                                            tag_group__group_id=brand.group_id)),
                      actor).select_related("tag_group").order_by("tag_group__code", "sort", "code")
        tag_choices = [(t.pk, str(t)) for t in tags]
        for name in ("tags_any", "tags_all", "tags_none"):
            self.fields[name].choices = tag_choices
        self.fields["stores"].choices = [
            (s.pk, f"{s.name} ({s.code})")
            for s in scoped(Store.objects.filter(brand=brand), actor).order_by("code")[:1000]]
        self.fields["regions"].choices = [
            (r.pk, f"{r.name} ({r.code})") for r in scoped(Region.objects.filter(brand=brand), actor).order_by("code")]
        self.fields["coupon_templates"].choices = [
            (t.pk, t.name) for t in scoped(CouponTemplate.objects.filter(brand=brand), actor).order_by("-created_at")]
        for condition in CONDITIONS:
            field = self.fields[condition.field]
            if isinstance(field.widget, forms.SelectMultiple) and not isinstance(field.widget,
                                                                                 forms.CheckboxSelectMultiple):
                field.widget.attrs["size"] = min(6, max(2, len(field.choices)))
            field.widget.attrs.update({"data-def": condition.path, "data-kind": condition.kind})
        self.fields[OTHER].widget.attrs.update({"data-def": "", "data-kind": "json"})

    @classmethod
    def initial_for(cls, *, name: str, definition: dict) -> dict:
        """The form's initial values for a saved definition; what no field shows goes to "other conditions"."""
        initial: dict = {"name": name}
        other = {}
        for key, value in (definition or {}).items():
            leaves = _flatten(key, value) if key in FORM_KEYS else None
            if leaves is None:
                other[key] = value
                continue
            for path, leaf in leaves.items():
                condition = BY_PATH[path]
                if condition.kind == "bool":
                    initial[condition.field] = "true" if leaf is True else "false" if leaf is False else leaf
                elif condition.kind == "codes" and isinstance(leaf, list):
                    initial[condition.field] = ", ".join(str(code) for code in leaf)
                else:
                    initial[condition.field] = leaf
        if other:
            initial[OTHER] = json.dumps(other, ensure_ascii=False, indent=1)
        return initial

    def clean_other_conditions(self):
        text = self.cleaned_data.get(OTHER, "").strip()
        if not text:
            return {}
        try:
            value = json.loads(text)
        except ValueError:
            raise forms.ValidationError(_("Not valid JSON.")) from None
        if not isinstance(value, dict):
            raise forms.ValidationError(_("Give a JSON object: {\"condition\": …}."))
        return value

    def definition(self) -> dict:
        """The definition the cleaned form says: the other conditions, then every filled field over them."""
        data = self.cleaned_data
        definition = dict(data.get(OTHER) or {})
        taken = self.keys_from_fields = set()
        for condition in CONDITIONS:
            value = data.get(condition.field)
            if value in (None, "", [], ()):
                continue
            if condition.kind == "codes":
                value = [code for code in _CODE_SPLIT.split(value) if code]
                if not value:
                    continue
            elif condition.kind == "bool":
                value = value == "true"
            elif condition.kind == "date":
                value = value.isoformat()
            elif condition.kind in ("ids", "strs"):
                value = list(value)
            key = condition.path.split(".")[0]
            if key not in taken:  # a field's condition replaces the same condition in the JSON box
                definition.pop(key, None)
                taken.add(key)
            _put(definition, condition.path, value)
        return definition

    def field_for(self, path: str) -> str | None:
        """The form field showing errors of the definition's ``path`` (e.g. ``behaviour.0.days`` or
        ``tags.any.1``); None when no field has it (then it belongs to the other conditions)."""
        prefix = path.split(".")[0]
        if prefix not in getattr(self, "keys_from_fields", ()):
            return None
        parts = path.split(".")
        while parts:
            joined = ".".join(parts)
            if joined in BY_PATH:
                return BY_PATH[joined].field
            parts.pop()
        # An error on a whole condition (a range, a missing part): its first field shows it.
        return next(c.field for c in CONDITIONS if c.path.split(".")[0] == prefix)


# ---------------------------------------------------------------------------- the campaign wizard

_PARAM_KEY = re.compile(r"^([A-Za-z_][A-Za-z0-9_.]*)\s*[:=]\s*(.*)$")
MAX_CHANNELS = 3
# The wizard's inputs per channel: (content key, kind); "id" a template id, "lines" the template's fields one
# per line, "text" a longer text, "line" one line. The shapes are marketing.campaigns.CONTENT_KEYS' (the
# official account's page and WeCom's cards are left to the API).
CHANNEL_INPUTS = {
    "sms": (("template", "id"), ("params", "lines")),
    "subscribe": (("template", "id"), ("params", "lines")),
    "official_account": (("template", "id"), ("params", "lines")),
    "wecom": (("text", "text"),),
    "guide_task": (("reason", "line"), ("action", "line")),
}
INPUT_LABELS = {"template": gettext_lazy("template id"), "params": gettext_lazy("template fields, one per line"),
                "text": gettext_lazy("text"), "reason": gettext_lazy("why the guide should reach out"),
                "action": gettext_lazy("what to do")}
# Which input a service message about a channel's content concerns, by how the message starts.
_MESSAGE_KEYS = (("template", "give a template id"), ("params", "params "), ("text", "text "),
                 ("text", "give a text"), ("reason", "give the reason"))


def _content_field(kind: str, label: str) -> forms.CharField:
    if kind == "id":
        return forms.CharField(label=label, required=False, max_length=64)
    if kind == "line":
        return forms.CharField(label=label, required=False, max_length=200)
    return forms.CharField(label=label, required=False, max_length=4000, widget=forms.Textarea(attrs={"rows": 3}))
WEEKDAYS = ((0, gettext_lazy("Monday")), (1, gettext_lazy("Tuesday")), (2, gettext_lazy("Wednesday")),
            (3, gettext_lazy("Thursday")), (4, gettext_lazy("Friday")), (5, gettext_lazy("Saturday")),
            (6, gettext_lazy("Sunday")))


def message_params(text: str) -> list[str] | dict[str, str]:
    """A channel's template parameters from the wizard's box, one per line: ``key: text`` lines make an object
    (a subscribe or official-account message's named fields), plain lines a list (an SMS's numbered ones)."""
    lines = [line.strip() for line in (text or "").splitlines() if line.strip()]
    keyed = [_PARAM_KEY.match(line) for line in lines]
    if lines and all(keyed):
        return {match[1]: match[2].strip() for match in keyed}
    return lines


class CampaignForm(forms.Form):
    """Every step of the campaign wizard: audience, channels in fallback order, content, schedule, holdout, A/B.

    The rules (which channels, variables, links, schedules and shares are allowed) are the campaign service's;
    the form only reads the inputs into its arguments (``campaign_arguments``).
    """

    audience = forms.TypedChoiceField(label=gettext_lazy("Audience"), coerce=int)
    name = forms.CharField(label=gettext_lazy("Campaign name"), max_length=80)
    link = forms.CharField(label=gettext_lazy("Link (https page of the mall or mini-program)"), required=False,
                           max_length=500, widget=forms.TextInput(attrs={"placeholder": "https://"}))
    coupon_template = forms.TypedChoiceField(label=gettext_lazy("Coupon for each member sent to"), coerce=int,
                                             required=False, empty_value=None)
    schedule = forms.ChoiceField(label=gettext_lazy("When"), widget=forms.RadioSelect)
    send_at = forms.DateTimeField(label=gettext_lazy("Send at"), required=False,
                                  input_formats=["%Y-%m-%dT%H:%M", "%Y-%m-%d %H:%M"],
                                  widget=forms.DateTimeInput(attrs={"type": "datetime-local"},
                                                             format="%Y-%m-%dT%H:%M"))
    recur_time = forms.TimeField(label=gettext_lazy("Each run at"), required=False,
                                 widget=forms.TimeInput(attrs={"type": "time"}, format="%H:%M"))
    recur_weekday = forms.TypedChoiceField(label=gettext_lazy("On (weekly)"), coerce=int, required=False,
                                           empty_value=None, choices=(("", "—"), *WEEKDAYS))
    ends_at = forms.DateTimeField(label=gettext_lazy("No runs after"), required=False,
                                  input_formats=["%Y-%m-%dT%H:%M", "%Y-%m-%d %H:%M"],
                                  widget=forms.DateTimeInput(attrs={"type": "datetime-local"},
                                                             format="%Y-%m-%dT%H:%M"))
    holdout_percent = forms.DecimalField(label=gettext_lazy("Holdout: percent of the audience who get nothing"),
                                         max_digits=4, decimal_places=2, initial=10)
    attribution_days = forms.IntegerField(label=gettext_lazy("Attribution window (days)"), initial=7)
    ab_test = forms.BooleanField(label=gettext_lazy("Test a variant B"), required=False)
    a_weight = forms.IntegerField(label=gettext_lazy("Share of variant A (%)"), initial=50, required=False)

    def __init__(self, *args, audiences, coupon_templates, channels, schedules, **kwargs):
        super().__init__(*args, **kwargs)
        self.audiences = {a.pk: a for a in audiences}
        self.coupon_templates = {t.pk: t for t in coupon_templates}
        self.channels = [(value, label) for value, label in channels if value in CHANNEL_INPUTS]
        self.fields["audience"].choices = [("", _("— choose —"))] + [
            (a.pk, f"{a.name} · {a.brand.name}") for a in audiences]
        self.fields["coupon_template"].choices = [("", _("No coupon"))] + [
            (t.pk, f"{t.name} · {t.brand.name}") for t in coupon_templates]
        self.fields["schedule"].choices = schedules
        self.fields["schedule"].initial = schedules[0][0]
        for position in range(1, MAX_CHANNELS + 1):
            self.fields[f"channel_{position}"] = forms.ChoiceField(
                label=_("First") if position == 1 else _("Else"), required=position == 1,
                choices=[("", _("— choose —") if position == 1 else _("— none —"))] + self.channels)
        for value, label in self.channels:
            for key, kind in CHANNEL_INPUTS[value]:
                what = str(INPUT_LABELS[key])
                self.fields[f"{value}_{key}"] = _content_field(kind, _("%(channel)s: %(what)s") % {
                    "channel": label, "what": what})
                if kind != "id":
                    self.fields[f"b_{value}_{key}"] = _content_field(kind, _("%(channel)s: %(what)s, variant B") % {
                        "channel": label, "what": what})

    def content_fields(self):
        """Per channel: (value, label, its fields, variant B's fields)."""
        return [(value, label, [self[f"{value}_{key}"] for key, _kind in CHANNEL_INPUTS[value]],
                 [self[f"b_{value}_{key}"] for key, kind in CHANNEL_INPUTS[value] if kind != "id"])
                for value, label in self.channels]

    def field_for_content(self, channel: str, message: str, *, variant_b: bool = False) -> str | None:
        """The field a service message about ``channel``'s content concerns (``message`` without the channel)."""
        if channel not in CHANNEL_INPUTS or channel not in dict(self.channels):
            return None
        keys = [key for key, _kind in CHANNEL_INPUTS[channel]]
        key = next((k for k, starts in _MESSAGE_KEYS if k in keys and message.startswith(starts)), None)
        if key is None:  # about a variable: the first text the channel has
            key = next(k for k, kind in CHANNEL_INPUTS[channel] if kind != "id")
        if variant_b and dict(CHANNEL_INPUTS[channel])[key] != "id":
            return f"b_{channel}_{key}"
        return f"{channel}_{key}"

    def channel_fields(self):
        return [self[f"channel_{position}"] for position in range(1, MAX_CHANNELS + 1)]

    def clean(self):
        data = super().clean()
        data["channels"] = [data[f"channel_{p}"] for p in range(1, MAX_CHANNELS + 1) if data.get(f"channel_{p}")]
        return data

    def _entry(self, channel: str, *, prefix: str = "", given_only: bool = False) -> dict:
        """One channel's content from its fields (``prefix`` "b_": variant B's, only the fields filled in)."""
        entry = {}
        for key, kind in CHANNEL_INPUTS.get(channel, ()):
            if prefix and kind == "id":
                continue
            value = (self.cleaned_data.get(f"{prefix}{channel}_{key}") or "").strip()
            if kind == "lines":
                value = message_params(value)
            if value or not given_only and kind == "id":
                entry[key] = value
        return entry

    def chosen_audience(self):
        return self.audiences.get(self.cleaned_data.get("audience"))

    def campaign_arguments(self) -> dict:
        """The keyword arguments of ``campaign_create`` (less ``brand`` and ``created_by``) the form says."""
        data = self.cleaned_data
        channels = data["channels"]
        content = {c: self._entry(c) for c in channels}
        arguments = {
            "audience": self.chosen_audience(), "name": data["name"], "channels": channels, "content": content,
            "variants": (), "link": data.get("link", "").strip(),
            "coupon_template": self.coupon_templates.get(data.get("coupon_template")),
            "schedule": data["schedule"], "send_at": data.get("send_at"), "recur_time": data.get("recur_time"),
            "recur_weekday": data.get("recur_weekday"), "ends_at": data.get("ends_at"),
            "holdout_percent": data["holdout_percent"], "attribution_days": data["attribution_days"],
        }
        if data.get("ab_test"):
            weight = data.get("a_weight") if data.get("a_weight") is not None else 50
            content_b = {c: {**entry, **self._entry(c, prefix="b_", given_only=True)} for c, entry in content.items()}
            arguments["variants"] = (VariantSpec(name="A", weight=weight, content=content),
                                     VariantSpec(name="B", weight=100 - weight, content=content_b))
            arguments["content"] = {}
        return arguments


# ---------------------------------------------------------------------------- the journey editor

WAIT_UNITS = (("minutes", gettext_lazy("minutes")), ("hours", gettext_lazy("hours")), ("days", gettext_lazy("days")))
WAIT_MINUTES = {"minutes": 1, "hours": 60, "days": 60 * 24}
CHECK_CONDITIONS = (("", gettext_lazy("— choose —")),
                    ("paid_since_entry", gettext_lazy("Paid an order since entering")),
                    ("ordered_since_entry", gettext_lazy("Placed another order since entering")),
                    ("ordered_product_since_entry", gettext_lazy("Ordered the trigger's product since entering")),
                    ("in_audience", gettext_lazy("Is in a saved audience")),
                    ("has_tag", gettext_lazy("Has a tag")))
EXPECT_CHOICES = (("false", gettext_lazy("No")), ("true", gettext_lazy("Yes")))
# Which form field shows a service message about a trigger parameter or a journey field.
JOURNEY_FIELD_OF = {"product_ids": "product_codes", "trigger_params": "trigger"}
# Which step field shows a service message about a step parameter ("content" is per channel, below).
STEP_FIELD_OF = {"minutes": "wait_amount", "channels": "channel_1"}


class JourneyForm(forms.Form):
    """A journey's settings: name, brand, trigger and its parameters, re-entry, holdout, conversion.

    The rules are the journey service's (``marketing.journeys.journey_save``); the form reads the inputs into
    its arguments. Product codes are read into the brand's product ids (``trigger_params``)."""

    name = forms.CharField(label=gettext_lazy("Journey name"), max_length=80)
    brand = forms.TypedChoiceField(label=gettext_lazy("Brand"), coerce=int)
    trigger = forms.ChoiceField(label=gettext_lazy("Trigger"))
    views = forms.IntegerField(label=gettext_lazy("Viewed at least (times)"), required=False, initial=3)
    days = forms.IntegerField(label=gettext_lazy("Within the last days"), required=False, initial=7)
    product_codes = forms.CharField(label=gettext_lazy("Of products (codes)"), required=False, max_length=2000,
                                    help_text=gettext_lazy("Empty: any product."))
    days_before = forms.IntegerField(label=gettext_lazy("Days before the birthday"), required=False, initial=0)
    favourite_days = forms.IntegerField(label=gettext_lazy("Favourited within the last days"), required=False,
                                        initial=1)
    classes = forms.MultipleChoiceField(label=gettext_lazy("Entering the RFML classes"), required=False,
                                        choices=Segment.choices, widget=forms.CheckboxSelectMultiple,
                                        initial=["important_value", "important_develop", "important_retain",
                                                 "important_winback"])
    reentry = forms.ChoiceField(label=gettext_lazy("Re-entry"))
    reentry_days = forms.IntegerField(label=gettext_lazy("Re-entry period (days)"), required=False)
    holdout_percent = forms.DecimalField(label=gettext_lazy("Holdout: percent of the members entering who get "
                                                            "nothing"), max_digits=4, decimal_places=2, initial=10)
    exit_on_conversion = forms.BooleanField(label=gettext_lazy("Exit when the member pays an order of the brand"),
                                            required=False, initial=True)
    conversion_days = forms.IntegerField(label=gettext_lazy("Conversion window (days)"), initial=7)

    # The trigger parameters each trigger shows (the others have none: their wait steps say "after N minutes").
    TRIGGER_FIELDS = {"product_views": ("views", "days", "product_codes"), "birthday": ("days_before",),
                      "favourite": ("favourite_days", "product_codes"), "class_entered": ("classes",)}
    # The form field of a trigger parameter whose name differs from the parameter's for that trigger.
    PARAM_FIELD_OF = {("favourite", "days"): "favourite_days"}

    def __init__(self, *args, brands, **kwargs):
        from marketing.models import Journey

        super().__init__(*args, **kwargs)
        self.brands = {b.pk: b for b in brands}
        self.fields["brand"].choices = [(b.pk, b.name) for b in brands]
        self.fields["trigger"].choices = Journey.Trigger.choices
        self.fields["reentry"].choices = Journey.Reentry.choices

    def trigger_param_fields(self):
        """(triggers, bound field) for each trigger parameter input, once even when several triggers show it
        (``triggers``: their codes, space-separated)."""
        shown: dict[str, list[str]] = {}
        for trigger, names in self.TRIGGER_FIELDS.items():
            for name in names:
                shown.setdefault(name, []).append(trigger)
        return [(" ".join(triggers), self[name]) for name, triggers in shown.items()]

    @classmethod
    def initial_for(cls, journey) -> dict:
        from mall.models import Product

        params = journey.trigger_params or {}
        initial = {"name": journey.name, "brand": journey.brand_id, "trigger": journey.trigger,
                   "reentry": journey.reentry, "reentry_days": journey.reentry_days,
                   "holdout_percent": journey.holdout_percent, "exit_on_conversion": journey.exit_on_conversion,
                   "conversion_days": journey.conversion_days}
        for key in ("views", "days", "days_before", "classes"):
            if key in params:
                initial[cls.PARAM_FIELD_OF.get((journey.trigger, key), key)] = params[key]
        if params.get("product_ids"):
            codes = Product.objects.filter(pk__in=params["product_ids"], brand_id=journey.brand_id).order_by("code")
            initial["product_codes"] = ", ".join(codes.values_list("code", flat=True))
        return initial

    def clean(self):
        from mall.models import Product

        data = super().clean()
        brand = self.brands.get(data.get("brand"))
        data["trigger_params"] = params = {}
        trigger = data.get("trigger")
        if trigger == "product_views":
            for key in ("views", "days"):
                if data.get(key) is not None:
                    params[key] = data[key]
        elif trigger == "favourite" and data.get("favourite_days") is not None:
            params["days"] = data["favourite_days"]
        if trigger in ("product_views", "favourite"):
            codes = [code for code in _CODE_SPLIT.split(data.get("product_codes") or "") if code]
            if codes and brand is not None:
                found = dict(Product.objects.filter(brand=brand, code__in=codes).values_list("code", "pk"))
                if missing := [code for code in codes if code not in found]:
                    self.add_error("product_codes", _("This brand has no such products: %(codes)s.") % {
                        "codes": ", ".join(missing)})
                params["product_ids"] = sorted(set(found.values()))
        elif trigger == "birthday" and data.get("days_before") is not None:
            params["days_before"] = data["days_before"]
        elif trigger == "class_entered":
            chosen = set(data.get("classes") or ())
            params["classes"] = [code for code in Segment.values if code in chosen]
        return data

    def journey_arguments(self) -> dict:
        data = self.cleaned_data
        return {"brand": self.brands[data["brand"]], "name": data["name"], "trigger": data["trigger"],
                "trigger_params": data["trigger_params"], "reentry": data["reentry"],
                "reentry_days": data.get("reentry_days"), "holdout_percent": data["holdout_percent"],
                "exit_on_conversion": bool(data.get("exit_on_conversion")),
                "conversion_days": data["conversion_days"]}

    def field_for(self, key: str) -> str | None:
        key = self.PARAM_FIELD_OF.get((getattr(self, "cleaned_data", {}).get("trigger"), key), key)
        key = JOURNEY_FIELD_OF.get(key, key)
        return key if key in self.fields else None


class JourneyStepForm(forms.Form):
    """One step of the journey editor (prefix ``s<index>``): its kind, and the inputs of every kind (the page
    shows those of the chosen kind). ``params()`` is the step's parameters as ``JourneyStep.params`` holds them."""

    kind = forms.ChoiceField(label=gettext_lazy("Step"))
    wait_amount = forms.IntegerField(label=gettext_lazy("Wait"), required=False)
    wait_unit = forms.ChoiceField(label=gettext_lazy("Unit"), choices=WAIT_UNITS, required=False)
    condition = forms.ChoiceField(label=gettext_lazy("Condition"), choices=CHECK_CONDITIONS, required=False)
    expect = forms.ChoiceField(label=gettext_lazy("Go on when the answer is"), choices=EXPECT_CHOICES,
                               required=False)
    audience = forms.TypedChoiceField(label=gettext_lazy("Audience"), coerce=int, required=False, empty_value=None)
    tag_value = forms.TypedChoiceField(label=gettext_lazy("Tag"), coerce=int, required=False, empty_value=None)
    link = forms.CharField(label=gettext_lazy("Link for {link}"), required=False, max_length=500)
    coupon_template = forms.TypedChoiceField(label=gettext_lazy("Coupon"), coerce=int, required=False,
                                             empty_value=None)
    reason = forms.CharField(label=gettext_lazy("Reason for the guide"), required=False, max_length=200)
    action = forms.CharField(label=gettext_lazy("Suggested script"), required=False, max_length=200)

    # The inputs each kind shows.
    KIND_FIELDS = {
        "wait": ("wait_amount", "wait_unit"),
        "check": ("condition", "expect", "audience", "tag_value"),
        "send": ("channels", "content", "link", "coupon_template"),
        "coupon": ("coupon_template",),
        "guide_task": ("reason", "action"),
        "tag_add": ("tag_value",),
        "tag_remove": ("tag_value",),
    }

    def __init__(self, *args, audiences, tag_values, coupon_templates, **kwargs):
        from marketing.models import Channel, JourneyStep

        super().__init__(*args, **kwargs)
        self.fields["kind"].choices = JourneyStep.Kind.choices
        self.fields["audience"].choices = [("", _("— choose —"))] + [
            (a.pk, f"{a.name} · {a.brand.name}") for a in audiences]
        self.fields["tag_value"].choices = [("", _("— choose —"))] + [(t.pk, str(t)) for t in tag_values]
        self.fields["coupon_template"].choices = [("", _("No coupon"))] + [
            (t.pk, f"{t.name} · {t.brand.name}") for t in coupon_templates]
        self.channels = [(value, label) for value, label in Channel.choices if value in CHANNEL_INPUTS]
        for position in range(1, MAX_CHANNELS + 1):
            self.fields[f"channel_{position}"] = forms.ChoiceField(
                label=_("First") if position == 1 else _("Else"), required=False,
                choices=[("", _("— choose —") if position == 1 else _("— none —"))] + self.channels)
        for value, label in self.channels:
            for key, kind in CHANNEL_INPUTS[value]:
                self.fields[f"{value}_{key}"] = _content_field(kind, _("%(channel)s: %(what)s") % {
                    "channel": label, "what": str(INPUT_LABELS[key])})
        for name, field in self.fields.items():
            field.widget.attrs["data-input"] = name

    def channel_fields(self):
        return [self[f"channel_{position}"] for position in range(1, MAX_CHANNELS + 1)]

    def content_fields(self):
        return [(value, label, [self[f"{value}_{key}"] for key, _kind in CHANNEL_INPUTS[value]])
                for value, label in self.channels]

    def shows(self, name: str) -> bool:
        kind = self["kind"].value()
        return name in self.KIND_FIELDS.get(kind, ())

    @classmethod
    def initial_for(cls, step) -> dict:
        params, initial = step.params or {}, {"kind": step.kind}
        if step.kind == "wait" and isinstance(params.get("minutes"), int):
            minutes = params["minutes"]
            unit = "days" if minutes % 1440 == 0 else "hours" if minutes % 60 == 0 else "minutes"
            initial.update(wait_amount=minutes // WAIT_MINUTES[unit], wait_unit=unit)
        for key in ("condition", "audience", "tag_value", "link", "coupon_template", "reason", "action"):
            if key in params:
                initial[key] = params[key]
        if "expect" in params:
            initial["expect"] = "true" if params["expect"] else "false"
        for position, channel in enumerate(params.get("channels") or [], start=1):
            initial[f"channel_{position}"] = channel
            entry = (params.get("content") or {}).get(channel) or {}
            for key, kind in CHANNEL_INPUTS.get(channel, ()):
                value = entry.get(key, "")
                if kind == "lines" and isinstance(value, dict):
                    value = "\n".join(f"{k}: {v}" for k, v in value.items())
                elif kind == "lines" and isinstance(value, list):
                    value = "\n".join(value)
                initial[f"{channel}_{key}"] = value
        return initial

    def params(self) -> dict:
        data, kind = self.cleaned_data, self.cleaned_data.get("kind")
        params: dict = {}
        if kind == "wait":
            if data.get("wait_amount") is not None:
                params["minutes"] = data["wait_amount"] * WAIT_MINUTES.get(data.get("wait_unit") or "minutes", 1)
        elif kind == "check":
            params = {"condition": data.get("condition") or "", "expect": data.get("expect") == "true"}
            if params["condition"] == "in_audience":
                params["audience"] = data.get("audience")
            if params["condition"] == "has_tag":
                params["tag_value"] = data.get("tag_value")
        elif kind == "send":
            channels = [data[f"channel_{p}"] for p in range(1, MAX_CHANNELS + 1) if data.get(f"channel_{p}")]
            content = {}
            for channel in channels:
                entry = {}
                for key, input_kind in CHANNEL_INPUTS.get(channel, ()):
                    value = (data.get(f"{channel}_{key}") or "").strip()
                    if input_kind == "lines":
                        value = message_params(value)
                    if value or input_kind == "id":
                        entry[key] = value
                content[channel] = entry
            params = {"channels": channels, "content": content}
            if (data.get("link") or "").strip():
                params["link"] = data["link"].strip()
            if data.get("coupon_template") is not None:
                params["coupon_template"] = data["coupon_template"]
        elif kind == "coupon":
            params = {"coupon_template": data.get("coupon_template")}
        elif kind == "guide_task":
            params = {"reason": (data.get("reason") or "").strip(), "action": (data.get("action") or "").strip()}
        elif kind in ("tag_add", "tag_remove"):
            params = {"tag_value": data.get("tag_value")}
        return params

    def field_for(self, key: str, message: str) -> tuple[str | None, str]:
        """The field a service message ("param: message") about this step concerns, and the bare message."""
        if key == "content":
            channel, sep, rest = message.partition(": ")
            if sep and channel in CHANNEL_INPUTS:
                keys = [k for k, _kind in CHANNEL_INPUTS[channel]]
                name = next((k for k, starts in _MESSAGE_KEYS if k in keys and rest.startswith(starts)), None)
                if name is None:
                    name = next(k for k, kind in CHANNEL_INPUTS[channel] if kind != "id")
                return f"{channel}_{name}", rest
            return "channel_1", message
        key = STEP_FIELD_OF.get(key, key)
        return (key if key in self.fields else None), message
