"""Password pages under /accounts/: changing one's own password, and the e-mail reset where e-mail is set up.

The change page also ends the obligation a manager's reset put on a login (``retail_crm.passwords``). The
e-mail reset is Django's own (a link valid PASSWORD_RESET_TIMEOUT, sent only to an active login with that
address); without e-mail configured (``PASSWORD_RESET_BY_EMAIL``) its page tells staff to ask their manager.
"""

from __future__ import annotations

from django.conf import settings
from django.contrib.auth import views as auth_views
from django.shortcuts import render
from django.urls import reverse_lazy

from retail_crm.login_guard import login_unlock
from retail_crm.passwords import SESSION_FLAG, password_changed


class StaffPasswordChangeView(auth_views.PasswordChangeView):
    template_name = "registration/password_change.html"
    success_url = reverse_lazy("password_change_done")

    def form_valid(self, form):
        response = super().form_valid(form)
        password_changed(user=form.user)
        self.request.session.pop(SESSION_FLAG, None)
        return response

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        context["forced"] = bool(self.request.session.get(SESSION_FLAG))
        return context


class StaffPasswordChangeDoneView(auth_views.PasswordChangeDoneView):
    template_name = "registration/password_change_finished.html"


class EmailPasswordResetView(auth_views.PasswordResetView):
    template_name = "registration/password_reset_request.html"
    email_template_name = "registration/password_reset_mail.txt"
    subject_template_name = "registration/password_reset_mail_subject.txt"
    success_url = reverse_lazy("password_reset_done")

    def dispatch(self, request, *args, **kwargs):
        if not settings.PASSWORD_RESET_BY_EMAIL:
            return render(request, "registration/password_reset_unavailable.html")
        return super().dispatch(request, *args, **kwargs)


class EmailPasswordResetDoneView(auth_views.PasswordResetDoneView):
    template_name = "registration/password_reset_sent.html"


class EmailPasswordResetConfirmView(auth_views.PasswordResetConfirmView):
    template_name = "registration/password_reset_new.html"
    success_url = reverse_lazy("password_reset_complete")

    def form_valid(self, form):
        response = super().form_valid(form)
        password_changed(user=form.user)
        # Whoever holds the mailbox chose the password: their username's lock-out has no reason to last.
        login_unlock(username=form.user.get_username())
        return response


class EmailPasswordResetCompleteView(auth_views.PasswordResetCompleteView):
    template_name = "registration/password_reset_finished.html"
