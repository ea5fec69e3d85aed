"""The one place that decides what a staff user may see.

Every view, API, admin page, export and job run on behalf of a staff user
passes its queryset through :func:`scoped`. A model opts in by declaring
``scope_paths``: for each organisation level, the lookup from the model to
that level (or a callable returning a ``Q`` for conditions a path cannot say,
such as "the *current* binding"). A level left ``None`` means users scoped at
that level see none of the model's rows.

Superusers (platform operators) see everything; an authenticated user with no
staff profile sees nothing.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from django.db.models import Model, Q, QuerySet

if TYPE_CHECKING:
    from django.contrib.auth.models import AbstractBaseUser, AnonymousUser

PathOrRule = str | Callable[["Actor"], Q] | None

LEVEL_OF_ROLE = {
    "hq": "group",
    "brand_operator": "brand",
    "region_manager": "region",
    "store_manager": "store",
    "guide": "guide",
}


@dataclass(frozen=True)
class ScopePaths:
    """How a model hangs off the organisation tree, one lookup per level.

    ``multi`` marks paths that cross a to-many relation; rows are then matched
    with a primary-key subquery so the result never holds duplicates.
    """

    group: PathOrRule = None
    brand: PathOrRule = None
    region: PathOrRule = None
    store: PathOrRule = None
    guide: PathOrRule = None
    multi: bool = False


@dataclass(frozen=True)
class Actor:
    """Who is asking: the staff user's role and the one scope it holds."""

    user_id: int | None
    role: str | None
    is_superuser: bool = False
    group_id: int | None = None
    brand_id: int | None = None
    region_id: int | None = None
    store_id: int | None = None
    guide_id: int | None = None

    @property
    def level(self) -> str | None:
        return LEVEL_OF_ROLE.get(self.role or "")

    @property
    def scope_id(self) -> int | None:
        level = self.level
        return getattr(self, f"{level}_id") if level else None

    @property
    def is_staff_member(self) -> bool:
        return self.is_superuser or self.role is not None


NOBODY = Actor(user_id=None, role=None)


def actor_for(user: AbstractBaseUser | AnonymousUser | None) -> Actor:
    """Build (and cache on the user object) the Actor for a request user."""
    if user is None or not getattr(user, "is_authenticated", False):
        return NOBODY
    cached = getattr(user, "_scope_actor", None)
    if cached is not None:
        return cached
    from retail_crm.models import StaffProfile

    profile = StaffProfile.objects.filter(user_id=user.pk).first()
    if profile is None:
        actor = Actor(user_id=user.pk, role=None, is_superuser=user.is_superuser)
    else:
        actor = Actor(
            user_id=user.pk,
            role=profile.role,
            is_superuser=user.is_superuser,
            group_id=profile.group_id,
            brand_id=profile.brand_id,
            region_id=profile.region_id,
            store_id=profile.store_id,
            guide_id=profile.guide_id,
        )
    user._scope_actor = actor
    return actor


def scope_q(model: type[Model], actor: Actor) -> Q | None:
    """The filter limiting ``model`` to ``actor``'s scope; None means no rows at all."""
    paths: ScopePaths | None = getattr(model, "scope_paths", None)
    if paths is None:
        raise TypeError(f"{model.__name__} declares no scope_paths and cannot be scoped")
    level = actor.level
    if level is None or actor.scope_id is None:
        return None
    rule = getattr(paths, level)
    if rule is None:
        return None
    if callable(rule):
        return rule(actor)
    return Q(**{rule: actor.scope_id})


def scoped(queryset: QuerySet, actor_or_user) -> QuerySet:
    """Limit ``queryset`` to what the actor (or request user) may see."""
    actor = actor_or_user if isinstance(actor_or_user, Actor) else actor_for(actor_or_user)
    if actor.is_superuser:
        return queryset
    q = scope_q(queryset.model, actor)
    if q is None:
        return queryset.none()
    paths: ScopePaths = queryset.model.scope_paths
    if paths.multi:
        visible = queryset.model._default_manager.filter(q).values("pk")
        return queryset.filter(pk__in=visible)
    return queryset.filter(q)


def in_scope(obj: Model, actor_or_user) -> bool:
    """Whether a single object lies inside the actor's scope."""
    return scoped(type(obj)._default_manager.filter(pk=obj.pk), actor_or_user).exists()
