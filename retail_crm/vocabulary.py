"""Words every layer shares: the sales channels and the RFML classes and lifecycle stages of a member.

They are codes with labels, not data; apps at every layer store and show them (tag rules in ``members``,
coupon targeting in ``mall``, the RFML engine in ``segments``), so they live at the bottom layer. The
apps that own the data re-export them (``mall.models.Channel``, ``segments.models.Segment``).
"""

from __future__ import annotations

from django.db import models
from django.utils.translation import gettext_lazy as _


class Channel(models.TextChoices):
    MINI_PROGRAM = "mini_program", _("Mini-program")
    STORE_POS = "store_pos", _("Store POS")
    STORE_LIVE = "store_live", _("Store livestream")
    HQ_LIVE = "hq_live", _("HQ livestream")
    COMMUNITY = "community", _("Community group")
    DISTRIBUTION = "distribution", _("Distribution")
    ECOMMERCE = "ecommerce", _("E-commerce")


OFFLINE_CHANNELS = frozenset({Channel.STORE_POS})
# Private-domain sales (私域): the channels the group owns the relationship in.
PRIVATE_DOMAIN_CHANNELS = frozenset({Channel.MINI_PROGRAM, Channel.STORE_LIVE, Channel.HQ_LIVE,
                                     Channel.COMMUNITY, Channel.DISTRIBUTION})


class Segment(models.TextChoices):
    IMPORTANT_VALUE = "important_value", _("Important value (重要价值)")
    IMPORTANT_DEVELOP = "important_develop", _("Important develop (重要发展)")
    IMPORTANT_RETAIN = "important_retain", _("Important retain (重要保持)")
    IMPORTANT_WINBACK = "important_winback", _("Important win-back (重要挽留)")
    GENERAL_VALUE = "general_value", _("General value (一般价值)")
    GENERAL_DEVELOP = "general_develop", _("General develop (一般发展)")
    GENERAL_RETAIN = "general_retain", _("General retain (一般保持)")
    GENERAL_WINBACK = "general_winback", _("General win-back (一般挽留)")


class LifecycleStage(models.TextChoices):
    NEW = "new", _("New")
    GROWING = "growing", _("Growing")
    MATURE = "mature", _("Mature")
    LAPSED = "lapsed", _("Lapsed")
