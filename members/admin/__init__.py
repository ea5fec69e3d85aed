"""Admin of the members app, one module per area. Django's admin autodiscovery imports ``members.admin``;
importing the modules here registers their admin classes. ``importing`` holds the "Import members" upload
page, which ``MemberAdmin`` adds to its URLs.
"""

from members.admin import events, members, tags  # noqa: F401
