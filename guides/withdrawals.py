"""Commission balances and withdrawals (提现): selectors for the balance and ledger, services for requests.

The ledger (CommissionEntry) is append-only; a person's balance is the sum of
their rows, split as follows at a moment ``at`` (default now), counting only
rows created by then:

* **pending** = Σ ``earn`` rows whose ``available_at`` (end of the return
  window) is after ``at``: earned but still returnable;
* **available** = Σ every other row: ``earn`` rows already available, and
  every ``reversal``, ``withdrawal`` (negative, posted when the request is
  made, so the money is held at once) and ``withdrawal_return`` (positive,
  posted on rejection) row whatever its date. Money going out counts at once
  and money coming in only when it is due, so a refund during the return
  window can make ``available`` negative: a debt the next earnings pay off,
  never money that can be withdrawn twice;
* **withdrawn** = −Σ ``withdrawal`` and ``withdrawal_return`` rows: what
  requests not rejected have taken out, of which ``in_review`` is still
  requested or approved and ``paid_out`` has been paid.

So pending + available is the ledger's sum, and Σ earn + Σ reversal =
pending + available + withdrawn.

A ledger belongs to a guide (``guide``) or, for office staff without a guide
row (all-staff distribution), to a user (``staff_user``). Writes that move a
balance lock the owner's row first (the Guide row, or the User row for office
staff), then the request row: with that one lock twenty simultaneous requests
for the whole balance see each other's ledger rows, and exactly one is made.

**Who decides.** A withdrawal is approved, rejected or marked paid by a staff
member of role store manager or above (store_manager, region_manager,
brand_operator, hq; or a superuser) whose scope holds the request (a guide's
request is in its store, region, brand and group; an office staff member's,
which hangs off no store, in its brand and group), and who is not the person
asking. Outside the scope it is a 404, a guide or the requester gets 403, and
a transition the status does not allow is a 409: requested → approved | rejected;
approved → paid | rejected. ``withdrawal_actions_for`` says which of these moves one viewer may make now:
the pages render it and the services enforce it, so a button is offered exactly when the move is allowed.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, replace
from decimal import Decimal, InvalidOperation

from django.contrib.auth import get_user_model
from django.db import transaction
from django.db.models import Q, QuerySet, Sum
from django.utils import timezone

from guides.errors import GuidesErrorCode
from guides.models import CommissionEntry, WithdrawalRequest
from retail_crm.errors import ApplicationError, ErrorCode
from retail_crm.models import Guide, StaffProfile
from retail_crm.money import ZERO, money
from retail_crm.scoping import Actor, actor_for, scoped

Kind = CommissionEntry.Kind
Status = WithdrawalRequest.Status

#: roles that may decide withdrawals in their scope (never their own)
APPROVER_ROLES = frozenset({"hq", "brand_operator", "region_manager", "store_manager"})
MIN_AMOUNT = Decimal("0.01")
MAX_AMOUNT = Decimal("999999999999.99")
MAX_KEY_LENGTH = 100


# ---------------------------------------------------------------------------- owner

@dataclass(frozen=True)
class CommissionOwner:
    """Whose ledger: a guide, or an office staff user without a guide row."""

    guide_id: int | None = None
    staff_user_id: int | None = None

    def __post_init__(self):
        if (self.guide_id is None) == (self.staff_user_id is None):
            raise ValueError("a commission owner is a guide or a staff user, not both or neither")

    @classmethod
    def of(cls, *, guide=None, staff_user=None) -> CommissionOwner:
        """From a Guide / user (or their ids), as the services' keyword arguments give them."""
        if (guide is None) == (staff_user is None):
            raise ApplicationError(ErrorCode.INVALID, "Name a guide or a staff user, not both.")
        if guide is not None:
            return cls(guide_id=getattr(guide, "pk", guide))
        return cls(staff_user_id=getattr(staff_user, "pk", staff_user))

    @property
    def rows(self) -> Q:
        """The filter for this owner's ledger rows and withdrawal requests."""
        if self.guide_id is not None:
            return Q(guide_id=self.guide_id)
        return Q(staff_user_id=self.staff_user_id, guide__isnull=True)

    @property
    def tag(self) -> str:
        return f"guide:{self.guide_id}" if self.guide_id is not None else f"user:{self.staff_user_id}"

    def lock(self) -> None:
        """The per-owner lock every balance-moving write takes first (until the transaction ends)."""
        if self.guide_id is not None:
            found = Guide.objects.select_for_update().filter(pk=self.guide_id).values_list("pk", flat=True)
        else:
            found = get_user_model().objects.select_for_update().filter(pk=self.staff_user_id).values_list(
                "pk", flat=True)
        if not list(found):
            raise ApplicationError(GuidesErrorCode.NO_COMMISSION_ACCOUNT, "No such commission account.",
                                   status=404)


def commission_owner_for(user) -> CommissionOwner | None:
    """The ledger a logged-in staff member earns into: their guide row if they have one, else their user.

    None for anyone who is not staff (members, anonymous).
    """
    actor = actor_for(user)
    if not actor.is_staff_member:
        return None
    if actor.guide_id is not None:
        return CommissionOwner(guide_id=actor.guide_id)
    guide_id = Guide.objects.filter(user_id=user.pk).values_list("pk", flat=True).first()
    if guide_id is not None:
        return CommissionOwner(guide_id=guide_id)
    return CommissionOwner(staff_user_id=user.pk)


# ---------------------------------------------------------------------------- selectors

@dataclass(frozen=True)
class CommissionBalance:
    """A ledger's balance at a moment; see the module docstring for the exact definitions."""

    pending: Decimal
    available: Decimal
    withdrawn: Decimal
    in_review: Decimal
    paid_out: Decimal

    @property
    def total(self) -> Decimal:
        """The ledger's sum (what the person is owed, pending or not)."""
        return self.pending + self.available


def _balance(owner: CommissionOwner, at: dt.datetime) -> CommissionBalance:
    not_yet = Q(kind=Kind.EARN, available_at__gt=at)
    out = Q(kind__in=[Kind.WITHDRAWAL, Kind.WITHDRAWAL_RETURN])
    sums = CommissionEntry.objects.filter(owner.rows, created_at__lte=at).aggregate(
        pending=Sum("amount", filter=not_yet),
        available=Sum("amount", filter=~not_yet),
        withdrawn=Sum("amount", filter=out),
        in_review=Sum("amount", filter=Q(kind=Kind.WITHDRAWAL,
                                         withdrawal__status__in=[Status.REQUESTED, Status.APPROVED])),
        paid_out=Sum("amount", filter=Q(kind=Kind.WITHDRAWAL, withdrawal__status=Status.PAID)),
    )
    return CommissionBalance(pending=money(sums["pending"]), available=money(sums["available"]),
                             withdrawn=-money(sums["withdrawn"]) + ZERO, in_review=-money(sums["in_review"]) + ZERO,
                             paid_out=-money(sums["paid_out"]) + ZERO)


def commission_balance(*, guide=None, staff_user=None, at: dt.datetime | None = None) -> CommissionBalance:
    """Pending, available and withdrawn commission of a guide or office staff member (one query)."""
    return _balance(CommissionOwner.of(guide=guide, staff_user=staff_user), at or timezone.now())


def commission_ledger(*, owner: CommissionOwner) -> QuerySet[CommissionEntry]:
    """The owner's ledger rows, latest value date (``available_at``) first, with what the page shows next to
    each (order, credit, request). The value date orders a backfilled history by when each sale's commission
    fell due rather than by when the row happened to be written.

    Filtered by owner, not by scope: a person's own money is theirs to see, and
    their rows may lie in brands outside their scope (cross-brand sales).
    """
    return (CommissionEntry.objects.filter(owner.rows)
            .select_related("order", "credit", "withdrawal", "brand").order_by("-available_at", "-pk"))


def withdrawal_list_own(*, owner: CommissionOwner) -> QuerySet[WithdrawalRequest]:
    return WithdrawalRequest.objects.filter(owner.rows).order_by("-requested_at", "-pk")


def may_decide_withdrawals(actor: Actor) -> bool:
    """Whether the actor's role lets them decide withdrawals (in their scope, never their own)."""
    return actor.is_superuser or actor.role in APPROVER_ROLES


def withdrawals_for_review(*, actor: Actor, status: str | None = None) -> QuerySet[WithdrawalRequest]:
    """Requests the actor may decide: in their scope; none for a role that decides nothing."""
    if not may_decide_withdrawals(actor):
        return WithdrawalRequest.objects.none()
    requests = scoped(WithdrawalRequest.objects.all(), actor)
    if status:
        requests = requests.filter(status=status)
    return requests.select_related("guide", "guide__store", "staff_user", "brand", "decided_by").order_by(
        "-requested_at", "-pk")


def withdrawals_to_decide_count(*, actor: Actor, user) -> int:
    """Requested withdrawals in the actor's scope waiting for a decision the viewer may take (their own
    requests left out: someone else decides those); 0 for a role that decides nothing."""
    requests = withdrawals_for_review(actor=actor, status=Status.REQUESTED)
    own = Q(staff_user_id=user.pk) | Q(guide__user_id=user.pk)
    if actor.guide_id is not None:
        own |= Q(guide_id=actor.guide_id)
    return requests.exclude(own).count()


def withdrawal_visible(*, user, pk: int) -> WithdrawalRequest:
    """One request the user may see: their own, or one in their scope if they decide withdrawals; else 404."""
    owner = commission_owner_for(user)
    actor = actor_for(user)
    found = None
    if owner is not None:
        found = WithdrawalRequest.objects.filter(owner.rows, pk=pk).first()
    if found is None:
        found = withdrawals_for_review(actor=actor).filter(pk=pk).first()
    if found is None:
        raise ApplicationError(ErrorCode.NOT_FOUND, "No such withdrawal.", status=404)
    return found


# ---------------------------------------------------------------------------- services

@dataclass(frozen=True)
class WithdrawalResult:
    withdrawal: WithdrawalRequest
    created: bool


def _clean_amount(amount) -> Decimal:
    try:
        value = amount if isinstance(amount, Decimal) else Decimal(str(amount))
    except (InvalidOperation, ValueError, TypeError):
        value = None
    if value is None or not value.is_finite():
        raise ApplicationError(GuidesErrorCode.INVALID_AMOUNT, "Enter an amount.",
                               fields={"amount": ["Enter a number."]})
    if value <= 0 or value > MAX_AMOUNT:
        raise ApplicationError(GuidesErrorCode.INVALID_AMOUNT, "The amount must be more than 0.",
                               fields={"amount": ["Must be more than 0.00."]})
    if value != value.quantize(Decimal("0.01")):
        raise ApplicationError(GuidesErrorCode.INVALID_AMOUNT, "At most two decimal places.",
                               fields={"amount": ["At most two decimal places."]})
    return value.quantize(Decimal("0.01"))


def _stored_key(owner: CommissionOwner, request_key: str) -> str:
    """The key as stored: hashed with the owner, so two people's keys never collide (and any length fits)."""
    key = (request_key or "").strip()
    if not key or len(key) > MAX_KEY_LENGTH or not key.isprintable():
        raise ApplicationError(GuidesErrorCode.INVALID_REQUEST_KEY,
                               f"A request key of 1 to {MAX_KEY_LENGTH} printable characters is needed.",
                               fields={"request_key": ["Invalid request key."]})
    return hashlib.sha256(f"{owner.tag}:{key}".encode()).hexdigest()


def _home_brand_id(owner: CommissionOwner) -> int | None:
    """The brand a request is filed under (it decides who may approve it).

    A guide's store brand; an office staff member's profile brand (or their
    region's or store's); HQ staff, who have no brand, file under the brand of
    their latest ledger row.
    """
    if owner.guide_id is not None:
        return Guide.objects.filter(pk=owner.guide_id).values_list("store__brand_id", flat=True).first()
    profile = StaffProfile.objects.filter(user_id=owner.staff_user_id).values_list(
        "brand_id", "region__brand_id", "store__brand_id").first()
    if profile is not None and any(profile):
        return next(b for b in profile if b)
    return (CommissionEntry.objects.filter(owner.rows).order_by("-created_at", "-pk")
            .values_list("brand_id", flat=True).first())


@transaction.atomic
def withdrawal_request(*, guide=None, staff_user=None, amount, request_key: str, note: str = "") -> WithdrawalResult:
    """Ask to withdraw ``amount`` of the available balance; the money is held at once by a withdrawal row.

    ``request_key`` comes from the form (or the API's Idempotency-Key): the same
    key again returns the request it made (``created`` False) instead of a
    second one; the same key with another amount is a 409. More than the
    available balance is a 409 with the available amount in the message.
    """
    owner = CommissionOwner.of(guide=guide, staff_user=staff_user)
    value = _clean_amount(amount)
    key = _stored_key(owner, request_key)
    owner.lock()
    existing = WithdrawalRequest.objects.filter(request_key=key).first()
    if existing is not None:
        if existing.amount != value:
            raise ApplicationError(GuidesErrorCode.REQUEST_KEY_REUSED,
                                   "This request key was already used for another amount.", status=409,
                                   fields={"request_key": ["Already used for another amount."]})
        return WithdrawalResult(withdrawal=existing, created=False)
    now = timezone.now()  # after the lock: the balance includes every request that went before
    available = _balance(owner, now).available
    if value > available:
        shown = max(available, ZERO)
        raise ApplicationError(GuidesErrorCode.INSUFFICIENT_BALANCE,
                               f"Only {shown} is available to withdraw.", status=409,
                               fields={"amount": [f"At most {shown}."]})
    brand_id = _home_brand_id(owner)
    withdrawal = WithdrawalRequest.objects.create(guide_id=owner.guide_id, staff_user_id=owner.staff_user_id,
                                                  brand_id=brand_id, amount=value, request_key=key,
                                                  note=note[:200])
    CommissionEntry.objects.create(guide_id=owner.guide_id, staff_user_id=owner.staff_user_id, brand_id=brand_id,
                                   kind=Kind.WITHDRAWAL, amount=-value, withdrawal=withdrawal, available_at=now,
                                   note=f"withdrawal #{withdrawal.pk}")
    return WithdrawalResult(withdrawal=withdrawal, created=True)


#: The state machine: the statuses a withdrawal may move to from each status (by a decider, never the
#: requester). Rejected and paid are final.
NEXT_STATUSES: dict[str, frozenset[str]] = {
    Status.REQUESTED: frozenset({Status.APPROVED, Status.REJECTED}),
    Status.APPROVED: frozenset({Status.PAID, Status.REJECTED}),
}

_REFUSALS: dict[str, tuple[str, int]] = {
    ErrorCode.NOT_FOUND: ("No such withdrawal.", 404),
    GuidesErrorCode.NOT_APPROVER: ("Only a store manager or above may decide withdrawals.", 403),
    GuidesErrorCode.OWN_WITHDRAWAL: ("Someone other than the requester must decide this withdrawal.", 403),
}


@dataclass(frozen=True)
class WithdrawalActions:
    """What one viewer may do with one withdrawal now: the pages show exactly these buttons and the services
    allow exactly these moves, so the two can never disagree.

    ``refusal`` is why the viewer decides nothing whatever the status (outside their scope: not_found; a role
    that decides nothing: not_approver; their own request: own_withdrawal), None for a decider; ``own`` is
    True when the viewer asked for it.
    """

    status: str
    own: bool = False
    refusal: str | None = None

    @property
    def allowed(self) -> frozenset[str]:
        """The statuses the viewer may move the withdrawal to (none once it is rejected or paid)."""
        return frozenset() if self.refusal is not None else NEXT_STATUSES.get(self.status, frozenset())

    @property
    def approve(self) -> bool:
        return Status.APPROVED in self.allowed

    @property
    def reject(self) -> bool:
        return Status.REJECTED in self.allowed

    @property
    def mark_paid(self) -> bool:
        return Status.PAID in self.allowed

    @property
    def any(self) -> bool:
        return bool(self.allowed)

    @property
    def someone_else_decides(self) -> bool:
        """The viewer's own request, still open: another decider will take it."""
        return self.own and bool(NEXT_STATUSES.get(self.status))

    def check_decider(self) -> None:
        """Raise the refusal, if any: 404 outside the scope, 403 for a role that decides nothing or the requester."""
        if self.refusal is not None:
            message, status = _REFUSALS[self.refusal]
            raise ApplicationError(self.refusal, message, status=status)

    def check(self, to: str) -> None:
        """Raise unless the viewer may move the withdrawal to ``to`` now (the refusal, or 409 for the status)."""
        self.check_decider()
        if to not in self.allowed:
            raise ApplicationError(ErrorCode.INVALID_TRANSITION,
                                   f"This withdrawal is {self.status}; it cannot become {to}.", status=409)


def withdrawal_actions(*, withdrawals: Sequence[WithdrawalRequest], user) -> dict[int, WithdrawalActions]:
    """:class:`WithdrawalActions` of ``user`` for each withdrawal, by id: at most two queries for any number
    (which of them lie in the viewer's scope, and the viewer's guide rows when a guide's request needs them)."""
    actor = actor_for(user)
    in_scope_ids: set[int] = set()
    if actor.is_staff_member and withdrawals:
        in_scope_ids = set(scoped(WithdrawalRequest.objects.filter(pk__in=[w.pk for w in withdrawals]), actor)
                           .values_list("pk", flat=True))
    my_guides: set[int] | None = None
    out = {}
    for withdrawal in withdrawals:
        own = withdrawal.staff_user_id is not None and withdrawal.staff_user_id == user.pk
        if not own and withdrawal.guide_id is not None:
            if actor.guide_id == withdrawal.guide_id:
                own = True
            else:
                if my_guides is None:
                    my_guides = set(Guide.objects.filter(user_id=user.pk).values_list("pk", flat=True))
                own = withdrawal.guide_id in my_guides
        if withdrawal.pk not in in_scope_ids:
            refusal = ErrorCode.NOT_FOUND
        elif not may_decide_withdrawals(actor):
            refusal = GuidesErrorCode.NOT_APPROVER
        elif own:
            refusal = GuidesErrorCode.OWN_WITHDRAWAL
        else:
            refusal = None
        out[withdrawal.pk] = WithdrawalActions(status=withdrawal.status, own=own, refusal=refusal)
    return out


def withdrawal_actions_for(*, withdrawal: WithdrawalRequest, user) -> WithdrawalActions:
    """What ``user`` may do with ``withdrawal`` now (see :class:`WithdrawalActions`)."""
    return withdrawal_actions(withdrawals=[withdrawal], user=user)[withdrawal.pk]


def withdrawal_check_decider(*, withdrawal: WithdrawalRequest, user) -> None:
    """Raise unless ``user`` may decide ``withdrawal``: 404 outside scope, 403 for guides and the requester."""
    withdrawal_actions_for(withdrawal=withdrawal, user=user).check_decider()


@transaction.atomic
def _decide(*, withdrawal: WithdrawalRequest, user, to: str, note: str) -> WithdrawalRequest:
    actions = withdrawal_actions_for(withdrawal=withdrawal, user=user)
    actions.check_decider()  # before any lock
    owner = CommissionOwner(guide_id=withdrawal.guide_id) if withdrawal.guide_id is not None else \
        CommissionOwner(staff_user_id=withdrawal.staff_user_id)
    owner.lock()  # owner first, then the request: the same order as withdrawal_request
    current = WithdrawalRequest.objects.select_for_update().get(pk=withdrawal.pk)
    replace(actions, status=current.status).check(to)  # the status as locked, not as the caller read it
    now = timezone.now()
    current.status = to
    fields = ["status"]
    if to == Status.PAID:
        current.paid_at = now
        fields.append("paid_at")
    else:
        current.decided_by, current.decided_at = user, now
        fields += ["decided_by", "decided_at"]
    if note:
        current.note = note[:200]
        fields.append("note")
    current.save(update_fields=fields)
    if to == Status.REJECTED:
        CommissionEntry.objects.create(guide_id=current.guide_id, staff_user_id=current.staff_user_id,
                                       brand_id=current.brand_id, kind=Kind.WITHDRAWAL_RETURN, amount=current.amount,
                                       withdrawal=current, available_at=now,
                                       note=f"withdrawal #{current.pk} rejected")
    return current


def withdrawal_approve(*, withdrawal: WithdrawalRequest, user, note: str = "") -> WithdrawalRequest:
    """Approve a requested withdrawal (someone in scope other than the requester)."""
    return _decide(withdrawal=withdrawal, user=user, to=Status.APPROVED, note=note)


def withdrawal_reject(*, withdrawal: WithdrawalRequest, user, note: str = "") -> WithdrawalRequest:
    """Reject a requested or approved (not yet paid) withdrawal; a withdrawal_return row gives the money back."""
    return _decide(withdrawal=withdrawal, user=user, to=Status.REJECTED, note=note)


def withdrawal_mark_paid(*, withdrawal: WithdrawalRequest, user, note: str = "") -> WithdrawalRequest:
    """Record that an approved withdrawal was paid out (the money left with the request)."""
    return _decide(withdrawal=withdrawal, user=user, to=Status.PAID, note=note)
