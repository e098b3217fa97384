import lzma
import sys
import time
import zlib
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

from campaigns.models import Workspace
from memory.importers.lines import CsvMapping, csv_lines, jsonl_lines
from memory.importers.summary import SUMMARY_LABELS, ImportSummary
from memory.services import events_import, starbucks_import

FORMATS = ["auto", "jsonl", "csv", "starbucks"]


def _columns(value: str | None) -> list[str] | None:
    return [c.strip() for c in value.split(",") if c.strip()] if value else None


class Command(BaseCommand):
    help = (
        "Import events into a workspace from Segment-format JSONL (plain, .gz, .xz), CSV with a "
        "column mapping, or the Starbucks rewards data (--format starbucks DIR). Idempotent: "
        "importing the same file twice adds nothing."
    )

    def add_arguments(self, parser):
        parser.add_argument("paths", nargs="+", type=Path, help="Files (or the Starbucks DIR).")
        parser.add_argument("--workspace", required=True, help="Workspace slug.")
        parser.add_argument(
            "--format",
            choices=FORMATS,
            default="auto",
            help="auto: .csv[.gz|.xz] is CSV, anything else JSONL (one Segment call a line).",
        )
        parser.add_argument("--chunk-size", type=int, default=5_000)
        parser.add_argument(
            "--show-errors", type=int, default=50, help="Bad lines to print (all are counted)."
        )
        csv = parser.add_argument_group("CSV column mapping")
        csv.add_argument("--user-id-column")
        csv.add_argument("--anonymous-id-column")
        csv.add_argument("--event-column", help="The column holding the event name...")
        csv.add_argument("--event-name", help="...or one name for every row.")
        csv.add_argument("--timestamp-column", help="ISO 8601, or Unix seconds/milliseconds.")
        csv.add_argument("--message-id-column", help="A unique id per row, for dedup.")
        csv.add_argument("--type-column", help="track (default), identify, page or screen.")
        csv.add_argument(
            "--property-columns", help="Comma-separated; default: every unmapped column."
        )
        csv.add_argument("--numeric-columns", help="Comma-separated properties read as numbers.")
        csv.add_argument("--delimiter", default=",")

    def handle(self, *args, paths, workspace, format, chunk_size, show_errors, **options):
        found = Workspace.objects.filter(slug=workspace).first()
        if found is None:
            raise CommandError(f"No workspace with slug {workspace!r}.")
        for path in paths:
            if not path.exists():
                raise CommandError(f"{path} does not exist.")
            if path.is_dir() and format != "starbucks":
                raise CommandError(f"{path} is a directory; only --format starbucks reads one.")

        started = time.perf_counter()
        progress = tqdm(unit=" calls", unit_scale=True, mininterval=0.5, file=sys.stderr)

        def on_chunk(summary: ImportSummary, size: int) -> None:
            progress.update(size)

        try:
            if format == "starbucks":
                if len(paths) != 1 or not paths[0].is_dir():
                    raise CommandError("--format starbucks takes one directory.")
                summary = starbucks_import(workspace=found, directory=paths[0], on_chunk=on_chunk)
            else:
                mapping = self._mapping(options)
                summary = ImportSummary()
                for path in paths:
                    kind = format if format != "auto" else self._guess(path)
                    lines = csv_lines(path, mapping) if kind == "csv" else jsonl_lines(path)
                    try:
                        events_import(
                            workspace=found,
                            lines=lines,
                            source=str(path),
                            chunk_size=chunk_size,
                            summary=summary,
                            on_chunk=on_chunk,
                        )
                    except ValueError as error:  # a CSV mapping that does not fit the header
                        raise CommandError(f"{path}: {error}") from None
                    except (OSError, EOFError, lzma.LZMAError, zlib.error) as error:
                        raise CommandError(summary.unreadable(str(path), error)) from None
        finally:
            progress.close()
        self._report(summary, time.perf_counter() - started, show_errors)

    @staticmethod
    def _guess(path: Path) -> str:
        suffixes = [s for s in path.suffixes if s not in {".gz", ".xz"}]
        return "csv" if suffixes and suffixes[-1] == ".csv" else "jsonl"

    @staticmethod
    def _mapping(options) -> CsvMapping:
        return CsvMapping(
            user_id=options["user_id_column"],
            anonymous_id=options["anonymous_id_column"],
            event=options["event_column"],
            event_name=options["event_name"],
            timestamp=options["timestamp_column"],
            message_id=options["message_id_column"],
            type=options["type_column"],
            properties=_columns(options["property_columns"]),
            numeric=_columns(options["numeric_columns"]) or [],
            delimiter=options["delimiter"],
        )

    def _report(self, summary: ImportSummary, seconds: float, show_errors: int) -> None:
        for source, line, field, reason in summary.rejected[:show_errors]:
            where = f"{source}:{line}"
            self.stderr.write(f"{where}: {field}: {reason}" if field else f"{where}: {reason}")
        hidden = len(summary.rejected) - show_errors
        if hidden > 0:
            self.stderr.write(f"… and {hidden:,} more bad lines.")
        events = summary.stored + summary.duplicates
        rate = events / seconds if seconds else 0.0
        rows = [(SUMMARY_LABELS[name], value) for name, value in summary.counts().items()]
        width = max(len(label) for label, _ in rows)
        self.stdout.write(f"Imported in {seconds:.1f} s ({rate:,.0f} events/s):")
        for label, value in rows:
            self.stdout.write(f"  {label.ljust(width)}  {value:>12,}")
        style = self.style.WARNING if summary.rejected else self.style.SUCCESS
        self.stdout.write(style("Done, with bad lines." if summary.rejected else "Done."))
