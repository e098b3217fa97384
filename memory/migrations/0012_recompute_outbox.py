import django.db.models.deletion
import django.utils.timezone
from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('campaigns', '0002_prompts_and_webhooks'),
        ('memory', '0011_weight_posterior_mean'),
    ]

    operations = [
        migrations.CreateModel(
            name='RecomputeOutbox',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('requested_at', models.DateTimeField(default=django.utils.timezone.now)),
                ('workspace', models.OneToOneField(on_delete=django.db.models.deletion.CASCADE, related_name='+', to='campaigns.workspace')),
            ],
        ),
    ]
