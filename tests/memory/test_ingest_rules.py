"""What events_ingest decides: times, dedup keys, customers, messages. Service level."""

import hashlib
from datetime import UTC, datetime, timedelta

import pytest

from campaigns.catalogue.services import MessageSpec, messages_upsert
from campaigns.models import AuditEntry, Label, Message
from memory.ingest.dedup import derived_key
from memory.ingest.segment import Inherited
from memory.models import Customer, Event
from memory.services import events_ingest

pytestmark = pytest.mark.django_db

RECEIVED = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def ingest(workspace, *payloads, **kwargs):
    return events_ingest(
        workspace=workspace, payloads=list(payloads), received_at=RECEIVED, **kwargs
    )


def only_event(workspace) -> Event:
    return Event.objects.for_workspace(workspace).select_related("customer", "message").get()


# --- Timestamps -------------------------------------------------------------------------


def test_it_takes_the_timestamp_when_given(workspace):
    ingest(
        workspace,
        {
            "type": "track",
            "userId": "u1",
            "event": "A",
            "timestamp": "2026-02-01T08:00:00+02:00",
            "originalTimestamp": "2020-01-01T00:00:00Z",
            "sentAt": "2020-01-01T00:00:00Z",
        },
    )

    assert only_event(workspace).occurred_at == datetime(2026, 2, 1, 6, 0, tzinfo=UTC)


def test_it_corrects_the_device_clock_with_sent_at(workspace):
    # The device clock is 3 days slow; the event happened 10 s before it was sent.
    ingest(
        workspace,
        {
            "type": "track",
            "userId": "u1",
            "event": "A",
            "originalTimestamp": "2026-02-26T11:59:50Z",
            "sentAt": "2026-02-26T12:00:00Z",
        },
    )

    assert only_event(workspace).occurred_at == RECEIVED - timedelta(seconds=10)


def test_it_takes_sent_at_from_the_batch(workspace):
    ingest(
        workspace,
        {
            "type": "track",
            "userId": "u1",
            "event": "A",
            "originalTimestamp": "2026-01-01T00:00:00Z",
        },
        inherited=Inherited(sent_at=datetime(2026, 1, 1, 0, 1, tzinfo=UTC)),
    )

    assert only_event(workspace).occurred_at == RECEIVED - timedelta(minutes=1)


def test_it_uses_the_receipt_time_without_any_time(workspace):
    ingest(workspace, {"type": "track", "userId": "u1", "event": "A"})

    assert only_event(workspace).occurred_at == RECEIVED


def test_it_reads_a_time_without_offset_as_utc(workspace):
    ingest(
        workspace,
        {"type": "track", "userId": "u1", "event": "A", "timestamp": "2026-02-01T08:00:00"},
    )

    assert only_event(workspace).occurred_at == datetime(2026, 2, 1, 8, 0, tzinfo=UTC)


def test_it_rejects_a_time_more_than_24_hours_after_receipt(workspace):
    result = ingest(
        workspace,
        {"type": "track", "userId": "u1", "event": "A", "timestamp": "2026-03-02T12:00:01Z"},
        {"type": "track", "userId": "u1", "event": "B", "timestamp": "2026-03-02T11:59:59Z"},
    )

    (rejection,) = result.rejections
    assert (rejection.index, rejection.field) == (0, "timestamp")
    assert "24 hours after" in rejection.reason
    assert only_event(workspace).name == "B"


def test_it_rejects_a_time_before_2000(workspace):
    result = ingest(
        workspace,
        {"type": "track", "userId": "u1", "event": "A", "timestamp": "1970-01-01T00:00:00Z"},
        {"type": "track", "userId": "u1", "event": "B", "timestamp": "2000-01-01T00:00:00Z"},
    )

    (rejection,) = result.rejections
    assert (rejection.index, rejection.field) == (0, "timestamp")
    assert "before 2000-01-01" in rejection.reason
    assert only_event(workspace).name == "B"


def test_it_accepts_years_old_history(workspace):
    result = ingest(
        workspace,
        {"type": "track", "userId": "u1", "event": "A", "timestamp": "2012-12-02T00:30:12.984Z"},
    )

    assert result.stored == 1


def test_it_names_the_device_time_when_that_is_implausible(workspace):
    result = ingest(
        workspace,
        {
            "type": "track",
            "userId": "u1",
            "event": "A",
            "originalTimestamp": "1970-01-01T00:00:00Z",
        },
    )

    assert result.rejections[0].field == "originalTimestamp"


def test_it_follows_the_earliest_year_setting(workspace, settings):
    settings.PRIMER_INGEST_EARLIEST_YEAR = 2020

    result = ingest(
        workspace,
        {"type": "track", "userId": "u1", "event": "A", "timestamp": "2019-12-31T23:59:59Z"},
    )

    assert "before 2020-01-01" in result.rejections[0].reason


# --- Dedup keys -----------------------------------------------------------------------


def test_it_uses_the_message_id_as_dedup_key(workspace):
    ingest(workspace, {"type": "track", "userId": "u1", "event": "A", "messageId": "ajs-42"})

    assert only_event(workspace).dedup_key == "ajs-42"


def test_it_derives_the_documented_key_without_message_id(workspace):
    ingest(
        workspace,
        {
            "type": "track",
            "userId": "u1",
            "event": "Order Completed",
            "timestamp": "2026-02-01T10:00:00+01:00",
            "properties": {"revenue": 12.5, "currency": "EUR"},
        },
    )

    expected = derived_key(
        kind="track",
        user_id="u1",
        anonymous_id="",
        name="Order Completed",
        basis_time=datetime(2026, 2, 1, 9, 0, tzinfo=UTC),
        properties={"currency": "EUR", "revenue": 12.5},
    )
    assert only_event(workspace).dedup_key == expected
    # The documented canonical form, hashed by hand:
    canonical = (
        '["track","u1","","Order Completed","2026-02-01T09:00:00.000000+00:00",'
        '{"currency":"EUR","revenue":12.5}]'
    )
    digest = hashlib.sha256(canonical.encode()).hexdigest()[:40]
    assert expected == f"derived:20260201T090000.000000:{digest}"


def test_it_derives_the_same_key_whatever_the_key_order_or_time_notation(workspace):
    first = {
        "type": "track",
        "userId": "u1",
        "event": "A",
        "timestamp": "2026-02-01T10:00:00Z",
        "properties": {"a": 1, "b": {"c": 2, "d": 3}},
    }
    second = {
        "properties": {"b": {"d": 3, "c": 2}, "a": 1},
        "timestamp": "2026-02-01T11:00:00.000+01:00",
        "event": "A",
        "userId": "u1",
        "type": "track",
    }

    result = ingest(workspace, first, second)

    assert (result.stored, result.duplicates) == (1, 1)


def test_it_keeps_events_that_differ_in_any_part_of_the_content(workspace):
    base = {"type": "track", "userId": "u1", "event": "A", "timestamp": "2026-02-01T10:00:00Z"}

    result = ingest(
        workspace,
        base,
        {**base, "userId": "u2"},
        {**base, "event": "B"},
        {**base, "timestamp": "2026-02-01T10:00:01Z"},
        {**base, "properties": {"x": 1}},
        {**base, "type": "page"},
    )

    assert result.stored == 6


def test_a_message_id_is_unique_per_workspace_only(workspace, other_workspace):
    event = {"type": "track", "userId": "u1", "event": "A", "messageId": "same"}

    ingest(workspace, event)
    ingest(other_workspace, event)

    assert Event.objects.for_workspace(workspace).count() == 1
    assert Event.objects.for_workspace(other_workspace).count() == 1


# --- Customers ------------------------------------------------------------------------


def test_it_creates_the_customer_of_an_unknown_user(workspace):
    ingest(
        workspace,
        {"type": "track", "userId": "new", "event": "A", "timestamp": "2026-02-01T10:00:00Z"},
        {"type": "track", "userId": "new", "event": "B", "timestamp": "2026-02-03T10:00:00Z"},
    )

    customer = Customer.objects.for_workspace(workspace).get(external_id="new")
    assert customer.first_seen_at == datetime(2026, 2, 1, 10, tzinfo=UTC)
    assert customer.last_seen_at == datetime(2026, 2, 3, 10, tzinfo=UTC)


def test_it_widens_first_and_last_seen_over_time(workspace):
    ingest(workspace, {"type": "track", "userId": "u", "event": "A", "timestamp": "2026-02-02"})
    ingest(workspace, {"type": "track", "userId": "u", "event": "B", "timestamp": "2026-02-01"})
    ingest(workspace, {"type": "track", "userId": "u", "event": "C", "timestamp": "2026-02-03"})

    customer = Customer.objects.for_workspace(workspace).get()
    assert customer.first_seen_at.date().isoformat() == "2026-02-01"
    assert customer.last_seen_at.date().isoformat() == "2026-02-03"


def test_it_uses_the_anonymous_id_as_external_id_for_anonymous_events(workspace):
    ingest(workspace, {"type": "track", "anonymousId": "anon-7", "event": "A"})

    customer = Customer.objects.for_workspace(workspace).get()
    assert (customer.external_id, customer.anonymous_id) == ("anon-7", "anon-7")


def test_it_keeps_the_anonymous_id_of_an_identified_user(workspace):
    ingest(
        workspace,
        {"type": "identify", "userId": "u1", "anonymousId": "anon-7", "traits": {"x": 1}},
    )

    customer = Customer.objects.for_workspace(workspace).get()
    assert (customer.external_id, customer.anonymous_id) == ("u1", "anon-7")
    assert (customer.first_seen_at, customer.last_seen_at) == (None, None)


def test_it_accepts_numeric_user_ids_as_text(workspace):
    ingest(workspace, {"type": "track", "userId": 12345, "event": "A"})

    assert Customer.objects.for_workspace(workspace).get().external_id == "12345"


def test_identify_merges_traits_shallowly_and_in_order(workspace):
    ingest(
        workspace,
        {"type": "identify", "userId": "u1", "traits": {"a": 1, "address": {"city": "Oslo"}}},
        {"type": "identify", "userId": "u1", "traits": {"b": 2}},
    )
    ingest(
        workspace,
        {"type": "identify", "userId": "u1", "traits": {"a": 3, "address": {"zip": "0150"}}},
    )

    assert Customer.objects.for_workspace(workspace).get().traits == {
        "a": 3,
        "b": 2,
        "address": {"zip": "0150"},
    }


# --- Messages -------------------------------------------------------------------------


def test_a_send_event_links_its_known_message(workspace):
    (message,) = messages_upsert(workspace=workspace, specs=[MessageSpec(key="welcome")])

    ingest(
        workspace,
        {
            "type": "track",
            "userId": "u1",
            "event": "Message Sent",
            "properties": {"message_id": "welcome"},
        },
    )

    event = only_event(workspace)
    assert (event.message_id, event.message_key) == (message.pk, "welcome")
    assert not event.refers_to_unknown_message


def test_a_send_event_registers_an_unknown_message_with_its_text_and_labels(workspace):
    result = ingest(
        workspace,
        {
            "type": "track",
            "userId": "u1",
            "event": "Message Sent",
            "properties": {
                "message_id": "spring-promo",
                "text": "Spring is here: 20% off",
                "channel": "email",
                "labels": {"value_proposition": "price", "tone": ["playful", "urgent"]},
            },
        },
        {
            "type": "track",
            "userId": "u2",
            "event": "Message Sent",
            "properties": {"message_id": "spring-promo", "text": "Another text"},
        },
    )

    assert result.messages_registered == 1
    message = Message.objects.for_workspace(workspace).get(key="spring-promo")
    assert (message.body, message.channel) == ("Spring is here: 20% off", "email")
    # The channel is a label of the `channel` set (docs/decisions/0200).
    assert sorted(str(label) for label in message.labels.all()) == [
        "channel:email",
        "tone:playful",
        "tone:urgent",
        "value_proposition:price",
    ]
    assert set(Event.objects.for_workspace(workspace).values_list("message_id", flat=True)) == {
        message.pk
    }
    # Registered once, in the audit trail as ingestion's doing, with its text and labels.
    (entry,) = AuditEntry.objects.for_workspace(workspace).filter(
        object_type="message", object_id=str(message.pk)
    )
    assert (entry.action, entry.actor) == (AuditEntry.Action.CREATE, "ingestion")
    assert entry.after["body"] == "Spring is here: 20% off"
    assert "value_proposition:price" in entry.after["labels"]
    # A later batch naming the registered message changes nothing and records nothing.
    ingest(
        workspace,
        {
            "type": "track",
            "userId": "u3",
            "event": "Message Sent",
            "properties": {"message_id": "spring-promo", "text": "Yet another"},
        },
    )
    assert AuditEntry.objects.for_workspace(workspace).filter(object_type="message").count() == 1


def test_it_creates_unknown_label_sets_and_labels(workspace):
    ingest(
        workspace,
        {
            "type": "track",
            "userId": "u1",
            "event": "Message Sent",
            "properties": {"message_id": "m", "labels": {"season": "Spring Time"}},
        },
    )

    label = (
        Label.objects.for_workspace(workspace)
        .select_related("label_set")
        .get(label_set__slug="season")
    )
    assert label.slug == "spring-time"


def test_a_send_event_for_an_unknown_message_without_text_is_stored_and_flagged(workspace):
    result = ingest(
        workspace,
        {
            "type": "track",
            "userId": "u1",
            "event": "Message Sent",
            "properties": {"message_id": "ghost"},
        },
    )

    event = only_event(workspace)
    assert result.unknown_message_keys == ["ghost"]
    assert (event.message_id, event.message_key) == (None, "ghost")
    assert event.refers_to_unknown_message
    assert not Message.objects.for_workspace(workspace).exists()


def test_only_the_send_event_registers_messages(workspace):
    ingest(
        workspace,
        {
            "type": "track",
            "userId": "u1",
            "event": "Message Opened",
            "properties": {"message_id": "m-open", "text": "Not a send"},
        },
    )

    assert not Message.objects.for_workspace(workspace).exists()
    assert only_event(workspace).refers_to_unknown_message


def test_it_rejects_labels_that_are_not_a_mapping(workspace):
    result = ingest(
        workspace,
        {
            "type": "track",
            "userId": "u1",
            "event": "Message Sent",
            "properties": {"message_id": "m", "labels": ["price"]},
        },
        {
            "type": "track",
            "userId": "u1",
            "event": "Message Sent",
            "properties": {"message_id": "m", "labels": {"tone": [1, 2]}},
        },
    )

    assert [(r.index, r.field) for r in result.rejections] == [
        (0, "properties.labels"),
        (1, "properties.labels.tone"),
    ]


def test_it_uses_the_workspaces_own_send_event_name(make_workspace):
    workspace = make_workspace("custom", name="Custom")
    workspace.send_event = "Email Delivered"
    workspace.save(update_fields=["send_event"])

    result = ingest(
        workspace,
        {
            "type": "track",
            "userId": "u1",
            "event": "Email Delivered",
            "properties": {"message_id": "m1", "text": "Hello"},
        },
    )

    assert result.messages_registered == 1


# --- Columns --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("event", "field"),
    [
        ({"userId": "u" * 256, "event": "A"}, "userId"),
        ({"userId": "u", "event": "E" * 201}, "event"),
        ({"userId": "u", "event": "A", "messageId": "m" * 256}, "messageId"),
        (
            {"userId": "u", "event": "A", "properties": {"message_id": "k" * 201}},
            "properties.message_id",
        ),
        (
            {"userId": "u", "event": "A", "properties": {"message_id": {"x": 1}}},
            "properties.message_id",
        ),
    ],
)
def test_it_rejects_values_too_long_for_their_column(workspace, event, field):
    result = ingest(workspace, {"type": "track", **event})

    assert result.rejections[0].field == field
    assert not Event.objects.for_workspace(workspace).exists()
