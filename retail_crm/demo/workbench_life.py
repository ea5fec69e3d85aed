"""The demo's workbench life: a material library, guide tasks with partial execution, and shares with funnels.

Runs after the member life (guide tokens, behaviour, tags exist), from its own
random stream derived from the seed, so the orders, members and events the seed
has always produced stay the same; the only thing it changes on existing rows
is the share code of some mini-program orders (``Order.share_token``).

* **Materials**: four group-wide (HQ) pieces and four per brand (new arrivals
  and best-seller pictures of a product, an outfit copy text, a show video link).
* **Tasks**: per brand one finished task (most guides executed it, the rest are
  overdue), one finished last week and one running now (partly executed); HQ has
  a group-wide member-day task that finished and a running VIP-salon invitation
  for the EAST regions whose audience is the salon tag. Execution depends on
  the store (some stores are diligent, some are not), so rates differ by store
  and region. The demo guide login keeps its running tasks open, to be executed.
* **Shares**: every execution is a task share; about 40% of guides also share
  products (some of other brands), materials or the mall home in the last four
  weeks. Each share gets visitors (members bound to the sharer first, anonymous
  visitors too) who view it, some add to the cart; and existing mini-program
  orders placed soon after a share by the sharing guide's members carry its
  code, with the view (and usually the add to cart) that led to them, so views →
  cart → orders → paid read like a real funnel.
"""

from __future__ import annotations

import datetime as dt
import random
from collections import defaultdict

from django.contrib.auth import get_user_model
from django.core import signing

from guides.library import task_create, task_publish
from guides.models import GuideTask, GuideToken, Material, Share, TaskAssignment
from mall.models import Channel, Order, OrderLine
from members.models import BehaviourEvent, EventKind, TagValue

MATERIALS_HQ = (  # kind, title, body, video link
    (Material.Kind.COPY, "集团会员日 · 全品牌满减",
     "【集团会员日】本周六全品牌满500减50，会员积分双倍，点链接进小程序商城 👉", ""),
    (Material.Kind.COPY, "新会员专享礼", "首次在小程序下单立减20元，新会员专享，转发给身边的朋友吧。", ""),
    (Material.Kind.COPY, "换季收纳小贴士", "换季衣物收纳三步：清洁、干燥、分类。到店可免费领取防潮袋。", ""),
    (Material.Kind.VIDEO, "集团品牌故事", "", "https://video.example.com/group/story.mp4"),
)
TASK_WINDOWS = (  # title, days before the end it starts, days before the end it is due (negative: after)
    ("新品上市分享", 24, 18),
    ("周末穿搭推送", 12, 6),
    ("爆款返场限时", 2, -4),
)
VISITORS = ((0, 18), (1, 20), (2, 18), (3, 14), (4, 10), (6, 9), (9, 7), (14, 4))


def seed_workbench_life(seeder) -> dict[str, int]:
    """Add materials, tasks, executions, shares and their funnels to the demo group; returns row counts."""
    rng = random.Random(seeder.seed * 6151 + 29)
    group, end = seeder.group, seeder.end
    hq_user = get_user_model().objects.filter(username="hq").first()
    guides = [g for store_guides in seeder.guides_by_store.values() for g in store_guides]
    guide_by_pk = {g.pk: g for g in guides}
    demo_guide_code = next((code for role, code, _label in seeder.result.logins if role == "guide"), None)
    products_by_brand = {seeder.brands[code].pk: sorted({sku.product for sku in skus}, key=lambda p: p.code)
                         for code, skus in seeder.skus_by_brand.items()}

    # -------------------------------------------------------------- materials
    materials: list[Material] = []
    for kind, title, body, video in MATERIALS_HQ:
        materials.append(Material(group=group, kind=kind, title=title, body=body, video_url=video,
                                  created_by=hq_user))
    for brand in seeder.brands.values():
        products = products_by_brand[brand.pk]
        new, hit = products[0], products[len(products) // 2]
        materials += [
            Material(group=group, brand=brand, kind=Material.Kind.IMAGE, title=f"新品上市：{new.name}", product=new,
                     body=f"{brand.name}新品{new.name}到店，尺码齐全，欢迎到店试穿或小程序下单。", created_by=hq_user),
            Material(group=group, brand=brand, kind=Material.Kind.COPY, title=f"{brand.name}本周穿搭灵感",
                     body=f"一件{new.category}三种穿法：通勤、约会、周末出游，{brand.name}搭配师为你挑好了。",
                     created_by=hq_user),
            Material(group=group, brand=brand, kind=Material.Kind.VIDEO, title=f"{brand.name}春夏新品走秀",
                     video_url=f"https://video.example.com/{brand.code.lower()}/show.mp4", created_by=hq_user),
            Material(group=group, brand=brand, kind=Material.Kind.IMAGE, title=f"爆款返场：{hit.name}", product=hit,
                     body=f"去年卖断货的{hit.name}返场了，会员价限时三天。", created_by=hq_user),
        ]
    materials = Material.objects.bulk_create(materials)
    for index, material in enumerate(materials):
        material.created_at = end - dt.timedelta(days=40 - index % 12, hours=index)
    Material.objects.bulk_update(materials, ["created_at"])
    hq_materials = [m for m in materials if m.brand_id is None]
    materials_of_brand: dict[int, list[Material]] = defaultdict(list)
    for material in materials:
        if material.brand_id is not None:
            materials_of_brand[material.brand_id].append(material)

    # -------------------------------------------------------------- tasks
    tasks: list[GuideTask] = []
    for brand in seeder.brands.values():
        own = materials_of_brand[brand.pk]
        for index, (title, starts, due) in enumerate(TASK_WINDOWS):
            product = own[0].product if index == 0 else own[3].product if index == 2 else None
            picked = [own[0]] if index == 0 else [own[1], own[2]] if index == 1 else [own[3]]
            copy = picked[0].body or picked[0].title
            tasks.append(task_create(group=group, brand=brand, title=f"{brand.name}{title}", copy_text=copy,
                                     starts_at=end - dt.timedelta(days=starts), deadline=end - dt.timedelta(days=due),
                                     materials=picked, product=product, created_by=hq_user))
    tasks.append(task_create(group=group, title="集团会员日预热", copy_text=hq_materials[0].body,
                             starts_at=end - dt.timedelta(days=16), deadline=end - dt.timedelta(days=10),
                             materials=[hq_materials[0], hq_materials[3]], created_by=hq_user))
    salon = TagValue.objects.filter(tag_group__group=group, tag_group__code="salon", code="invited-2026").first()
    tasks.append(task_create(group=group, title="VIP沙龙邀约（华东）",
                             copy_text="亲爱的会员，诚邀您参加本月的VIP沙龙：新品抢先看、搭配师一对一，名额有限。",
                             starts_at=end - dt.timedelta(days=3), deadline=end + dt.timedelta(days=5),
                             audience_tags=[salon] if salon else [], created_by=hq_user,
                             assign_regions=[r for (_b, code), r in seeder.regions.items() if code == "EAST"]))
    for task in tasks:
        task_publish(task=task, at=task.starts_at)

    # -------------------------------------------------------------- executions (task shares)
    signer = signing.Signer(salt="guides.token")
    token_of = dict(GuideToken.objects.filter(guide__in=guides, revoked_at__isnull=True)
                    .order_by("guide_id", "pk").values_list("guide_id", "pk"))
    diligence = {store.pk: rng.uniform(0.35, 0.95) for stores in seeder.stores_by_brand.values() for store in stores}
    zeal = {g.pk: rng.uniform(0.7, 1.1) for g in guides}
    shares: list[Share] = []
    executed: list[TaskAssignment] = []
    task_by_pk = {t.pk: t for t in tasks}
    assignments = list(TaskAssignment.objects.filter(task__in=tasks).order_by("task_id", "guide_id"))
    for assignment in assignments:
        task = task_by_pk[assignment.task_id]
        guide = guide_by_pk[assignment.guide_id]
        window_end = min(task.deadline, end)
        running = task.deadline > end
        elapsed = (window_end - task.starts_at) / (task.deadline - task.starts_at)
        chance = diligence[guide.store_id] * zeal[guide.pk] * (0.8 * elapsed if running else 1.0)
        if guide.code == demo_guide_code:
            chance = 0.0 if running else 1.0  # the demo login: history done, today's tasks still to do
        if rng.random() >= min(chance, 0.98):
            continue
        at = task.starts_at + (window_end - task.starts_at) * (rng.random() ** 1.6)
        share = Share(code=signer.sign(f"s{rng.getrandbits(72):018x}"), group=group, guide_token_id=token_of[guide.pk],
                      guide=guide, brand_id=task.brand_id or guide.store.brand_id, target=Share.Target.TASK,
                      task=task, product_id=task.product_id, created_at=at)
        shares.append(share)
        assignment.executed_at, assignment.reached = at, assignment.audience_size
        executed.append(assignment)
    task_shares = len(shares)

    # -------------------------------------------------------------- free shares: products, materials, the mall
    brand_ids = sorted(products_by_brand)
    for guide in guides:
        if rng.random() >= 0.4:
            continue
        own_brand = guide.store.brand_id
        for _ in range(rng.choice((1, 1, 2, 3, 5))):
            at = end - dt.timedelta(seconds=rng.uniform(3600, 27 * 86400))
            roll = rng.random()
            share = Share(code=signer.sign(f"s{rng.getrandbits(72):018x}"), group=group,
                          guide_token_id=token_of[guide.pk], guide=guide, created_at=at)
            if roll < 0.55:
                brand_id = own_brand if rng.random() < 0.8 else rng.choice(brand_ids)  # cross-brand selling
                product = rng.choice(products_by_brand[brand_id])
                share.target, share.product, share.brand_id = Share.Target.PRODUCT, product, brand_id
            elif roll < 0.85:
                material = rng.choice(materials_of_brand[own_brand] + hq_materials)
                share.target, share.material, share.product = Share.Target.MATERIAL, material, material.product
                share.brand_id = material.brand_id or own_brand
            else:
                share.target, share.brand_id = Share.Target.MALL, own_brand
            shares.append(share)
    shares = Share.objects.bulk_create(shares, batch_size=2000)
    for assignment, share in zip(executed, shares[:task_shares], strict=True):
        assignment.share = share
    TaskAssignment.objects.bulk_update(executed, ["executed_at", "reached", "share"], batch_size=2000)

    # -------------------------------------------------------------- visits through the shares
    bound: dict[tuple[int, int], list[int]] = defaultdict(list)
    for binding in seeder.bindings:
        bound[(binding.guide_id, binding.brand_id)].append(binding.member_id)
    members_of_brand: dict[int, list[int]] = defaultdict(list)
    for member_id, brand_id in seeder.membership_pairs:
        members_of_brand[brand_id].append(member_id)
    events: list[BehaviourEvent] = []
    last_moment = end - dt.timedelta(minutes=1)
    for index, share in enumerate(shares):
        brand_id = share.brand_id
        product_code = share.product.code if share.product_id else None
        for visitor in range(rng.choices([n for n, _w in VISITORS], [w for _n, w in VISITORS])[0]):
            member_id, visitor_id = None, ""
            if rng.random() < 0.55:
                pool = bound.get((share.guide_id, brand_id)) or members_of_brand[brand_id]
                member_id = rng.choice(pool)
            else:
                visitor_id = f"wv{index:05d}{visitor:02d}"
            at = min(share.created_at + dt.timedelta(seconds=rng.uniform(60, 72 * 3600)), last_moment)
            if share.target == Share.Target.MATERIAL:
                kind, object_type, object_id = EventKind.MATERIAL_VIEW, "material", str(share.material_id)
            else:
                kind, object_type = EventKind.PRODUCT_VIEW, "product"
                object_id = product_code or rng.choice(products_by_brand[brand_id]).code
            common = {"brand_id": brand_id, "member_id": member_id, "visitor_id": visitor_id,
                      "share_token": share.code, "guide_id": share.guide_id}
            for _view in range(rng.choice((1, 1, 2, 3))):
                events.append(BehaviourEvent(kind=kind, occurred_at=at, object_type=object_type,
                                             object_id=object_id, **common))
                at = min(at + dt.timedelta(seconds=rng.randrange(10, 300)), last_moment)
            if member_id is not None and rng.random() < 0.18:
                carted = object_id if kind == EventKind.PRODUCT_VIEW else \
                    product_code or rng.choice(products_by_brand[brand_id]).code
                events.append(BehaviourEvent(kind=EventKind.ADD_TO_CART, occurred_at=at, object_type="product",
                                             object_id=carted, **common))

    # -------------------------------------------------------------- orders that came through a share
    shares_by_guide: dict[int, list[Share]] = defaultdict(list)
    for share in shares:
        shares_by_guide[share.guide_id].append(share)
    candidates = list(Order.objects.filter(brand__group=group, channel=Channel.MINI_PROGRAM, member__isnull=False,
                                           guide__isnull=False, share_token="",
                                           ordered_at__gte=end - dt.timedelta(days=27), ordered_at__lte=end)
                      .order_by("ordered_at", "pk").only("pk", "brand_id", "member_id", "guide_id", "ordered_at"))
    first_product = dict(OrderLine.objects.filter(order__in=[o.pk for o in candidates])
                         .order_by("order_id", "-pk").values_list("order_id", "sku__product__code"))
    shared_orders = []
    for placed in candidates:
        recent = [s for s in shares_by_guide.get(placed.guide_id, ())
                  if placed.ordered_at - dt.timedelta(days=14) <= s.created_at <= placed.ordered_at
                  - dt.timedelta(minutes=10)]
        if not recent or rng.random() >= 0.8:
            continue
        share = rng.choice(recent)
        placed.share_token = share.code
        shared_orders.append(placed)
        common = {"brand_id": placed.brand_id, "member_id": placed.member_id, "visitor_id": "",
                  "share_token": share.code, "guide_id": share.guide_id, "object_type": "product",
                  "object_id": first_product.get(placed.pk, "")}
        seen_at = placed.ordered_at - dt.timedelta(minutes=rng.uniform(3, 90))
        events.append(BehaviourEvent(kind=EventKind.PRODUCT_VIEW, occurred_at=seen_at, **common))
        if rng.random() < 0.7:
            events.append(BehaviourEvent(kind=EventKind.ADD_TO_CART, occurred_at=placed.ordered_at
                                         - dt.timedelta(minutes=1), **common))
    Order.objects.bulk_update(shared_orders, ["share_token"], batch_size=2000)
    BehaviourEvent.objects.bulk_create(events, batch_size=5000)

    return {"materials": len(materials), "guide_tasks": len(tasks), "task_assignments": len(assignments),
            "task_executions": len(executed), "shares": len(shares), "share_events": len(events),
            "shared_orders": len(shared_orders)}
