"""What the pages share: a service's refusal put on the form, a number read from a request,
the archive / restore button."""

from collections.abc import Callable

from django import forms
from django.contrib import messages
from django.core.exceptions import ValidationError

from campaigns.tenancy.changes import Actor, StaleEdit


def form_refused(form: forms.Form, error: ValidationError | StaleEdit) -> None:
    """Add a service's ValidationError (or a stale edit) to the form's errors."""
    if isinstance(error, StaleEdit):
        form.add_error(None, str(error))
        return
    if not hasattr(error, "error_dict"):
        form.add_error(None, error)
        return
    for field, problems in error.message_dict.items():
        if field in form.fields:
            form.add_error(field, problems)
        else:
            label = "" if field == "__all__" else f"{field}: "
            form.add_error(None, [f"{label}{problem}" for problem in problems])


def int_or_none(value) -> int | None:
    """Return the value as an int, or None when it is missing or not a number."""
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def active_toggle(request, *, archive: Callable, noun: str, **target) -> None:
    """Archive or restore one object from its page's button (POST active=1 to restore, and the
    version the page showed), and say how it went; `target` names the object for `archive`."""
    active = request.POST.get("active") == "1"
    try:
        archive(
            workspace=request.workspace,
            actor=Actor.of_user(request.user),
            active=active,
            expected_version=int_or_none(request.POST.get("version")),
            **target,
        )
    except StaleEdit as stale:
        messages.error(request, str(stale))
    else:
        messages.success(request, f"{'Restored' if active else 'Archived'} {noun}.")
