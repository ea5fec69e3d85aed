from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class LivestreamConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "livestream"
    verbose_name = _("Livestream")

    def ready(self) -> None:
        from retail_crm import hooks

        # An order placed during a live session takes its channel and host store from the session.
        hooks.provide("order_live_session", "livestream.selectors.order_live_session")
        # A member merge moves the absorbed member's viewer events in the merge's transaction.
        hooks.provide("member_merge", "livestream.viewer_events.live_viewer_merge")
