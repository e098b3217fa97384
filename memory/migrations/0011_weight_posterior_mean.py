from django.db import migrations, models


class Migration(migrations.Migration):
    """The weight becomes the posterior mean rate; the Thompson share gets its own column."""

    dependencies = [("memory", "0010_event_message_partial_index")]

    operations = [
        migrations.AddField(
            model_name="customerlabelweight",
            name="thompson_share",
            field=models.FloatField(
                null=True,
                help_text="Exploration: share of Thompson draws the label wins in its set.",
            ),
        ),
        migrations.AlterField(
            model_name="customerlabelweight",
            name="weight",
            field=models.FloatField(
                help_text="Posterior mean response rate (weight_low/high: its interval)."
            ),
        ),
    ]
