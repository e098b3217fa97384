"""`import_events` on files: Segment JSONL (plain, .gz, .xz), mapped CSV, Starbucks quirks."""

import gc
import gzip
import io
import json
import lzma
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command

from campaigns.catalogue.services import MessageSpec, messages_upsert
from memory.importers.lines import SourceLine
from memory.models import Customer, Event
from memory.services import events_import

pytestmark = pytest.mark.django_db


def run(*args, **options) -> tuple[str, str]:
    out, err = io.StringIO(), io.StringIO()
    call_command("import_events", *map(str, args), stdout=out, stderr=err, **options)
    return out.getvalue(), err.getvalue()


def summary_value(output: str, label: str) -> int:
    (line,) = [line for line in output.splitlines() if line.strip().startswith(label)]
    return int(line.rsplit(maxsplit=1)[1].replace(",", ""))


def events_of(workspace):
    return Event.objects.for_workspace(workspace)


SEGMENT_LINES = [
    json.dumps({"type": "identify", "userId": "u1", "traits": {"plan": "pro"}}),
    json.dumps(
        {
            "type": "track",
            "userId": "u1",
            "event": "Order Completed",
            "properties": {"revenue": 12.5},
            "timestamp": "2025-06-01T10:00:00Z",
            "messageId": "m-1",
        }
    ),
    "",
    '{"type": "track", "userId": "u2", "event": "Broken", ',
    json.dumps({"type": "track", "event": "Nobody"}),
    json.dumps({"type": "page", "anonymousId": "a-1", "name": "Home", "timestamp": "2025-06-01"}),
    json.dumps({"type": "track", "userId": "u3", "event": "Tap", "timestamp": "2025-06-02"}),
    json.dumps({"type": "track", "userId": "u3", "event": "Tap", "timestamp": "2025-06-02"}),
]


def write(path: Path, lines: list[str], opener=open) -> Path:
    with opener(path, "wt", encoding="utf-8") as handle:
        handle.write("\n".join(lines) + "\n")
    return path


@pytest.mark.parametrize(
    ("name", "opener"),
    [("events.jsonl", open), ("events.jsonl.gz", gzip.open), ("e.json.xz", lzma.open)],
)
def test_it_imports_segment_jsonl_and_reports_bad_lines_by_number(
    tmp_path, workspace, name, opener
):
    path = write(tmp_path / name, SEGMENT_LINES, opener)

    out, err = run(path, workspace=workspace.slug)

    assert summary_value(out, "events stored") == 4
    assert summary_value(out, "identify calls applied") == 1
    assert summary_value(out, "blank lines skipped") == 1
    assert summary_value(out, "bad lines") == 2
    assert summary_value(out, "identical lines kept apart") == 1
    assert f"{path}:4: malformed JSON" in err
    assert f"{path}:5: userId: userId or anonymousId is required" in err
    assert sorted(events_of(workspace).values_list("name", flat=True)) == [
        "Order Completed",
        "Page Viewed",
        "Tap",
        "Tap",
    ]
    assert Customer.objects.for_workspace(workspace).get(external_id="u1").traits == {"plan": "pro"}


def test_importing_the_same_file_twice_adds_nothing(tmp_path, workspace):
    path = write(tmp_path / "events.jsonl", SEGMENT_LINES)

    run(path, workspace=workspace.slug)
    out, _ = run(path, workspace=workspace.slug)

    assert summary_value(out, "events stored") == 0
    assert summary_value(out, "events already stored") == 4
    assert events_of(workspace).count() == 4


def test_it_sets_first_and_last_seen_after_an_import(tmp_path, workspace):
    path = write(
        tmp_path / "events.jsonl",
        [
            json.dumps({"type": "track", "userId": "u", "event": "A", "timestamp": t})
            for t in ["2025-06-03", "2025-06-01", "2025-06-02"]
        ],
    )

    run(path, workspace=workspace.slug, chunk_size=1)

    customer = Customer.objects.for_workspace(workspace).get()
    assert customer.first_seen_at.date().isoformat() == "2025-06-01"
    assert customer.last_seen_at.date().isoformat() == "2025-06-03"


REES46_HEADER = (
    "event_time,event_type,product_id,category_id,category_code,brand,price,user_id,user_session"
)
REES46_ROWS = [
    "2019-10-01 00:00:00 UTC,view,44600062,2103807459595387724,,shiseido,35.79,541312140,"
    "72d76fde-8bb3-4e00-8c23-a032dfed738c",
    "2019-10-01 00:00:01 UTC,purchase,3900821,2053013552326770905,appliances.environment."
    "water_heater,aqua,33.20,554748717,9333dfbd-b87a-4708-9857-6336556b0fcc",
    "not a time,view,1,2,,x,1.00,554748717,s",
    "2019-10-01 00:00:02 UTC,view,1,2,,x,oops,554748717,s",
    "2019-10-01 00:00:03 UTC,view,1,2",
]


def test_it_imports_csv_with_a_column_mapping(tmp_path, workspace):
    path = write(tmp_path / "rees46.csv", [REES46_HEADER, *REES46_ROWS])

    out, err = run(
        path,
        workspace=workspace.slug,
        user_id_column="user_id",
        event_column="event_type",
        timestamp_column="event_time",
        numeric_columns="price",
    )

    assert summary_value(out, "events stored") == 2
    assert summary_value(out, "bad lines") == 3
    assert f"{path}:4: event_time: 'not a time' is not an ISO 8601 time" in err
    assert f"{path}:5: price: 'oops' is not a number" in err
    assert f"{path}:6: has 4 fields; the header has 9" in err
    purchase = events_of(workspace).select_related("customer").get(name="purchase")
    assert purchase.customer.external_id == "554748717"
    assert purchase.occurred_at.isoformat() == "2019-10-01T00:00:01+00:00"
    assert purchase.properties["price"] == 33.2
    assert purchase.properties["brand"] == "aqua"
    assert "user_id" not in purchase.properties


def test_it_takes_a_constant_event_name_and_chosen_properties(tmp_path, workspace):
    path = write(tmp_path / "orders.csv", ["customer,amount,note", "c1,10,hello", "c2,5,"])

    run(
        path,
        workspace=workspace.slug,
        user_id_column="customer",
        event_name="Order Completed",
        property_columns="amount",
        numeric_columns="amount",
    )

    assert sorted(events_of(workspace).values_list("properties", flat=True), key=str) == [
        {"amount": 10},
        {"amount": 5},
    ]


def test_it_refuses_a_mapping_that_does_not_fit_the_header(tmp_path, workspace):
    path = write(tmp_path / "x.csv", ["a,b", "1,2"])

    with pytest.raises(CommandError, match="columns not in the header: user"):
        run(path, workspace=workspace.slug, user_id_column="user", event_name="A")


def test_it_refuses_an_unknown_workspace(tmp_path):
    path = write(tmp_path / "events.jsonl", SEGMENT_LINES)

    with pytest.raises(CommandError, match="No workspace"):
        run(path, workspace="nope")


def starbucks_dir(tmp_path: Path) -> Path:
    directory = tmp_path / "starbucks"
    directory.mkdir()
    offer = "9b98b8c7a33c4b65b9aebfe6a799e6d9"
    portfolio = {
        "reward": 5,
        "channels": ["web", "email", "mobile"],
        "difficulty": 5,
        "duration": 7.0,
        "offer_type": "bogo",
        "id": offer,
    }
    write(directory / "portfolio.json", [json.dumps(portfolio)])
    write(
        directory / "profile.json",
        [
            json.dumps(
                {
                    "gender": None,
                    "age": 118,
                    "id": "p1",
                    "became_member_on": "20170212",
                    "income": None,
                }
            ),
            json.dumps(
                {
                    "gender": "M",
                    "age": 40,
                    "id": "p2",
                    "became_member_on": "20180101",
                    "income": 50000.0,
                }
            ),
        ],
    )
    completed = {
        "person": "p1",
        "event": "offer completed",
        "value": {"offer_id": offer, "reward": 5},
        "time": 30,
    }
    write(
        directory / "transcript.json.xz",
        [
            json.dumps(
                {"person": "p1", "event": "offer received", "value": {"offer id": offer}, "time": 0}
            ),
            "",
            json.dumps(
                {"person": "p1", "event": "offer viewed", "value": {"offer id": offer}, "time": 6}
            ),
            json.dumps(
                {"person": "p1", "event": "transaction", "value": {"amount": 9.5}, "time": 30}
            ),
            json.dumps(completed),
            json.dumps(completed),
            json.dumps({"person": "p2", "event": "offer exploded", "value": {}, "time": 1}),
            '{"person": "p2", "event": "transaction", "value": {"amount": ',
            json.dumps({"person": "p2", "event": "transaction", "value": {}, "time": 2}),
        ],
        lzma.open,
    )
    return directory


def test_it_reads_the_starbucks_quirks(tmp_path, workspace):
    directory = starbucks_dir(tmp_path)

    out, err = run(directory, workspace=workspace.slug, format="starbucks")

    assert summary_value(out, "events stored") == 5
    assert summary_value(out, "identical lines kept apart") == 1  # two completions, one hour
    assert summary_value(out, "blank lines skipped") == 1
    assert summary_value(out, "bad lines") == 3
    assert "transcript.json.xz:7: event: unknown event 'offer exploded'" in err
    assert "transcript.json.xz:8: not a transcript record" in err
    assert "transcript.json.xz:9: not a transcript record: missing 'amount'" in err
    events = events_of(workspace).select_related("message")
    assert sorted(events.values_list("name", flat=True)) == [
        "Message Opened",
        "Message Sent",
        "Offer Completed",
        "Offer Completed",
        "Order Completed",
    ]
    assert {e.message.key for e in events if e.name != "Order Completed"} == {
        "9b98b8c7a33c4b65b9aebfe6a799e6d9"
    }
    assert events.get(name="Order Completed").occurred_at.isoformat() == (
        "2018-01-02T06:00:00+00:00"
    )
    traits = dict(Customer.objects.for_workspace(workspace).values_list("external_id", "traits"))
    assert traits == {
        "p1": {"became_member_on": "2017-02-12"},
        "p2": {"gender": "M", "age": 40, "income": 50000.0, "became_member_on": "2018-01-01"},
    }

    again, _ = run(directory, workspace=workspace.slug, format="starbucks")

    assert summary_value(again, "events stored") == 0
    assert summary_value(again, "events already stored") == 5


def test_a_known_message_key_in_a_file_links_the_message(tmp_path, workspace):
    (message,) = messages_upsert(workspace=workspace, specs=[MessageSpec(key="promo")])
    path = write(
        tmp_path / "sends.jsonl",
        [
            json.dumps(
                {
                    "type": "track",
                    "userId": "u",
                    "event": "Message Sent",
                    "properties": {"message_id": "promo"},
                }
            )
        ],
    )

    run(path, workspace=workspace.slug)

    assert events_of(workspace).get().message_id == message.pk


def test_it_reports_unreadable_and_unstorable_csv_lines_and_goes_on(tmp_path, workspace):
    path = tmp_path / "odd.csv"
    huge = b"x" * 200_000  # past the csv module's field size limit
    path.write_bytes(b"user,event\nu1,A\nu2,B\x00\nu3," + huge + b"\nu4,C\n")

    out, err = run(path, workspace=workspace.slug, user_id_column="user", event_column="event")

    assert summary_value(out, "events stored") == 2
    assert f"{path}:3: event: contains the NUL character" in err
    assert f"{path}:4: unreadable CSV: field larger than field limit" in err
    assert sorted(events_of(workspace).values_list("name", flat=True)) == ["A", "C"]


def test_it_stops_with_a_clear_error_on_a_truncated_file(tmp_path, workspace):
    whole = gzip.compress(("\n".join(SEGMENT_LINES) + "\n").encode() * 200)
    path = tmp_path / "cut.jsonl.gz"
    path.write_bytes(whole[: len(whole) // 2])

    with pytest.raises(CommandError, match="could not be read to the end"):
        run(path, workspace=workspace.slug)


def test_it_reads_a_directory_only_as_starbucks_data(tmp_path, workspace):
    with pytest.raises(CommandError, match="only --format starbucks"):
        run(tmp_path, workspace=workspace.slug)


@pytest.mark.parametrize("enabled", [True, False])
def test_an_import_pauses_the_garbage_collector_and_restores_it(workspace, enabled):
    line = b'{"type":"track","userId":"u1","event":"Tap","timestamp":"2025-06-02T00:00:00Z"}'
    during: list[bool] = []
    was = gc.isenabled()
    (gc.enable if enabled else gc.disable)()
    try:
        events_import(
            workspace=workspace,
            lines=[SourceLine(1, payload=line)],
            source="one",
            on_chunk=lambda summary, size: during.append(gc.isenabled()),
        )
        assert (during, gc.isenabled()) == ([False], enabled)
    finally:
        (gc.enable if was else gc.disable)()
