"""Writes to the organisation: onboarding a group from spreadsheets and staff accounts."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable, Iterable

from django.contrib.auth import get_user_model
from django.db import DataError, IntegrityError, transaction
from django.utils.translation import gettext as _

from retail_crm.csv_import import ImportReport, RowInvalid
from retail_crm.models import Brand, Guide, Region, RetailGroup, StaffProfile, StaffRole, Store
from retail_crm.phones import InvalidPhone, normalise_phone
from retail_crm.validation import check_date, row_problem

ORG_COLUMNS = ["brand_code", "brand_name", "region_code", "region_name", "store_code", "store_name",
               "store_kind", "city"]
GUIDE_COLUMNS = ["guide_code", "name", "phone", "store_code", "role", "hired_at", "left_at"]
_CODE = re.compile(r"^[-a-zA-Z0-9_]{1,32}$")


def _code(row: dict, column: str) -> str:
    value = row.get(column, "")
    if not value:
        raise RowInvalid(f"{column} is empty")
    if not _CODE.match(value):
        raise RowInvalid(f"{column} {value!r} may only hold letters, digits, '-' and '_' (at most 32)")
    return value


def _text(row: dict, column: str, max_length: int, required: bool = True) -> str:
    value = row.get(column, "")
    if required and not value:
        raise RowInvalid(f"{column} is empty")
    if len(value) > max_length:
        raise RowInvalid(f"{column} is longer than {max_length} characters")
    return value


def _date(row: dict, column: str) -> dt.date | None:
    value = row.get(column, "")
    if not value:
        return None
    try:
        day = dt.date.fromisoformat(value)
    except ValueError:
        raise RowInvalid(f"{column} {value!r} is not a date (YYYY-MM-DD)") from None
    check_date(day, column=column, value=value)
    return day


def import_rows(*, rows: Iterable[tuple[int, dict]], key_column: str,
                handle_row: Callable[[dict, ImportReport], None]) -> ImportReport:
    """Run ``handle_row`` on each row in its own savepoint, reporting bad rows and keeping good ones.

    A key given twice in one file is refused on its later line, so a file
    never silently overwrites itself. A row with a cell no column can hold
    (:func:`retail_crm.validation.row_problem`) is refused before it is read.
    """
    report = ImportReport()
    seen: dict[str, int] = {}
    for line, row in rows:
        problem = row_problem(row)
        if problem:
            report.add_error(line, problem)
            continue
        key = row.get(key_column, "")
        if key in seen:
            report.add_error(line, f"{key_column} {key} already given on line {seen[key]}")
            continue
        try:
            with transaction.atomic():
                handle_row(row, report)
            seen[key] = line
        except RowInvalid as exc:
            report.add_error(line, str(exc))
        except IntegrityError as exc:
            report.add_error(line, f"conflicts with existing data ({exc.__class__.__name__})")
        except DataError:
            # A backstop: the row's checks should have refused a value its column cannot hold.
            report.add_error(line, _("a value is out of range for its column"))
    return report


def _apply(obj, values: dict) -> bool:
    """Set changed attributes; return whether anything changed."""
    changed = [name for name, value in values.items() if getattr(obj, name) != value]
    for name in changed:
        setattr(obj, name, values[name])
    if changed:
        obj.save(update_fields=changed)
    return bool(changed)


def group_resolve(*, code: str | None) -> RetailGroup:
    """The group an import belongs to: the one named, or the only one; created when none exists."""
    if code:
        group, _ = RetailGroup.objects.get_or_create(code=code, defaults={"name": code})
        return group
    groups = list(RetailGroup.objects.all()[:2])
    if len(groups) == 1:
        return groups[0]
    if not groups:
        return RetailGroup.objects.create(code="default", name="Default group")
    raise RowInvalid("several groups exist: name one with --group")


def _org_row_import(*, group: RetailGroup, row: dict, report: ImportReport) -> None:
    brand_code = _code(row, "brand_code")
    brand_name = _text(row, "brand_name", 100)
    region_code = _code(row, "region_code")
    region_name = _text(row, "region_name", 100)
    store_code = _code(row, "store_code")
    store_name = _text(row, "store_name", 100)
    kind = row.get("store_kind", "")
    if kind not in Store.Kind.values:
        raise RowInvalid(f"store_kind {kind!r} is not one of {', '.join(Store.Kind.values)}")
    city = _text(row, "city", 50, required=False)

    changed = False
    created = False
    brand = Brand.objects.filter(code=brand_code).first()
    if brand is None:
        brand = Brand.objects.create(group=group, code=brand_code, name=brand_name)
        changed = True
    elif brand.group_id != group.pk:
        raise RowInvalid(f"brand {brand_code} belongs to another group")
    else:
        changed |= _apply(brand, {"name": brand_name})

    region, region_created = Region.objects.get_or_create(brand=brand, code=region_code,
                                                          defaults={"name": region_name})
    changed |= region_created or _apply(region, {"name": region_name})

    store = Store.objects.filter(code=store_code).first()
    if store is None:
        Store.objects.create(brand=brand, region=region, code=store_code, name=store_name, kind=kind, city=city)
        created = True
    elif store.brand_id != brand.pk:
        raise RowInvalid(f"store {store_code} belongs to brand {store.brand.code}, not {brand_code}")
    else:
        changed |= _apply(store, {"region": region, "name": store_name, "kind": kind, "city": city})

    if created:
        report.created += 1
    elif changed:
        report.updated += 1
    else:
        report.unchanged += 1


def org_import(*, rows: Iterable[tuple[int, dict]], group: RetailGroup) -> ImportReport:
    """Create or update brands, regions and stores from org rows; idempotent, row by row."""
    return import_rows(rows=rows, key_column="store_code",
                       handle_row=lambda row, report: _org_row_import(group=group, row=row, report=report))


def staff_profile_for_guide(guide: Guide) -> dict:
    """The role and scope a guide's login gets: a guide sees themself, a store manager the store."""
    store = guide.store
    if guide.role == Guide.Role.STORE_MANAGER:
        return {"role": StaffRole.STORE_MANAGER, "group_id": store.brand.group_id, "brand_id": store.brand_id,
                "region_id": store.region_id, "store_id": store.pk, "guide_id": guide.pk}
    return {"role": StaffRole.GUIDE, "group_id": store.brand.group_id, "brand_id": store.brand_id,
            "region_id": store.region_id, "store_id": store.pk, "guide_id": guide.pk}


def _guide_row_import(*, row: dict, report: ImportReport, initial_password: str | None) -> None:
    code = _code(row, "guide_code")
    name = _text(row, "name", 50)
    phone = row.get("phone", "")
    if phone:
        try:
            phone = normalise_phone(phone)
        except InvalidPhone as exc:
            raise RowInvalid(f"phone: {exc}") from None
    store_code = _code(row, "store_code")
    store = Store.objects.select_related("brand").filter(code=store_code).first()
    if store is None:
        raise RowInvalid(f"store_code {store_code} is not a known store (import the organisation first)")
    role = row.get("role", "") or Guide.Role.GUIDE
    if role not in Guide.Role.values:
        raise RowInvalid(f"role {role!r} is not one of {', '.join(Guide.Role.values)}")
    hired_at = _date(row, "hired_at")
    left_at = _date(row, "left_at")
    if hired_at and left_at and left_at < hired_at:
        raise RowInvalid("left_at is before hired_at")

    User = get_user_model()
    values = {"name": name, "phone": phone, "store": store, "role": role, "hired_at": hired_at, "left_at": left_at}
    guide = Guide.objects.filter(code=code).first()
    created = guide is None
    changed = False
    if created:
        guide = Guide.objects.create(code=code, **values)
    else:
        changed = _apply(guide, values)

    user = guide.user
    if user is None:
        user = User.objects.filter(username=code).first()
        if user is not None and StaffProfile.objects.filter(user=user).exclude(guide=guide).exists():
            raise RowInvalid(f"login {code} already belongs to another staff member")
        if user is None:
            user = User(username=code)
            if initial_password:
                user.set_password(initial_password)
            else:
                user.set_unusable_password()
        changed |= not created
    user_values = {"first_name": name[:150], "is_active": left_at is None,
                   "is_staff": role == Guide.Role.STORE_MANAGER}
    for attr, value in user_values.items():
        if getattr(user, attr) != value:
            setattr(user, attr, value)
            changed = True
    if user.pk is None or changed:
        user.save()
    if guide.user_id != user.pk:
        guide.user = user
        guide.save(update_fields=["user"])

    profile_values = staff_profile_for_guide(guide)
    profile = StaffProfile.objects.filter(user=user).first()
    if profile is None:
        StaffProfile.objects.create(user=user, **profile_values)
        changed = True
    else:
        changed |= _apply(profile, profile_values)

    if created:
        report.created += 1
    elif changed:
        report.updated += 1
    else:
        report.unchanged += 1


def guide_import(*, rows: Iterable[tuple[int, dict]], initial_password: str | None = None) -> ImportReport:
    """Create or update guides and their staff logins; idempotent, row by row."""
    return import_rows(rows=rows, key_column="guide_code",
                       handle_row=lambda row, report: _guide_row_import(row=row, report=report,
                                                                         initial_password=initial_password))


@transaction.atomic
def staff_account_create(*, username: str, password: str, role: str, group: RetailGroup,
                         brand: Brand | None = None, region: Region | None = None, store: Store | None = None,
                         guide: Guide | None = None, full_name: str = ""):
    """Create (or reset) a staff login with one role and one scope."""
    User = get_user_model()
    user, _ = User.objects.get_or_create(username=username)
    user.first_name = full_name[:150]
    user.is_staff = role in (StaffRole.HQ, StaffRole.BRAND_OPERATOR, StaffRole.REGION_MANAGER,
                             StaffRole.STORE_MANAGER)
    user.is_active = True
    user.set_password(password)
    user.save()
    StaffProfile.objects.update_or_create(
        user=user,
        defaults={"role": role, "group": group, "brand": brand, "region": region, "store": store, "guide": guide},
    )
    return user
