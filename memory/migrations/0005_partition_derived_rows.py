"""Partition the derived tables by workspace on PostgreSQL (SQLite keeps plain tables).

A full recompute then builds a workspace's new rows in a fresh, unindexed table, indexes it
once and swaps it in as that workspace's partition (see memory/db/writeback.py): no row-by-row
DELETE and no index maintenance on insert, which cost most of a large write-back.

Rows written through the ORM (and every workspace until its first full recompute under this
scheme) live in the DEFAULT partition. Each partition carries its own primary key and unique
key; the partitioned parent has none (PostgreSQL would demand workspace_id in them), so
Django's model state, which still describes the constraints, is left unchanged.
"""

from django.db import migrations

TABLES = {
    "memory_customerlabelweight": ("customer_id", "label_id"),
    "memory_customermessagehabituation": ("customer_id", "message_id"),
    "memory_customerstate": ("customer_id",),
}
# The unique constraints' names before partitioning, restored when the migration is reversed.
UNIQUE_NAMES = {
    "memory_customerlabelweight": "labelweight_unique",
    "memory_customermessagehabituation": "habituation_unique",
    "memory_customerstate": "memory_customerstate_customer_id_key",
}


def _partition_indexes(cursor, table: str, partition: str, key: tuple[str, ...]) -> None:
    cursor.execute(f'ALTER TABLE "{partition}" ADD CONSTRAINT "{partition}_pkey" PRIMARY KEY (id)')
    cursor.execute(
        f'ALTER TABLE "{partition}" ADD CONSTRAINT "{partition}_key" UNIQUE ({", ".join(key)})'
    )
    cursor.execute(f'CREATE INDEX "{partition}_workspace" ON "{partition}" (workspace_id)')


def partition(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    with schema_editor.connection.cursor() as cursor:
        for table, key in TABLES.items():
            old = f"{table}_unpartitioned"
            cursor.execute(f'ALTER TABLE "{table}" RENAME TO "{old}"')
            # Frees the name "<table>_id_seq" that the identity's sequence holds.
            cursor.execute(f'ALTER TABLE "{old}" ALTER COLUMN id DROP IDENTITY IF EXISTS')
            cursor.execute(
                f'CREATE TABLE "{table}" (LIKE "{old}" INCLUDING DEFAULTS INCLUDING CONSTRAINTS)'
                " PARTITION BY LIST (workspace_id)"
            )
            # A plain sequence, not an identity: a table built on its own to become a
            # partition must draw ids from the same sequence.
            cursor.execute(f'CREATE SEQUENCE IF NOT EXISTS "{table}_id_seq"')
            cursor.execute(f'ALTER SEQUENCE "{table}_id_seq" OWNED BY "{table}".id')
            cursor.execute(
                f"""ALTER TABLE "{table}" ALTER COLUMN id SET DEFAULT nextval('"{table}_id_seq"')"""
            )
            cursor.execute(f'CREATE TABLE "{table}_default" PARTITION OF "{table}" DEFAULT')
            cursor.execute(f'INSERT INTO "{table}" SELECT * FROM "{old}"')
            cursor.execute(
                f"""SELECT setval('"{table}_id_seq"', COALESCE(MAX(id), 0) + 1, false)"""
                f' FROM "{table}"'
            )
            cursor.execute(f'DROP TABLE "{old}"')
            _partition_indexes(cursor, table, f"{table}_default", key)


def unpartition(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    with schema_editor.connection.cursor() as cursor:
        for table, key in TABLES.items():
            old = f"{table}_partitioned"
            cursor.execute(f'ALTER TABLE "{table}" RENAME TO "{old}"')
            cursor.execute(
                f'CREATE TABLE "{table}" (LIKE "{old}" INCLUDING DEFAULTS INCLUDING CONSTRAINTS)'
            )
            cursor.execute(f'ALTER SEQUENCE "{table}_id_seq" OWNED BY "{table}".id')
            cursor.execute(f'INSERT INTO "{table}" SELECT * FROM "{old}"')
            cursor.execute(f'DROP TABLE "{old}" CASCADE')
            cursor.execute(f'ALTER TABLE "{table}" ADD PRIMARY KEY (id)')
            cursor.execute(
                f'ALTER TABLE "{table}" ADD CONSTRAINT "{UNIQUE_NAMES[table]}"'
                f" UNIQUE ({', '.join(key)})"
            )
            cursor.execute(f'CREATE INDEX ON "{table}" (workspace_id)')


class Migration(migrations.Migration):
    dependencies = [
        ("memory", "0004_derived_rows_without_fk_checks"),
    ]

    operations = [migrations.RunPython(partition, unpartition)]
