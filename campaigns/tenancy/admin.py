"""The admin's base: rows of the user's own workspaces only."""

from django.contrib import admin


class WorkspaceScopedAdmin(admin.ModelAdmin):
    """Show rows of every workspace to superusers, and of the user's own workspaces to staff."""

    def get_queryset(self, request):
        queryset = self.model.objects.all_workspaces()
        if not request.user.is_superuser:
            queryset = queryset.filter(workspace__memberships__user=request.user)
        ordering = self.get_ordering(request)
        return queryset.order_by(*ordering) if ordering else queryset
