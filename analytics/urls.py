"""HQ dashboard routes under /hq/: the overview, rankings that drill down, one guide, search, RFML segments,
livestream, core indicators and exports (views in analytics/views.py)."""

from django.urls import path, re_path

from analytics import views

app_name = "hq"
urlpatterns = [
    path("", views.overview, name="overview"),
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
