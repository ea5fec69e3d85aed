"""The Celery application. Tasks are autodiscovered from each app's tasks.py.

Configuration comes from Django settings (CELERY_* names): with REDIS_URL unset
tasks run eagerly in-process, with it set they go to the Redis broker.
"""

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "retail_crm.settings")

app = Celery("retail_crm")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
