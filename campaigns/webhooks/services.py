"""Writes: register webhooks, queue changed prompts after a recompute, attempt deliveries.

Delivery is at least once: a batch's prompts count as delivered (their hashes recorded per
webhook and customer) only when the receiver answers 2xx, so a receiver that was down gets the
same prompts again, and should use `content_hash` to ignore repeats.
"""

from __future__ import annotations

import http.client
import ipaddress
import json
import socket
import ssl
import time
from dataclasses import dataclass, replace
from datetime import timedelta
from urllib.parse import quote, urlsplit

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import URLValidator
from django.db import transaction
from django.utils import timezone

from campaigns.models import (
    AuditEntry,
    Campaign,
    Webhook,
    WebhookDelivery,
    WebhookPromptHash,
    Workspace,
)
from campaigns.prompts.engine import RenderedPrompt
from campaigns.prompts.selectors import prompt_choice, prompt_chunks
from campaigns.prompts.wording import iso
from campaigns.tenancy.changes import (
    Actor,
    audit_record,
    change_archive,
    change_create,
    change_update,
    snapshot,
)
from campaigns.webhooks.signing import SIGNATURE_HEADER, new_secret, signature_header
from memory.models import Customer

BATCH_SIZE = 100
# Attempts in all: the first and its retries, spaced 30 s, 1 min, 2 min ... capped at an hour.
MAX_ATTEMPTS = 8
BACKOFF_BASE_S = 30
BACKOFF_MAX_S = 3600
ERROR_LIMIT = 500
USER_AGENT = "Primer-Webhooks/1.0"


def backoff_s(retries: int) -> float:
    """Return the wait before retry number `retries` + 1 (exponential, capped)."""
    base = getattr(settings, "PRIMER_WEBHOOK_BACKOFF_S", BACKOFF_BASE_S)
    return min(base * 2**retries, BACKOFF_MAX_S)


WEBHOOK_AUDITED = ["url", "description", "campaign", "active"]


URL_MAX_LENGTH = 500
URL_SAFE = "/%:@!$&'()*+,;=-._~?"


@dataclass(frozen=True)
class WebhookTarget:
    """Where a webhook URL points: what is connected to, and what the request names."""

    scheme: str
    host: str  # the host name (or IP literal, without brackets), for Host and TLS's SNI
    port: int
    target: str  # path and query, as sent in the request line


def webhook_url_parse(url: str) -> WebhookTarget:
    """Parse a webhook URL strictly; raise ValueError saying what is wrong with it.

    http or https, a host, no user name or password, a valid port, no whitespace or control
    characters anywhere, no fragment: what passes is what the delivery connects to.
    """
    if not url:
        raise ValueError("Enter an http or https URL.")
    if len(url) > URL_MAX_LENGTH:
        raise ValueError(f"At most {URL_MAX_LENGTH} characters.")
    if any(ch.isspace() or ord(ch) < 32 or ord(ch) == 127 for ch in url):
        raise ValueError("A URL cannot contain spaces or control characters.")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        raise ValueError("The URL's host or port is malformed.") from None
    if parts.scheme.lower() not in ("http", "https"):
        raise ValueError("Enter an http or https URL.")
    if parts.username is not None or parts.password is not None or "@" in parts.netloc:
        raise ValueError("A URL cannot carry a user name or password; the signature authenticates.")
    host = parts.hostname or ""
    if not host:
        raise ValueError("The URL needs a host.")
    if port == 0:
        raise ValueError("Port 0 is not a port.")
    if parts.fragment or url.endswith("#"):
        raise ValueError("A webhook URL has no #fragment (it is never sent).")
    try:
        URLValidator(schemes=["http", "https"])(url)
    except ValidationError:
        raise ValueError("Enter an http or https URL.") from None
    scheme = parts.scheme.lower()
    return WebhookTarget(
        scheme=scheme,
        host=host,
        port=port or (443 if scheme == "https" else 80),
        # Non-ASCII in the path or query is sent percent-encoded (UTF-8), as browsers do.
        target=quote(parts.path or "/", safe=URL_SAFE)
        + (f"?{quote(parts.query, safe=URL_SAFE)}" if parts.query else ""),
    )


def _webhook_checks(workspace: Workspace, url: str | None, campaign: Campaign | None) -> None:
    if url is not None:
        try:
            webhook_url_parse(url)
        except ValueError as error:
            raise ValidationError({"url": str(error)}) from None
    if campaign is not None and campaign.workspace_id != workspace.pk:
        raise ValidationError({"campaign": "That campaign belongs to another workspace."})


def webhook_create(
    *,
    workspace: Workspace,
    url: str,
    description: str = "",
    campaign: Campaign | None = None,
    actor: Actor | None = None,
) -> Webhook:
    """Register a URL to receive changed prompts, audited; its signing secret is generated."""
    _webhook_checks(workspace, url, campaign)
    return change_create(
        workspace=workspace,
        actor=actor or Actor.system(),
        obj=Webhook(
            workspace=workspace,
            url=url,
            description=description.strip(),
            campaign=campaign,
            secret=new_secret(),
        ),
        audited=WEBHOOK_AUDITED,
    )


def webhook_update(
    *,
    workspace: Workspace,
    actor: Actor,
    webhook: Webhook,
    expected_version: int | None,
    changes: dict,
) -> Webhook:
    """Change a webhook's URL, description, campaign or active flag; refuse a stale edit."""
    unknown = set(changes) - set(WEBHOOK_AUDITED)
    if unknown:
        raise ValidationError({name: "This field cannot be changed." for name in sorted(unknown)})
    if "description" in changes:
        changes = changes | {"description": (changes["description"] or "").strip()}
    _webhook_checks(workspace, changes.get("url"), changes.get("campaign"))
    return change_update(
        workspace=workspace,
        actor=actor,
        obj=webhook,
        changes=changes,
        expected_version=expected_version,
        audited=WEBHOOK_AUDITED,
    )


def webhook_rotate_secret(
    *, workspace: Workspace, actor: Actor, webhook: Webhook, expected_version: int | None = None
) -> Webhook:
    """Give a webhook a new signing secret at once (the old one stops verifying), audited.

    The audit records when and by whom, never the secret itself.
    """
    return change_update(
        workspace=workspace,
        actor=actor,
        obj=webhook,
        changes={"secret": new_secret(), "secret_rotated_at": timezone.now()},
        expected_version=expected_version,
        audited=["secret_rotated_at"],
    )


def webhook_set_active(*, webhook: Webhook, active: bool, actor: Actor | None = None) -> None:
    """Pause or resume a webhook, audited."""
    change_archive(
        workspace=webhook.workspace, actor=actor or Actor.system(), obj=webhook, active=active
    )
    webhook.active = active


@transaction.atomic
def webhook_delete(*, webhook: Webhook, actor: Actor | None = None) -> None:
    """Remove a webhook with its delivery log, audited."""
    audit_record(
        workspace=webhook.workspace,
        actor=actor or Actor.system(),
        action=AuditEntry.Action.DELETE,
        obj=webhook,
        before=snapshot(webhook, WEBHOOK_AUDITED),
    )
    webhook.delete()


def _body(workspace: Workspace, event: str, run_id: int | None, prompts: list[dict]) -> str:
    return json.dumps(
        {
            "event": event,
            "workspace": workspace.slug,
            "run_id": run_id,
            "created_at": iso(timezone.now()),
            "prompts": prompts,
        },
        ensure_ascii=False,
        separators=(",", ":"),
    )


def _delivery_create(
    webhook: Webhook, run_id: int | None, batch: list[RenderedPrompt]
) -> WebhookDelivery:
    return WebhookDelivery.objects.create(
        workspace_id=webhook.workspace_id,
        webhook=webhook,
        event="prompts.changed",
        run_id=run_id,
        body=_body(webhook.workspace, "prompts.changed", run_id, [p.as_dict() for p in batch]),
        hashes=[[p.customer_pk, p.change_hash] for p in batch],
        prompt_count=len(batch),
    )


@dataclass(frozen=True)
class ChangedPrompts:
    """The deliveries created for changed prompts; the caller queues each one."""

    webhooks: int
    prompts: int
    delivery_ids: list[int]

    def summary(self) -> dict:
        return {
            "webhooks": self.webhooks,
            "deliveries": len(self.delivery_ids),
            "prompts": self.prompts,
        }


class DeliveredHashes:
    """The hashes last delivered to some webhooks, read a chunk of customers at a time."""

    def __init__(self, workspace: Workspace, webhook_ids: list[int]):
        self.workspace, self.webhook_ids = workspace, webhook_ids
        self.hashes: dict[tuple[int, int], str] = {}

    def is_changed(self, webhook_id: int, prompt: RenderedPrompt) -> bool:
        return self.hashes.get((webhook_id, prompt.customer_pk)) != prompt.change_hash

    def changed(self, chunk: list[RenderedPrompt]) -> set[int]:
        """Read the chunk's delivered hashes; return the customers some webhook lacks."""
        rows = (
            WebhookPromptHash.objects.for_workspace(self.workspace)
            .filter(
                webhook_id__in=self.webhook_ids,
                customer_id__gte=chunk[0].customer_pk,
                customer_id__lte=chunk[-1].customer_pk,
            )
            .values_list("webhook_id", "customer_id", "content_hash")
        )
        self.hashes = {(webhook, customer): sha for webhook, customer, sha in rows}
        return {
            prompt.customer_pk
            for prompt in chunk
            if any(self.is_changed(webhook, prompt) for webhook in self.webhook_ids)
        }


def webhook_deliveries_for_changed_prompts(
    *, workspace_id: int, run_id: int | None = None
) -> ChangedPrompts:
    """Create, for every active webhook, deliveries of the prompts whose hash changed.

    Prompts are rendered once per template choice (a webhook's campaign, or the workspace
    default) in chunks, compared with the delivered hashes a chunk at a time, and sent in
    batches of BATCH_SIZE, each batch one signed POST with its own retries.
    """
    workspace = Workspace.objects.get(pk=workspace_id)
    webhooks = list(
        Webhook.objects.for_workspace(workspace)
        .filter(active=True)
        .select_related("campaign", "workspace")
        .order_by("pk")
    )
    groups: dict[str, list[Webhook]] = {}
    for webhook in webhooks:
        groups.setdefault(webhook.campaign.slug if webhook.campaign else "", []).append(webhook)
    delivery_ids: list[int] = []
    prompts = 0
    for campaign_slug, hooks in groups.items():
        # A campaign's prompts state the message served to each customer, logged as a decision
        # (only for the prompts that changed: those are the ones delivered).
        choice = replace(
            prompt_choice(workspace=workspace, campaign=campaign_slug or None),
            serve="webhook" if campaign_slug else "",
        )
        pending: dict[int, list[RenderedPrompt]] = {hook.pk: [] for hook in hooks}
        delivered = DeliveredHashes(workspace, list(pending))
        chunks = prompt_chunks(workspace=workspace, choice=choice, serve_where=delivered.changed)
        for chunk in chunks:
            for hook in hooks:
                queue = pending[hook.pk]
                queue.extend(prompt for prompt in chunk if delivered.is_changed(hook.pk, prompt))
                while len(queue) >= BATCH_SIZE:
                    delivery_ids.append(_delivery_create(hook, run_id, queue[:BATCH_SIZE]).pk)
                    prompts += BATCH_SIZE
                    del queue[:BATCH_SIZE]
        for hook in hooks:
            if pending[hook.pk]:
                delivery_ids.append(_delivery_create(hook, run_id, pending[hook.pk]).pk)
                prompts += len(pending[hook.pk])
    return ChangedPrompts(webhooks=len(webhooks), prompts=prompts, delivery_ids=delivery_ids)


def webhooks_customer_erased(
    *, workspace_id: int, customer_id: int, external_id: str, suppressed: bool = False
) -> list[int]:
    """Erase a deleted customer from the delivery log and tell every active webhook.

    Their prompts leave every stored body (a delivery still retrying no longer sends them);
    a 'customer.deleted' delivery is created per active webhook, saying whether the id's
    later events are refused (`suppressed`: the sender should stop sending them). Return the
    new deliveries' ids for the caller to queue.
    """
    workspace = Workspace.objects.get(pk=workspace_id)
    marker = json.dumps({"customer_id": external_id}, ensure_ascii=False, separators=(",", ":"))[
        1:-1
    ]
    logged = WebhookDelivery.objects.for_workspace(workspace).filter(body__contains=marker)
    for delivery in logged:
        body = json.loads(delivery.body)
        prompts = body.get("prompts", [])
        body["prompts"] = [p for p in prompts if p.get("customer_id") != external_id]
        delivery.body = json.dumps(body, ensure_ascii=False, separators=(",", ":"))
        delivery.hashes = [pair for pair in delivery.hashes if pair[0] != customer_id]
        delivery.prompt_count = len(body["prompts"])
        delivery.save(update_fields=["body", "hashes", "prompt_count"])
    body = json.dumps(
        {
            "event": "customer.deleted",
            "workspace": workspace.slug,
            "customer_id": external_id,
            "suppressed": suppressed,
            "created_at": iso(timezone.now()),
        },
        ensure_ascii=False,
        separators=(",", ":"),
    )
    created = WebhookDelivery.objects.bulk_create(
        [
            WebhookDelivery(workspace=workspace, webhook=hook, event="customer.deleted", body=body)
            for hook in Webhook.objects.for_workspace(workspace).filter(active=True).order_by("pk")
        ]
    )
    return [delivery.pk for delivery in created]


def webhook_ping_create(*, webhook: Webhook) -> WebhookDelivery:
    """Create a signed 'ping' delivery with no prompts, to check the receiver's verification."""
    return WebhookDelivery.objects.create(
        workspace_id=webhook.workspace_id,
        webhook=webhook,
        event="ping",
        body=_body(webhook.workspace, "ping", None, []),
    )


class Refused(Exception):
    """The URL may not be delivered to (malformed, or private when that is refused)."""


def _addresses(target: WebhookTarget, *, allow_private: bool) -> list[str]:
    """Resolve the host once and check every address; the delivery connects to these only.

    Connecting to what was checked (not resolving again) leaves a DNS answer that changes
    between check and connect (rebinding) nothing to exploit.
    """
    infos = socket.getaddrinfo(target.host, target.port, type=socket.SOCK_STREAM)
    addresses = list(dict.fromkeys(info[4][0] for info in infos))
    if not allow_private and any(
        not ipaddress.ip_address(address.split("%", 1)[0]).is_global for address in addresses
    ):
        raise Refused("Refused: the URL resolves to a private or local address.")
    return addresses


class _PinnedHTTPConnection(http.client.HTTPConnection):
    """HTTP to a checked address; the Host header still names the URL's host."""

    def __init__(self, target: WebhookTarget, address: str, timeout: float):
        super().__init__(target.host, target.port, timeout=timeout)
        self.address = address

    def connect(self):
        self.sock = socket.create_connection((self.address, self.port), self.timeout)


class _PinnedHTTPSConnection(http.client.HTTPSConnection):
    """HTTPS to a checked address; SNI and the certificate check use the URL's host."""

    def __init__(self, target: WebhookTarget, address: str, timeout: float):
        self.tls = ssl.create_default_context()
        super().__init__(target.host, target.port, timeout=timeout, context=self.tls)
        self.address = address

    def connect(self):
        sock = socket.create_connection((self.address, self.port), self.timeout)
        self.sock = self.tls.wrap_socket(sock, server_hostname=self.host)


@dataclass(frozen=True)
class Attempt:
    """What one POST gave: delivered, worth retrying, or neither."""

    delivered: bool
    retry: bool
    status: str


def _post(
    url: str, body: bytes, headers: dict, timeout: float, *, allow_private: bool
) -> tuple[int | None, str]:
    """POST once to the address checked (redirects are answered as the 3xx they are)."""
    try:
        target = webhook_url_parse(url)
    except ValueError as error:
        return None, f"Refused: the stored URL is malformed: {error}"
    try:
        addresses = _addresses(target, allow_private=allow_private)
    except Refused as refused:
        return None, str(refused)
    except (OSError, UnicodeError) as exc:
        return None, f"{type(exc).__name__}: {exc}"
    pinned = _PinnedHTTPSConnection if target.scheme == "https" else _PinnedHTTPConnection
    error = ""
    for address in addresses:
        connection = pinned(target, address, timeout)
        try:
            connection.request("POST", target.target, body=body, headers=headers)
            response = connection.getresponse()
            if 200 <= response.status < 300:
                return response.status, ""
            detail = response.read(200).decode("utf-8", "replace")
            return response.status, f"HTTP {response.status} {response.reason}: {detail}".strip()
        except (OSError, http.client.HTTPException, ValueError) as exc:
            error = f"{type(exc).__name__}: {exc}"  # try the host's next address
        finally:
            connection.close()
    return None, error


def webhook_delivery_attempt(*, delivery_id: int, final: bool = False) -> Attempt:
    """POST a delivery once, signed now, and record the outcome; `final` means no retry after."""
    delivery = (
        WebhookDelivery.objects.all_workspaces()
        .select_related("webhook")
        .filter(pk=delivery_id)
        .first()
    )
    if delivery is None or delivery.status in {
        WebhookDelivery.Status.SUCCEEDED,
        WebhookDelivery.Status.FAILED,
    }:
        return Attempt(False, False, "skipped")
    webhook = delivery.webhook
    body = delivery.body.encode()
    code, error = None, ""
    started = time.monotonic()
    allow_private = getattr(settings, "PRIMER_WEBHOOK_ALLOW_PRIVATE_URLS", not settings.PRODUCTION)
    if not webhook.active:
        error = "The webhook is paused."
    else:
        headers = {
            "Content-Type": "application/json",
            "User-Agent": USER_AGENT,
            SIGNATURE_HEADER: signature_header(webhook.secret, body),
            "X-Primer-Event": delivery.event,
            "X-Primer-Delivery": str(delivery.pk),
        }
        timeout = getattr(settings, "PRIMER_WEBHOOK_TIMEOUT_S", 10.0)
        code, error = _post(webhook.url, body, headers, timeout, allow_private=allow_private)
    duration_ms = round((time.monotonic() - started) * 1000, 1)
    now = timezone.now()
    delivered = code is not None and 200 <= code < 300
    retry = not delivered and not final and webhook.active and not error.startswith("Refused")
    if delivered:
        status = WebhookDelivery.Status.SUCCEEDED
    elif retry:
        status = WebhookDelivery.Status.RETRYING
    else:
        status = WebhookDelivery.Status.FAILED
    with transaction.atomic():
        delivery.attempts += 1
        delivery.status = status
        delivery.response_code = code
        delivery.error = error[:ERROR_LIMIT]
        delivery.duration_ms = duration_ms
        delivery.last_attempt_at = now
        delivery.delivered_at = now if delivered else None
        delivery.next_attempt_at = (
            now + timedelta(seconds=backoff_s(delivery.attempts - 1)) if retry else None
        )
        delivery.save(
            update_fields=[
                "attempts",
                "status",
                "response_code",
                "error",
                "duration_ms",
                "last_attempt_at",
                "delivered_at",
                "next_attempt_at",
            ]
        )
        if delivered and delivery.hashes:
            # Customers deleted since the batch was queued have nothing to remember.
            alive = set(
                Customer.objects.for_workspace(delivery.workspace_id)
                .filter(pk__in=[customer_id for customer_id, _ in delivery.hashes])
                .values_list("pk", flat=True)
            )
            WebhookPromptHash.objects.bulk_create(
                [
                    WebhookPromptHash(
                        workspace_id=delivery.workspace_id,
                        webhook_id=webhook.pk,
                        customer_id=customer_id,
                        content_hash=content_hash,
                        delivered_at=now,
                    )
                    for customer_id, content_hash in delivery.hashes
                    if customer_id in alive
                ],
                update_conflicts=True,
                unique_fields=["webhook", "customer"],
                update_fields=["content_hash", "delivered_at"],
            )
    return Attempt(delivered, retry, status)
