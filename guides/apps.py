from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class GuidesConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "guides"
    verbose_name = _("Guides")

    def ready(self) -> None:
        from retail_crm import events, hooks

        # Commission follows the sales credits attribution wrote: after the event, or at once for the per-order
        # task (attribution.tasks.attribute_order).
        events.subscribe("credits_posted", "guides.handlers.order_commission_post", keys=("order_id",))

        # Members joining through a guide's code, and orders and events naming the guide who shared a link.
        hooks.provide("guide_token_resolve", "guides.services.guide_token_resolve")
        hooks.provide("guide_tokens_resolve_many", "guides.services.guide_tokens_resolve_many")
        hooks.provide("order_credits_posted", "guides.handlers.order_commission_post")
