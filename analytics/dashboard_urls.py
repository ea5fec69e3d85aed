"""HQ dashboard routes under /hq/ (the overview itself is mounted in analytics/urls.py)."""

from django.urls import path, re_path

from analytics import views

urlpatterns = [
    path("brands/", views.brands, name="brands"),
    path("regions/", views.regions, name="regions"),
    path("stores/", views.stores, name="stores"),
    path("guides/", views.guides, name="guides"),
    path("guides/<slug:code>/", views.guide, name="guide"),
    path("search/", views.search, name="search"),
    path("segments/", views.segments, name="segments"),
    path("livestream/", views.livestream, name="livestream"),
    path("core/", views.core, name="core"),
    re_path(r"^export/(?P<table_key>[a-z0-9_]+)\.(?P<fmt>csv|xlsx)$", views.export, name="export"),
    path("exports/<str:job_id>/", views.export_status, name="export_status"),
    path("exports/<str:job_id>/download", views.export_download, name="export_download"),
]
