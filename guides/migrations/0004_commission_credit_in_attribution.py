"""The commission ledger's ``credit`` now names ``attribution.SalesCredit``: state only.

The table it references is the same (``analytics_salescredit``), so the foreign key constraint stays as it is.
"""

import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('attribution', '0001_initial'),
        ('guides', '0003_materials_tasks_shares'),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            database_operations=[],
            state_operations=[
                migrations.AlterField(
                    model_name='commissionentry',
                    name='credit',
                    field=models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.PROTECT, related_name='commission_entries', to='attribution.salescredit'),
                ),
            ],
        ),
    ]
