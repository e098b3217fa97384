"""Template context every page needs: the current workspace and the others to switch to."""

from campaigns.tenancy.selectors import memberships_of_user


def workspaces(request):
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return {}
    return {
        "current_workspace": getattr(request, "workspace", None),
        "current_membership": getattr(request, "membership", None),
        "my_memberships": memberships_of_user(user=user),
    }
