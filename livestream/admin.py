"""Livestream admin, scoped like every other admin page (``ScopedModelAdmin``).

* **Sessions** are read-only here: they are planned and moved only through ``livestream.services`` (the
  API), so the conflict checks and row locks always apply. The change page shows the session's figures
  (``SessionStats``, computed by the ``livestream.stats`` job) and its coaching notes.
* **Coaching notes** are added by HQ and brand operators through ``livestream.coaching.coaching_note_add``
  (the same checks as the API); once written they are kept as they are.
* **Phase targets** (per brand) and **store phases** are edited by HQ and brand operators in their scope;
  the forms apply the service rules (figures not negative, conversion at most 1; the editor and the
  date are recorded when a store changes phase).
"""

from __future__ import annotations

from django import forms
from django.contrib import admin
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from livestream.coaching import coaching_note_add, coaching_note_check
from livestream.models import CoachingNote, LivePhaseTarget, LiveSession, SessionStats, StoreLivePhase
from livestream.phases import PHASE_EDITOR_ROLES
from retail_crm.admin_scoping import READ_ONLY, ScopedModelAdmin
from retail_crm.errors import ApplicationError
from retail_crm.scoping import actor_for, scoped

STATS_FIELDS = ("viewers", "views", "peak_concurrent", "watch_seconds", "avg_watch_seconds", "likes", "comments",
                "shares", "product_clicks", "orders", "gmv", "paid_orders", "paid_sales", "buyers", "conversion",
                "new_members", "computed_at")


class _ReadOnlyInline(admin.TabularInline):
    """An inline that only shows rows, limited to the viewer's scope."""

    extra = 0
    can_delete = False

    def get_queryset(self, request):
        return scoped(super().get_queryset(request), request.user)

    def has_view_permission(self, request, obj=None):
        # Whoever may open the session (ScopedModelAdmin decides) sees its rows, limited by get_queryset.
        return request.user.is_active and request.user.is_staff and actor_for(request.user).is_staff_member

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


class SessionStatsInline(_ReadOnlyInline):
    model = SessionStats
    fields = STATS_FIELDS
    readonly_fields = STATS_FIELDS
    verbose_name_plural = _("figures (refreshed by the livestream.stats job)")


class CoachingNoteInline(_ReadOnlyInline):
    model = CoachingNote
    fields = ("created_at", "aspect", "rating", "text", "author")
    readonly_fields = fields
    ordering = ("-created_at",)


@admin.register(LiveSession)
class LiveSessionAdmin(ScopedModelAdmin):
    """Scoped list of live sessions; read-only because scheduling must go through the service."""

    list_display = ("title", "brand", "kind", "host_store", "host_guide", "status", "planned_start", "planned_end")
    list_filter = ("brand", "kind", "status", "platform")
    search_fields = ("title", "host_store__code", "host_guide__code")
    list_select_related = ("brand", "host_store", "host_guide")
    date_hierarchy = "planned_start"
    raw_id_fields = ("follows", "products", "materials")
    inlines = [SessionStatsInline, CoachingNoteInline]
    write_roles = READ_ONLY


class CoachingNoteForm(forms.ModelForm):
    class Meta:
        model = CoachingNote
        fields = ("session", "aspect", "rating", "text")


@admin.register(CoachingNote)
class CoachingNoteAdmin(ScopedModelAdmin):
    """HQ and brand operators add notes (through the coaching service); notes are not edited afterwards."""

    form = CoachingNoteForm
    list_display = ("session", "aspect", "rating", "author", "created_at")
    list_filter = ("aspect", "rating", "session__brand")
    search_fields = ("session__title", "session__host_store__code", "text")
    list_select_related = ("session", "author")
    raw_id_fields = ("session",)
    readonly_fields = ("author", "created_at")
    write_roles = PHASE_EDITOR_ROLES

    def has_change_permission(self, request, obj=None):
        # Existing notes are a record of what the store was told: view them, never rewrite them.
        return obj is None and super().has_change_permission(request, obj)

    def get_form(self, request, obj=None, change=False, **kwargs):
        form = super().get_form(request, obj, change=change, **kwargs)
        admin_user = request.user

        def clean(this):
            data = super(form, this).clean()
            session = data.get("session")
            if session is not None and data.get("aspect") and data.get("text"):
                try:  # the service's rules, shown as form errors; the row is written in save_model
                    coaching_note_check(session=session, aspect=data["aspect"], text=data["text"],
                                        rating=data.get("rating"), actor=admin_user)
                except ApplicationError as exc:
                    raise forms.ValidationError(exc.message) from None
            return data

        return type(form.__name__, (form,), {"clean": clean})

    def save_model(self, request, obj, form, change):
        note = coaching_note_add(session=obj.session, aspect=obj.aspect, text=obj.text, rating=obj.rating,
                                 actor=request.user)
        obj.pk, obj.text, obj.author_id, obj.created_at = note.pk, note.text, note.author_id, note.created_at
        obj._state.adding = False


class LivePhaseTargetForm(forms.ModelForm):
    class Meta:
        model = LivePhaseTarget
        fields = ("brand", "phase", "sessions_per_month", "hours_per_month", "sales_per_month", "conversion")

    def clean(self):
        data = super().clean()
        for name in ("hours_per_month", "sales_per_month", "conversion"):
            if data.get(name) is not None and data[name] < 0:
                self.add_error(name, _("Must be 0 or more."))
        if data.get("conversion") is not None and data["conversion"] > 1:
            self.add_error("conversion", _("A conversion rate is at most 1 (100%)."))
        return data


@admin.register(LivePhaseTarget)
class LivePhaseTargetAdmin(ScopedModelAdmin):
    """A brand's monthly targets per phase (a zero target is not judged)."""

    form = LivePhaseTargetForm
    list_display = ("brand", "phase", "sessions_per_month", "hours_per_month", "sales_per_month", "conversion")
    list_filter = ("brand", "phase")
    write_roles = PHASE_EDITOR_ROLES


@admin.register(StoreLivePhase)
class StoreLivePhaseAdmin(ScopedModelAdmin):
    """The phase each store is in; who moved it last is recorded."""

    list_display = ("store", "phase", "since", "updated_by")
    list_filter = ("phase", "store__brand", "store__region")
    search_fields = ("store__code", "store__name")
    list_select_related = ("store", "updated_by")
    readonly_fields = ("updated_by",)
    write_roles = PHASE_EDITOR_ROLES

    def get_changeform_initial_data(self, request):
        return {"since": timezone.localdate(), **super().get_changeform_initial_data(request)}

    def save_model(self, request, obj, form, change):
        obj.updated_by = request.user
        super().save_model(request, obj, form, change)
