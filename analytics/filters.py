"""The HQ dashboard's filter bar: date range, brand, region, store and channel, read from GET parameters.

The parameters are the staff API's (``from``, ``to``, ``brand``, ``region``, ``store`` as codes,
``channel``), so a dashboard URL, its export links and the API answer the same question. The form
offers the viewer's scope as choices (an HQ user sees all brands, a regional manager only their
region and its stores) and turns every bad value into a form error — a malformed date, a code
outside the viewer's scope, a store of another brand — never a 500 and never a silent widening.
The rules themselves (defaults, longest period, consistency) are ``analytics.metrics.parse_filters``;
this form only adds the per-field scope check and the widgets.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from urllib.parse import urlencode

from django import forms
from django.utils.translation import gettext_lazy as _

from analytics import metrics
from mall.models import Channel
from retail_crm.errors import ApplicationError
from retail_crm.models import Brand, Region, Store
from retail_crm.scoping import Actor, scoped

FILTER_PARAMS = metrics.FILTER_FIELDS  # ("from", "to", "brand", "region", "store", "channel")


@dataclass(frozen=True)
class DashboardQuery:
    """Validated filters (``metrics.Filters``) plus the codes and names the page shows and links with."""

    filters: metrics.Filters
    brand_code: str = ""
    region_code: str = ""
    store_code: str = ""
    brand_name: str = ""
    region_name: str = ""
    store_name: str = ""
    # Page-specific parameters kept alongside the filters (e.g. the two RFML runs compared on the segments page).
    extra: tuple[tuple[str, str], ...] = ()
    # One table's sort order, ``<table key>:<column key>`` (ascending) or ``<table key>:-<column key>``.
    sort: str = ""

    @property
    def date_from(self):
        return self.filters.date_from

    @property
    def date_to(self):
        return self.filters.date_to

    @property
    def days(self) -> int:
        return self.filters.days

    @property
    def region_value(self) -> str:
        """The region as the filter box and links write it: ``BRAND:code`` (codes repeat across brands)."""
        return region_value(self.brand_code, self.region_code) if self.region_code else ""

    @property
    def partial(self) -> bool:
        """The period includes today: its figures are not final."""
        from analytics.services import local_today

        return self.filters.is_partial(local_today())

    def params(self, **overrides) -> dict[str, str]:
        """The GET parameters reproducing this query; an override of ``None`` drops a parameter."""
        values = {
            "from": self.filters.date_from.isoformat(),
            "to": self.filters.date_to.isoformat(),
            "brand": self.brand_code,
            "region": self.region_value,
            "store": self.store_code,
            "channel": self.filters.channel or "",
            "sort": self.sort,
            **dict(self.extra),
        }
        values.update(overrides)
        return {key: value for key, value in values.items() if value not in (None, "")}

    def querystring(self, **overrides) -> str:
        return urlencode(self.params(**overrides), safe=":")


def region_value(brand_code: str, region_code: str) -> str:
    """A region's filter value: unique across brands, so choosing it never picks another brand's stores."""
    return f"{brand_code}:{region_code}"


def _scoped_code(model, code: str, actor: Actor, **extra):
    return scoped(model.objects.filter(code=code, **extra), actor)


def _scoped_regions(value: str, actor: Actor):
    """The regions of the scope a filter value names: ``BRAND:code``, or a bare code (any brand)."""
    brand_code, _sep, code = value.rpartition(":")
    regions = _scoped_code(Region, code, actor)
    return regions.filter(brand__code=brand_code) if brand_code else regions


class DashboardFilterForm(forms.Form):
    """The filter bar. Build it with the viewer's actor: choices and checks are scoped to them."""

    # The store box offers a list of codes only while it stays short enough to be useful.
    STORE_HINT_LIMIT = 400

    def __init__(self, data=None, *, actor: Actor, **kwargs):
        # Only the filter parameters are read; anything else in the query string is left to the page.
        if data is not None:
            data = {key: str(data.get(key) or "").strip() for key in FILTER_PARAMS if str(data.get(key) or "").strip()}
        super().__init__(data, **kwargs)
        self.actor = actor
        brands = scoped(Brand.objects.filter(is_active=True), actor).order_by("code")
        regions = scoped(Region.objects.all(), actor).select_related("brand").order_by("brand__code", "code")
        self.fields["from"] = forms.DateField(label=_("From"), required=False,
                                              widget=forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d"))
        self.fields["to"] = forms.DateField(label=_("To"), required=False,
                                            widget=forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d"))
        self.fields["brand"] = forms.CharField(
            label=_("Brand"), required=False, max_length=32,
            widget=forms.Select(choices=[("", _("All brands")), *((b.code, b.name) for b in brands)]))
        self.fields["region"] = forms.CharField(
            label=_("Region"), required=False, max_length=65,
            widget=forms.Select(choices=[("", _("All regions")),
                                         *((region_value(r.brand.code, r.code), f"{r.brand.name} · {r.name}")
                                           for r in regions)]))
        self.fields["store"] = forms.CharField(
            label=_("Store"), required=False, max_length=32,
            widget=forms.TextInput(attrs={"list": "store-codes", "size": 12, "placeholder": _("Store code")}))
        self.fields["channel"] = forms.ChoiceField(label=_("Channel"), required=False,
                                                   choices=[("", _("All channels")), *Channel.choices])

    def clean(self):
        cleaned = super().clean()
        if self.errors:
            return cleaned
        actor = self.actor
        brand_code, region_code, store_code = (cleaned.get(name) or "" for name in ("brand", "region", "store"))
        # Outside the viewer's scope a brand, region or store does not exist: a field error, not a 404 page.
        if brand_code and not _scoped_code(Brand, brand_code, actor).exists():
            self.add_error("brand", _("No brand with this code in your scope."))
        if region_code:
            regions = _scoped_regions(region_code, actor)
            if brand_code:
                regions = regions.filter(brand__code=brand_code)
            if not regions.exists():
                self.add_error("region", _("No region with this code in your scope."))
        if store_code and not _scoped_code(Store, store_code, actor).exists():
            self.add_error("store", _("No store with this code in your scope."))
        if self.errors:
            return cleaned
        raw = {"from": cleaned["from"].isoformat() if cleaned.get("from") else "",
               "to": cleaned["to"].isoformat() if cleaned.get("to") else "",
               "brand": brand_code, "region": region_code, "store": store_code,
               "channel": cleaned.get("channel") or ""}
        if region_code and not brand_code:
            # BRAND:code names its brand; a regional manager's or brand operator's bare region code is
            # unambiguous within their brand.
            only = list(_scoped_regions(region_code, actor).values_list("brand__code", flat=True)[:2])
            if len(only) == 1:
                raw["brand"] = only[0]
        try:
            cleaned["filters"] = metrics.parse_filters(raw, actor=actor)
        except ApplicationError as error:
            for field, messages in (error.fields or {}).items():
                for message in messages:
                    self.add_error(field if field in self.fields else None, message)
            if not error.fields:
                self.add_error(None, error.message)
        return cleaned

    @property
    def store_hints(self) -> list[tuple[str, str]]:
        """(code, name) pairs for the store box's datalist, narrowed by the chosen brand or region."""
        stores = scoped(Store.objects.all(), self.actor)
        filters = (self.cleaned_data.get("filters") if self.is_bound and not self.errors else None)
        if filters is not None and filters.brand_id:
            stores = stores.filter(brand_id=filters.brand_id)
        if filters is not None and filters.region_id:
            stores = stores.filter(region_id=filters.region_id)
        rows = list(stores.order_by("code").values_list("code", "name")[: self.STORE_HINT_LIMIT + 1])
        return rows if len(rows) <= self.STORE_HINT_LIMIT else []

    def query(self) -> DashboardQuery:
        """The validated query; call only after ``is_valid()`` returned True."""
        filters: metrics.Filters = self.cleaned_data["filters"]
        brand = Brand.objects.filter(pk=filters.brand_id).first() if filters.brand_id else None
        region = Region.objects.select_related("brand").filter(pk=filters.region_id).first() \
            if filters.region_id else None
        store = Store.objects.filter(pk=filters.store_id).first() if filters.store_id else None
        if brand is None and region is not None:
            brand = region.brand
        return DashboardQuery(
            filters=filters,
            brand_code=brand.code if brand else "", brand_name=brand.name if brand else "",
            region_code=region.code if region else "", region_name=region.name if region else "",
            store_code=store.code if store else "", store_name=store.name if store else "",
        )


SORT_PATTERN = re.compile(r"(?P<table>[a-z0-9_]+):(?P<desc>-?)(?P<column>[a-z0-9_.]+)")


def _sort_error(value: str) -> str | None:
    """Why a ``sort`` value names no sortable column of a dashboard table (None when it does)."""
    from analytics.dashboard_tables import get_table

    match = SORT_PATTERN.fullmatch(value)
    table = get_table(match["table"]) if match else None
    if table is None or match["column"] not in {column.key for column in table.columns}:
        return str(_("Sort by one of the table's columns."))
    return None


def parse_filters(params, *, actor: Actor) -> tuple[DashboardFilterForm, DashboardQuery | None]:
    """Bind the filter form to a query string; the query is None when a filter (or the sort) is invalid."""
    form = DashboardFilterForm(params, actor=actor)
    sort = str(params.get("sort") or "").strip()
    if not form.is_valid():
        return form, None
    if sort and (error := _sort_error(sort)):
        form.add_error(None, error)
        return form, None
    query = replace(form.query(), sort=sort)
    # The date boxes show the period used, defaults included; the region box its unique BRAND:code value.
    form.data = {**form.data, "from": query.date_from.isoformat(), "to": query.date_to.isoformat()}
    if query.region_code:
        form.data["region"] = query.region_value
    return form, query
