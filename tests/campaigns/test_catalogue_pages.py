"""The catalogue pages: editors create, edit, archive; viewers read; errors sit by their field."""

import pytest
from django.urls import reverse

from campaigns.models import AuditEntry, Label, LabelSet, Membership, Message
from tests.campaigns.catalogue_support import make_label, make_message


@pytest.fixture
def taxonomy(workspace):
    make_label(workspace, "discount", prompt_phrase="discounts")
    make_label(workspace, "email", set_slug="channel")
    make_message(
        workspace, "spring", "Spring sale", "20% off everything", ["value_proposition:discount"]
    )
    return workspace


@pytest.fixture
def viewer_client(client, make_user, workspace):
    client.force_login(make_user("watcher", workspace=workspace, role=Membership.Role.VIEWER))
    return client


def test_it_creates_a_value_proposition_with_its_phrase(member_client, taxonomy, member):
    vp = LabelSet.objects.for_workspace(taxonomy).get(slug="value_proposition")
    response = member_client.post(
        reverse("catalogue-label-new"),
        {
            "label-label_set": vp.pk,
            "label-slug": "convenience",
            "label-name": "Convenience",
            "label-prompt_phrase": "convenience",
            "label-boost": "0.2",
        },
    )
    assert response.status_code == 302
    label = Label.objects.for_workspace(taxonomy).get(slug="convenience")
    assert (label.prompt_phrase, label.boost, label.boost_set_by) == (
        "convenience",
        0.2,
        member.username,
    )
    page = member_client.get(reverse("catalogue-labels")).content.decode()
    assert "Convenience" in page and "content gap" in page


def test_it_shows_a_duplicate_slug_beside_the_field(member_client, taxonomy):
    vp = LabelSet.objects.for_workspace(taxonomy).get(slug="value_proposition")
    response = member_client.post(
        reverse("catalogue-label-new"),
        {"label-label_set": vp.pk, "label-slug": "discount", "label-name": "D", "label-boost": "0"},
    )
    assert response.status_code == 400
    assert 'data-field="slug">&#x27;discount&#x27; is already taken.' in response.content.decode()


def test_it_edits_a_label_and_refuses_a_stale_form(member_client, taxonomy):
    label = Label.objects.for_workspace(taxonomy).get(slug="discount")
    url = reverse("catalogue-label", args=[label.pk])
    form = {"name": "Discounts", "prompt_phrase": "money off", "boost": "0", "version": "1"}
    assert member_client.post(url, form).status_code == 302
    stale = member_client.post(url, form | {"name": "Other"})
    assert stale.status_code == 400 and "changed by someone else" in stale.content.decode()
    label.refresh_from_db()
    assert (label.name, label.prompt_phrase, label.version) == ("Discounts", "money off", 2)


def test_it_retires_and_restores_a_label(member_client, taxonomy):
    label = Label.objects.for_workspace(taxonomy).get(slug="discount")
    url = reverse("catalogue-label-active", args=[label.pk])
    member_client.post(url, {"active": "false"})
    label.refresh_from_db()
    assert label.active is False
    member_client.post(url, {"active": "true"})
    label.refresh_from_db()
    assert label.active is True
    actions = list(AuditEntry.objects.for_workspace(taxonomy).values_list("action", flat=True)[:2])
    assert actions == ["restore", "archive"]


def test_it_writes_a_message_tagged_with_labels(member_client, taxonomy):
    response = member_client.post(
        reverse("catalogue-message-new"),
        {
            "key": "roast",
            "subject": "A new dark roast",
            "body": "Try it this week",
            "labels": ["value_proposition:discount", "channel:email"],
        },
    )
    message = Message.objects.for_workspace(taxonomy).get(key="roast")
    assert response.status_code == 302 and response.url == reverse(
        "catalogue-message", args=[message.pk]
    )
    assert message.channel == "email"
    assert (
        AuditEntry.objects.for_workspace(taxonomy)
        .filter(object_type="message", action="create")
        .exists()
    )


def test_it_warns_after_saving_a_near_duplicate(member_client, taxonomy):
    response = member_client.post(
        reverse("catalogue-message-new"),
        {"key": "spring-copy", "subject": "Spring sale", "body": "20% off everything!"},
        follow=True,
    )
    page = response.content.decode()
    assert "reads like spring" in page
    assert 'id="near-duplicate-warning" hidden' not in page


def test_it_shows_field_errors_for_a_bad_message(member_client, taxonomy):
    make_label(taxonomy, "convenience")
    response = member_client.post(
        reverse("catalogue-message-new"),
        {
            "key": "spring",
            "subject": "x",
            "labels": ["value_proposition:discount", "value_proposition:convenience"],
        },
    )
    page = response.content.decode()
    assert response.status_code == 400
    assert 'data-field="labels">A message carries one Value proposition label at most' in page
    assert not Message.objects.for_workspace(taxonomy).filter(subject="x").exists()


def test_it_edits_and_archives_a_message(member_client, taxonomy):
    message = Message.objects.for_workspace(taxonomy).get(key="spring")
    url = reverse("catalogue-message", args=[message.pk])
    assert "Spring sale" in member_client.get(url).content.decode()
    response = member_client.post(
        url, {"key": "spring", "subject": "Spring sale", "body": "25% off", "version": "1"}
    )
    assert response.status_code == 302
    message.refresh_from_db()
    assert (message.body, list(message.labels.all())) == ("25% off", [])
    member_client.post(reverse("catalogue-message-active", args=[message.pk]), {"active": "false"})
    message.refresh_from_db()
    assert message.active is False
    listed = member_client.get(reverse("catalogue-messages")).content.decode()
    archived = member_client.get(reverse("catalogue-messages") + "?active=false").content.decode()
    assert "<code>spring</code>" not in listed
    assert "<code>spring</code>" in archived and "archived</span>" in archived


def test_it_filters_messages_by_label_and_search(member_client, taxonomy):
    make_message(taxonomy, "coffee", "Dark roast")
    page = member_client.get(reverse("catalogue-messages") + "?label=value_proposition:discount")
    assert "spring" in page.content.decode() and "coffee" not in page.content.decode()
    page = member_client.get(reverse("catalogue-messages") + "?q=roast")
    assert "coffee" in page.content.decode() and ">spring<" not in page.content.decode()


def test_it_answers_the_live_similarity_fetch(member_client, taxonomy):
    answer = member_client.get(
        reverse("catalogue-messages-similar"), {"text": "Spring sale\n20% off everything"}
    ).json()
    assert answer["similar"][0]["key"] == "spring" and answer["similar"][0]["near_duplicate"]
    message = Message.objects.for_workspace(taxonomy).get(key="spring")
    excluded = member_client.get(
        reverse("catalogue-messages-similar"),
        {"text": "Spring sale\n20% off everything", "exclude": message.pk},
    ).json()
    assert excluded["similar"] == []


def test_it_proposes_labels_with_the_llm_for_a_click(member_client, taxonomy, fake_llm):
    fake_llm.labels = ["value_proposition:discount", "nope:nothing"]
    page = member_client.get(reverse("catalogue-message-new")).content.decode()
    assert "disabled" not in page.split('id="suggest-labels"')[1].split(">")[0]
    assert "no LLM is configured" not in page
    answer = member_client.post(reverse("catalogue-messages-suggest-labels"), {"text": "20% off"})
    assert answer.json() == {"labels": [{"ref": "value_proposition:discount", "name": "discounts"}]}


def test_it_disables_suggestions_without_an_llm_and_says_why(member_client, taxonomy, settings):
    settings.PRIMER_LLM_BASE_URL = ""
    page = member_client.get(reverse("catalogue-message-new")).content.decode()
    assert "disabled" in page.split('id="suggest-labels"')[1].split(">")[0]
    assert "no LLM is configured" in page
    answer = member_client.post(reverse("catalogue-messages-suggest-labels"), {"text": "x"})
    assert answer.status_code == 503 and answer.json()["reason"] == "not_configured"


def test_it_lets_viewers_look_without_edit_controls(viewer_client, taxonomy):
    label = Label.objects.for_workspace(taxonomy).get(slug="discount")
    message = Message.objects.for_workspace(taxonomy).get(key="spring")
    labels_page = viewer_client.get(reverse("catalogue-labels")).content.decode()
    assert reverse("catalogue-label", args=[label.pk]) not in labels_page
    assert (
        "discounts" in labels_page
        and "New label" not in labels_page
        and "Retire" not in labels_page
    )
    message_page = viewer_client.get(
        reverse("catalogue-message", args=[message.pk])
    ).content.decode()
    assert "Spring sale" in message_page and 'id="message-form"' not in message_page
    assert (
        "Import messages" not in viewer_client.get(reverse("catalogue-messages")).content.decode()
    )


@pytest.mark.parametrize(
    "name,args,data",
    [
        ("catalogue-label-new", [], {"label-slug": "x"}),
        ("catalogue-label-set-new", [], {"set-slug": "x", "set-name": "X"}),
        ("catalogue-message-new", [], {"key": "x", "body": "y"}),
        ("catalogue-messages-import", [], {}),
        ("catalogue-messages-suggest-labels", [], {"text": "x"}),
    ],
)
def test_it_refuses_a_viewers_post(viewer_client, taxonomy, name, args, data):
    assert viewer_client.post(reverse(name, args=args), data).status_code == 403


def test_it_refuses_a_viewers_edit_of_an_existing_object(viewer_client, taxonomy):
    label = Label.objects.for_workspace(taxonomy).get(slug="discount")
    message = Message.objects.for_workspace(taxonomy).get(key="spring")
    assert (
        viewer_client.post(reverse("catalogue-label", args=[label.pk]), {"name": "x"}).status_code
        == 403
    )
    assert (
        viewer_client.post(
            reverse("catalogue-message", args=[message.pk]), {"key": "x"}
        ).status_code
        == 403
    )
    assert (
        viewer_client.post(reverse("catalogue-message-active", args=[message.pk])).status_code
        == 403
    )
    assert (
        viewer_client.post(reverse("catalogue-label-set", args=["tone"]), {"name": "x"}).status_code
        == 403
    )
    message.refresh_from_db()
    assert message.active and message.key == "spring"


def test_it_hides_another_workspaces_objects(member_client, other_workspace):
    theirs = make_message(other_workspace, "secret", "Theirs")
    assert member_client.get(reverse("catalogue-message", args=[theirs.pk])).status_code == 404


def test_it_links_the_new_pages_from_the_workspace_home(member_client, taxonomy):
    page = member_client.get(reverse("home")).content.decode()
    assert reverse("catalogue-labels") in page and reverse("catalogue-messages") in page
    assert "spring" in page
