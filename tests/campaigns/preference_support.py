"""Shared by the preference-export tests: the Starbucks data, whole or cut to some customers,
and the pairs expected from the raw transcript, counted independently of the engine."""

import io
import json
import lzma
from collections import defaultdict
from pathlib import Path

from django.conf import settings
from django.core.management import call_command

STARBUCKS = Path(settings.BASE_DIR) / "data" / "starbucks"
WINDOW_H = 72.0


def transcript_records(persons: set[str] | None = None) -> list[dict]:
    """Return the transcript's records (of these persons only, when given)."""
    records = []
    with lzma.open(STARBUCKS / "transcript.json.xz", "rt", encoding="utf-8") as handle:
        for line in handle:
            if not line.strip():
                continue
            record = json.loads(line)
            if persons is None or record["person"] in persons:
                records.append(record)
    return records


def offer_of(record: dict) -> str:
    value = record["value"]
    return value.get("offer id") or value.get("offer_id")


def outcomes(records: list[dict], window_h: float = WINDOW_H) -> dict[str, dict]:
    """Return per person {(hour, offer): reached the goal}: a transaction in (t, t + window]."""
    sends, buys = defaultdict(set), defaultdict(list)
    for record in records:
        if record["event"] == "offer received":
            sends[record["person"]].add((float(record["time"]), offer_of(record)))
        elif record["event"] == "transaction":
            buys[record["person"]].append(float(record["time"]))
    return {
        person: {
            send: any(send[0] < buy <= send[0] + window_h for buy in buys[person])
            for send in person_sends
        }
        for person, person_sends in sends.items()
    }


def expected_pair_count(records: list[dict], max_pairs: int) -> tuple[int, int]:
    """Return (pairs, customers with a pair): per customer, min(max_pairs, the reached x the
    not-reached sends of different offers)."""
    pairs = customers = 0
    for by_send in outcomes(records).values():
        reached = [send for send, hit in by_send.items() if hit]
        missed = [send for send, hit in by_send.items() if not hit]
        combos = sum(1 for a in reached for b in missed if a[1] != b[1])
        pairs += min(max_pairs, combos)
        customers += combos > 0
    return pairs, customers


def import_starbucks(workspace, folder: Path | None = None) -> None:
    """Import the Starbucks files of a folder (default: the whole data set) quietly."""
    call_command(
        "import_events",
        str(folder or STARBUCKS),
        workspace=workspace.slug,
        format="starbucks",
        stdout=io.StringIO(),
        stderr=io.StringIO(),
    )


def starbucks_slice(folder: Path, profiles: int) -> list[dict]:
    """Write the Starbucks files cut to the first `profiles` customers; return their records."""
    folder.mkdir(parents=True, exist_ok=True)
    lines = (STARBUCKS / "profile.json").read_bytes().splitlines()[:profiles]
    persons = {json.loads(line)["id"] for line in lines}
    records = transcript_records(persons)
    (folder / "portfolio.json").write_bytes((STARBUCKS / "portfolio.json").read_bytes())
    (folder / "profile.json").write_bytes(b"\n".join(lines) + b"\n")
    (folder / "transcript.json").write_text(
        "".join(json.dumps(record) + "\n" for record in records), encoding="utf-8"
    )
    return records


def read_lines(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
