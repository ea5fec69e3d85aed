"""The Celery beat schedule, in one place. Each entry: what it does and why then."""

from celery.schedules import crontab

from retail_crm.env import env_int

BEAT_SCHEDULE = {
    # The outbox relay: domain events whose after-commit kick was lost (broker down) go out within seconds.
    "events-relay": {
        "task": "retail_crm.events.relay",
        "schedule": float(env_int("EVENTS_RELAY_SECONDS", 5)),
    },
    # Messages due now (queued, or waiting for the end of quiet hours) go out every minute.
    "marketing-deliveries-dispatch": {
        "task": "marketing.tasks.deliveries_dispatch",
        "schedule": crontab(),
    },
    # Journeys: enrolments whose wait ended (or whose after-commit kick was lost) take their next steps.
    "marketing-journeys-advance": {
        "task": "marketing.tasks.journeys_advance",
        "schedule": crontab(),
    },
    # Journeys of the day (birthdays, the marketing day and the lapse point of the cycle) at 08:30, after the
    # nightly RFML run and the care lists, so their first messages go out when quiet hours end.
    "marketing-journeys-daily": {
        "task": "marketing.tasks.journeys_daily",
        "schedule": crontab(minute=30, hour=8),
    },
    # Campaign runs due now (at a time, daily, weekly) start; a resolve whose task was lost is queued again.
    "marketing-campaigns-start-due": {
        "task": "marketing.tasks.campaigns_start_due",
        "schedule": crontab(),
    },
    # WeCom group sends wait for the guide's confirmation; their results per member are fetched every 10 minutes.
    "marketing-wecom-results-poll": {
        "task": "marketing.tasks.wecom_results_poll",
        "schedule": crontab(minute="*/10"),
    },
    # Handled domain events are kept a week for inspection, then removed at 04:50.
    "events-purge": {
        "task": "retail_crm.events.purge",
        "schedule": crontab(minute=50, hour=4),
    },
    # Dashboard facts for yesterday and days changed late (refunds, tasks, care), after the attribution sweep.
    "analytics-facts-nightly": {
        "task": "analytics.facts_rebuild_nightly",
        "schedule": crontab(minute=10, hour=3),
    },
    # Today's dashboard facts hourly, so the dashboard is never more than an hour behind.
    "analytics-facts-today": {
        "task": "analytics.facts_rebuild_today",
        "schedule": crontab(minute=5),
    },
    # Behaviour counters: yesterday is final at 01:20 (late, offline-queued events included); today hourly.
    "members-activity-yesterday": {
        "task": "members.tasks.activity_summarise_yesterday",
        "schedule": crontab(minute=20, hour=1),
    },
    "members-activity-today": {
        "task": "members.tasks.activity_summarise_today",
        "schedule": crontab(minute=15),
    },
    # Raw events older than 180 days go once their days are summarised (counters are kept).
    "members-events-purge": {
        "task": "members.tasks.events_purge",
        "schedule": crontab(minute=30, hour=3),
    },
    # Rule tags per brand at 02:30, after the day's orders are final (one task per brand).
    "members-tags-nightly": {
        "task": "members.tasks.tags_recompute_all_brands",
        "schedule": crontab(minute=30, hour=2),
    },
    # Behaviour tags per brand just after midnight: the windows moved a day, tags whose window passed go.
    "members-behaviour-tags-nightly": {
        "task": "members.tasks.behaviour_tags_recompute_all_brands",
        "schedule": crontab(minute=5, hour=0),
    },
    # Pending orders past their payment deadline give back stock, coupons and points: every minute.
    "mall-orders-expire": {
        "task": "mall.tasks.orders_expire",
        "schedule": crontab(),
    },
    # Ask the provider about payments whose notification never came; retry refunds left approved.
    "mall-payments-reconcile": {
        "task": "mall.tasks.payments_reconcile",
        "schedule": crontab(minute="*/5"),
    },
    # Idempotency-Key records are kept 24 hours; drop older ones daily.
    "mall-idempotency-purge": {
        "task": "mall.tasks.idempotency_purge",
        "schedule": crontab(minute=10, hour=4),
    },
    # Attribution safety net at 02:10: anything paid or refunded in the last two days whose task was lost.
    "analytics-attribute-sweep": {
        "task": "analytics.tasks.attribute_sweep",
        "schedule": crontab(minute=10, hour=2),
    },
    # Commission for credits the 02:10 sweep (or a range re-run) wrote, and office-staff shares, at 02:20.
    "guides-commission-nightly": {
        "task": "guides.tasks.commission_build_recent",
        "schedule": crontab(minute=20, hour=2),
    },
    # RFML classes, lifecycle stages and consumption cycles per brand once yesterday's orders are final.
    "analytics-rfm-nightly": {
        "task": "analytics.tasks.rfm_recompute_all",
        "schedule": crontab(minute=40, hour=2),
    },
    # Guides' care lists for today, after RFML and before stores open.
    "analytics-care-lists-daily": {
        "task": "analytics.tasks.care_lists_build_today",
        "schedule": crontab(minute=0, hour=6),
    },
    # Dashboard export files (and their job state) are kept a week, then removed at 04:40.
    "analytics-exports-purge": {
        "task": "analytics.tasks.exports_purge",
        "schedule": crontab(minute=40, hour=4),
    },
    # Live-session figures while streams run and just after (last leaves): every 2 minutes.
    "livestream-stats-live": {
        "task": "livestream.tasks.live_stats_refresh_recent",
        "schedule": crontab(minute="*/2"),
    },
    # Figures of sessions ended in the last 30 days: late viewer batches, payments and refunds, at 03:50.
    "livestream-stats-settling": {
        "task": "livestream.tasks.live_stats_refresh_settling",
        "schedule": crontab(minute=50, hour=3),
    },
    # Shipped orders nobody confirmed are received automatically after 10 days (returns window starts).
    "mall-orders-auto-receive": {
        "task": "mall.tasks.orders_auto_receive",
        "schedule": crontab(minute=20, hour=4),
    },
}
