"""``makemessages`` that also extracts the project's gettext aliases.

Some modules import ``gettext as _t`` or ``gettext_lazy as _lazy`` (``_`` is a loop variable or the other
flavour there). xgettext only knows the standard names, so without these keywords those strings would never
reach the catalogue and would stay English on a Chinese page.
"""

from django.core.management.commands.makemessages import Command as MakeMessagesCommand


class Command(MakeMessagesCommand):
    xgettext_options = [*MakeMessagesCommand.xgettext_options, "--keyword=_t", "--keyword=_lazy"]
