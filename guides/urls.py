"""The guide workbench at /workbench/: every page's route, grouped by the views module that serves it."""

from django.urls import path, re_path

from guides.views import commission, share, team, workbench

app_name = "workbench"
urlpatterns = [
    path("", workbench.home, name="home"),
    # My members, a member, the care list, my performance, live schedule (guides/views/workbench.py).
    path("members/", workbench.members, name="members"),
    path("members/<int:member_id>/", workbench.member_page, name="member"),
    path("members/<int:member_id>/try-on/", workbench.member_try_on, name="member_try_on"),
    path("care/", workbench.care, name="care"),
    path("care/<int:item_id>/done/", workbench.care_done, name="care_done"),
    path("performance/", workbench.performance, name="performance"),
    path("live/", workbench.live_schedule, name="live"),
    # The exclusive QR code, shares, the material library and tasks (guides/views/share.py).
    path("qr/", share.qr_page, name="qr"),
    path("qr/rotate/", share.qr_rotate, name="qr_rotate"),
    path("qr/<int:pk>/revoke/", share.qr_revoke, name="qr_revoke"),
    re_path(r"^qr/(?P<pk>[0-9]+)\.(?P<kind>svg|png)$", share.qr_image_view, name="qr_image"),
    path("share/", share.share_new, name="share_new"),
    path("shares/", share.shares_page, name="shares"),
    path("shares/<int:pk>/", share.share_detail, name="share_detail"),
    re_path(r"^shares/(?P<pk>[0-9]+)/qr\.(?P<kind>svg|png)$", share.share_qr, name="share_qr"),
    path("materials/", share.materials_page, name="materials"),
    path("tasks/", share.tasks_page, name="tasks"),
    path("tasks/execution/", share.task_execution, name="task_execution"),
    path("tasks/<int:pk>/", share.task_detail, name="task_detail"),
    path("tasks/<int:pk>/execute/", share.task_execute, name="task_execute"),
    # Commission and withdrawals (guides/views/commission.py).
    path("commission/", commission.commission, name="commission"),
    path("commission/withdraw/", commission.commission_withdraw, name="commission_withdraw"),
    path("withdrawals/<int:pk>/", commission.withdrawal_detail, name="withdrawal_detail"),
    path("withdrawals/review/", commission.withdrawals_review, name="withdrawals_review"),
    path("withdrawals/<int:pk>/<str:action>/", commission.withdrawal_decide, name="withdrawal_decide"),
    # The manager's team logins: password resets and unlocking (guides/views/team.py).
    path("team/", team.team, name="team"),
    path("team/<int:pk>/password-reset/", team.guide_password_reset, name="team_password_reset"),
    path("team/<int:pk>/unlock/", team.guide_unlock, name="team_unlock"),
]
