# State only: the model now lives in retail_crm with this table (retail_crm 0004).

from django.db import migrations


class Migration(migrations.Migration):

    dependencies = [
        ('mall', '0004_order_share_token_index'),
        ('retail_crm', '0004_idempotencyrecord'),
    ]

    operations = [migrations.SeparateDatabaseAndState(state_operations=[
        migrations.DeleteModel(name='IdempotencyRecord'),
    ])]
