"""`export_preferences` on the Starbucks data: the pairs, their counts, and no leakage."""

import io
import json
from datetime import UTC, datetime, timedelta

import pytest
from django.core.management import CommandError, call_command

from campaigns.models import Campaign, Message
from tests.campaigns.preference_support import (
    expected_pair_count,
    import_starbucks,
    outcomes,
    read_lines,
    starbucks_slice,
    transcript_records,
)

START = datetime(2018, 1, 1, tzinfo=UTC)


def export(workspace, out, *extra: str) -> str:
    stdout = io.StringIO()
    call_command(
        "export_preferences",
        "--workspace",
        workspace.slug,
        "--out",
        str(out),
        *extra,
        stdout=stdout,
        stderr=io.StringIO(),
    )
    return stdout.getvalue()


def hours(stamp: str) -> float:
    return (datetime.fromisoformat(stamp.replace("Z", "+00:00")) - START).total_seconds() / 3600


# Committed chunks, as in production (the import's writer threads need to see the workspace).
@pytest.mark.django_db(transaction=True)
def test_it_pairs_every_customers_reached_and_missed_offers_on_the_whole_data(workspace, tmp_path):
    import_starbucks(workspace)
    out = tmp_path / "prefs.jsonl"

    said = export(workspace, out, "--meta")

    lines = read_lines(out)
    records = transcript_records()
    pairs, customers = expected_pair_count(records, max_pairs=3)
    assert len(lines) == pairs
    assert len({line["meta"]["customer_id"] for line in lines}) == customers
    assert f"Wrote {pairs} train" in said
    by_person = outcomes(records)
    texts = {}
    for line in lines:
        meta = line["meta"]
        assert [turn["role"] for turn in line["prompt"]] == ["system", "user"]
        assert [turn["role"] for turn in line["chosen"] + line["rejected"]] == ["assistant"] * 2
        chosen = (hours(meta["chosen_sent_at"]), meta["chosen_message"])
        rejected = (hours(meta["rejected_sent_at"]), meta["rejected_message"])
        assert by_person[meta["customer_id"]][chosen] is True
        assert by_person[meta["customer_id"]][rejected] is False
        assert chosen[1] != rejected[1]
        # The snapshot is the start of the earlier send's day: neither send is in its memory.
        assert hours(meta["snapshot"]) <= min(chosen[0], rejected[0])
        assert f"(Memory as of {meta['snapshot']}.)" in line["prompt"][0]["content"]
        texts.setdefault(meta["chosen_message"], line["chosen"][0]["content"])
    assert len(texts) >= 8  # the offers' own texts, subject then body
    assert all("\n" in text for text in texts.values())
    card = (tmp_path / "prefs.card.md").read_text()
    header = json.loads(card.split("---\n")[1])
    assert header["source_workspace"] == workspace.slug
    assert header["counts"]["train_lines"] == pairs
    assert header["counts"]["sends"] == 76_277
    assert [snap["as_of"][:10] for snap in header["memory_snapshots"]] == [
        "2018-01-01",
        "2018-01-08",
        "2018-01-15",
        "2018-01-18",
        "2018-01-22",
    ]
    assert "## Leakage rule" in card


@pytest.fixture
def sliced(workspace, tmp_path):
    """The first 300 Starbucks customers, imported; their raw records."""
    records = starbucks_slice(tmp_path / "slice", profiles=300)
    import_starbucks(workspace, tmp_path / "slice")
    return records


def plant_purchases(workspace, tmp_path, person: str, at_h: float, count: int) -> None:
    """Import `count` purchases of one customer, a minute apart from `at_h` hours on."""
    path = tmp_path / "planted.jsonl"
    path.write_text(
        "".join(
            json.dumps(
                {
                    "type": "track",
                    "userId": person,
                    "event": workspace.goal_event,
                    "messageId": f"planted-{index}",
                    "timestamp": (START + timedelta(hours=at_h, minutes=index)).isoformat(),
                }
            )
            + "\n"
            for index in range(count)
        )
    )
    call_command(
        "import_events",
        str(path),
        workspace=workspace.slug,
        stdout=io.StringIO(),
        stderr=io.StringIO(),
    )


@pytest.mark.django_db(transaction=True)
def test_it_never_lets_a_later_event_into_an_earlier_pairs_prompt(workspace, sliced, tmp_path):
    before = tmp_path / "before.jsonl"
    export(workspace, before, "--meta")
    first = read_lines(before)
    # A customer with pairs from the first wave (t = 0) and from a later one.
    snapshots = {}
    for line in first:
        snapshots.setdefault(line["meta"]["customer_id"], set()).add(line["meta"]["snapshot"])
    person = next(
        p
        for p, seen in sorted(snapshots.items())
        if len(seen) >= 2 and any(s.startswith("2018-01-01") for s in seen)
    )
    # 30 purchases at hour 100: after the first wave's windows closed (72 h), before the next
    # wave (168 h), so no send's outcome changes, only the memory of later snapshots.
    plant_purchases(workspace, tmp_path, person, at_h=100.0, count=30)

    after = tmp_path / "after.jsonl"
    export(workspace, after, "--meta")
    second = read_lines(after)

    assert [line["meta"] for line in second] == [line["meta"] for line in first]
    earlier = [
        (a, b) for a, b in zip(first, second, strict=True) if hours(a["meta"]["snapshot"]) <= 100.0
    ]
    assert earlier
    for a, b in earlier:
        assert b["prompt"] == a["prompt"]  # not a character of the plant before it happened
    mine_later = [
        (a, b)
        for a, b in zip(first, second, strict=True)
        if a["meta"]["customer_id"] == person and hours(a["meta"]["snapshot"]) > 100.0
    ]
    assert mine_later  # and the plant does show where it may: the test can fail
    assert all(b["prompt"][0] != a["prompt"][0] for a, b in mine_later)


@pytest.mark.django_db(transaction=True)
def test_it_splits_by_cutoff_and_held_out_customers_and_keeps_chosen_turns_for_sft(
    workspace, sliced, tmp_path
):
    out = tmp_path / "dpo.jsonl"
    export(
        workspace,
        out,
        "--meta",
        "--cutoff",
        "2018-01-22T00:00:00Z",
        "--holdout-percent",
        "20",
        "--max-pairs",
        "1",
        "--min-evidence",
        "1",
    )
    train, evaluate = read_lines(out), read_lines(tmp_path / "dpo.eval.jsonl")
    held = read_lines(tmp_path / "dpo.holdout.jsonl")
    assert train and evaluate and held
    cutoff = hours("2018-01-22T00:00:00Z")
    for line in train:
        latest = max(hours(line["meta"]["chosen_sent_at"]), hours(line["meta"]["rejected_sent_at"]))
        assert latest + 72 < cutoff
    for line in evaluate:
        assert hours(line["meta"]["chosen_sent_at"]) >= cutoff
        assert hours(line["meta"]["rejected_sent_at"]) >= cutoff
    held_customers = {line["meta"]["customer_id"] for line in held}
    assert not held_customers & {line["meta"]["customer_id"] for line in train + evaluate}
    for split in (train, evaluate, held):
        per_customer = [line["meta"]["customer_id"] for line in split]
        assert len(per_customer) == len(set(per_customer))  # --max-pairs 1
    assert all(line["meta"]["evidence"] >= 1 for line in train + evaluate + held)

    sft = tmp_path / "sft.jsonl"
    export(
        workspace,
        sft,
        "--format",
        "sft",
        "--cutoff",
        "2018-01-22T00:00:00Z",
        "--holdout-percent",
        "20",
        "--max-pairs",
        "1",
        "--min-evidence",
        "1",
    )
    sft_lines = read_lines(sft)
    assert len(sft_lines) == len(train)
    assert [set(line) for line in sft_lines[:1]] == [{"prompt", "completion"}]
    assert [line["completion"] for line in sft_lines] == [line["chosen"] for line in train]


@pytest.mark.django_db(transaction=True)
def test_it_briefs_with_the_campaigns_guidance_when_a_campaign_holds_both_messages(
    workspace, sliced, tmp_path
):
    campaign = Campaign.objects.create(
        workspace=workspace, slug="spring", name="Spring", guidance="Short, warm, no emojis."
    )
    campaign.messages.set(Message.objects.for_workspace(workspace))
    out = tmp_path / "prefs.jsonl"
    export(workspace, out, "--meta")
    lines = read_lines(out)
    assert lines
    assert {line["meta"]["brief"] for line in lines} == {"campaign:spring"}
    assert "The marketer's guidance: Short, warm, no emojis." in lines[0]["prompt"][1]["content"]


@pytest.mark.django_db
def test_it_briefs_with_the_value_propositions_without_campaigns(workspace, tmp_path):
    # An empty workspace: no pairs, an empty train file and a card that says so.
    export(workspace, tmp_path / "none.jsonl")
    assert (tmp_path / "none.jsonl").read_text() == ""
    header = json.loads((tmp_path / "none.card.md").read_text().split("---\n")[1])
    assert header["counts"]["train_lines"] == 0


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["--workspace", "nope"], "No workspace 'nope'."),
        (["--cutoff", "yesterday"], "--cutoff 'yesterday' is not an ISO-8601 time"),
        (["--max-pairs", "0"], "--max-pairs must be between 1 and 1000."),
        (["--holdout-percent", "101"], "--holdout-percent must be between 0 and 100."),
        (["--out", "/no/such/folder/x.jsonl"], "--out: the folder '/no/such/folder' does not"),
    ],
)
def test_it_refuses_bad_arguments_with_a_clear_message(workspace, tmp_path, arguments, message):
    options = {"--workspace": workspace.slug, "--out": str(tmp_path / "x.jsonl")}
    for name, value in zip(arguments[::2], arguments[1::2], strict=True):
        options[name] = value
    flat = [part for pair in options.items() for part in pair]
    with pytest.raises(CommandError, match=message.replace("(", r"\(").replace(".", r"\.")):
        call_command("export_preferences", *flat, stdout=io.StringIO(), stderr=io.StringIO())
