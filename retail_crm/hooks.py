"""Synchronous in-process hooks: a lower app asks a question, upper apps answer it.

Events (``retail_crm.events``) carry what happened to the apps above, after the commit. Some work cannot
wait for that: a member merge must move the absorbed member's coupons, cart and live-viewer rows in the
merge's own transaction, and a member joining through a guide's share code needs the code resolved before
the answer goes back. The lower app names the hook and calls it; the upper app provides the answer in its
``AppConfig.ready`` by dotted path, so no module of a lower app imports an upper one:

    hooks.provide("member_merge", "livestream.viewer_events.live_viewer_merge")   # livestream/apps.py
    hooks.call_all("member_merge", survivor=survivor, absorbed=absorbed)          # members/services.py

Every hook a lower app may call is declared in ``HOOKS`` with what it takes and returns.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.core.exceptions import ImproperlyConfigured
from django.utils.module_loading import import_string

#: The hooks lower apps call, and their contract. Providing or calling any other name is a bug.
HOOKS: dict[str, str] = {}

_providers: dict[str, list[str]] = {}


def declare(name: str, contract: str) -> None:
    """Declare a hook (in the calling app's module, at import time): its name and what it takes and returns."""
    HOOKS.setdefault(name, contract)


def provide(name: str, path: str) -> None:
    """Register ``path`` (a dotted path to a function) as an answer to hook ``name``; repeats are ignored."""
    paths = _providers.setdefault(name, [])
    if path not in paths:
        paths.append(path)


def providers(name: str) -> list[Callable[..., Any]]:
    """The functions registered for ``name``, in registration order (app order in INSTALLED_APPS)."""
    return [import_string(path) for path in _providers.get(name, ())]


def call_all(name: str, **kwargs: Any) -> list[Any]:
    """Call every provider of ``name`` with ``kwargs``; their answers in registration order."""
    _known(name)
    return [function(**kwargs) for function in providers(name)]


def call_one(name: str, **kwargs: Any) -> Any:
    """Call the single provider of ``name``; a hook with no or several providers is a configuration error."""
    _known(name)
    functions = providers(name)
    if len(functions) != 1:
        raise ImproperlyConfigured(f"hook {name!r} needs exactly one provider, has {len(functions)}")
    return functions[0](**kwargs)


def _known(name: str) -> None:
    if name not in HOOKS:
        raise ImproperlyConfigured(f"unknown hook {name!r}; declare it with hooks.declare()")
