from django.apps import AppConfig
from django.utils.translation import pgettext_lazy


class SegmentsConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "segments"
    # The dashboard's section of the same name already carries the words ("会员分层").
    verbose_name = pgettext_lazy("dashboard section", "Segments")
