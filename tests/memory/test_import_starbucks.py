"""`import_events --format starbucks`: the whole rewards data set, counted; its quirks."""

import io
from pathlib import Path

import pytest
from django.conf import settings
from django.core.management import call_command
from django.db.models import Count

from campaigns.catalogue.services import messages_upsert
from campaigns.models import Message
from memory.importers import starbucks
from memory.models import Customer, Event
from memory.services import events_import

DATA = Path(settings.BASE_DIR) / "data" / "starbucks"
EVENTS, CUSTOMERS, BLANK_LINES, IDENTICAL_REPEATS = 306_534, 17_000, 114, 397


def run_import(workspace) -> str:
    out = io.StringIO()
    call_command(
        "import_events",
        str(DATA),
        workspace=workspace.slug,
        format="starbucks",
        stdout=out,
        stderr=io.StringIO(),
    )
    return out.getvalue()


def summary_value(output: str, label: str) -> int:
    (line,) = [line for line in output.splitlines() if line.strip().startswith(label)]
    return int(line.rsplit(maxsplit=1)[1].replace(",", ""))


# Committed chunks, as in production (and the writer thread needs to see the workspace).
@pytest.mark.django_db(transaction=True)
def test_it_imports_every_event_for_every_customer(workspace):
    first = run_import(workspace)

    assert summary_value(first, "events stored") == EVENTS
    assert summary_value(first, "customers in the workspace") == CUSTOMERS
    assert summary_value(first, "blank lines skipped") == BLANK_LINES
    # Same person, offer and hour twice: one transaction completing two copies of an offer.
    assert summary_value(first, "identical lines kept apart") == IDENTICAL_REPEATS
    assert summary_value(first, "bad lines") == 0
    events = Event.objects.for_workspace(workspace)
    assert events.count() == EVENTS
    assert Customer.objects.for_workspace(workspace).count() == CUSTOMERS
    counts = dict(events.values_list("name").annotate(n=Count("id")))
    assert counts == {
        workspace.send_event: 76_277,
        workspace.open_event: 57_725,
        "Offer Completed": 33_579,
        workspace.goal_event: 138_953,
    }
    assert Message.objects.for_workspace(workspace).count() == 10
    assert not events.filter(message_key__gt="", message__isnull=True).exists()


@pytest.mark.django_db
def test_it_maps_one_persons_records_and_traits(workspace):
    run_import_of_person(workspace)

    person = Customer.objects.for_workspace(workspace).get(
        external_id="78afa995795e4d85b5d9ceeca43f5fef"
    )
    assert person.traits == {
        "gender": "F",
        "age": 75,
        "income": 100000.0,
        "became_member_on": "2017-05-09",
    }
    received = (
        Event.objects.for_workspace(workspace)
        .filter(customer=person, name=workspace.send_event)
        .order_by("occurred_at")
        .first()
    )
    assert received.message.key == "9b98b8c7a33c4b65b9aebfe6a799e6d9"
    assert received.occurred_at.isoformat() == "2018-01-01T00:00:00+00:00"
    purchase = (
        Event.objects.for_workspace(workspace)
        .filter(customer=person, name=workspace.goal_event)
        .order_by("occurred_at")
        .first()
    )
    assert purchase.properties == {"revenue": 19.89}
    assert purchase.occurred_at.isoformat() == "2018-01-06T12:00:00+00:00"  # hour 132
    completed = Event.objects.for_workspace(workspace).get(customer=person, name="Offer Completed")
    assert completed.properties == {"message_id": "9b98b8c7a33c4b65b9aebfe6a799e6d9", "reward": 5}
    unknown_age = Customer.objects.for_workspace(workspace).get(
        external_id="68be06ca386d4c31939f3a4f0e3dd783"
    )
    assert unknown_age.traits == {"became_member_on": "2017-02-12"}


def run_import_of_person(workspace):
    """Import a small slice: the portfolio, two profiles, and one person's first records."""
    messages_upsert(workspace=workspace, specs=starbucks.read_portfolio(DATA / "portfolio.json"))
    profiles = [
        line
        for line in starbucks.profile_lines(DATA / "profile.json")
        if line is not None and line.line <= 4
    ]
    events_import(workspace=workspace, lines=profiles, source="profile.json")
    transcript = []
    for line in starbucks.transcript_lines(DATA / "transcript.json.xz", workspace=workspace):
        if line is not None and line.payload.userId == "78afa995795e4d85b5d9ceeca43f5fef":
            transcript.append(line)
        if len(transcript) == 5:
            break
    events_import(workspace=workspace, lines=transcript, source="transcript.json.xz")
