"""Coaching notes (phase 3 of the store-livestream programme): HQ's feedback on a session, seen by the store.

DOMAIN.md "1+N": feedback flows both ways; once a store streams regularly and sells, HQ "coaches the
detail (script, delivery, set)". A note names the aspect, says what to change and may rate it 1–5.

Who: only HQ and brand operators write notes, inside their scope (a brand operator coaches only their
brand's sessions); everyone who sees a session reads its notes (the store manager their store's
sessions, a guide the sessions they hosted), newest first. A session outside the caller's scope does not
exist for them (404) — checked before the role, so nobody learns about sessions they cannot see — and a
caller who sees it but may not coach gets 403. A cancelled session cannot be coached (409).
"""

from __future__ import annotations

from django.db.models import QuerySet

from livestream.models import CoachingNote, LiveSession
from retail_crm.errors import ApplicationError, ErrorCode
from retail_crm.scoping import Actor, actor_for, in_scope, scoped

#: roles that write coaching notes
COACH_ROLES = frozenset({"hq", "brand_operator"})
MAX_NOTE_LENGTH = 2000


def _actor(actor) -> Actor:
    return actor if isinstance(actor, Actor) else actor_for(actor)


def _invalid(field: str, message: str) -> ApplicationError:
    return ApplicationError(ErrorCode.INVALID, message, status=400, fields={field: [message]})


def coaching_notes_for_session(*, session: LiveSession, actor) -> QuerySet[CoachingNote]:
    """The session's notes, newest first, with their authors. 404 for a session outside the scope."""
    actor = _actor(actor)
    if not in_scope(session, actor):
        raise ApplicationError(ErrorCode.NOT_FOUND, "No such session.", status=404)
    return (scoped(CoachingNote.objects.filter(session=session), actor)
            .select_related("author").order_by("-created_at", "-pk"))


def coaching_note_check(*, session: LiveSession, aspect: str, text: str, rating: int | None = None, actor) -> str:
    """Everything ``coaching_note_add`` checks, without writing; returns the text as it would be stored."""
    actor = _actor(actor)
    if not in_scope(session, actor):
        raise ApplicationError(ErrorCode.NOT_FOUND, "No such session.", status=404)
    if not actor.is_superuser and actor.role not in COACH_ROLES:
        raise ApplicationError(ErrorCode.PERMISSION_DENIED, "Only HQ or brand operators can write coaching notes.",
                               status=403)
    if session.status == LiveSession.Status.CANCELLED:
        raise ApplicationError(ErrorCode.CONFLICT, f"Session #{session.pk} was cancelled; there is nothing to coach.",
                               status=409)
    if aspect not in CoachingNote.Aspect.values:
        raise _invalid("aspect", f"Unknown aspect {aspect!r}.")
    text = (text or "").strip()
    if not text:
        raise _invalid("text", "Write the note.")
    if len(text) > MAX_NOTE_LENGTH:
        raise _invalid("text", f"At most {MAX_NOTE_LENGTH} characters.")
    if rating is not None and not 1 <= rating <= 5:
        raise _invalid("rating", "A rating is from 1 to 5.")
    return text


def coaching_note_add(*, session: LiveSession, aspect: str, text: str, rating: int | None = None,
                      actor) -> CoachingNote:
    """HQ or a brand operator adds a note on a session they see.

    404 for a session outside the scope, 403 for other roles, 409 for a cancelled session, 400 with
    field messages for an unknown aspect, an empty or over-long text or a rating outside 1–5.
    """
    actor = _actor(actor)
    text = coaching_note_check(session=session, aspect=aspect, text=text, rating=rating, actor=actor)
    return CoachingNote.objects.create(session=session, aspect=aspect, text=text, rating=rating,
                                       author_id=actor.user_id)
