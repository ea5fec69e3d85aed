"""AttributionSettings and SalesCredit now belong to ``attribution`` (its 0001): drop them from this app's state.

State only: the tables stay, under their names, as ``attribution``'s models. Runs after ``guides`` 0004 so no
foreign key in the state still names ``analytics.SalesCredit``.
"""

from django.db import migrations


class Migration(migrations.Migration):

    dependencies = [
        ('analytics', '0009_segments_models_moved'),
        ('attribution', '0001_initial'),
        ('guides', '0004_commission_credit_in_attribution'),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            database_operations=[],
            state_operations=[
                migrations.DeleteModel(name='SalesCredit'),
                migrations.DeleteModel(name='AttributionSettings'),
            ],
        ),
    ]
