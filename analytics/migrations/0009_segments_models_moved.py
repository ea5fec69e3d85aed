# The RFML and care-list models moved to the segments app (segments 0001 takes them over with the same
# tables, Meta.db_table). Here analytics only forgets them: state-only, no table is dropped or touched.

from django.db import migrations


class Migration(migrations.Migration):

    dependencies = [
        ('analytics', '0008_member_windows_guided_orders'),
        ('segments', '0001_initial'),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            database_operations=[],
            state_operations=[
                # The rows pointing at a run go before the run.
                migrations.DeleteModel(name='MemberRfm'),
                migrations.DeleteModel(name='RfmClassChange'),
                migrations.DeleteModel(name='RfmRun'),
                migrations.DeleteModel(name='SegmentationSettings'),
                migrations.DeleteModel(name='CareItem'),
            ],
        ),
    ]
