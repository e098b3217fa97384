"""Calls that expect structure hold up on any OpenAI-compatible server, schema or not."""

import json

import pytest

from campaigns.llm import DRAFTS_SCHEMA, LlmUnavailable, llm_draft_messages, llm_structured

DRAFTS = [{"subject": "Spring sale", "body": "20% off this weekend"}]


def formats(fake_llm) -> list[str | None]:
    return [(body.get("response_format") or {}).get("type") for body in fake_llm.requests]


def test_it_asks_with_the_json_schema_where_the_server_honours_it(fake_llm):
    fake_llm.drafts = DRAFTS
    (draft,) = llm_draft_messages(value_proposition="discounts", count=1)
    assert (draft.subject, draft.body) == ("Spring sale", "20% off this weekend")
    (request,) = fake_llm.requests
    assert request["response_format"]["json_schema"]["schema"] == DRAFTS_SCHEMA


def test_it_falls_back_to_json_mode_where_the_schema_is_refused_and_remembers(fake_llm):
    fake_llm.schemas = "refuse"
    fake_llm.drafts = DRAFTS
    assert llm_draft_messages(value_proposition="discounts", count=1)[0].subject == "Spring sale"
    assert formats(fake_llm) == ["json_schema", "json_object"]
    llm_draft_messages(value_proposition="discounts", count=1)
    assert formats(fake_llm)[2:] == ["json_object"]  # not asked with the schema again


def test_it_reads_json_wrapped_in_words_or_a_fence(fake_llm):
    fake_llm.answers = [
        "Sure! Here it is:\n" + json.dumps({"messages": DRAFTS}) + "\nEnjoy.",
        "```json\n" + json.dumps({"messages": DRAFTS}) + "\n```",
    ]
    for _ in range(2):
        assert llm_draft_messages(value_proposition="x", count=1)[0].body == "20% off this weekend"


def test_it_retries_once_an_answer_that_does_not_fit(fake_llm):
    fake_llm.answers = ['{"messages": [{"subject": 3}]}']
    fake_llm.drafts = DRAFTS
    assert llm_draft_messages(value_proposition="x", count=1)[0].subject == "Spring sale"
    assert len(fake_llm.requests) == 2


def test_it_says_what_did_not_fit_after_the_retry(fake_llm):
    fake_llm.answers = ["no json here", '{"messages": [{"subject": "a"}]}']
    with pytest.raises(LlmUnavailable, match=r"answer\.messages\[0\] has no 'body'") as error:
        llm_draft_messages(value_proposition="x", count=1)
    assert error.value.reason == "malformed_response"
    assert len(fake_llm.requests) == 2


def test_it_checks_enums_and_types_of_any_schema(fake_llm):
    schema = {
        "type": "object",
        "properties": {"labels": {"type": "array", "items": {"enum": ["a", "b"]}}},
        "required": ["labels"],
    }
    fake_llm.answers = ['{"labels": ["a", "z"]}', '{"labels": ["b"]}']
    answer = llm_structured(messages=[{"role": "user", "content": "?"}], name="t", schema=schema)
    assert answer == {"labels": ["b"]}


def test_it_offers_only_value_propositions_and_a_brief_that_fits_the_workspace(workspace):
    from campaigns.catalogue.services import labels_ensure
    from campaigns.prompts.forms import DraftRequestForm

    labels_ensure(
        workspace=workspace,
        labels={"value_proposition": ["discount"], "channel": ["email"], "reward": ["gold"]},
    )
    form = DraftRequestForm(workspace=workspace)
    assert [label.slug for label in form.fields["label"].queryset] == ["discount"]
    assert form.fields["guidance"].initial.startswith(
        "Lead the customer to the goal (Order Completed) within 72 h"
    )
