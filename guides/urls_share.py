"""Workbench routes for the exclusive QR code, shares, the material library and tasks (guides.views_share)."""

from django.urls import path, re_path

from guides import views_share

urlpatterns = [
    path("qr/", views_share.qr_page, name="qr"),
    path("qr/rotate/", views_share.qr_rotate, name="qr_rotate"),
    path("qr/<int:pk>/revoke/", views_share.qr_revoke, name="qr_revoke"),
    re_path(r"^qr/(?P<pk>[0-9]+)\.(?P<kind>svg|png)$", views_share.qr_image_view, name="qr_image"),
    path("share/", views_share.share_new, name="share_new"),
    path("shares/", views_share.shares_page, name="shares"),
    path("shares/<int:pk>/", views_share.share_detail, name="share_detail"),
    re_path(r"^shares/(?P<pk>[0-9]+)/qr\.(?P<kind>svg|png)$", views_share.share_qr, name="share_qr"),
    path("materials/", views_share.materials_page, name="materials"),
    path("tasks/", views_share.tasks_page, name="tasks"),
    path("tasks/execution/", views_share.task_execution, name="task_execution"),
    path("tasks/<int:pk>/", views_share.task_detail, name="task_detail"),
    path("tasks/<int:pk>/execute/", views_share.task_execute, name="task_execute"),
]
