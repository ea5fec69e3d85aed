# Saved audiences (the conditions are validated and compiled by marketing.audiences).

import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('marketing', '0001_reach'),
        ('retail_crm', '0004_idempotencyrecord'),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.CreateModel(
            name='Audience',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('name', models.CharField(max_length=80, verbose_name='name')),
                ('definition', models.JSONField(default=dict, verbose_name='conditions')),
                ('created_at', models.DateTimeField(auto_now_add=True, verbose_name='created at')),
                ('updated_at', models.DateTimeField(auto_now=True, verbose_name='updated at')),
                ('brand', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='audiences', to='retail_crm.brand')),
                ('created_by', models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.PROTECT, related_name='+', to=settings.AUTH_USER_MODEL)),
                ('group', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='audiences', to='retail_crm.retailgroup')),
            ],
            options={
                'verbose_name': 'audience',
                'verbose_name_plural': 'audiences',
                'constraints': [models.UniqueConstraint(fields=('brand', 'name'), name='audience_name_unique_per_brand')],
            },
        ),
    ]
