"""HQ audience pages at ``/hq/marketing/``: the saved audiences with their live sizes, the editor, and issuing a
coupon to an audience.

Every read and write goes through ``marketing.audiences`` (scope, validation, the one counting query) and
``marketing.audience_coupons``. The list counts nothing itself (a count over a large brand takes seconds):
``static/js/audience_sizes.js`` fills each row's size from ``GET /api/v1/marketing/audiences/<pk>/size/`` once
the page is shown. The editor's size is previewed live by ``static/js/audience_preview.js`` through
``POST /api/v1/marketing/audiences/preview/``. A refused save renders the form again with the
services' messages, per field, in the viewer's language.
"""

from __future__ import annotations

from django.contrib import messages
from django.core.paginator import Paginator
from django.http import Http404
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.translation import gettext as _
from django.views.decorators.http import require_http_methods, require_safe

from marketing.audience_coupons import (
    audience_coupon_issue,
    audience_coupon_preview,
    audience_coupon_template,
    audience_coupon_templates,
)
from marketing.audiences import (
    audience_brand,
    audience_count,
    audience_create,
    audience_delete,
    audience_get,
    audience_list,
    audience_update,
)
from marketing.forms import OTHER, AudienceForm
from marketing.views.access import marketing_page
from marketing.views.refusals import refusal_text
from retail_crm.errors import ApplicationError
from retail_crm.models import Brand
from retail_crm.scoping import Actor, scoped

PAGE_SIZE = 20


def _size(audience) -> int | None:
    """The audience's size now; None when its saved definition no longer fits the brand."""
    try:
        return audience_count(brand=audience.brand, definition=audience.definition)
    except ApplicationError:
        return None


@marketing_page
@require_safe
def audience_list_page(request, actor: Actor):
    """The saved audiences in scope; each row's size is counted by the browser after the page is shown."""
    page = Paginator(audience_list(actor=actor), PAGE_SIZE).get_page(request.GET.get("page"))
    return render(request, "marketing/audiences.html", {"page": page, "active": "audiences"})


def _show_refusal(form: AudienceForm, refused: ApplicationError) -> None:
    """Put the service's messages on the fields they are about (the rest above the form)."""
    if not refused.fields:
        form.add_error(None, refusal_text(refused.message))
    for key, texts in refused.fields.items():
        field, where = None, ""
        if key == "name":
            field = "name"
        elif key.startswith("definition"):
            path = key.removeprefix("definition").lstrip(".")
            field = form.field_for(path) if path else None
            if field is None and form.cleaned_data.get(OTHER):
                field, where = OTHER, f"{path}: " if path else ""
        for text in texts:
            form.add_error(field, where + refusal_text(text))


def _editor(request, actor: Actor, *, brand: Brand, audience=None):
    """The editor for a new audience of ``brand`` or a saved one: GET shows it, POST saves (or deletes)."""
    initial = AudienceForm.initial_for(name=audience.name, definition=audience.definition) if audience else {}
    form = AudienceForm(request.POST or None, initial=initial, brand=brand, actor=actor)
    status = 200
    if request.method == "POST" and audience is not None and request.POST.get("action") == "delete":
        try:
            audience_delete(actor=actor, audience=audience)
        except ApplicationError as refused:
            if refused.status != 409:
                raise
            messages.error(request, _("The audience is used by a campaign and cannot be deleted."))
            return redirect("marketing:audience", pk=audience.pk)
        messages.success(request, _("Deleted the audience “%(name)s”.") % {"name": audience.name})
        return redirect("marketing:audiences")
    if request.method == "POST":
        status = 400
        if form.is_valid():
            definition = form.definition()
            try:
                if audience is None:
                    audience = audience_create(actor=actor, brand=brand, name=form.cleaned_data["name"],
                                               definition=definition, user=request.user)
                else:
                    audience = audience_update(actor=actor, audience=audience, name=form.cleaned_data["name"],
                                               definition=definition)
            except ApplicationError as refused:
                if refused.status not in (400, 409):
                    raise
                status = refused.status
                _show_refusal(form, refused)
            else:
                messages.success(request, _("Saved the audience “%(name)s”: %(n)s members now.") % {
                    "name": audience.name, "n": f"{_size(audience) or 0:,}"})
                return redirect("marketing:audience", pk=audience.pk)
    size = _size(audience) if audience is not None and request.method != "POST" else None
    if audience is None and request.method != "POST":
        size = audience_count(brand=brand, definition={})
    brands = [] if audience is not None else list(scoped(Brand.objects.all(), actor).order_by("code"))
    return render(request, "marketing/audience_edit.html", {
        "form": form, "audience": audience, "brand": brand, "brands": brands, "size": size,
        "preview_url": reverse("marketing-audience-preview"), "active": "audiences",
        "export_url": reverse("marketing-audience-export", args=[audience.pk]) if audience else None,
    }, status=status)


@marketing_page
@require_http_methods(["GET", "HEAD", "POST"])
def audience_new(request, actor: Actor):
    """A new audience; HQ picks the brand first (``?brand=CODE``), a brand operator works in their own."""
    code = request.GET.get("brand")
    if not code and actor.brand_id is None:
        code = scoped(Brand.objects.order_by("code"), actor).values_list("code", flat=True).first()
    try:
        brand = audience_brand(actor=actor, code=code)
    except ApplicationError:
        raise Http404("No such brand in scope.") from None
    return _editor(request, actor, brand=brand)


@marketing_page
@require_http_methods(["GET", "HEAD", "POST"])
def audience_edit(request, actor: Actor, pk: int):
    """One saved audience: change its name and conditions, or delete it."""
    audience = audience_get(actor=actor, pk=pk)
    return _editor(request, actor, brand=audience.brand, audience=audience)


@marketing_page
@require_http_methods(["GET", "HEAD", "POST"])
def audience_coupon(request, actor: Actor, pk: int):
    """Issue a coupon to the audience: pick a template, read how many get one, confirm."""
    audience = audience_get(actor=actor, pk=pk)
    templates = list(audience_coupon_templates(actor=actor, audience=audience))
    source = request.POST if request.method == "POST" else request.GET
    chosen = source.get("template")
    template = audience_coupon_template(actor=actor, audience=audience, pk=chosen) if chosen else None
    error, status = None, 200
    if request.method == "POST":
        if template is None:
            error, status = _("Choose a coupon."), 400
        else:
            try:
                result = audience_coupon_issue(actor=actor, audience=audience, template=template)
            except ApplicationError as refused:
                if refused.status != 409:
                    raise
                error, status = (_("This coupon is no longer issued.") if refused.code.endswith("inactive")
                                 else _("This coupon has expired.")), 409
            else:
                messages.success(request, _("Issued %(issued)s coupons of “%(name)s” to the audience “%(audience)s”; "
                                            "%(skipped)s members already held one and got no second.") % {
                    "issued": f"{result.issued:,}", "name": template.name, "audience": audience.name,
                    "skipped": f"{result.skipped_holding:,}"})
                return redirect("marketing:audience-coupon", pk=audience.pk)
    preview = None
    if template is not None:
        try:
            preview = audience_coupon_preview(actor=actor, audience=audience, template=template)
        except ApplicationError as refused:
            if refused.status != 400:
                raise
            error, status = _("The audience's conditions no longer fit its brand; edit the audience first."), 400
    return render(request, "marketing/audience_coupon.html", {
        "audience": audience, "templates": templates, "template": template, "preview": preview, "error": error,
        "active": "audiences",
    }, status=status)
