# The idempotency records move from mall to retail_crm (the helper that uses them lives here): state only,
# the table keeps its name and its rows.

from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('retail_crm', '0003_staff_password_reset'),
        ('mall', '0004_order_share_token_index'),
    ]

    operations = [migrations.SeparateDatabaseAndState(state_operations=[
        migrations.CreateModel(
            name='IdempotencyRecord',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('owner', models.CharField(help_text='member:<id> or user:<id>', max_length=40)),
                ('scope', models.CharField(help_text='The operation, e.g. order_create', max_length=40)),
                ('key', models.CharField(max_length=100)),
                ('request_hash', models.CharField(max_length=64)),
                ('status_code', models.PositiveSmallIntegerField(blank=True, help_text='Empty while the first request is in flight', null=True)),
                ('response', models.JSONField(blank=True, null=True)),
                ('created_at', models.DateTimeField(auto_now_add=True)),
            ],
            options={
                'verbose_name': 'idempotency record',
                'verbose_name_plural': 'idempotency records',
                'db_table': 'mall_idempotencyrecord',
                'indexes': [models.Index(fields=['created_at'], name='mall_idempo_created_53a639_idx')],
                'constraints': [models.UniqueConstraint(fields=('owner', 'scope', 'key'), name='idempotency_key_unique')],
            },
        ),
    ])]
