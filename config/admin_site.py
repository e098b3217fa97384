"""The Django admin, for superusers only.

Marketers configure Primer on its own pages, which scope every choice to their workspace and
check their role; the admin's forms do not (a foreign-key select lists every workspace's rows),
so staff who are not superusers are kept out rather than half-scoped
(docs/decisions/0254-admin-is-for-superusers.md).
"""

from django.contrib.admin import AdminSite
from django.contrib.admin.apps import AdminConfig


class SuperuserAdminSite(AdminSite):
    site_header = "Primer administration (superusers)"

    def has_permission(self, request) -> bool:
        return request.user.is_active and request.user.is_superuser


class PrimerAdminConfig(AdminConfig):
    default_site = "config.admin_site.SuperuserAdminSite"
