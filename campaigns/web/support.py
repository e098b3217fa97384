"""What the pages share: a service's refusal put on the form, a number read from a request."""

from django import forms
from django.core.exceptions import ValidationError

from campaigns.tenancy.changes import StaleEdit


def form_refused(form: forms.Form, error: ValidationError | StaleEdit) -> None:
    """Add a service's ValidationError (or a stale edit) to the form's errors."""
    if isinstance(error, StaleEdit):
        form.add_error(None, str(error))
        return
    if not hasattr(error, "error_dict"):
        form.add_error(None, error)
        return
    for field, messages in error.message_dict.items():
        if field in form.fields:
            form.add_error(field, messages)
        else:
            label = "" if field == "__all__" else f"{field}: "
            form.add_error(None, [f"{label}{message}" for message in messages])


def int_or_none(value) -> int | None:
    """Return the value as an int, or None when it is missing or not a number."""
    try:
        return int(value)
    except (TypeError, ValueError):
        return None
