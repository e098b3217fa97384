"""Lock out password guessing on the login page and the admin, per user name and per address.

Failures are stored in the database (`LoginFailure`), so the lock holds across processes and
without Redis. With PRIMER_LOGIN_MAX_FAILURES failures for one user name, or
PRIMER_LOGIN_MAX_FAILURES_PER_ADDRESS from one address, within PRIMER_LOGIN_LOCKOUT_S, further
sign-ins are refused, without checking the password, until the oldest of those failures is
that old. A successful sign-in clears its user name's failures. The address is REMOTE_ADDR.
"""

from datetime import datetime, timedelta

from django import forms
from django.conf import settings
from django.contrib.admin.forms import AdminAuthenticationForm
from django.contrib.auth.forms import AuthenticationForm
from django.utils import timezone

from campaigns.models import LoginFailure


def _address(request) -> str:
    return (request.META.get("REMOTE_ADDR") or "")[:45] if request is not None else ""


def login_locked_until(*, username: str, address: str) -> datetime | None:
    """Return when the lock on this user name or address ends, or None when there is none."""
    now = timezone.now()
    window = timedelta(seconds=settings.PRIMER_LOGIN_LOCKOUT_S)
    recent = LoginFailure.objects.filter(failed_at__gt=now - window)
    ends = []
    for field, value, limit in (
        ("username", username.lower(), settings.PRIMER_LOGIN_MAX_FAILURES),
        ("address", address, settings.PRIMER_LOGIN_MAX_FAILURES_PER_ADDRESS),
    ):
        if not value:
            continue
        times = list(
            recent.filter(**{field: value})
            .order_by("-failed_at")
            .values_list("failed_at", flat=True)[:limit]
        )
        if len(times) >= limit:
            ends.append(times[-1] + window)
    return max(ends) if ends else None


def login_failure_record(*, username: str, address: str) -> None:
    """Record a failed sign-in, and forget failures too old to count."""
    now = timezone.now()
    LoginFailure.objects.create(username=username.lower()[:150], address=address, failed_at=now)
    cutoff = now - timedelta(seconds=settings.PRIMER_LOGIN_LOCKOUT_S)
    LoginFailure.objects.filter(failed_at__lte=cutoff).delete()


def login_failures_clear(*, username: str) -> None:
    LoginFailure.objects.filter(username=username.lower()).delete()


def _locked_message(until: datetime) -> str:
    minutes = max(1, -(-int((until - timezone.now()).total_seconds()) // 60))
    return (
        "Too many failed sign-ins for this account or from this address. "
        f"Sign-in is locked; try again in {minutes} minute{'s' if minutes != 1 else ''}."
    )


class ThrottledLoginMixin:
    """Refuse sign-in while locked (with a message saying so); record each failure."""

    locked_message = ""

    def clean(self):
        username = self.cleaned_data.get("username") or ""
        address = _address(self.request)
        until = login_locked_until(username=username, address=address)
        if until is not None:
            self.locked_message = _locked_message(until)
            raise forms.ValidationError(self.locked_message, code="locked")
        try:
            cleaned = super().clean()
        except forms.ValidationError:
            if username:
                login_failure_record(username=username, address=address)
                until = login_locked_until(username=username, address=address)
                if until is not None:
                    self.locked_message = _locked_message(until)
                    raise forms.ValidationError(self.locked_message, code="locked") from None
            raise
        login_failures_clear(username=username)
        return cleaned


class ThrottledAuthenticationForm(ThrottledLoginMixin, AuthenticationForm):
    pass


class ThrottledAdminAuthenticationForm(ThrottledLoginMixin, AdminAuthenticationForm):
    pass
