"""The prompt's label weights carry their provenance, and overrides apply to them."""

import pytest

from campaigns.models import Label
from campaigns.prompts.selectors import prompt_choice, prompt_for_customer
from campaigns.strategy.services import override_create
from campaigns.tenancy.changes import Actor

pytestmark = pytest.mark.django_db
ANNA = Actor.system("anna")


def render(workspace, external_id="cust-1", **choice):
    chosen = prompt_choice(workspace=workspace, **choice)
    return prompt_for_customer(workspace=workspace, external_id=external_id, choice=chosen)


def _label(workspace, slug):
    return Label.objects.for_workspace(workspace).get(slug=slug)


def test_a_segments_never_leaves_the_ranking_and_says_who_set_it(workspace, rich_customer):
    override_create(
        workspace=workspace,
        actor=ANNA,
        segment={"all": [{"trait": "plan", "equals": "gold"}]},
        label=_label(workspace, "convenience"),
        action="pin",
        value=0.0,
    )
    text = render(workspace)[0].text
    assert "responds to convenience" not in text
    assert "responds to discounts (moderate evidence)" in text
    assert "; never convenience (set by anna on " in text


def test_a_raise_is_said_with_who_set_it_and_reorders_the_labels(workspace, rich_customer):
    before = render(workspace)[0].text
    assert "responds to convenience (strong evidence) more than to discounts" in before
    override_create(
        workspace=workspace,
        actor=ANNA,
        customer_external_id="cust-1",
        label=_label(workspace, "bogo"),
        action="pin",
        value=0.95,
    )
    text = render(workspace)[0].text
    assert "responds to buy-one-get-one offers (set by anna on " in text
    assert "more than to convenience (strong evidence)" in text


def test_another_customer_is_untouched(workspace, rich_customer):
    before = render(workspace)[0].text
    override_create(
        workspace=workspace,
        actor=ANNA,
        segment={"all": [{"trait": "plan", "equals": "basic"}]},
        label=_label(workspace, "convenience"),
        action="pin",
        value=0.0,
    )
    assert render(workspace)[0].text == before
