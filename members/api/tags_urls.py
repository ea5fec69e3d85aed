"""Member tag routes, mounted under /api/v1/."""

from django.urls import path

from members.api import tags_views

urlpatterns = [
    path("members/tag-groups/", tags_views.TagGroupListApi.as_view(), name="api-tag-group-list"),
    path("members/<int:member_id>/tags/", tags_views.MemberTagAssignApi.as_view(), name="api-member-tag-assign"),
    path("members/<int:member_id>/tags/<int:tag_value_id>/", tags_views.MemberTagRemoveApi.as_view(),
         name="api-member-tag-remove"),
]
