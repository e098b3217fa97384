"""What the marketer configures: workspaces, access, labels, messages, campaigns, templates."""

import hashlib
import hmac
import secrets
import zoneinfo

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator, RegexValidator
from django.db import models
from django.utils import timezone

from campaigns.models.scoping import WorkspaceOwnedModel

slug_validator = RegexValidator(
    r"^[a-z0-9][a-z0-9_-]*$",
    "Use lowercase letters, digits, '-' and '_', starting with a letter or digit.",
)


def validate_time_zone(value: str) -> None:
    if value not in zoneinfo.available_timezones():
        raise ValidationError(f"{value!r} is not an IANA time zone name.")


class Workspace(models.Model):
    """A tenant: its people, its data and the rules its memory is computed by."""

    slug = models.SlugField(max_length=64, unique=True, validators=[slug_validator])
    name = models.CharField(max_length=200)
    goal_event = models.CharField(max_length=200, default="Order Completed")
    send_event = models.CharField(max_length=200, default="Message Sent")
    open_event = models.CharField(max_length=200, default="Message Opened")
    attribution_window_h = models.FloatField(default=72.0, validators=[MinValueValidator(0.01)])
    habituation_half_life_h = models.FloatField(default=168.0, validators=[MinValueValidator(0.01)])
    priming_horizon_h = models.FloatField(default=72.0, validators=[MinValueValidator(0.01)])
    time_zone = models.CharField(max_length=64, default="UTC", validators=[validate_time_zone])
    created_at = models.DateTimeField(default=timezone.now)
    # Bumped by every change through a service: a form or API call carrying an older one is stale.
    version = models.PositiveIntegerField(default=1)

    class Meta:
        ordering = ["slug"]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(attribution_window_h__gt=0)
                & models.Q(habituation_half_life_h__gt=0)
                & models.Q(priming_horizon_h__gt=0),
                name="workspace_positive_windows",
            )
        ]

    def __str__(self) -> str:
        return self.slug


class Membership(WorkspaceOwnedModel):
    """A user's role in a workspace."""

    class Role(models.TextChoices):
        OWNER = "owner", "Owner"
        EDITOR = "editor", "Editor"
        VIEWER = "viewer", "Viewer"

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="memberships"
    )
    role = models.CharField(max_length=16, choices=Role.choices, default=Role.VIEWER)

    class Meta(WorkspaceOwnedModel.Meta):
        constraints = [
            models.UniqueConstraint(fields=["workspace", "user"], name="membership_unique_user")
        ]

    def __str__(self) -> str:
        return f"{self.user} in {self.workspace_id} as {self.role}"

    @property
    def can_edit(self) -> bool:
        return self.role in {self.Role.OWNER, self.Role.EDITOR}

    @property
    def is_owner(self) -> bool:
        return self.role == self.Role.OWNER


class ApiKey(WorkspaceOwnedModel):
    """A secret for the API, stored only as a hash; its prefix stays visible."""

    class Scope(models.TextChoices):
        WRITE = "write", "Write events"
        READ = "read", "Read memory and prompts"
        CONFIG = "config", "Change the catalogue and settings"
        ADMIN = "admin", "Manage members and API keys (granted by an owner, in the browser)"

    PREFIX_LENGTH = 12

    name = models.CharField(max_length=200, blank=True)
    prefix = models.CharField(max_length=PREFIX_LENGTH, unique=True)
    key_hash = models.CharField(max_length=64)
    scopes = models.JSONField(default=list)
    created_at = models.DateTimeField(default=timezone.now)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta(WorkspaceOwnedModel.Meta):
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.prefix}… ({', '.join(self.scopes)})"

    @property
    def is_active(self) -> bool:
        return self.revoked_at is None

    def has_scope(self, scope: str) -> bool:
        return scope in self.scopes

    @staticmethod
    def hash_of(raw_key: str) -> str:
        """Return the SHA-256 hex digest (keys are 256 random bits: no salt or stretching)."""
        return hashlib.sha256(raw_key.encode()).hexdigest()

    def matches(self, raw_key: str) -> bool:
        """Compare in constant time, so timing tells nothing about the stored hash."""
        return hmac.compare_digest(self.key_hash, self.hash_of(raw_key))

    @staticmethod
    def generate() -> tuple[str, str]:
        """Return a new raw key and its visible prefix."""
        prefix = f"pk_{secrets.token_hex(4)}_"  # 12 characters: PREFIX_LENGTH
        return prefix + secrets.token_urlsafe(32), prefix


class LabelSet(WorkspaceOwnedModel):
    """A family of labels, e.g. value proposition, tone, channel, offer."""

    VALUE_PROPOSITION = "value_proposition"
    CHANNEL = "channel"

    slug = models.SlugField(max_length=64, validators=[slug_validator])
    name = models.CharField(max_length=200)
    description = models.TextField(blank=True)
    multiple = models.BooleanField(
        default=False, help_text="Whether a message may carry several labels of this set."
    )
    active = models.BooleanField(default=True)
    version = models.PositiveIntegerField(default=1)

    class Meta(WorkspaceOwnedModel.Meta):
        ordering = ["slug"]
        constraints = [
            models.UniqueConstraint(fields=["workspace", "slug"], name="labelset_unique_slug")
        ]

    def __str__(self) -> str:
        return self.name


class Label(WorkspaceOwnedModel):
    """One tag a message can carry; value propositions are labels of that set."""

    label_set = models.ForeignKey(LabelSet, on_delete=models.CASCADE, related_name="labels")
    slug = models.SlugField(max_length=64, validators=[slug_validator])
    name = models.CharField(max_length=200)
    description = models.TextField(blank=True)
    prompt_phrase = models.CharField(
        max_length=300, blank=True, help_text="How a prompt names this label, e.g. 'convenience'."
    )
    boost = models.FloatField(
        default=0.0,
        validators=[MinValueValidator(-1.0), MaxValueValidator(1.0)],
        help_text="The marketer's nudge, from -1 (avoid) to +1 (prefer).",
    )
    # Who set the boost, when, and through what (a user's name or an API key's), for provenance.
    boost_set_by = models.CharField(max_length=200, blank=True)
    boost_set_at = models.DateTimeField(null=True, blank=True)
    active = models.BooleanField(default=True)
    version = models.PositiveIntegerField(default=1)

    class Meta(WorkspaceOwnedModel.Meta):
        ordering = ["label_set__slug", "slug"]
        constraints = [
            models.UniqueConstraint(fields=["label_set", "slug"], name="label_unique_slug_in_set"),
            models.CheckConstraint(
                condition=models.Q(boost__gte=-1.0) & models.Q(boost__lte=1.0),
                name="label_boost_in_range",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.label_set.slug}:{self.slug}"

    @property
    def phrase(self) -> str:
        return self.prompt_phrase or self.name


class Message(WorkspaceOwnedModel):
    """A message a customer can receive, tagged with labels."""

    key = models.CharField(max_length=200)
    # The message's labels in the `channel` set, '+'-joined: written by the catalogue services
    # from those labels, never edited on its own (docs/decisions/0200).
    channel = models.CharField(
        max_length=64,
        blank=True,
        editable=False,
        help_text="Written from the message's labels in the `channel` set.",
    )
    subject = models.CharField(max_length=500, blank=True)
    body = models.TextField(blank=True)
    labels = models.ManyToManyField(Label, blank=True, related_name="messages")
    active = models.BooleanField(default=True)
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)
    version = models.PositiveIntegerField(default=1)

    class Meta(WorkspaceOwnedModel.Meta):
        ordering = ["key"]
        constraints = [
            models.UniqueConstraint(fields=["workspace", "key"], name="message_unique_key")
        ]

    def __str__(self) -> str:
        return self.key

    @property
    def text(self) -> str:
        return "\n".join(part for part in (self.subject, self.body) if part)


class PromptTemplate(WorkspaceOwnedModel):
    """A named system-prompt template; its text lives in numbered versions."""

    slug = models.SlugField(max_length=64, validators=[slug_validator])
    name = models.CharField(max_length=200)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta(WorkspaceOwnedModel.Meta):
        ordering = ["slug"]
        constraints = [
            models.UniqueConstraint(fields=["workspace", "slug"], name="prompttemplate_unique_slug")
        ]

    def __str__(self) -> str:
        return self.name

    @property
    def current_version(self) -> "PromptTemplateVersion | None":
        return self.versions.order_by("-number").first()


class PromptTemplateVersion(models.Model):
    """One saved text of a template; saving makes a new version, never an edit."""

    template = models.ForeignKey(PromptTemplate, on_delete=models.CASCADE, related_name="versions")
    number = models.PositiveIntegerField()
    text = models.TextField()
    note = models.CharField(max_length=300, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL
    )
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["template", "-number"]
        constraints = [
            models.UniqueConstraint(fields=["template", "number"], name="templateversion_unique")
        ]

    def __str__(self) -> str:
        return f"{self.template} v{self.number}"


# Each holdout at most half the audience: beyond that Primer is the holdout.
HOLDOUT_MAX = 0.5
# Exploring at random more than half the time would make Primer's arm mostly a random arm.
EXPLORE_SHARE_MAX = 0.5
EXPLORE_SHARE_DEFAULT = 0.1


class Campaign(WorkspaceOwnedModel):
    """A set of messages toward a goal, with its own window and prompt template."""

    class Exploration(models.TextChoices):
        THOMPSON = "thompson", "Thompson sampling"
        EPSILON = "epsilon", "Primer's best, a fixed share at random"

    slug = models.SlugField(max_length=64, validators=[slug_validator])
    name = models.CharField(max_length=200)
    goal_event = models.CharField(
        max_length=200, blank=True, help_text="Blank: the workspace's goal event."
    )
    attribution_window_h = models.FloatField(
        null=True,
        blank=True,
        validators=[MinValueValidator(0.01)],
        help_text="Blank: the workspace's window.",
    )
    messages = models.ManyToManyField(Message, blank=True, related_name="campaigns")
    prompt_template = models.ForeignKey(
        PromptTemplate, null=True, blank=True, on_delete=models.SET_NULL, related_name="campaigns"
    )
    guidance = models.TextField(blank=True, help_text="The marketer's guidance for the LLM.")
    # A trait filter (memory.audiences): who the campaign may reach; empty: everyone.
    audience = models.JSONField(default=dict, blank=True)
    starts_at = models.DateTimeField(null=True, blank=True)
    ends_at = models.DateTimeField(null=True, blank=True)
    # Holdouts: the shares of the audience served a random eligible message, and served with no
    # memory (the average customer's prompt); Primer chooses for the rest (docs/decisions/0602).
    holdout_random = models.FloatField(
        default=0.0,
        validators=[MinValueValidator(0.0), MaxValueValidator(HOLDOUT_MAX)],
        help_text="Share of customers served a random eligible message (0 to 0.5).",
    )
    holdout_no_memory = models.FloatField(
        default=0.0,
        validators=[MinValueValidator(0.0), MaxValueValidator(HOLDOUT_MAX)],
        help_text="Share of customers whose prompt is rendered without their memory (0 to 0.5).",
    )
    # How Primer's arm explores, so that its decisions stay evaluable (docs/decisions/0605).
    exploration = models.CharField(
        max_length=16,
        choices=Exploration.choices,
        default=Exploration.THOMPSON,
        help_text="Thompson: explores where the memory is unsure. Epsilon: serves Primer's best "
        "but for a fixed share of decisions, drawn at random.",
    )
    explore_share = models.FloatField(
        default=EXPLORE_SHARE_DEFAULT,
        validators=[MinValueValidator(0.0), MaxValueValidator(EXPLORE_SHARE_MAX)],
        help_text="Epsilon: the share of decisions drawn at random among the eligible messages "
        "(0 to 0.5; at least 1% of each message's chances whatever it says).",
    )
    active = models.BooleanField(default=True)
    created_at = models.DateTimeField(default=timezone.now)
    version = models.PositiveIntegerField(default=1)

    class Meta(WorkspaceOwnedModel.Meta):
        ordering = ["slug"]
        constraints = [
            models.UniqueConstraint(fields=["workspace", "slug"], name="campaign_unique_slug"),
            models.CheckConstraint(
                condition=models.Q(explore_share__gte=0.0)
                & models.Q(explore_share__lte=EXPLORE_SHARE_MAX),
                name="campaign_explore_share_in_range",
            ),
            models.CheckConstraint(
                condition=models.Q(holdout_random__gte=0.0)
                & models.Q(holdout_random__lte=HOLDOUT_MAX)
                & models.Q(holdout_no_memory__gte=0.0)
                & models.Q(holdout_no_memory__lte=HOLDOUT_MAX),
                name="campaign_holdouts_in_range",
            ),
        ]

    @property
    def holdout_shares(self) -> dict[str, float]:
        """Return the holdout arms' shares, keyed as memory.scoring.exploration names them."""
        return {"random": self.holdout_random, "no_memory": self.holdout_no_memory}

    @staticmethod
    def live_q(now) -> models.Q:
        """The campaigns live at `now`: active and not ended (their messages are stored for
        every customer, docs/decisions/0606)."""
        return models.Q(active=True) & (models.Q(ends_at__isnull=True) | models.Q(ends_at__gt=now))

    @property
    def is_live(self) -> bool:
        return self.active and (self.ends_at is None or self.ends_at > timezone.now())

    @property
    def has_holdouts(self) -> bool:
        return self.holdout_random > 0 or self.holdout_no_memory > 0

    def __str__(self) -> str:
        return self.name

    @property
    def effective_goal_event(self) -> str:
        return self.goal_event or self.workspace.goal_event

    @property
    def effective_attribution_window_h(self) -> float:
        return self.attribution_window_h or self.workspace.attribution_window_h


class PromptSettings(WorkspaceOwnedModel):
    """A workspace's default prompt template and guidance, used when no campaign is chosen."""

    template = models.ForeignKey(
        PromptTemplate, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    guidance = models.TextField(
        blank=True, help_text="The marketer's default guidance for the LLM (a campaign's wins)."
    )

    class Meta(WorkspaceOwnedModel.Meta):
        constraints = [
            models.UniqueConstraint(fields=["workspace"], name="promptsettings_one_per_workspace")
        ]


class Webhook(WorkspaceOwnedModel):
    """A URL that receives each customer's prompt when it changes, signed with its secret."""

    url = models.URLField(max_length=500)
    description = models.CharField(max_length=200, blank=True)
    secret = models.CharField(max_length=100)
    campaign = models.ForeignKey(
        Campaign,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="webhooks",
        help_text="Whose template and guidance render the prompts; blank: the workspace default.",
    )
    active = models.BooleanField(default=True)
    created_at = models.DateTimeField(default=timezone.now)
    secret_rotated_at = models.DateTimeField(null=True, blank=True)
    version = models.PositiveIntegerField(default=1)

    class Meta(WorkspaceOwnedModel.Meta):
        ordering = ["created_at", "id"]

    def __str__(self) -> str:
        return self.url


class WebhookDelivery(WorkspaceOwnedModel):
    """One signed POST of a batch of changed prompts, with every attempt's outcome."""

    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        RETRYING = "retrying", "Retrying"
        SUCCEEDED = "succeeded", "Succeeded"
        FAILED = "failed", "Failed"

    webhook = models.ForeignKey(Webhook, on_delete=models.CASCADE, related_name="deliveries")
    event = models.CharField(max_length=64, default="prompts.changed")
    run_id = models.PositiveBigIntegerField(
        null=True, blank=True, help_text="The recompute run that changed these prompts."
    )
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING)
    body = models.TextField()
    # [[customer_pk, content_hash], ...]: recorded as delivered when the receiver says 2xx.
    hashes = models.JSONField(default=list, blank=True)
    prompt_count = models.PositiveIntegerField(default=0)
    attempts = models.PositiveIntegerField(default=0)
    response_code = models.PositiveSmallIntegerField(null=True, blank=True)
    error = models.TextField(blank=True)
    duration_ms = models.FloatField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    last_attempt_at = models.DateTimeField(null=True, blank=True)
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    delivered_at = models.DateTimeField(null=True, blank=True)

    class Meta(WorkspaceOwnedModel.Meta):
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["webhook", "-created_at"], name="webhookdelivery_recent")]

    def __str__(self) -> str:
        return f"{self.event} #{self.pk} to {self.webhook_id}: {self.status}"


class CampaignTally(WorkspaceOwnedModel):
    """A campaign's sends and the goals credited to them, counted off the request path.

    Counting reads every send of the campaign's messages (1.4M of them in the 10M-event bench:
    seconds), so a task counts after each recompute and when a page finds the count made for an
    older version of the campaign; the page shows the stored count and when it was made
    (docs/decisions/0255-campaign-numbers-counted-by-a-task.md).
    """

    campaign = models.OneToOneField(Campaign, on_delete=models.CASCADE, related_name="tally")
    campaign_version = models.PositiveIntegerField(default=0, help_text="The version counted.")
    window_h = models.FloatField(null=True, blank=True)
    sends = models.PositiveBigIntegerField(null=True, blank=True)
    credited = models.PositiveBigIntegerField(null=True, blank=True)
    counted_at = models.DateTimeField(null=True, blank=True)
    # When a page last asked for a count; a count asked for long ago and not made is asked again.
    requested_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"tally of {self.campaign}"


class WebhookPromptHash(WorkspaceOwnedModel):
    """The content hash of the prompt last delivered to a webhook for a customer."""

    webhook = models.ForeignKey(Webhook, on_delete=models.CASCADE, related_name="prompt_hashes")
    customer = models.ForeignKey(
        "memory.Customer", on_delete=models.CASCADE, related_name="webhook_prompt_hashes"
    )
    content_hash = models.CharField(max_length=64)
    delivered_at = models.DateTimeField()

    class Meta(WorkspaceOwnedModel.Meta):
        constraints = [
            models.UniqueConstraint(fields=["webhook", "customer"], name="webhookhash_unique")
        ]


class AuditEntry(WorkspaceOwnedModel):
    """One configuration change: who, when, which object, its fields before and after."""

    class Action(models.TextChoices):
        CREATE = "create", "Created"
        UPDATE = "update", "Changed"
        ARCHIVE = "archive", "Archived"
        RESTORE = "restore", "Restored"
        DELETE = "delete", "Deleted"
        EXPORT = "export", "Exported"

    at = models.DateTimeField(default=timezone.now)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    api_key = models.ForeignKey(
        ApiKey, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    # Who, as shown: a user name, "API key <name> (<prefix>)" or "system"; kept if they go.
    actor = models.CharField(max_length=300)
    action = models.CharField(max_length=16, choices=Action.choices)
    object_type = models.CharField(max_length=64)
    object_id = models.CharField(max_length=64)
    object_repr = models.CharField(max_length=300)
    before = models.JSONField(null=True, blank=True)
    after = models.JSONField(null=True, blank=True)

    class Meta(WorkspaceOwnedModel.Meta):
        ordering = ["-at", "-id"]
        indexes = [
            models.Index(fields=["workspace", "-at"], name="audit_recent"),
            models.Index(fields=["workspace", "object_type", "object_id"], name="audit_object"),
        ]

    def __str__(self) -> str:
        return f"{self.actor} {self.action} {self.object_type} {self.object_repr}"

    def changed_fields(self) -> list[tuple[str, object, object]]:
        """Return (field, before, after) for every field whose value changed."""
        before, after = self.before or {}, self.after or {}
        return [
            (name, before.get(name), after.get(name))
            for name in sorted(before.keys() | after.keys())
            if before.get(name) != after.get(name)
        ]


class LoginFailure(models.Model):
    """A failed sign-in (login page or admin), kept to lock guessing out (config/login_throttle)."""

    username = models.CharField(max_length=150)
    address = models.CharField(max_length=45, blank=True)
    failed_at = models.DateTimeField(default=timezone.now)

    class Meta:
        indexes = [
            models.Index(fields=["username", "failed_at"], name="loginfailure_user"),
            models.Index(fields=["address", "failed_at"], name="loginfailure_address"),
        ]

    def __str__(self) -> str:
        return f"{self.username} from {self.address} at {self.failed_at}"


class Guardrail(WorkspaceOwnedModel):
    """A rule that forbids a send at some moment (docs/decisions/0260): checked when read."""

    class Kind(models.TextChoices):
        FREQUENCY_CAP = "frequency_cap", "Frequency cap"
        ELIGIBILITY = "eligibility", "Eligibility"
        AFTER_EVENT = "after_event", "Not within hours after an event"
        QUIET_HOURS = "quiet_hours", "Quiet hours"

    class Period(models.TextChoices):
        DAY = "day", "a day"
        WEEK = "week", "a week"

    name = models.CharField(max_length=200, help_text="How pages and reasons name the rule.")
    kind = models.CharField(max_length=16, choices=Kind.choices)
    # Scope: a cap counts sends carrying the label (none: every send); eligibility applies to a
    # message or a campaign's messages; an after-event rule to any of the three (none: all).
    label = models.ForeignKey(
        Label, null=True, blank=True, on_delete=models.CASCADE, related_name="guardrails"
    )
    message = models.ForeignKey(
        Message, null=True, blank=True, on_delete=models.CASCADE, related_name="guardrails"
    )
    campaign = models.ForeignKey(
        Campaign, null=True, blank=True, on_delete=models.CASCADE, related_name="guardrails"
    )
    limit = models.PositiveIntegerField(
        null=True, blank=True, help_text="Frequency cap: at most this many sends per period."
    )
    period = models.CharField(max_length=8, choices=Period.choices, blank=True)
    # Eligibility: a trait filter (memory.audiences) the customer must match.
    audience = models.JSONField(default=dict, blank=True)
    event_name = models.CharField(max_length=200, blank=True)
    hours = models.FloatField(
        null=True, blank=True, validators=[MinValueValidator(0.01)], help_text="After-event window."
    )
    quiet_start = models.TimeField(null=True, blank=True, help_text="Local time quiet hours begin.")
    quiet_end = models.TimeField(null=True, blank=True, help_text="Local time they end.")
    note = models.TextField(blank=True)
    active = models.BooleanField(default=True)
    created_by = models.CharField(max_length=300, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    version = models.PositiveIntegerField(default=1)

    class Meta(WorkspaceOwnedModel.Meta):
        ordering = ["kind", "name", "id"]
        indexes = [models.Index(fields=["workspace", "active"], name="guardrail_active")]

    def __str__(self) -> str:
        return self.name


class Override(WorkspaceOwnedModel):
    """A marketer's word on one label's weight for a customer or a segment (decision 0260).

    Configuration, not memory: a recompute never touches it. The workspace-wide Label.boost is
    the override for everyone and is not stored here.
    """

    class Action(models.TextChoices):
        PIN = "pin", "Pin the weight"
        RAISE = "raise", "Raise"
        LOWER = "lower", "Lower"
        FORGET = "forget", "Forget (use the population prior)"

    customer_external_id = models.CharField(
        max_length=255, blank=True, help_text="One customer, by your id for them."
    )
    # Or a segment: a trait filter (memory.audiences); exactly one of the two scopes is set.
    segment = models.JSONField(default=dict, blank=True)
    label = models.ForeignKey(Label, on_delete=models.CASCADE, related_name="overrides")
    action = models.CharField(max_length=8, choices=Action.choices)
    value = models.FloatField(
        null=True,
        blank=True,
        validators=[MinValueValidator(0.0), MaxValueValidator(1.0)],
        help_text="Pin: the weight (0: never). Raise/lower: the strength, 0 to 1.",
    )
    note = models.TextField(blank=True)
    expires_at = models.DateTimeField(null=True, blank=True)
    active = models.BooleanField(default=True)
    created_by = models.CharField(max_length=300, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    version = models.PositiveIntegerField(default=1)

    class Meta(WorkspaceOwnedModel.Meta):
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(fields=["workspace", "customer_external_id"], name="override_customer"),
        ]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(value__isnull=True)
                | (models.Q(value__gte=0.0) & models.Q(value__lte=1.0)),
                name="override_value_in_range",
            )
        ]

    def __str__(self) -> str:
        who = f"customer {self.customer_external_id}" if self.customer_external_id else "a segment"
        return f"{self.action} {self.label} for {who}"
