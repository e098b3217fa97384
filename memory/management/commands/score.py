import polars as pl
from django.core.management.base import BaseCommand, CommandError

from memory.management.commands._common import parse_as_of, workspace_or_error
from memory.predict import NoMemoryYet, memory_score

REQUIRED = ("customer_id", "message_key")


class Command(BaseCommand):
    help = (
        "Score customer x message pairs from a CSV (columns customer_id, message_key): adds p_goal "
        "and each memory's contribution, using only events before --as-of."
    )

    def add_arguments(self, parser):
        parser.add_argument("--workspace", required=True, help="Workspace slug.")
        parser.add_argument(
            "--as-of",
            help="ISO time; memory from events strictly before it (default: the latest recompute).",
        )
        parser.add_argument("--input", required=True, help="CSV with customer_id, message_key.")
        parser.add_argument("--output", required=True, help="CSV to write.")

    def handle(self, *args, workspace, as_of, input, output, **options):
        found = workspace_or_error(workspace)
        try:
            pairs = pl.read_csv(input, schema_overrides={c: pl.Utf8 for c in REQUIRED})
        except (OSError, pl.exceptions.PolarsError) as error:
            raise CommandError(f"Cannot read {input!r}: {error}") from None
        missing = [c for c in REQUIRED if c not in pairs.columns]
        if missing:
            raise CommandError(f"{input}: line 1 (header) lacks columns {', '.join(missing)}.")
        empty = pairs.with_row_index("line", offset=2).filter(
            pl.col("customer_id").is_null() | pl.col("message_key").is_null()
        )
        if empty.height:
            raise CommandError(f"{input}: line {empty['line'][0]} has an empty customer_id or key.")
        try:
            scored = memory_score(workspace=found, pairs=pairs, as_of=parse_as_of(as_of))
        except NoMemoryYet as error:
            raise CommandError(f"{error} Run `manage.py recompute` or pass --as-of.") from None
        scored.write_csv(output)
        problems = scored.filter(pl.col("problem").is_not_null()).height
        self.stderr.write(
            f"Scored {scored.height - problems} pairs into {output}"
            + (f"; {problems} could not be scored (see the problem column)." if problems else ".")
        )
