"""AttributionSettings and SalesCredit move here from ``analytics``, in the migration state only.

Their tables stay ``analytics_attributionsettings`` and ``analytics_salescredit`` (``Meta.db_table``), so no
row is copied and no SQL runs against them; ``analytics`` 0009 drops the models from its own state after
``guides`` 0004 has pointed the commission ledger's foreign key here. The content types are renamed to the
new app label so the admin's history and any permissions keep pointing at the same models.
"""

import django.db.models.deletion
from django.db import migrations, models

MOVED = ("attributionsettings", "salescredit")


def _content_types_move(apps, schema_editor, *, source: str, target: str) -> None:
    content_type = apps.get_model("contenttypes", "ContentType")
    rows = content_type.objects.using(schema_editor.connection.alias)
    for model in MOVED:
        if not rows.filter(app_label=target, model=model).exists():
            rows.filter(app_label=source, model=model).update(app_label=target)


def content_types_to_attribution(apps, schema_editor):
    _content_types_move(apps, schema_editor, source="analytics", target="attribution")


def content_types_to_analytics(apps, schema_editor):
    _content_types_move(apps, schema_editor, source="attribution", target="analytics")


class Migration(migrations.Migration):

    initial = True

    dependencies = [
        ('analytics', '0008_member_windows_guided_orders'),
        ('contenttypes', '0002_remove_content_type_name'),
        ('mall', '0001_initial'),
        ('members', '0003_profile_wecom_events_tokens_tags'),
        ('retail_crm', '0001_initial'),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            database_operations=[],
            state_operations=[
                migrations.CreateModel(
                    name='AttributionSettings',
                    fields=[
                        ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                        ('exclusive_earns_commission', models.BooleanField(default=True, verbose_name='exclusive credit earns commission')),
                        ('selling_earns_commission', models.BooleanField(default=False, verbose_name='selling credit earns commission')),
                        ('exclusive_counts_for_kpi', models.BooleanField(default=True, verbose_name='exclusive credit counts for KPIs')),
                        ('selling_counts_for_kpi', models.BooleanField(default=True, verbose_name='selling credit counts for KPIs')),
                        ('brand', models.OneToOneField(on_delete=django.db.models.deletion.CASCADE, related_name='attribution_settings', to='retail_crm.brand')),
                    ],
                    options={
                        'verbose_name': 'attribution settings',
                        'verbose_name_plural': 'attribution settings',
                        'db_table': 'analytics_attributionsettings',
                    },
                ),
                migrations.CreateModel(
                    name='SalesCredit',
                    fields=[
                        ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                        ('kind', models.CharField(choices=[('store', 'Store credit'), ('exclusive', 'Exclusive guide credit (专属业绩)'), ('selling', 'Selling guide credit (销售业绩)')], max_length=10, verbose_name='kind')),
                        ('amount', models.DecimalField(decimal_places=2, max_digits=14, verbose_name='amount')),
                        ('order_day', models.DateField(help_text='Local day the order was placed', verbose_name='order day')),
                        ('booked_at', models.DateTimeField(auto_now_add=True, verbose_name='booked at')),
                        ('channel', models.CharField(max_length=20, verbose_name='channel')),
                        ('rule', models.CharField(max_length=40, verbose_name='rule')),
                        ('inputs', models.JSONField(default=dict, verbose_name='inputs')),
                        ('cross_brand', models.BooleanField(default=False, help_text="The order's brand differs from the credited guide's brand", verbose_name='cross-brand')),
                        ('is_correction', models.BooleanField(default=False, verbose_name='correction')),
                        ('brand', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='+', to='retail_crm.brand')),
                        ('guide', models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.PROTECT, related_name='credits', to='retail_crm.guide')),
                        ('member', models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='+', to='members.member')),
                        ('order', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='credits', to='mall.order')),
                        ('store', models.ForeignKey(blank=True, help_text='Empty on a store credit: the HQ pool', null=True, on_delete=django.db.models.deletion.PROTECT, related_name='+', to='retail_crm.store')),
                    ],
                    options={
                        'verbose_name': 'sales credit',
                        'verbose_name_plural': 'sales credits',
                        'db_table': 'analytics_salescredit',
                        'indexes': [models.Index(fields=['order', 'kind'], name='analytics_s_order_i_9424ed_idx'), models.Index(fields=['guide', 'order_day'], name='analytics_s_guide_i_3c9046_idx'), models.Index(fields=['store', 'order_day'], name='analytics_s_store_i_f73edb_idx'), models.Index(fields=['brand', 'order_day'], name='analytics_s_brand_i_b2a633_idx')],
                        'constraints': [models.CheckConstraint(condition=models.Q(('amount', 0), _negated=True), name='sales_credit_not_zero'), models.CheckConstraint(condition=models.Q(('kind', 'store'), ('guide__isnull', False), _connector='OR'), name='guide_credit_names_a_guide')],
                    },
                ),
            ],
        ),
        migrations.RunPython(content_types_to_attribution, content_types_to_analytics),
    ]
