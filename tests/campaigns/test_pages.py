from django.urls import reverse

from campaigns.catalogue.services import MessageSpec, messages_upsert


def test_it_serves_the_login_page(client):
    response = client.get(reverse("login"))
    assert response.status_code == 200
    assert b'name="password"' in response.content


def test_it_sends_anonymous_visitors_to_login(client, db):
    response = client.get(reverse("home"))
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("login"))


def test_it_logs_in_with_a_password_and_shows_the_workspace(client, member, workspace):
    messages_upsert(
        workspace=workspace,
        specs=[MessageSpec(key="spring-sale", subject="Spring sale", labels={"tone": ["playful"]})],
    )
    response = client.post(
        reverse("login"), {"username": "marketer", "password": "correct horse battery"}, follow=True
    )
    page = response.content.decode()
    assert response.status_code == 200
    assert "Acme" in page
    assert "spring-sale" in page
    assert "playful" in page


def test_it_never_shows_another_workspaces_objects(member_client, workspace, other_workspace):
    messages_upsert(workspace=workspace, specs=[MessageSpec(key="ours")])
    messages_upsert(workspace=other_workspace, specs=[MessageSpec(key="secret-theirs")])
    # Switching to a workspace the user is not a member of is ignored.
    member_client.post(reverse("workspace-switch"), {"workspace_id": str(other_workspace.pk)})
    page = member_client.get(reverse("home")).content.decode()
    assert "ours" in page
    assert "secret-theirs" not in page
    assert "Globex" not in page


def test_it_switches_between_the_users_workspaces(make_user, client, workspace, other_workspace):
    user = make_user("consultant", workspace=workspace)
    make_user("consultant", workspace=other_workspace)
    messages_upsert(workspace=other_workspace, specs=[MessageSpec(key="globex-welcome")])
    client.force_login(user)
    assert "globex-welcome" not in client.get(reverse("home")).content.decode()
    response = client.post(
        reverse("workspace-switch"),
        {"workspace_id": str(other_workspace.pk), "next": "https://evil.example/"},
    )
    assert response["Location"] == reverse("home")
    assert "globex-welcome" in client.get(reverse("home")).content.decode()


def test_it_tells_a_user_without_workspace_what_to_do(client, make_user):
    client.force_login(make_user("loner"))
    response = client.get(reverse("home"))
    assert response.status_code == 403
    assert b"create_workspace" in response.content


def test_it_keeps_staff_who_are_not_superusers_out_of_the_admin(
    client, make_user, workspace, other_workspace
):
    from django.contrib.auth.models import Permission

    messages_upsert(workspace=workspace, specs=[MessageSpec(key="ours")])
    messages_upsert(workspace=other_workspace, specs=[MessageSpec(key="secret-theirs")])
    staff = make_user("staffer", workspace=workspace)
    staff.is_staff = True
    staff.save()
    staff.user_permissions.add(Permission.objects.get(codename="view_message"))
    staff.user_permissions.add(Permission.objects.get(codename="add_campaign"))
    client.force_login(staff)
    for url in ("/admin/campaigns/message/", "/admin/campaigns/campaign/add/"):
        response = client.get(url)
        assert response.status_code == 302
        assert response["Location"].startswith("/admin/login/")
    assert b"secret-theirs" not in client.get("/admin/campaigns/campaign/add/", follow=True).content

    staff.is_superuser = True
    staff.save()
    page = client.get("/admin/campaigns/message/").content.decode()
    assert "ours" in page
    assert "secret-theirs" in page
