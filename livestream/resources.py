"""HQ shares its resources with the store sessions that mirror its central session (the "1" feeds the "N").

DOMAIN.md "1+N": HQ runs a central stream and shares resources; N stores stream to their own members.
Sharing makes the store session follow the HQ central session and gives it the central session's
product list, run sheet (script) and materials:

* **products and materials** are added to what the store already has (a store may show a few of its own);
* the **script** is copied when the store session has none yet; ``replace_script`` overwrites the
  store's own one (HQ re-issued the run sheet);
* sharing twice changes nothing, so HQ can re-share after adding products to the central session.

Scheduling (``livestream.services.session_schedule``) already hands a following session the central
session's products when it is planned without its own; this is the explicit, repeatable version that
also carries the script and materials and works on sessions planned before HQ's list was ready.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.db import transaction

from livestream.models import LiveSession
from retail_crm.errors import ApplicationError, ErrorCode
from retail_crm.scoping import Actor, actor_for, in_scope, scoped

SHARE_ROLES = frozenset({"hq", "brand_operator"})


@dataclass(frozen=True)
class SharedResources:
    """What one share did to the store session."""

    session: LiveSession
    central: LiveSession
    products_added: int
    materials_added: int
    script_copied: bool


def _invalid(field: str, message: str) -> ApplicationError:
    return ApplicationError(ErrorCode.INVALID, message, status=400, fields={field: [message]})


@transaction.atomic
def session_resources_share(*, session: LiveSession, central_id: int | None = None,
                            replace_script: bool = False, actor) -> SharedResources:
    """Make a store session follow the HQ central session ``central_id`` (or the one it already follows)
    and give it the central session's products, script and materials.

    404 for a session outside the actor's scope, 403 unless HQ or a brand operator, 400 (field
    ``central``) for no central session, one the actor cannot see, one that is not an HQ central session
    of the brand or one that was cancelled, 409 when the session is not a store session, is over (ended
    or cancelled) or already follows another central session.
    """
    actor = actor if isinstance(actor, Actor) else actor_for(actor)
    if not in_scope(session, actor):
        raise ApplicationError(ErrorCode.NOT_FOUND, "No such session.", status=404)
    if not actor.is_superuser and actor.role not in SHARE_ROLES:
        raise ApplicationError(ErrorCode.PERMISSION_DENIED, "Only HQ or brand operators can share HQ resources.",
                               status=403)
    central = None
    if central_id is not None:
        central = scoped(LiveSession.objects.filter(pk=central_id), actor).first()
        if central is None:
            raise _invalid("central", "No such HQ central session.")
    # The row lock makes two shares of one session run one after the other.
    session = LiveSession.objects.select_for_update().get(pk=session.pk)
    if session.kind != LiveSession.Kind.STORE:
        raise ApplicationError(ErrorCode.CONFLICT, f"Session #{session.pk} is not a store session.", status=409)
    if session.status in (LiveSession.Status.ENDED, LiveSession.Status.CANCELLED):
        raise ApplicationError(ErrorCode.CONFLICT, f"Session #{session.pk} is {session.status}.", status=409)
    if central is None:
        if session.follows_id is None:
            raise _invalid("central", "This session follows no HQ central session; name one.")
        central = session.follows
    if central.kind != LiveSession.Kind.HQ_CENTRAL:
        raise _invalid("central", f"Session #{central.pk} is not an HQ central session.")
    if central.brand_id != session.brand_id:
        raise _invalid("central", "The central session belongs to another brand.")
    if central.status == LiveSession.Status.CANCELLED:
        raise _invalid("central", f"Session #{central.pk} was cancelled.")
    if session.follows_id not in (None, central.pk):
        raise ApplicationError(ErrorCode.CONFLICT, f"Session #{session.pk} already follows HQ session "
                                                   f"#{session.follows_id}.", status=409)

    fields = []
    if session.follows_id is None:
        session.follows = central
        fields.append("follows")
    script_copied = bool(central.script.strip()) and (replace_script or not session.script.strip()) \
        and session.script != central.script
    if script_copied:
        session.script = central.script
        fields.append("script")
    if fields:
        session.save(update_fields=fields)
    have_products = set(session.products.values_list("pk", flat=True))
    new_products = [pk for pk in central.products.values_list("pk", flat=True) if pk not in have_products]
    session.products.add(*new_products)
    have_materials = set(session.materials.values_list("pk", flat=True))
    new_materials = [pk for pk in central.materials.values_list("pk", flat=True) if pk not in have_materials]
    session.materials.add(*new_materials)
    return SharedResources(session=session, central=central, products_added=len(new_products),
                           materials_added=len(new_materials), script_copied=script_copied)
