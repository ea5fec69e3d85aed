# Audiences count a member's events of one kind on some products in the last days (marketing.audiences).

from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('members', '0008_member_oa_openid'),
        ('retail_crm', '0004_idempotencyrecord'),
    ]

    operations = [
        migrations.AddIndex(
            model_name='behaviourevent',
            index=models.Index(fields=['brand', 'kind', 'object_id', 'occurred_at'], name='event_object_kind_time'),
        ),
    ]
