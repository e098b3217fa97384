"""The catalogue over REST: label sets, labels and messages, with the pages' rules and audit."""

import pytest
from rest_framework.test import APIClient

from campaigns.models import AuditEntry, Label, LabelSet, Membership, Message
from campaigns.tenancy.services import api_key_create
from tests.campaigns.catalogue_support import make_label, make_message


def client_with(raw_key: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {raw_key}")
    return client


@pytest.fixture
def config_api(workspace):
    _, raw_key = api_key_create(workspace=workspace, scopes=["read", "config"], name="ci")
    return client_with(raw_key)


@pytest.fixture
def read_api(read_key):
    return client_with(read_key)


@pytest.fixture
def taxonomy(workspace):
    make_label(workspace, "discount", prompt_phrase="discounts")
    make_label(workspace, "convenience")
    make_label(workspace, "email", set_slug="channel")
    make_message(workspace, "spring", "Spring sale", "20% off", ["value_proposition:discount"])
    return workspace


def last_audit(workspace) -> AuditEntry:
    return AuditEntry.objects.for_workspace(workspace).first()


# Label sets ----------------------------------------------------------------------------------


def test_it_creates_reads_updates_and_archives_a_label_set(config_api, workspace):
    response = config_api.post(
        "/api/v1/label-sets", {"slug": "offer", "name": "Offer", "multiple": True}, format="json"
    )
    assert response.status_code == 201, response.content
    created = response.json()
    assert (created["slug"], created["multiple"], created["version"]) == ("offer", True, 1)
    assert last_audit(workspace).actor.startswith("API key ci")

    url = f"/api/v1/label-sets/{created['id']}"
    assert config_api.get(url).json()["name"] == "Offer"
    changed = config_api.patch(url, {"name": "Offers", "version": 1}, format="json")
    assert changed.status_code == 200 and changed.json()["version"] == 2

    archived = config_api.delete(url, format="json")
    assert archived.status_code == 200 and archived.json()["active"] is False
    assert LabelSet.objects.for_workspace(workspace).filter(slug="offer").exists()
    assert last_audit(workspace).action == "archive"
    assert config_api.post(f"{url}/restore", {}, format="json").json()["active"] is True


def test_it_lists_label_sets_by_cursor_with_filters(config_api, workspace):
    page = config_api.get("/api/v1/label-sets?page_size=2").json()
    assert len(page["results"]) == 2 and page["next"]
    rest = config_api.get(page["next"]).json()
    assert [s["slug"] for s in page["results"] + rest["results"]] == [
        "value_proposition",
        "tone",
        "channel",
    ]
    found = config_api.get("/api/v1/label-sets?q=ton").json()["results"]
    assert [s["slug"] for s in found] == ["tone"]


def test_it_reports_a_duplicate_set_slug_on_the_field(config_api):
    response = config_api.post("/api/v1/label-sets", {"slug": "tone", "name": "T"}, format="json")
    assert response.status_code == 400
    assert "already taken" in response.json()["slug"][0]


# Labels --------------------------------------------------------------------------------------


def test_it_creates_a_label_and_boosts_it_with_the_keys_name(config_api, workspace):
    response = config_api.post(
        "/api/v1/labels",
        {
            "label_set": "value_proposition",
            "slug": "fast",
            "name": "Fast",
            "prompt_phrase": "speed",
        },
        format="json",
    )
    assert response.status_code == 201, response.content
    label = response.json()
    assert (label["label_set"], label["content_gap"], label["message_count"]) == (
        "value_proposition",
        True,
        0,
    )
    url = f"/api/v1/labels/{label['id']}"
    boosted = config_api.patch(url, {"boost": 0.4, "version": 1}, format="json").json()
    assert boosted["boost"] == 0.4 and boosted["boost_set_by"].startswith("API key ci")
    entry = last_audit(workspace)
    assert entry.api_key is not None and ("boost", 0.0, 0.4) in entry.changed_fields()


def test_it_answers_a_stale_version_with_409(config_api, taxonomy):
    label = Label.objects.for_workspace(taxonomy).get(slug="discount")
    url = f"/api/v1/labels/{label.pk}"
    assert config_api.patch(url, {"name": "A", "version": 1}, format="json").status_code == 200
    response = config_api.patch(url, {"name": "B", "version": 1}, format="json")
    assert response.status_code == 409
    assert response.json()["current_version"] == 2
    label.refresh_from_db()
    assert label.name == "A"


def test_it_requires_the_version_and_a_boost_in_range(config_api, taxonomy):
    label = Label.objects.for_workspace(taxonomy).get(slug="discount")
    url = f"/api/v1/labels/{label.pk}"
    assert "version" in config_api.patch(url, {"name": "A"}, format="json").json()
    response = config_api.patch(url, {"boost": 3, "version": 1}, format="json")
    assert response.status_code == 400 and "boost" in response.json()


def test_it_refuses_a_label_in_an_unknown_set(config_api):
    response = config_api.post(
        "/api/v1/labels", {"label_set": "nope", "slug": "x", "name": "X"}, format="json"
    )
    assert response.status_code == 400 and "label_set" in response.json()


def test_it_filters_labels_by_set_and_shows_message_counts(read_api, taxonomy):
    found = read_api.get("/api/v1/labels?label_set=value_proposition").json()["results"]
    by_slug = {label["slug"]: label for label in found}
    assert set(by_slug) == {"discount", "convenience"}
    assert by_slug["discount"]["message_count"] == 1
    assert by_slug["discount"]["stats"]["favoured_by"] == 0


# Messages ------------------------------------------------------------------------------------


def test_it_creates_reads_updates_and_archives_a_message(config_api, taxonomy):
    response = config_api.post(
        "/api/v1/messages",
        {
            "key": "quick",
            "subject": "Skip the line",
            "body": "Order ahead in the app.",
            "labels": ["value_proposition:convenience", "channel:email"],
        },
        format="json",
    )
    assert response.status_code == 201, response.content
    message = response.json()
    assert message["labels"] == ["channel:email", "value_proposition:convenience"]
    assert message["channel"] == "email"
    url = f"/api/v1/messages/{message['id']}"
    changed = config_api.patch(
        url, {"labels": ["value_proposition:discount"], "version": 1}, format="json"
    ).json()
    assert (changed["labels"], changed["channel"], changed["version"]) == (
        ["value_proposition:discount"],
        "",
        2,
    )
    assert config_api.delete(url).json()["active"] is False
    assert Message.objects.for_workspace(taxonomy).get(key="quick").active is False
    listed = config_api.get("/api/v1/messages?active=false").json()["results"]
    assert [m["key"] for m in listed] == ["quick"]


def test_it_refuses_two_value_propositions_on_the_labels_field(config_api, taxonomy):
    response = config_api.post(
        "/api/v1/messages",
        {
            "key": "two",
            "body": "x",
            "labels": ["value_proposition:discount", "value_proposition:convenience"],
        },
        format="json",
    )
    assert response.status_code == 400
    assert "one Value proposition label at most" in response.json()["labels"][0]
    assert not Message.objects.for_workspace(taxonomy).filter(key="two").exists()


def test_it_filters_messages_by_label_and_text(read_api, taxonomy):
    make_message(taxonomy, "other", "Something else", labels=["value_proposition:convenience"])
    by_label = read_api.get("/api/v1/messages?label=value_proposition:discount").json()
    assert [m["key"] for m in by_label["results"]] == ["spring"]
    by_text = read_api.get("/api/v1/messages?q=else").json()
    assert [m["key"] for m in by_text["results"]] == ["other"]


def test_it_lists_a_messages_nearest_neighbours(read_api, taxonomy):
    make_message(taxonomy, "spring-2", "Spring sale!", "20% off")
    make_message(taxonomy, "coffee", "A new roast", "Try our dark roast today")
    spring = Message.objects.for_workspace(taxonomy).get(key="spring")
    answer = read_api.get(f"/api/v1/messages/{spring.pk}/similar").json()
    assert answer["similar"][0]["key"] == "spring-2"
    assert answer["similar"][0]["near_duplicate"] is True
    assert all(item["key"] != "spring" for item in answer["similar"])


def test_it_suggests_labels_only_from_the_taxonomy(config_api, taxonomy, fake_llm):
    fake_llm.labels = ["value_proposition:convenience", "value_proposition:discount", "tone:zany"]
    response = config_api.post(
        "/api/v1/messages/suggest-labels", {"text": "Order ahead, skip the line"}, format="json"
    )
    assert response.status_code == 200, response.content
    # One value proposition at most, and nothing outside the taxonomy.
    assert response.json() == {"labels": ["value_proposition:convenience"]}
    schema = fake_llm.requests[-1]["response_format"]["json_schema"]["schema"]
    allowed = schema["properties"]["labels"]["items"]["enum"]
    assert "value_proposition:discount" in allowed and "tone:zany" not in allowed


def test_it_answers_503_with_the_reason_without_an_llm(config_api, taxonomy, settings):
    settings.PRIMER_LLM_BASE_URL = ""
    response = config_api.post("/api/v1/messages/suggest-labels", {"text": "x"}, format="json")
    assert response.status_code == 503 and response.json()["reason"] == "not_configured"


# Access --------------------------------------------------------------------------------------


def test_it_hides_another_workspaces_objects(config_api, other_workspace):
    theirs = make_message(other_workspace, "secret", "Theirs")
    label = make_label(other_workspace, "theirs")
    assert config_api.get(f"/api/v1/messages/{theirs.pk}").status_code == 404
    assert (
        config_api.patch(
            f"/api/v1/labels/{label.pk}", {"name": "x", "version": 1}, format="json"
        ).status_code
        == 404
    )
    assert config_api.delete(f"/api/v1/messages/{theirs.pk}").status_code == 404
    their_set = LabelSet.objects.for_workspace(other_workspace).get(slug="tone")
    assert config_api.get(f"/api/v1/label-sets/{their_set.pk}").status_code == 404
    assert config_api.post(f"/api/v1/label-sets/{their_set.pk}/archive").status_code == 404
    assert Message.objects.for_workspace(other_workspace).get().active is True


def test_it_lets_a_read_key_read_but_not_write(read_api, taxonomy):
    assert read_api.get("/api/v1/messages").status_code == 200
    response = read_api.post("/api/v1/messages", {"key": "x", "body": "y"}, format="json")
    assert response.status_code == 403
    spring = Message.objects.for_workspace(taxonomy).get(key="spring")
    assert read_api.delete(f"/api/v1/messages/{spring.pk}").status_code == 403


def test_it_refuses_a_key_without_the_read_scope(write_key, taxonomy):
    assert client_with(write_key).get("/api/v1/labels").status_code == 403


def test_it_lets_session_editors_write_and_viewers_only_read(client, make_user, taxonomy):
    viewer = make_user("viewer", workspace=taxonomy, role=Membership.Role.VIEWER)
    api = APIClient()
    api.force_login(viewer)
    assert api.get("/api/v1/label-sets").status_code == 200
    assert (
        api.post("/api/v1/label-sets", {"slug": "x", "name": "X"}, format="json").status_code == 403
    )
    editor = make_user("editor", workspace=taxonomy, role=Membership.Role.EDITOR)
    api.force_login(editor)
    response = api.post("/api/v1/label-sets", {"slug": "x", "name": "X"}, format="json")
    assert response.status_code == 201
    assert last_audit(taxonomy).user == editor


def test_it_refuses_a_user_of_another_workspace(make_user, other_workspace, taxonomy):
    spring = Message.objects.for_workspace(taxonomy).get(key="spring")
    outsider = make_user("outsider", workspace=other_workspace)
    api = APIClient()
    api.force_login(outsider)
    assert api.get(f"/api/v1/messages/{spring.pk}").status_code == 404


def test_it_documents_every_catalogue_operation(read_api):
    from drf_spectacular.generators import SchemaGenerator

    schema = SchemaGenerator().get_schema(request=None, public=True)
    paths = schema["paths"]
    assert {"get", "post"} <= set(paths["/api/v1/messages"])
    assert {"get", "patch", "delete"} <= set(paths["/api/v1/messages/{id}"])
    assert "Archives" in paths["/api/v1/messages/{id}"]["delete"]["description"]
    assert "409" in paths["/api/v1/labels/{id}"]["patch"]["responses"]
    assert "post" in paths["/api/v1/messages/suggest-labels"]
    assert "get" in paths["/api/v1/messages/{id}/similar"]
    assert "post" in paths["/api/v1/label-sets/{id}/restore"]
