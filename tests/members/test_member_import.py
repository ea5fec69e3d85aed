"""Member import (command, service and admin upload) and WeCom friendship import.

Every bad value of every column is shown as a row error with its line number while good rows go in; a second
run of the same file changes nothing; the admin upload offers only the uploader's brands.
"""

from __future__ import annotations

import datetime as dt
import io
import time
from types import SimpleNamespace

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import CommandError, call_command
from django.utils import timezone

from members.importing import MEMBER_COLUMNS, member_import, wecom_friend_import
from members.models import BrandMembership, GuideBinding, Member, WeComFriendship
from members.services import member_merge
from members.wecom import wecom_friend_add
from retail_crm.csv_import import RowError, read_csv_rows
from tests.factories import (
    BrandFactory,
    BrandMembershipFactory,
    GuideBindingFactory,
    GuideFactory,
    MemberFactory,
    RegionFactory,
    RetailGroupFactory,
    StoreFactory,
    UserFactory,
    staff_user,
)

pytestmark = pytest.mark.django_db

HEADER = ",".join(MEMBER_COLUMNS)
SHANGHAI = dt.timezone(dt.timedelta(hours=8))


def local(y, m, d, h=0, mi=0) -> dt.datetime:
    return dt.datetime(y, m, d, h, mi, tzinfo=SHANGHAI)


@pytest.fixture
def org():
    grp = RetailGroupFactory()
    brand_a = BrandFactory(group=grp, code="brand-a")
    brand_b = BrandFactory(group=grp, code="brand-b")
    a1 = StoreFactory(region=RegionFactory(brand=brand_a), code="a1")
    a2 = StoreFactory(region=a1.region, code="a2")
    b1 = StoreFactory(region=RegionFactory(brand=brand_b), code="b1")
    return SimpleNamespace(
        grp=grp, brand_a=brand_a, brand_b=brand_b, a1=a1, a2=a2, b1=b1,
        ga1=GuideFactory(store=a1, code="ga1"), ga2=GuideFactory(store=a2, code="ga2"),
        gone=GuideFactory(store=a1, code="gone", left_at=dt.date(2024, 3, 1)),
        gb1=GuideFactory(store=b1, code="gb1"),
    )


def rows(text: str):
    return read_csv_rows(io.StringIO(text), MEMBER_COLUMNS)


def state(group):
    """Everything an import writes, as comparable tuples."""
    members = sorted((m.code, m.phone, m.name, m.gender, m.birthday) for m in Member.objects.filter(group=group))
    memberships = sorted((m.member.code, m.brand.code, m.joined_at, m.join_channel, m.store.code if m.store else None)
                         for m in BrandMembership.objects.filter(member__group=group))
    bindings = sorted((b.member.code, b.brand.code, b.guide.code, b.started_at, b.ended_at, b.reason)
                      for b in GuideBinding.objects.filter(member__group=group))
    return members, memberships, bindings


GOOD = (HEADER + "\n"
        "C001,138 0000 0001,王芳,女,1990-04-05,a1,ga1,2024-01-10,store_card\n"
        "C002,+86 138-0000-0002,李雷,M,,a2,,2024-02-01T15:30:00+08:00,\n"
        "C003,,,,,,ga2,,guide_qr\n")


def test_good_rows_create_members_memberships_and_bindings(org):
    before = timezone.now()

    report = member_import(rows=rows(GOOD), brand=org.brand_a)

    assert (report.created, report.updated, report.unchanged, report.errors) == (3, 0, 0, [])
    members, memberships, bindings = state(org.grp)
    assert members == [("C001", "+8613800000001", "王芳", "F", dt.date(1990, 4, 5)),
                       ("C002", "+8613800000002", "李雷", "M", None),
                       ("C003", "", "", "", None)]
    assert memberships[:2] == [("C001", "brand-a", local(2024, 1, 10), "store_card", "a1"),
                               ("C002", "brand-a", local(2024, 2, 1, 15, 30), "import", "a2")]
    c3 = memberships[2]
    assert c3[:2] == ("C003", "brand-a") and c3[3:] == ("guide_qr", None)
    assert before <= c3[2] <= timezone.now()  # no joined_at: joined now
    assert bindings[0] == ("C001", "brand-a", "ga1", local(2024, 1, 10), None, "import")
    assert bindings[1][:3] == ("C003", "brand-a", "ga2") and bindings[1][4:] == (None, "import")
    assert len(bindings) == 2


def test_every_bad_value_is_a_row_error_with_its_line_and_good_rows_still_go_in(org):
    MemberFactory(group=org.grp, code="OLD1", phone="+8613911112222")
    text = (HEADER + "\n"
            "G001,13800000001,好,F,,a1,ga1,2024-01-01,\n"                     # 2 good
            ",13800000002,,,,,,,\n"                                           # 3
            "bad code!,,,,,,,,\n"                                             # 4
            "E004,1380000,,,,,,,\n"                                           # 5
            f"E005,,{'名' * 51},,,,,,\n"                                      # 6
            "E006,,,X,,,,,\n"                                                 # 7
            "E007,,,,1990-13-01,,,,\n"                                        # 8
            "E008,,,,2999-01-01,,,,\n"                                        # 9
            "E009,,,,,b1,,,\n"                                                # 10
            "E010,,,,,zz,,,\n"                                                # 11
            "E011,,,,,,gb1,,\n"                                               # 12
            "E012,,,,,,gone,,\n"                                              # 13
            "E013,,,,,,,01/02/2024,\n"                                        # 14
            "E014,,,,,,,2999-01-01,\n"                                        # 15
            "E015,,,,,,,,walk_in\n"                                           # 16
            "E016,139 1111 2222,,,,,,,\n"                                     # 17
            "G001,,,,,,,,\n"                                                  # 18
            "E018,13800000001,,,,,,,\n"                                       # 19
            "G002,,男,m,2000-02-29,a2,ga2,2024-02-29,livestream\n")           # 20 good

    report = member_import(rows=rows(text), brand=org.brand_a)

    assert report.errors == [
        RowError(3, "member_code is empty"),
        RowError(4, "member_code 'bad code!' may only hold letters, digits, '-' and '_' (at most 40)"),
        RowError(5, "phone: '1380000' is not an 11-digit mainland mobile number"),
        RowError(6, "name is longer than 50 characters"),
        RowError(7, "gender 'X' is not one of F, M, 女, 男 or empty"),
        RowError(8, "birthday '1990-13-01' is not a date (YYYY-MM-DD)"),
        RowError(9, "birthday 2999-01-01 is in the future"),
        RowError(10, "store_code b1 is not a store of brand brand-a"),
        RowError(11, "store_code zz is not a store of brand brand-a"),
        RowError(12, "guide_code gb1 is not a guide of brand brand-a"),
        RowError(13, "guide_code gone: the guide left on 2024-03-01"),
        RowError(14, "joined_at '01/02/2024' is not a date (YYYY-MM-DD) or date-time (ISO 8601)"),
        RowError(15, "joined_at 2999-01-01 is in the future"),
        RowError(16, "join_channel 'walk_in' is not one of store_card, pay_as_join, guide_qr, livestream, "
                     "parcel_card, community, import"),
        RowError(17, "phone belongs to member OLD1"),
        RowError(18, "member_code G001 already given on line 2"),
        RowError(19, "phone belongs to member G001"),
    ]
    assert (report.created, report.updated, report.unchanged) == (2, 0, 0)
    members, memberships, bindings = state(org.grp)
    assert [m[:2] for m in members] == [("G001", "+8613800000001"), ("G002", ""), ("OLD1", "+8613911112222")]
    assert members[:2] == [("G001", "+8613800000001", "好", "F", None), ("G002", "", "男", "M", dt.date(2000, 2, 29))]
    assert memberships == [("G001", "brand-a", local(2024, 1, 1), "import", "a1"),
                           ("G002", "brand-a", local(2024, 2, 29), "livestream", "a2")]
    assert bindings == [("G001", "brand-a", "ga1", local(2024, 1, 1), None, "import"),
                        ("G002", "brand-a", "ga2", local(2024, 2, 29), None, "import")]


def test_the_same_file_twice_changes_nothing(org):
    first = member_import(rows=rows(GOOD), brand=org.brand_a)
    after_first = state(org.grp)

    second = member_import(rows=rows(GOOD), brand=org.brand_a)

    assert (first.created, second.created, second.updated, second.unchanged, second.errors) == (3, 0, 0, 3, [])
    assert state(org.grp) == after_first


def test_when_the_bulk_write_is_refused_new_members_go_in_one_by_one_with_the_same_result(org, monkeypatch):
    from django.db import IntegrityError

    def refused(*args, **kwargs):
        raise IntegrityError("someone created one of these members meanwhile")

    expected_report = member_import(rows=rows(GOOD), brand=org.brand_a)
    expected = state(org.grp)
    Member.objects.filter(group=org.grp).delete()
    monkeypatch.setattr(GuideBinding.objects, "bulk_create", refused)  # the last of the three bulk inserts

    report = member_import(rows=rows(GOOD), brand=org.brand_a)

    assert (report.created, report.updated, report.unchanged, report.errors) == (3, 0, 0, [])
    members, memberships, bindings = state(org.grp)
    assert members == expected[0]
    assert [m[:2] + m[3:] for m in memberships] == [m[:2] + m[3:] for m in expected[1]]
    assert [b[:3] for b in bindings] == [b[:3] for b in expected[2]]
    assert expected_report.created == 3


def test_existing_members_are_updated_keep_their_first_join_and_their_protected_binding(org):
    member = MemberFactory(group=org.grp, code="C001", phone="", name="", birthday=None)
    BrandMembershipFactory(member=member, brand=org.brand_a, joined_at=local(2023, 5, 1), join_channel="pay_as_join",
                           store=org.a2)
    bound_at = timezone.now() - dt.timedelta(days=10)  # within the 90-day service window: protected
    GuideBindingFactory(member=member, guide=org.ga2, started_at=bound_at, reason=GuideBinding.Reason.QR_SCAN)
    other_brand = MemberFactory(group=org.grp, code="C002", phone="+8613800000002", name="李雷")
    BrandMembershipFactory(member=other_brand, brand=org.brand_b, joined_at=local(2023, 1, 1), store=org.b1)

    report = member_import(rows=rows(GOOD), brand=org.brand_a)

    assert (report.created, report.updated, report.unchanged, report.errors) == (1, 2, 0, [])
    members, memberships, bindings = state(org.grp)
    assert members[:2] == [("C001", "+8613800000001", "王芳", "F", dt.date(1990, 4, 5)),
                           ("C002", "+8613800000002", "李雷", "M", None)]
    assert memberships[:3] == [("C001", "brand-a", local(2023, 5, 1), "pay_as_join", "a2"),
                               ("C002", "brand-a", local(2024, 2, 1, 15, 30), "import", "a2"),
                               ("C002", "brand-b", local(2023, 1, 1), "store_card", "b1")]
    # The first binding (to ga2) is protected: importing ga1 for C001 does not move the member.
    assert bindings[0] == ("C001", "brand-a", "ga2", bound_at, None, "qr_scan")
    assert len(bindings) == 2  # and C003's new binding to ga2


def test_an_absorbed_members_code_reaches_the_survivor(org):
    survivor = MemberFactory(group=org.grp, code="KEEP", phone="+8613800000001")
    absorbed = MemberFactory(group=org.grp, code="C001", phone="")
    member_merge(survivor=survivor, absorbed=absorbed, reason="same person")

    report = member_import(rows=rows(HEADER + "\nC001,13800000001,王芳,女,,a1,,2024-01-10,\n"),
                           brand=org.brand_a)

    assert (report.created, report.updated, report.errors) == (0, 1, [])
    assert list(BrandMembership.objects.values_list("member__code", "brand__code")) == [("KEEP", "brand-a")]
    assert Member.objects.get(code="KEEP").name == "王芳"


def test_command_reports_rejected_rows_to_a_file_and_exits_1(org, tmp_path, capsys):
    source = tmp_path / "members.csv"
    source.write_text(GOOD + "C004,12345,,,,,,,\n", encoding="utf-8-sig")
    report = tmp_path / "errors.csv"

    with pytest.raises(SystemExit) as exited:
        call_command("import_members", str(source), brand="brand-a", report=str(report))

    assert exited.value.code == 1
    assert report.read_text(encoding="utf-8").splitlines() == [
        "line,reason", "5,phone: '12345' is not an 11-digit mainland mobile number"]
    out = capsys.readouterr()
    assert out.out == f"{source}: created 3, updated 0, unchanged 0, rejected 1\n"
    assert Member.objects.filter(group=org.grp).count() == 3


def test_command_clean_file_exits_0_and_an_unknown_brand_imports_nothing(org, tmp_path, capsys):
    source = tmp_path / "members.csv"
    source.write_text(GOOD, encoding="utf-8")

    with pytest.raises(CommandError, match="--brand nope: no such brand"):
        call_command("import_members", str(source), brand="nope")
    assert Member.objects.count() == 0
    call_command("import_members", str(source), brand="brand-a")
    call_command("import_members", str(source), brand="brand-a")

    assert capsys.readouterr().out == (f"{source}: created 3, updated 0, unchanged 0, rejected 0\n"
                                       f"{source}: created 0, updated 0, unchanged 3, rejected 0\n")


def test_command_refuses_a_file_without_the_columns(org, tmp_path):
    source = tmp_path / "members.csv"
    source.write_text("member_code,phone\nC1,13800000001\n", encoding="utf-8")

    with pytest.raises(CommandError, match="missing column"):
        call_command("import_members", str(source), brand="brand-a")
    assert Member.objects.count() == 0


# ---------------------------------------------------------------------------- WeCom friendships import

FRIENDS_HEADER = "member_code,guide_code,external_userid,added_at,removed_at\n"


def friend_rows(text: str):
    return read_csv_rows(io.StringIO(FRIENDS_HEADER + text),
                         ["member_code", "guide_code", "external_userid", "added_at", "removed_at"])


def friendships(group):
    return sorted((f.member.code, f.guide.code, f.external_userid, f.added_at, f.removed_at, f.source)
                  for f in WeComFriendship.objects.filter(member__group=group))


def test_wecom_friend_import_records_open_and_ended_friendships_idempotently(org):
    MemberFactory(group=org.grp, code="C1")
    MemberFactory(group=org.grp, code="C2")
    text = ("C1,ga1,wmA,2024-01-01,2024-02-01\n"
            "C1,ga1,wmA,2024-03-01,\n"
            "C2,ga2,,2024-01-05T09:00:00+08:00,\n")

    first = wecom_friend_import(rows=friend_rows(text))
    second = wecom_friend_import(rows=friend_rows(text))
    closing = wecom_friend_import(rows=friend_rows("C2,ga2,wmB,2024-01-05T09:00:00+08:00,2024-04-01\n"))

    assert (first.created, first.errors) == (3, [])
    assert (second.created, second.updated, second.unchanged, second.errors) == (0, 0, 3, [])
    assert (closing.updated, closing.errors) == (1, [])
    assert friendships(org.grp) == [
        ("C1", "ga1", "wmA", local(2024, 1, 1), local(2024, 2, 1), "import"),
        ("C1", "ga1", "wmA", local(2024, 3, 1), None, "import"),
        ("C2", "ga2", "wmB", local(2024, 1, 5, 9), local(2024, 4, 1), "import"),
    ]


def test_wecom_friend_import_reports_bad_rows_with_line_numbers(org):
    member = MemberFactory(group=org.grp, code="C1")
    wecom_friend_add(member=member, guide=org.ga1, at=local(2024, 1, 1), source="callback")
    text = ("C1,nobody,,2024-01-01,\n"                # 2
            "NOPE,ga1,,2024-01-01,\n"                 # 3
            "C1,ga2,,,\n"                             # 4
            "C1,ga2,,2024-05-01,2024-04-01\n"         # 5
            "C1,ga2,,2999-01-01,\n"                   # 6
            "C1,ga1,,2023-12-01,2024-02-01\n"         # 7 overlaps the open one from 2024-01-01
            "C1,ga1,,2024-01-01,2024-01-20\n"         # 8 closes the open one: updated
            "C1,ga1,,2024-01-01,2024-01-25\n"         # 9 same key again
            "C1,ga2,wm2,2024-02-01,\n")               # 10 good

    report = wecom_friend_import(rows=friend_rows(text))

    assert report.errors == [
        RowError(2, "guide_code 'nobody' is not a known guide"),
        RowError(3, "member_code NOPE is not a known member"),
        RowError(4, "added_at is empty"),
        RowError(5, "removed_at is before added_at"),
        RowError(6, "added_at 2999-01-01 is in the future"),
        RowError(7, "overlaps the friendship recorded from 2024-01-01T00:00:00+08:00"),
        RowError(9, "member_code|guide_code|added_at C1|ga1|2024-01-01 already given on line 8"),
    ]
    assert (report.created, report.updated, report.unchanged) == (1, 1, 0)
    assert friendships(org.grp) == [
        ("C1", "ga1", "", local(2024, 1, 1), local(2024, 1, 20), "callback"),
        ("C1", "ga2", "wm2", local(2024, 2, 1), None, "import"),
    ]


def test_wecom_friend_command(org, tmp_path, capsys):
    MemberFactory(group=org.grp, code="C1")
    source = tmp_path / "friends.csv"
    source.write_text(FRIENDS_HEADER + "C1,ga1,wmA,2024-01-01,\n", encoding="utf-8")

    call_command("import_wecom_friends", str(source))

    assert capsys.readouterr().out == f"{source}: created 1, updated 0, unchanged 0, rejected 0\n"
    assert friendships(org.grp) == [("C1", "ga1", "wmA", local(2024, 1, 1), None, "import")]


# ---------------------------------------------------------------------------- admin upload

PAGE = "/admin/members/member/import/"


def upload(text: str) -> SimpleUploadedFile:
    return SimpleUploadedFile("members.csv", text.encode("utf-8-sig"), content_type="text/csv")


@pytest.mark.urls("tests.urls_wecom")
def test_member_changelist_links_to_the_import_page(client, org):
    client.force_login(staff_user("hq", group=org.grp))

    changelist = client.get("/admin/members/member/")

    assert changelist.status_code == 200
    assert f'<li><a href="{PAGE}">导入会员</a></li>' in changelist.content.decode() or \
        f'<li><a href="{PAGE}">Import members</a></li>' in changelist.content.decode()


@pytest.mark.urls("tests.urls_wecom")
def test_admin_upload_for_hq_offers_every_brand_and_shows_the_report(client, org):
    client.force_login(staff_user("hq", group=org.grp))

    form_page = client.get(PAGE)
    result = client.post(PAGE, {"brand": org.brand_a.pk, "file": upload(GOOD + "C004,12345,,,,,,,\n")})

    assert form_page.status_code == 200
    assert list(form_page.context["form"].fields["brand"].queryset) == [org.brand_a, org.brand_b]
    assert result.status_code == 200
    report = result.context["report"]
    assert (report.created, report.updated, report.unchanged) == (3, 0, 0)
    assert report.errors == [RowError(5, "phone: '12345' is not an 11-digit mainland mobile number")]
    html = result.content.decode()
    assert '<td id="created">3</td>' in html and '<td id="rejected">1</td>' in html
    assert "<tr><td>5</td><td>phone: &#x27;12345&#x27; is not an 11-digit mainland mobile number</td></tr>" in html
    assert Member.objects.filter(group=org.grp).count() == 3


@pytest.mark.urls("tests.urls_wecom")
def test_admin_upload_for_a_brand_operator_is_limited_to_their_brand(client, org):
    client.force_login(staff_user("brand_operator", brand=org.brand_b))

    form_page = client.get(PAGE)
    foreign = client.post(PAGE, {"brand": org.brand_a.pk, "file": upload(GOOD)})
    own = client.post(PAGE, {"brand": org.brand_b.pk,
                             "file": upload(HEADER + "\nB001,13800000009,,,,b1,gb1,2024-01-01,\n")})

    assert list(form_page.context["form"].fields["brand"].queryset) == [org.brand_b]
    assert foreign.status_code == 200 and foreign.context["report"] is None
    assert list(foreign.context["form"].errors) == ["brand"]
    assert own.context["report"].created == 1
    assert list(Member.objects.values_list("code", flat=True)) == ["B001"]
    assert list(BrandMembership.objects.values_list("brand__code", flat=True)) == ["brand-b"]


@pytest.mark.urls("tests.urls_wecom")
def test_admin_upload_refuses_bad_files_and_other_roles(client, org):
    hq = staff_user("hq", group=org.grp)
    client.force_login(hq)
    not_utf8 = client.post(PAGE, {"brand": org.brand_a.pk,
                                  "file": SimpleUploadedFile("m.csv", "会员".encode("gbk"))})
    no_header = client.post(PAGE, {"brand": org.brand_a.pk, "file": upload("code,phone\nC1,1\n")})
    client.force_login(staff_user("store_manager", store=org.a1))
    store_manager = client.get(PAGE)
    client.force_login(UserFactory(username="shopper", is_staff=False))
    not_staff = client.get(PAGE)

    assert not_utf8.context["form"].errors == {"file": ["文件不是 UTF-8 文本（请将表格另存为“CSV UTF-8”格式）。"]}
    assert list(no_header.context["form"].errors) == ["file"]
    assert store_manager.status_code == 403
    assert (not_staff.status_code, not_staff["Location"]) == (302, f"/admin/login/?next={PAGE}")
    assert Member.objects.count() == 0


# ---------------------------------------------------------------------------- timing (printed, not asserted)

def test_ten_thousand_rows_import_timing(org, capsys):
    lines = [HEADER]
    guides = ["ga1", "ga2", ""]
    for n in range(10_000):
        lines.append(f"T{n:05d},139{n:08d},会员{n},{'FM'[n % 2]},1990-01-{n % 28 + 1:02d},{'a1' if n % 2 else 'a2'},"
                     f"{guides[n % 3]},2024-01-{n % 28 + 1:02d},store_card")
    text = "\n".join(lines) + "\n"

    started = time.perf_counter()
    first = member_import(rows=rows(text), brand=org.brand_a)
    first_seconds = time.perf_counter() - started
    started = time.perf_counter()
    second = member_import(rows=rows(text), brand=org.brand_a)
    second_seconds = time.perf_counter() - started

    with capsys.disabled():
        print(f"\n10,000-row member import: first run {first_seconds:.2f} s ({first.summary()}); "
              f"second run {second_seconds:.2f} s ({second.summary()})")
    assert (first.created, second.unchanged) == (10_000, 10_000)
