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

from campaigns.scoping import WorkspaceOwnedModel

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


class ApiKey(WorkspaceOwnedModel):
    """A secret for the API, stored only as a hash; its prefix stays visible."""

    class Scope(models.TextChoices):
        WRITE = "write", "Write events"
        READ = "read", "Read memory and prompts"

    PREFIX_LENGTH = 12

    name = models.CharField(max_length=200, blank=True)
    prefix = models.CharField(max_length=PREFIX_LENGTH, unique=True)
    key_hash = models.CharField(max_length=64)
    scopes = models.JSONField(default=list)
    created_at = models.DateTimeField(default=timezone.now)
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

    slug = models.SlugField(max_length=64, validators=[slug_validator])
    name = models.CharField(max_length=200)
    description = models.TextField(blank=True)

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
    active = models.BooleanField(default=True)

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
    channel = models.CharField(max_length=64, blank=True)
    subject = models.CharField(max_length=500, blank=True)
    body = models.TextField(blank=True)
    labels = models.ManyToManyField(Label, blank=True, related_name="messages")
    active = models.BooleanField(default=True)
    created_at = models.DateTimeField(default=timezone.now)

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


class Campaign(WorkspaceOwnedModel):
    """A set of messages toward a goal, with its own window and prompt template."""

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
    active = models.BooleanField(default=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta(WorkspaceOwnedModel.Meta):
        ordering = ["slug"]
        constraints = [
            models.UniqueConstraint(fields=["workspace", "slug"], name="campaign_unique_slug")
        ]

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
