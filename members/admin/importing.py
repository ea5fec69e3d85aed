"""Admin page "Import members": upload a member CSV for one brand and see the import's report.

Runs the same importer as ``manage.py import_members``. Only HQ and brand
operators (and platform superusers) may import; the brand list holds only
the brands in the uploader's scope, so a brand operator imports into their
own brand and no other.
"""

from __future__ import annotations

import io
from functools import partial

from django import forms
from django.contrib import admin
from django.core.exceptions import PermissionDenied
from django.template.response import TemplateResponse
from django.urls import path
from django.utils.translation import gettext_lazy as _

from members.importing import MEMBER_COLUMNS, member_import
from members.models import Member
from retail_crm.csv_import import CsvHeaderError, read_csv_rows
from retail_crm.models import Brand
from retail_crm.scoping import actor_for, scoped

IMPORT_ROLES = frozenset({"hq", "brand_operator"})
MAX_UPLOAD_BYTES = 20 * 1024 * 1024  # ~200,000 member rows; bigger files belong to the command line


class MemberImportForm(forms.Form):
    """A CSV file and the brand its members join (one of the uploader's brands)."""

    brand = forms.ModelChoiceField(queryset=Brand.objects.none(), label=_("Brand"))
    file = forms.FileField(label=_("CSV file"), help_text=_("UTF-8 CSV with the header shown above."))

    def __init__(self, *args, user, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["brand"].queryset = scoped(Brand.objects.filter(is_active=True), user).order_by("code")

    def clean_file(self):
        upload = self.cleaned_data["file"]
        if upload.size > MAX_UPLOAD_BYTES:
            raise forms.ValidationError(_("The file is larger than 20 MB; use the import_members command."))
        try:
            text = upload.read().decode("utf-8-sig")
        except UnicodeDecodeError:
            raise forms.ValidationError(_("The file is not UTF-8 text (save the sheet as CSV UTF-8).")) from None
        try:
            self.rows = read_csv_rows(io.StringIO(text, newline=""), MEMBER_COLUMNS)
        except CsvHeaderError as exc:
            raise forms.ValidationError(str(exc)) from None
        return upload


def member_import_page(request, admin_site: admin.AdminSite = admin.site):
    """GET: the upload form. POST: run the import and show counts and the rejected rows with line numbers."""
    actor = actor_for(request.user)
    if not (actor.is_superuser or actor.role in IMPORT_ROLES):
        raise PermissionDenied
    report = None
    if request.method == "POST":
        form = MemberImportForm(request.POST, request.FILES, user=request.user)
        if form.is_valid():
            report = member_import(rows=form.rows, brand=form.cleaned_data["brand"])
    else:
        form = MemberImportForm(user=request.user)
    context = {
        **admin_site.each_context(request),
        "title": _("Import members"),
        "opts": Member._meta,
        "form": form,
        "report": report,
        "columns": ",".join(MEMBER_COLUMNS),
    }
    return TemplateResponse(request, "admin/members/member/import.html", context)


def member_import_urls(model_admin: admin.ModelAdmin) -> list:
    """The page's URL for ``MemberAdmin.get_urls`` (named ``admin:members_member_import``); the Member
    changelist template shows an "Import members" link once it exists."""
    site = model_admin.admin_site
    return [path("import/", site.admin_view(partial(member_import_page, admin_site=site)),
                 name="members_member_import")]
