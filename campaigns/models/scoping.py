"""One mechanism that scopes every workspace-owned query, and fails closed.

A workspace-owned model's default manager returns querysets that refuse to run until they
are scoped: ``Model.objects.for_workspace(ws)`` or, when the code truly means every
workspace (admin for superusers, maintenance commands), ``Model.objects.all_workspaces()``.

Django's own machinery (unique validation, related objects, cascades, form choices) goes
through ``_default_manager``, which is the plain ``unscoped`` manager: those lookups are
already pinned to one row or one parent, and must not trip the guard.
"""

from django.db import models


class WorkspaceScopeError(RuntimeError):
    """A workspace-owned model was queried without saying which workspace."""


class WorkspaceQuerySet(models.QuerySet):
    _scope: str | None = None

    def for_workspace(self, workspace) -> "WorkspaceQuerySet":
        """Return only rows of this workspace (an instance or a primary key)."""
        if workspace is None:
            raise WorkspaceScopeError(f"{self.model.__name__}: for_workspace(None) is not a scope.")
        workspace_id = getattr(workspace, "pk", workspace)
        clone = self.filter(workspace_id=workspace_id)
        clone._scope = "workspace"
        return clone

    def all_workspaces(self) -> "WorkspaceQuerySet":
        """Return rows of every workspace; say so only where that is meant."""
        clone = self._chain()
        clone._scope = "all"
        return clone

    def _clone(self):
        clone = super()._clone()
        clone._scope = self._scope
        return clone

    def _check_scope(self) -> None:
        if self._scope is None:
            raise WorkspaceScopeError(
                f"{self.model.__name__} was queried without a workspace; use "
                f".for_workspace(ws), or .all_workspaces() where every workspace is meant."
            )

    def _fetch_all(self):
        if self._result_cache is None:
            self._check_scope()
        super()._fetch_all()

    def _iterator(self, use_chunked_fetch, chunk_size):
        self._check_scope()
        yield from super()._iterator(use_chunked_fetch, chunk_size)

    def count(self):
        self._check_scope()
        return super().count()

    def exists(self):
        self._check_scope()
        return super().exists()

    def aggregate(self, *args, **kwargs):
        self._check_scope()
        return super().aggregate(*args, **kwargs)

    def update(self, **kwargs):
        self._check_scope()
        return super().update(**kwargs)

    def delete(self):
        self._check_scope()
        return super().delete()

    def in_bulk(self, *args, **kwargs):
        self._check_scope()
        return super().in_bulk(*args, **kwargs)


class WorkspaceManager(models.Manager.from_queryset(WorkspaceQuerySet)):
    pass


class WorkspaceOwnedModel(models.Model):
    """Base for every model that belongs to one workspace."""

    workspace = models.ForeignKey(
        "campaigns.Workspace", on_delete=models.CASCADE, related_name="%(class)ss"
    )

    objects = WorkspaceManager()
    unscoped = models.Manager()

    class Meta:
        abstract = True
        default_manager_name = "unscoped"
        base_manager_name = "unscoped"
