"""Builders of the guardrail and override tests: a small catalogue and customers with traits."""

import pytest

from campaigns.models import Campaign
from memory.models import Customer
from tests.campaigns.catalogue_support import make_label, make_message


@pytest.fixture
def strategy_catalogue(workspace):
    """Labels discount, urgency (value propositions) and email (channel), two messages, a
    campaign, and customers with a plan trait."""
    discount = make_label(workspace, "discount")
    urgency = make_label(workspace, "urgency", name="Urgency")
    email = make_label(workspace, "email", set_slug="channel")
    spring = make_message(
        workspace,
        "spring",
        "Spring: 20% off",
        labels=["value_proposition:discount", "channel:email"],
    )
    hurry = make_message(workspace, "hurry", "Last day!", labels=["value_proposition:urgency"])
    campaign = Campaign.objects.create(workspace=workspace, slug="pro-launch", name="Pro launch")
    campaign.messages.set([hurry])
    for external_id, plan in (("c-1", "pro"), ("c-2", "free")):
        Customer.objects.create(workspace=workspace, external_id=external_id, traits={"plan": plan})
    return {
        "discount": discount,
        "urgency": urgency,
        "email": email,
        "spring": spring,
        "hurry": hurry,
        "campaign": campaign,
    }
