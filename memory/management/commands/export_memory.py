import sys

from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

from memory.db.reads import EXPORT_KINDS, memory_export_chunks
from memory.exports import FORMATS, encode_chunks
from memory.management.commands._common import workspace_or_error
from memory.strategy import weights_with_provenance


class Command(BaseCommand):
    help = "Export the tagged weights, habituation loads or priming indicators as CSV or JSONL."

    def add_arguments(self, parser):
        parser.add_argument("--workspace", required=True, help="Workspace slug.")
        parser.add_argument("--kind", required=True, choices=list(EXPORT_KINDS))
        parser.add_argument("--format", dest="fmt", default="csv", choices=FORMATS)
        parser.add_argument("--out", required=True, help="File to write, or - for stdout.")

    def handle(self, *args, workspace, kind, fmt, out, **options):
        found = workspace_or_error(workspace)
        handle = sys.stdout.buffer if out == "-" else None
        try:
            handle = handle or open(out, "wb")  # noqa: SIM115 - closed below, stdout is not
        except OSError as error:
            raise CommandError(f"Cannot write {out!r}: {error.strerror}.") from None
        rows = 0
        with tqdm(desc=f"{kind} rows", unit="row", disable=out == "-") as bar:
            chunks = memory_export_chunks(workspace=found, kind=kind)
            if kind == "weights":  # each weight with its provenance (decision 0260)
                chunks = weights_with_provenance(workspace=found, chunks=chunks)

            def counted():
                nonlocal rows
                for frame in chunks:
                    rows += frame.height
                    bar.update(frame.height)
                    yield frame

            try:
                for data in encode_chunks(counted(), fmt):
                    handle.write(data)
            finally:
                if out != "-":
                    handle.close()
        if out != "-":
            self.stderr.write(f"Wrote {rows} {kind} rows to {out} ({fmt}).")
