"""Previewing a label boost's effect on next best messages, from the stored lists, before saving."""

import pytest
from django.urls import reverse

from campaigns.models import Label
from campaigns.tenancy.services import api_key_create
from memory.effect_preview import boost_preview, wilson_interval
from memory.next_best import next_best_for
from tests.memory.engine_fixtures import load_synthetic, recompute_here


@pytest.fixture
def stored(workspace):
    load_synthetic(workspace, customers=120, events=12_000)
    recompute_here(workspace=workspace)


def bearer(key: str) -> dict:
    return {"HTTP_AUTHORIZATION": f"Bearer {key}"}


def test_the_wilson_interval_holds_the_share():
    # 30 of 100: the textbook Wilson 95% interval is 0.219 to 0.396.
    assert wilson_interval(30, 100) == pytest.approx((0.2189, 0.3958), abs=1e-4)
    assert wilson_interval(0, 50)[0] == pytest.approx(0.0, abs=1e-12)
    assert wilson_interval(50, 50)[1] == pytest.approx(1.0)


def test_a_strong_boost_moves_tops_to_the_label_and_a_recompute_agrees(workspace, stored):
    label = Label.objects.for_workspace(workspace).get(slug="playful")
    preview = boost_preview(workspace=workspace, label=label, boost=1.0, sample=100, seed=1)
    assert preview.sample == 100 and 0 < preview.changed <= 100
    assert preview.interval[0] <= preview.share <= preview.interval[1]
    playful = next(row for row in preview.label_shifts["tone"] if row["label"] == "playful")
    assert playful["shift"] > 0 and playful["after"] > playful["before"]
    example = preview.example
    assert example["before"][0]["message"] != example["after"][0]["message"]

    # Made for real, the recompute ranks the example customer's top as the preview said.
    Label.objects.for_workspace(workspace).filter(pk=label.pk).update(boost=1.0)
    recompute_here(workspace=workspace)
    top = next_best_for(workspace=workspace, external_id=example["customer"]).offers[0].key
    assert top == example["after"][0]["message"]


def test_no_change_changes_nothing(workspace, stored):
    label = Label.objects.for_workspace(workspace).get(slug="playful")
    preview = boost_preview(workspace=workspace, label=label, boost=label.boost, sample=100)
    assert preview.changed == 0 and preview.example is None
    assert all(row["shift"] == 0 for rows in preview.label_shifts.values() for row in rows)


def test_the_api_previews_a_boost_and_refuses_what_it_cannot(
    client, read_key, other_workspace, workspace, stored
):
    label = Label.objects.for_workspace(workspace).get(slug="urgent")
    body = {"kind": "boost", "label": label.pk, "boost": -1.0, "sample": 100, "seed": 3}
    response = client.post(
        "/api/v1/effect-preview", body, content_type="application/json", **bearer(read_key)
    )
    assert response.status_code == 200
    assert response.json()["sample"] == 100 and response.json()["kind"] == "boost"
    again = client.post(
        "/api/v1/effect-preview", body, content_type="application/json", **bearer(read_key)
    )
    assert again.json()["changed"] == response.json()["changed"]  # the same seed, the same sample

    for wrong, field in (({"boost": 2}, "boost"), ({"kind": "campaign"}, "kind")):
        refused = client.post(
            "/api/v1/effect-preview",
            body | wrong,
            content_type="application/json",
            **bearer(read_key),
        )
        assert refused.status_code == 400 and field in refused.json()
    _, theirs = api_key_create(workspace=other_workspace, scopes=["read"])
    hidden = client.post(
        "/api/v1/effect-preview", body, content_type="application/json", **bearer(theirs)
    )
    assert hidden.status_code == 404


def test_the_label_page_previews_the_boost_in_the_form(member_client, workspace, stored):
    label = Label.objects.for_workspace(workspace).get(slug="playful")
    page = member_client.get(reverse("catalogue-label", args=[label.pk])).content.decode()
    assert 'id="preview-effect"' in page and "js/effect_preview.js" in page
    url = reverse("catalogue-label-preview", args=[label.pk])
    answer = member_client.post(url, {"boost": "0.8"})
    assert answer.status_code == 200 and answer.json()["change"]["boost"] == 0.8
    assert member_client.post(url, {"boost": "lots"}).status_code == 400
    assert Label.objects.for_workspace(workspace).get(pk=label.pk).boost == label.boost  # unsaved
