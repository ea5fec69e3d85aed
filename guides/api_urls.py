"""Guide workbench staff API routes under /api/v1/guides/."""

from django.urls import path

from guides import api

urlpatterns = [
    path("guides/task-execution/", api.TaskExecutionApi.as_view(), name="api-guides-task-execution"),
]
