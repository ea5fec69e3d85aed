"""The import_org and import_guides commands: spreadsheets in, organisation and staff logins out.

Every import is run through ``call_command`` on a real CSV file. A run that
rejects rows commits the good ones and then exits with status 1.
"""

import csv
import datetime as dt
import io

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db.models import F

from retail_crm.models import Brand, Guide, Region, RetailGroup, StaffProfile, Store
from tests.factories import BrandFactory, RegionFactory, RetailGroupFactory, StoreFactory, staff_user

User = get_user_model()

ORG_HEADER = "brand_code,brand_name,region_code,region_name,store_code,store_name,store_kind,city"
GUIDE_HEADER = "guide_code,name,phone,store_code,role,hired_at,left_at"

ORG_ROWS = [
    "LILY,丽丽女装,EAST,华东大区,LILY-SH01,丽丽上海南京西路店,direct,上海",
    "LILY,丽丽女装,EAST,华东大区,LILY-HZ01,丽丽杭州湖滨店,franchise,杭州",
    "LILY,丽丽女装,SOUTH,华南大区,LILY-GZ01,丽丽广州天河店,outlet,广州",
    "MARC,马可男装,EAST,华东,MARC_SH01,马可上海店,direct,",
]

KIND_ERROR = "store_kind 'shop' is not one of direct, franchise, outlet"


def _code_error(column, value):
    return f"{column} {value!r} may only hold letters, digits, '-' and '_' (at most 32)"


def write_csv(tmp_path, lines, name="sheet.csv", encoding="utf-8", newline="\n"):
    path = tmp_path / name
    path.write_text("\n".join(lines) + "\n", encoding=encoding, newline=newline)
    return path


def run_command(name, path, *args):
    """Run a command that accepts every row; return (stdout, stderr)."""
    out, err = io.StringIO(), io.StringIO()
    call_command(name, str(path), *args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


def run_command_rejecting(name, path, *args):
    """Run a command that rejects some rows: it must exit with status 1 after writing its report."""
    out, err = io.StringIO(), io.StringIO()
    with pytest.raises(SystemExit) as excinfo:
        call_command(name, str(path), *args, stdout=out, stderr=err)
    assert excinfo.value.code == 1
    return out.getvalue(), err.getvalue()


def org_snapshot():
    return {
        "groups": list(RetailGroup.objects.order_by("code").values_list("pk", "code", "name")),
        "brands": list(
            Brand.objects.order_by("code").values_list("pk", "group__code", "code", "name", "category", "is_active")
        ),
        "regions": list(
            Region.objects.order_by("brand__code", "code").values_list("pk", "brand__code", "code", "name")
        ),
        "stores": list(
            Store.objects.order_by("code").values_list(
                "pk", "brand__code", "region__brand__code", "region__code", "branch", "code", "name", "kind", "city",
                "is_active",
            )
        ),
    }


def store_rows():
    return list(
        Store.objects.order_by("code").values_list("code", "brand__code", "region__code", "name", "kind", "city")
    )


# --------------------------------------------------------------------------- import_org


@pytest.mark.django_db
def test_import_org_creates_brands_regions_and_stores_in_a_default_group(tmp_path):
    path = write_csv(tmp_path, [ORG_HEADER, *ORG_ROWS])

    out, err = run_command("import_org", path)

    assert out == f"{path}: created 4, updated 0, unchanged 0, rejected 0\n"
    assert err == ""
    assert list(RetailGroup.objects.values_list("code", "name")) == [("default", "Default group")]
    assert list(Brand.objects.order_by("code").values_list("group__code", "code", "name", "category", "is_active")) == [
        ("default", "LILY", "丽丽女装", "other", True),
        ("default", "MARC", "马可男装", "other", True),
    ]
    assert list(Region.objects.order_by("brand__code", "code").values_list("brand__code", "code", "name")) == [
        ("LILY", "EAST", "华东大区"),
        ("LILY", "SOUTH", "华南大区"),
        ("MARC", "EAST", "华东"),
    ]
    assert store_rows() == [
        ("LILY-GZ01", "LILY", "SOUTH", "丽丽广州天河店", "outlet", "广州"),
        ("LILY-HZ01", "LILY", "EAST", "丽丽杭州湖滨店", "franchise", "杭州"),
        ("LILY-SH01", "LILY", "EAST", "丽丽上海南京西路店", "direct", "上海"),
        ("MARC_SH01", "MARC", "EAST", "马可上海店", "direct", ""),
    ]
    # Each store hangs off a region of its own brand, and no branch level is invented.
    assert Store.objects.filter(region__brand=F("brand")).count() == 4
    assert Store.objects.filter(branch__isnull=False).count() == 0


@pytest.mark.django_db
def test_import_org_uses_the_only_existing_group(tmp_path):
    group = RetailGroupFactory(code="acme", name="Acme Retail")
    path = write_csv(tmp_path, [ORG_HEADER, ORG_ROWS[0]])

    run_command("import_org", path)

    assert list(RetailGroup.objects.values_list("code", flat=True)) == ["acme"]
    assert list(Brand.objects.values_list("group", flat=True)) == [group.pk]


@pytest.mark.django_db
def test_import_org_with_group_option_creates_that_group(tmp_path):
    path = write_csv(tmp_path, [ORG_HEADER, ORG_ROWS[0]])

    run_command("import_org", path, "--group", "acme")

    assert list(RetailGroup.objects.values_list("code", "name")) == [("acme", "acme")]
    assert list(Brand.objects.values_list("group__code", "code")) == [("acme", "LILY")]


@pytest.mark.django_db
def test_import_org_without_group_option_refuses_when_several_groups_exist(tmp_path):
    RetailGroupFactory(code="acme")
    RetailGroupFactory(code="bravo")
    path = write_csv(tmp_path, [ORG_HEADER, ORG_ROWS[0]])

    with pytest.raises(CommandError) as excinfo:
        run_command("import_org", path)

    assert str(excinfo.value) == "several groups exist: name one with --group"
    assert Brand.objects.count() == 0
    assert Store.objects.count() == 0


@pytest.mark.django_db
def test_import_org_twice_changes_nothing_the_second_time(tmp_path):
    path = write_csv(tmp_path, [ORG_HEADER, *ORG_ROWS])
    run_command("import_org", path)
    before = org_snapshot()

    out, err = run_command("import_org", path)

    assert out == f"{path}: created 0, updated 0, unchanged 4, rejected 0\n"
    assert err == ""
    assert org_snapshot() == before
    assert (RetailGroup.objects.count(), Brand.objects.count(), Region.objects.count(), Store.objects.count()) == (
        1, 2, 3, 4,
    )


@pytest.mark.django_db
def test_import_org_edited_row_updates_the_store_in_place(tmp_path):
    run_command("import_org", write_csv(tmp_path, [ORG_HEADER, *ORG_ROWS], name="v1.csv"))
    hz_pk = Store.objects.get(code="LILY-HZ01").pk
    edited = [ORG_ROWS[0], "LILY,丽丽女装,SOUTH,华南大区,LILY-HZ01,丽丽杭州银泰店,direct,杭州 ", *ORG_ROWS[2:]]
    path = write_csv(tmp_path, [ORG_HEADER, *edited], name="v2.csv")

    out, err = run_command("import_org", path)

    assert out == f"{path}: created 0, updated 1, unchanged 3, rejected 0\n"
    assert err == ""
    store = Store.objects.get(code="LILY-HZ01")
    assert (store.pk, store.brand.code, store.region.code, store.name, store.kind, store.city) == (
        hz_pk, "LILY", "SOUTH", "丽丽杭州银泰店", "direct", "杭州",
    )
    assert Store.objects.count() == 4
    assert Region.objects.count() == 3


@pytest.mark.django_db
def test_import_org_renamed_brand_and_region_count_as_one_update_on_the_first_row_that_renames(tmp_path):
    run_command("import_org", write_csv(tmp_path, [ORG_HEADER, *ORG_ROWS], name="v1.csv"))
    renamed = [row.replace("丽丽女装", "LILY 丽丽") for row in ORG_ROWS]
    renamed[1] = renamed[1].replace("华东大区", "华东区")
    path = write_csv(tmp_path, [ORG_HEADER, *renamed], name="v2.csv")

    out, _ = run_command("import_org", path)

    # Line 2 renames the brand, line 3 the region; line 4 finds both already renamed.
    assert out == f"{path}: created 0, updated 2, unchanged 2, rejected 0\n"
    assert list(Brand.objects.order_by("code").values_list("code", "name")) == [
        ("LILY", "LILY 丽丽"),
        ("MARC", "马可男装"),
    ]
    assert list(Region.objects.order_by("brand__code", "code").values_list("brand__code", "code", "name")) == [
        ("LILY", "EAST", "华东区"),
        ("LILY", "SOUTH", "华南大区"),
        ("MARC", "EAST", "华东"),
    ]


@pytest.mark.django_db
def test_import_org_reports_bad_rows_with_line_and_reason_and_imports_the_good_ones(tmp_path):
    path = write_csv(
        tmp_path,
        [
            ORG_HEADER,  # line 1
            "LILY,丽丽女装,EAST,华东大区,LILY-SH01,丽丽上海南京西路店,direct,上海",  # 2: good
            "LILY,丽丽女装,NORTH,华北大区,LILY-BJ01,丽丽北京店,shop,北京",  # 3: unknown kind
            "LILY,丽丽女装,EAST,华东大区,,无编号店,direct,上海",  # 4: empty store_code
            "LILY,丽丽女装,EAST,华东大区,LILY-SH01,丽丽上海另一家,outlet,上海",  # 5: store_code again
            "LILY,丽丽女装,EAST,华东大区,LILY SH02,丽丽上海二店,direct,上海",  # 6: space in code
            "",  # 7: blank line, skipped but counted
            "MARC,马可男装,EAST,华东,MARC-SH01,马可上海店,direct,上海",  # 8: good
            "马可,马可男装,EAST,华东,MARC-SH02,马可上海二店,direct,上海",  # 9: non-ASCII brand code
            ",,,,,,,",  # 10: empty row, skipped
            "MARC,马可男装,EAST,华东,MARC-SH03,,direct,上海",  # 11: no store name
        ],
    )

    out, err = run_command_rejecting("import_org", path)

    assert out == f"{path}: created 2, updated 0, unchanged 0, rejected 6\n"
    assert err.splitlines() == [
        f"line 3: {KIND_ERROR}",
        "line 4: store_code is empty",
        "line 5: store_code LILY-SH01 already given on line 2",
        f"line 6: {_code_error('store_code', 'LILY SH02')}",
        f"line 9: {_code_error('brand_code', '马可')}",
        "line 11: store_name is empty",
    ]
    assert store_rows() == [
        ("LILY-SH01", "LILY", "EAST", "丽丽上海南京西路店", "direct", "上海"),
        ("MARC-SH01", "MARC", "EAST", "马可上海店", "direct", "上海"),
    ]
    # The rejected rows left nothing behind: no NORTH region, no brand "马可".
    assert list(Region.objects.order_by("brand__code", "code").values_list("brand__code", "code")) == [
        ("LILY", "EAST"),
        ("MARC", "EAST"),
    ]
    assert list(Brand.objects.order_by("code").values_list("code", flat=True)) == ["LILY", "MARC"]


@pytest.mark.django_db
def test_import_org_rejects_a_store_that_belongs_to_another_brand_and_rolls_back_the_row(tmp_path):
    run_command("import_org", write_csv(tmp_path, [ORG_HEADER, ORG_ROWS[0]], name="v1.csv"))
    before = org_snapshot()
    path = write_csv(
        tmp_path,
        [ORG_HEADER, "NEWB,新品牌,WEST,西部,LILY-SH01,抢来的店,direct,成都"],
        name="v2.csv",
    )

    out, err = run_command_rejecting("import_org", path)

    assert out == f"{path}: created 0, updated 0, unchanged 0, rejected 1\n"
    assert err == "line 2: store LILY-SH01 belongs to brand LILY, not NEWB\n"
    # Brand NEWB and region WEST were created inside the row and rolled back with it.
    assert org_snapshot() == before
    assert Brand.objects.filter(code="NEWB").exists() is False


@pytest.mark.django_db
def test_import_org_rejects_a_brand_of_another_group(tmp_path):
    BrandFactory(code="LILY", name="丽丽女装", group=RetailGroupFactory(code="grp"))
    path = write_csv(tmp_path, [ORG_HEADER, ORG_ROWS[0], ORG_ROWS[3]])

    out, err = run_command_rejecting("import_org", path, "--group", "acme")

    assert out == f"{path}: created 1, updated 0, unchanged 0, rejected 1\n"
    assert err == "line 2: brand LILY belongs to another group\n"
    assert list(Store.objects.values_list("code", "brand__group__code")) == [("MARC_SH01", "acme")]
    assert Store.objects.filter(brand__code="LILY").count() == 0


@pytest.mark.django_db
def test_import_org_rejects_over_long_text_and_codes(tmp_path):
    long_code = "S" * 33
    path = write_csv(
        tmp_path,
        [
            ORG_HEADER,
            f"LILY,丽丽女装,EAST,华东大区,{long_code},长编号店,direct,上海",
            f"LILY,丽丽女装,EAST,华东大区,LILY-SH09,{'店' * 101},direct,上海",
            f"LILY,丽丽女装,EAST,华东大区,LILY-SH10,丽丽十号店,direct,{'城' * 51}",
        ],
    )

    out, err = run_command_rejecting("import_org", path)

    assert out == f"{path}: created 0, updated 0, unchanged 0, rejected 3\n"
    assert err.splitlines() == [
        f"line 2: {_code_error('store_code', long_code)}",
        "line 3: store_name is longer than 100 characters",
        "line 4: city is longer than 50 characters",
    ]
    assert Store.objects.count() == 0
    assert Brand.objects.count() == 0


@pytest.mark.django_db
def test_import_org_missing_header_column_fails_and_imports_nothing(tmp_path):
    path = write_csv(
        tmp_path,
        [
            "brand_code,brand_name,region_code,region_name,store_code,store_name",
            "LILY,丽丽女装,EAST,华东大区,LILY-SH01,丽丽上海南京西路店",
        ],
    )
    out, err = io.StringIO(), io.StringIO()

    with pytest.raises(CommandError) as excinfo:
        call_command("import_org", str(path), stdout=out, stderr=err)

    assert str(excinfo.value) == (
        f"{path}: missing column(s): store_kind, city; expected header: {ORG_HEADER}"
    )
    assert (out.getvalue(), err.getvalue()) == ("", "")
    assert (Brand.objects.count(), Region.objects.count(), Store.objects.count()) == (0, 0, 0)


@pytest.mark.django_db
def test_import_org_that_fails_on_its_header_leaves_no_default_group_behind(tmp_path):
    path = write_csv(tmp_path, ["brand_code,brand_name", "LILY,丽丽女装"])

    with pytest.raises(CommandError):
        run_command("import_org", path)

    # A rejected file must not write anything, not even the group it would have imported into.
    assert RetailGroup.objects.count() == 0


@pytest.mark.django_db
def test_import_org_missing_file_is_a_command_error(tmp_path):
    path = tmp_path / "nope.csv"

    with pytest.raises(CommandError) as excinfo:
        run_command("import_org", path)

    assert str(excinfo.value) == f"{path}: no such file"
    assert Brand.objects.count() == 0


@pytest.mark.django_db
def test_import_org_reads_an_excel_utf8_bom_file_with_crlf_line_ends(tmp_path):
    path = write_csv(tmp_path, [ORG_HEADER, *ORG_ROWS[:2]], encoding="utf-8-sig", newline="\r\n")
    assert path.read_bytes()[:3] == b"\xef\xbb\xbf"

    out, err = run_command("import_org", path)

    assert out == f"{path}: created 2, updated 0, unchanged 0, rejected 0\n"
    assert err == ""
    assert store_rows() == [
        ("LILY-HZ01", "LILY", "EAST", "丽丽杭州湖滨店", "franchise", "杭州"),
        ("LILY-SH01", "LILY", "EAST", "丽丽上海南京西路店", "direct", "上海"),
    ]


@pytest.mark.django_db
def test_import_org_accepts_columns_in_any_order_with_padding_and_extra_columns(tmp_path):
    path = write_csv(
        tmp_path,
        [
            " store_code , city ,store_kind,store_name,region_name,region_code,brand_name,brand_code,note",
            " LILY-SH01 , 上海 , direct ,丽丽上海南京西路店,华东大区,EAST,丽丽女装,LILY,旗舰店",
        ],
    )

    out, _ = run_command("import_org", path)

    assert out == f"{path}: created 1, updated 0, unchanged 0, rejected 0\n"
    assert store_rows() == [("LILY-SH01", "LILY", "EAST", "丽丽上海南京西路店", "direct", "上海")]


@pytest.mark.django_db
def test_import_org_file_that_is_not_utf8_fails_and_imports_nothing(tmp_path):
    path = write_csv(tmp_path, [ORG_HEADER, *ORG_ROWS], encoding="gbk")

    with pytest.raises(CommandError) as excinfo:
        run_command("import_org", path)

    assert str(excinfo.value) == f"{path}: not UTF-8 text (save the sheet as CSV UTF-8)"
    assert (Brand.objects.count(), Region.objects.count(), Store.objects.count()) == (0, 0, 0)


@pytest.mark.django_db
def test_import_org_report_option_writes_the_rejected_rows(tmp_path):
    path = write_csv(
        tmp_path,
        [
            ORG_HEADER,
            ORG_ROWS[0],
            "LILY,丽丽女装,NORTH,华北大区,LILY-BJ01,丽丽北京店,shop,北京",
            "LILY,丽丽女装,EAST,华东大区,,无编号店,direct,上海",
        ],
    )
    report = tmp_path / "rejected.csv"

    out, _ = run_command_rejecting("import_org", path, "--report", str(report))

    assert out == f"{path}: created 1, updated 0, unchanged 0, rejected 2\n"
    with open(report, encoding="utf-8", newline="") as handle:
        assert list(csv.reader(handle)) == [
            ["line", "reason"],
            ["3", KIND_ERROR],
            ["4", "store_code is empty"],
        ]
    assert report.read_bytes().startswith(b"line,reason\r\n3,")


@pytest.mark.django_db
def test_import_org_report_option_writes_only_the_header_when_every_row_is_good(tmp_path):
    path = write_csv(tmp_path, [ORG_HEADER, *ORG_ROWS])
    report = tmp_path / "rejected.csv"

    run_command("import_org", path, "--report", str(report))

    assert report.read_bytes() == b"line,reason\r\n"


# --------------------------------------------------------------------------- import_guides


@pytest.fixture
def org(db):
    """Group grp, brand LILY with regions EAST and SOUTH and one store in each."""
    group = RetailGroupFactory(code="grp")
    brand = BrandFactory(group=group, code="LILY", name="丽丽女装")
    east = RegionFactory(brand=brand, code="EAST")
    south = RegionFactory(brand=brand, code="SOUTH")
    return {
        "group": group,
        "brand": brand,
        "sh": StoreFactory(region=east, code="LILY-SH01"),
        "gz": StoreFactory(region=south, code="LILY-GZ01"),
    }


GUIDE_ROWS = [
    "G001,张三,138 1234 5678,LILY-SH01,guide,2024-03-01,",
    "M001,李四,+86 139-0000-1111,LILY-SH01,store_manager,2023-01-15,",
    "G002,王五,,LILY-GZ01,,2022-05-01,2024-06-30",
]


def guide_rows():
    return list(
        Guide.objects.order_by("code").values_list(
            "code", "name", "phone", "store__code", "role", "hired_at", "left_at", "user__username"
        )
    )


def login_rows():
    return list(
        User.objects.order_by("username").values_list(
            "username", "first_name", "is_active", "is_staff", "is_superuser"
        )
    )


def profile_rows():
    return list(
        StaffProfile.objects.order_by("user__username").values_list(
            "user__username", "role", "group__code", "brand__code", "region__code", "store__code", "guide__code"
        )
    )


def guides_snapshot():
    return {
        "guides": list(Guide.objects.order_by("pk").values()),
        "users": list(User.objects.order_by("pk").values()),
        "profiles": list(StaffProfile.objects.order_by("pk").values()),
    }


@pytest.fixture
def no_initial_password(monkeypatch):
    monkeypatch.delenv("GUIDE_INITIAL_PASSWORD", raising=False)


@pytest.mark.usefixtures("no_initial_password")
def test_import_guides_creates_guides_with_logins_and_staff_profiles(org, tmp_path):
    path = write_csv(tmp_path, [GUIDE_HEADER, *GUIDE_ROWS])

    out, err = run_command("import_guides", path)

    assert out == f"{path}: created 3, updated 0, unchanged 0, rejected 0\n"
    assert err == ""
    assert guide_rows() == [
        ("G001", "张三", "+8613812345678", "LILY-SH01", "guide", dt.date(2024, 3, 1), None, "G001"),
        ("G002", "王五", "", "LILY-GZ01", "guide", dt.date(2022, 5, 1), dt.date(2024, 6, 30), "G002"),
        ("M001", "李四", "+8613900001111", "LILY-SH01", "store_manager", dt.date(2023, 1, 15), None, "M001"),
    ]
    assert login_rows() == [
        ("G001", "张三", True, False, False),
        ("G002", "王五", False, False, False),  # left_at is set: the login is switched off
        ("M001", "李四", True, True, False),
    ]
    assert profile_rows() == [
        ("G001", "guide", "grp", "LILY", "EAST", "LILY-SH01", "G001"),
        ("G002", "guide", "grp", "LILY", "SOUTH", "LILY-GZ01", "G002"),
        ("M001", "store_manager", "grp", "LILY", "EAST", "LILY-SH01", "M001"),
    ]
    assert [user.has_usable_password() for user in User.objects.order_by("username")] == [False, False, False]


def test_import_guides_initial_password_from_the_environment_is_usable(org, tmp_path, monkeypatch):
    monkeypatch.setenv("GUIDE_INITIAL_PASSWORD", "Lily-Start-2024")
    path = write_csv(tmp_path, [GUIDE_HEADER, *GUIDE_ROWS[:2]])

    run_command("import_guides", path)

    users = list(User.objects.order_by("username"))
    assert [user.username for user in users] == ["G001", "M001"]
    assert [user.has_usable_password() for user in users] == [True, True]
    assert [user.check_password("Lily-Start-2024") for user in users] == [True, True]
    assert [user.check_password("lily-start-2024") for user in users] == [False, False]


def test_import_guides_empty_initial_password_counts_as_unset(org, tmp_path, monkeypatch):
    monkeypatch.setenv("GUIDE_INITIAL_PASSWORD", "")
    path = write_csv(tmp_path, [GUIDE_HEADER, GUIDE_ROWS[0]])

    run_command("import_guides", path)

    user = User.objects.get(username="G001")
    assert user.has_usable_password() is False
    assert user.check_password("") is False


@pytest.mark.usefixtures("no_initial_password")
def test_import_guides_twice_changes_nothing_the_second_time(org, tmp_path):
    path = write_csv(tmp_path, [GUIDE_HEADER, *GUIDE_ROWS])
    run_command("import_guides", path)
    before = guides_snapshot()

    out, err = run_command("import_guides", path)

    assert out == f"{path}: created 0, updated 0, unchanged 3, rejected 0\n"
    assert err == ""
    assert guides_snapshot() == before
    assert (Guide.objects.count(), User.objects.count(), StaffProfile.objects.count()) == (3, 3, 3)


def test_import_guides_rerun_with_initial_password_does_not_reset_existing_logins(org, tmp_path, monkeypatch):
    monkeypatch.delenv("GUIDE_INITIAL_PASSWORD", raising=False)
    path = write_csv(tmp_path, [GUIDE_HEADER, GUIDE_ROWS[0]])
    run_command("import_guides", path)
    password_hash = User.objects.get(username="G001").password
    monkeypatch.setenv("GUIDE_INITIAL_PASSWORD", "Lily-Start-2024")

    out, _ = run_command("import_guides", path)

    assert out == f"{path}: created 0, updated 0, unchanged 1, rejected 0\n"
    user = User.objects.get(username="G001")
    assert user.password == password_hash
    assert user.has_usable_password() is False


@pytest.mark.usefixtures("no_initial_password")
def test_import_guides_edited_rows_move_promote_and_deactivate(org, tmp_path):
    run_command("import_guides", write_csv(tmp_path, [GUIDE_HEADER, *GUIDE_ROWS], name="v1.csv"))
    pks = dict(Guide.objects.values_list("code", "pk"))
    user_pks = dict(User.objects.values_list("username", "pk"))
    path = write_csv(
        tmp_path,
        [
            GUIDE_HEADER,
            "G001,张三,13812345678,LILY-GZ01,store_manager,2024-03-01,",  # moved and promoted
            "M001,李四,+86 139-0000-1111,LILY-SH01,store_manager,2023-01-15,2025-01-31",  # left
            "G002,王五,,LILY-GZ01,guide,2022-05-01,",  # rehired (left_at cleared)
        ],
        name="v2.csv",
    )

    out, err = run_command("import_guides", path)

    assert out == f"{path}: created 0, updated 3, unchanged 0, rejected 0\n"
    assert err == ""
    assert dict(Guide.objects.values_list("code", "pk")) == pks
    assert dict(User.objects.values_list("username", "pk")) == user_pks
    assert guide_rows() == [
        ("G001", "张三", "+8613812345678", "LILY-GZ01", "store_manager", dt.date(2024, 3, 1), None, "G001"),
        ("G002", "王五", "", "LILY-GZ01", "guide", dt.date(2022, 5, 1), None, "G002"),
        ("M001", "李四", "+8613900001111", "LILY-SH01", "store_manager", dt.date(2023, 1, 15), dt.date(2025, 1, 31),
         "M001"),
    ]
    assert login_rows() == [
        ("G001", "张三", True, True, False),
        ("G002", "王五", True, False, False),
        ("M001", "李四", False, True, False),
    ]
    assert profile_rows() == [
        ("G001", "store_manager", "grp", "LILY", "SOUTH", "LILY-GZ01", "G001"),
        ("G002", "guide", "grp", "LILY", "SOUTH", "LILY-GZ01", "G002"),
        ("M001", "store_manager", "grp", "LILY", "EAST", "LILY-SH01", "M001"),
    ]


@pytest.mark.usefixtures("no_initial_password")
def test_import_guides_reports_bad_rows_per_line_and_imports_the_good_ones(org, tmp_path):
    path = write_csv(
        tmp_path,
        [
            GUIDE_HEADER,  # line 1
            GUIDE_ROWS[0],  # 2: good
            "G003,赵六,13812345679,LILY-XX99,guide,,",  # 3: unknown store
            "G004,钱七,12345,LILY-SH01,guide,,",  # 4: bad phone
            "G005,孙八,13900001112,LILY-SH01,guide,2024-05-01,2024-04-30",  # 5: left before hired
            "G001,张三,13812345678,LILY-SH01,guide,2024-03-01,",  # 6: guide_code again
            "G006,周九,,LILY-SH01,boss,,",  # 7: unknown role
            "G007,吴十,,LILY-SH01,guide,2024/05/01,",  # 8: not an ISO date
            "G008,,,LILY-SH01,guide,,",  # 9: no name
            "G 009,郑十一,,LILY-SH01,guide,,",  # 10: bad code
            "G010,冯十二,+86 12812345678,LILY-SH01,guide,,",  # 11: not a mobile number
            GUIDE_ROWS[1],  # 12: good
        ],
    )

    out, err = run_command_rejecting("import_guides", path)

    assert out == f"{path}: created 2, updated 0, unchanged 0, rejected 9\n"
    assert err.splitlines() == [
        "line 3: store_code LILY-XX99 is not a known store (import the organisation first)",
        "line 4: phone: '12345' is not an 11-digit mainland mobile number",
        "line 5: left_at is before hired_at",
        "line 6: guide_code G001 already given on line 2",
        "line 7: role 'boss' is not one of guide, store_manager",
        "line 8: hired_at '2024/05/01' is not a date (YYYY-MM-DD)",
        "line 9: name is empty",
        f"line 10: {_code_error('guide_code', 'G 009')}",
        "line 11: phone: '+86 12812345678' is not a valid mainland mobile number",
    ]
    assert [code for code, *_ in guide_rows()] == ["G001", "M001"]
    assert list(User.objects.order_by("username").values_list("username", flat=True)) == ["G001", "M001"]
    assert StaffProfile.objects.count() == 2


@pytest.mark.usefixtures("no_initial_password")
def test_import_guides_report_option_writes_the_rejected_rows(org, tmp_path):
    path = write_csv(tmp_path, [GUIDE_HEADER, "G003,赵六,13812345679,LILY-XX99,guide,,", GUIDE_ROWS[0]])
    report = tmp_path / "rejected-guides.csv"

    run_command_rejecting("import_guides", path, "--report", str(report))

    with open(report, encoding="utf-8", newline="") as handle:
        assert list(csv.reader(handle)) == [
            ["line", "reason"],
            ["2", "store_code LILY-XX99 is not a known store (import the organisation first)"],
        ]


@pytest.mark.usefixtures("no_initial_password")
def test_import_guides_refuses_a_login_name_already_used_by_another_staff_member(org, tmp_path):
    hq = staff_user("hq", group=org["group"], username="G001")
    hq_password = hq.password
    path = write_csv(tmp_path, [GUIDE_HEADER, GUIDE_ROWS[0], GUIDE_ROWS[1]])

    out, err = run_command_rejecting("import_guides", path)

    assert out == f"{path}: created 1, updated 0, unchanged 0, rejected 1\n"
    assert err == "line 2: login G001 already belongs to another staff member\n"
    # The guide row was rolled back and the HQ login is untouched.
    assert [code for code, *_ in guide_rows()] == ["M001"]
    assert profile_rows() == [
        ("G001", "hq", "grp", None, None, None, None),
        ("M001", "store_manager", "grp", "LILY", "EAST", "LILY-SH01", "M001"),
    ]
    hq.refresh_from_db()
    assert (hq.password, hq.first_name, hq.is_active, hq.is_staff) == (hq_password, "", True, True)


@pytest.mark.usefixtures("no_initial_password")
def test_import_guides_missing_header_column_fails_and_imports_nothing(org, tmp_path):
    path = write_csv(tmp_path, ["guide_code,name,phone,store_code,role", "G001,张三,13812345678,LILY-SH01,guide"])

    with pytest.raises(CommandError) as excinfo:
        run_command("import_guides", path)

    assert str(excinfo.value) == f"{path}: missing column(s): hired_at, left_at; expected header: {GUIDE_HEADER}"
    assert (Guide.objects.count(), User.objects.count(), StaffProfile.objects.count()) == (0, 0, 0)


@pytest.mark.usefixtures("no_initial_password")
def test_import_guides_reads_an_excel_utf8_bom_file(org, tmp_path):
    path = write_csv(tmp_path, [GUIDE_HEADER, GUIDE_ROWS[0]], encoding="utf-8-sig", newline="\r\n")

    out, _ = run_command("import_guides", path)

    assert out == f"{path}: created 1, updated 0, unchanged 0, rejected 0\n"
    assert guide_rows() == [
        ("G001", "张三", "+8613812345678", "LILY-SH01", "guide", dt.date(2024, 3, 1), None, "G001"),
    ]
