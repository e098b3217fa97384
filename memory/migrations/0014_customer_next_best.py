"""Each customer's stored next best messages: a derived table, partitioned by workspace on
PostgreSQL like the others (0005), so a full recompute swaps in a freshly built partition."""

import django.db.models.deletion
import django.db.models.manager
from django.db import migrations, models

TABLE = "memory_customernextbest"
KEY = ("customer_id", "rank")


def partition(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    # CreateModel's index on workspace_id waits for the end of the migration; built on the
    # partitioned parent it would be rebuilt on each partition a recompute attaches.
    own = [sql for sql in schema_editor.deferred_sql if sql.references_table(TABLE)]
    for sql in own:
        schema_editor.execute(sql)
        schema_editor.deferred_sql.remove(sql)
    with schema_editor.connection.cursor() as cursor:
        old = f"{TABLE}_unpartitioned"
        cursor.execute(f'ALTER TABLE "{TABLE}" RENAME TO "{old}"')
        cursor.execute(f'ALTER TABLE "{old}" ALTER COLUMN id DROP IDENTITY IF EXISTS')
        cursor.execute(
            f'CREATE TABLE "{TABLE}" (LIKE "{old}" INCLUDING DEFAULTS INCLUDING CONSTRAINTS)'
            " PARTITION BY LIST (workspace_id)"
        )
        cursor.execute(f'CREATE SEQUENCE IF NOT EXISTS "{TABLE}_id_seq"')
        cursor.execute(f'ALTER SEQUENCE "{TABLE}_id_seq" OWNED BY "{TABLE}".id')
        cursor.execute(
            f"""ALTER TABLE "{TABLE}" ALTER COLUMN id SET DEFAULT nextval('"{TABLE}_id_seq"')"""
        )
        cursor.execute(f'CREATE TABLE "{TABLE}_default" PARTITION OF "{TABLE}" DEFAULT')
        cursor.execute(f'DROP TABLE "{old}"')  # new: no rows to move
        default = f"{TABLE}_default"
        cursor.execute(f'ALTER TABLE "{default}" ADD CONSTRAINT "{default}_pkey" PRIMARY KEY (id)')
        cursor.execute(
            f'ALTER TABLE "{default}" ADD CONSTRAINT "{default}_key" UNIQUE ({", ".join(KEY)})'
        )
        cursor.execute(f'CREATE INDEX "{default}_workspace" ON "{default}" (workspace_id)')


def unpartition(apps, schema_editor):
    """Leave a plain table again for DeleteModel, the reverse of CreateModel, to drop."""
    if schema_editor.connection.vendor != "postgresql":
        return
    with schema_editor.connection.cursor() as cursor:
        cursor.execute(f'DROP TABLE "{TABLE}" CASCADE')
        cursor.execute(f'CREATE TABLE "{TABLE}" (id bigint PRIMARY KEY)')


class Migration(migrations.Migration):
    dependencies = [
        ("campaigns", "0005_login_failure"),
        ("memory", "0013_event_imports"),
    ]

    operations = [
        migrations.CreateModel(
            name="CustomerNextBest",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                ("rank", models.PositiveSmallIntegerField()),
                (
                    "score",
                    models.FloatField(
                        help_text="logit p_goal + ln(boost odds) x the labels' mean boost."
                    ),
                ),
                ("p_goal", models.FloatField()),
                (
                    "boost",
                    models.FloatField(help_text="Mean boost of the message's labels, -1 to 1."),
                ),
                ("pull", models.FloatField(help_text="Odds multiplier of the message's own pull.")),
                (
                    "labels",
                    models.FloatField(
                        help_text="Odds multiplier of their response to its labels."
                    ),
                ),
                (
                    "wear_out",
                    models.FloatField(help_text="Odds multiplier of wear-out from similar sends."),
                ),
                (
                    "spread",
                    models.FloatField(
                        help_text="Sd of the labels' contribution on the logit scale: exploration draws with it."
                    ),
                ),
                (
                    "cold_start",
                    models.BooleanField(default=False, help_text="The population's list."),
                ),
                ("computed_at", models.DateTimeField()),
                (
                    "customer",
                    models.ForeignKey(
                        db_constraint=False,
                        db_index=False,
                        null=True,
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="next_best",
                        to="memory.customer",
                    ),
                ),
                (
                    "message",
                    models.ForeignKey(
                        db_constraint=False,
                        db_index=False,
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="next_best",
                        to="campaigns.message",
                    ),
                ),
                (
                    "workspace",
                    models.ForeignKey(
                        db_constraint=False,
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="%(class)ss",
                        to="campaigns.workspace",
                    ),
                ),
            ],
            options={
                "abstract": False,
                "base_manager_name": "unscoped",
                "default_manager_name": "unscoped",
                "constraints": [
                    models.UniqueConstraint(fields=("customer", "rank"), name="nextbest_unique")
                ],
            },
            managers=[
                ("unscoped", django.db.models.manager.Manager()),
            ],
        ),
        migrations.RunPython(partition, unpartition),
        # On the partitioned parent: built on every partition; a recompute builds them on its
        # new partition before attaching it (memory/db/writeback.py).
        migrations.AddIndex(
            model_name="customerstate",
            index=models.Index(fields=["primed_score"], name="customerstate_primed"),
        ),
        migrations.AddIndex(
            model_name="customerstate",
            index=models.Index(fields=["baseline_rate"], name="customerstate_baseline"),
        ),
    ]
