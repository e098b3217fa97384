"""What Primer learns: customers and their events, and the memory derived from them."""

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone

from campaigns.models.scoping import WorkspaceOwnedModel


class Customer(WorkspaceOwnedModel):
    """A person, known by the workspace's own id for them."""

    # The unique (workspace, external id) index serves every workspace lookup; a second index
    # on the workspace alone tempted the planner, for a workspace newer than the last ANALYZE,
    # to scan all its customers per id looked up (ingestion's lookup, seconds a batch).
    workspace = models.ForeignKey(
        "campaigns.Workspace", on_delete=models.CASCADE, related_name="customers", db_index=False
    )
    external_id = models.CharField(max_length=255)
    anonymous_id = models.CharField(max_length=255, blank=True)
    traits = models.JSONField(default=dict, blank=True)
    first_seen_at = models.DateTimeField(null=True, blank=True)
    last_seen_at = models.DateTimeField(null=True, blank=True)

    class Meta(WorkspaceOwnedModel.Meta):
        ordering = ["external_id"]
        constraints = [
            models.UniqueConstraint(fields=["workspace", "external_id"], name="customer_unique_id")
        ]

    def __str__(self) -> str:
        return self.external_id


class Event(WorkspaceOwnedModel):
    """Something a customer did or was sent, as received."""

    # The composite indexes below start with these columns; single-column ones would only slow
    # every insert down.
    # No database-level foreign keys (db_constraint=False), as on the derived tables: their
    # checks ran per event at commit, about a third of PostgreSQL's work per stored event.
    # The store creates or finds each event's customer, and resolves its message id, in the
    # event's own transaction; Django still cascades deletes (and sets a deleted message's
    # events to null). What the database no longer refuses: events committed for a customer
    # deleted at that very moment (e.g. in the admin) would stay behind, pointing at no one.
    workspace = models.ForeignKey(
        "campaigns.Workspace",
        on_delete=models.CASCADE,
        related_name="events",
        db_index=False,
        db_constraint=False,
    )
    customer = models.ForeignKey(
        Customer,
        on_delete=models.CASCADE,
        related_name="events",
        db_index=False,
        db_constraint=False,
    )
    name = models.CharField(max_length=200)
    occurred_at = models.DateTimeField()
    received_at = models.DateTimeField(default=timezone.now)
    properties = models.JSONField(default=dict, blank=True)
    message = models.ForeignKey(
        "campaigns.Message",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="events",
        db_constraint=False,
        db_index=False,  # the partial index below: most events name no message
    )
    # The key the event named, kept even when no such message exists yet (flagged in the UI).
    message_key = models.CharField(max_length=200, blank=True)
    dedup_key = models.CharField(max_length=255)

    class Meta(WorkspaceOwnedModel.Meta):
        constraints = [
            models.UniqueConstraint(
                fields=["workspace", "dedup_key"], name="event_unique_dedup_key"
            )
        ]
        indexes = [
            models.Index(fields=["customer", "occurred_at"], name="event_customer_timeline"),
            models.Index(fields=["workspace", "occurred_at"], name="event_workspace_time"),
            models.Index(fields=["workspace", "received_at"], name="event_workspace_received"),
            # Deleting a message sets its events' ids null, and prompts count recent sends of a
            # message; events without a message (most of them) need no entry.
            models.Index(
                fields=["message"], name="event_message", condition=Q(message__isnull=False)
            ),
        ]

    def __str__(self) -> str:
        return f"{self.name} @ {self.occurred_at:%Y-%m-%d %H:%M}"

    @property
    def refers_to_unknown_message(self) -> bool:
        return bool(self.message_key) and self.message_id is None


class EventName(WorkspaceOwnedModel):
    """An event name seen in a workspace with its 64-bit hash: the events reader's dictionary.

    Events leave PostgreSQL in fixed-width binary rows that carry hashtextextended(name, 0)
    instead of the name; this table maps the hashes back. The reader fills it itself when it
    meets a hash it does not know, so no write path has to maintain it.
    """

    name = models.CharField(max_length=200)
    name_hash = models.BigIntegerField()

    class Meta(WorkspaceOwnedModel.Meta):
        constraints = [
            models.UniqueConstraint(fields=["workspace", "name"], name="eventname_unique")
        ]

    def __str__(self) -> str:
        return self.name


class DerivedRow(WorkspaceOwnedModel):
    """Base of the rows a recompute writes; they are replaced wholesale by each recompute.

    Database-level foreign-key checks would double the write-back's cost and guard nothing
    the swap does not (Django still cascades deletes), so these tables have none.
    """

    workspace = models.ForeignKey(
        "campaigns.Workspace",
        on_delete=models.CASCADE,
        related_name="%(class)ss",
        db_constraint=False,
    )

    class Meta(WorkspaceOwnedModel.Meta):
        abstract = True


class CustomerLabelWeight(DerivedRow):
    """Associative memory: how a customer responds to one label (a Beta posterior)."""

    customer = models.ForeignKey(
        Customer,
        on_delete=models.CASCADE,
        related_name="label_weights",
        db_constraint=False,
        db_index=False,  # the unique (customer, label) index serves customer lookups
    )
    label = models.ForeignKey(
        "campaigns.Label",
        on_delete=models.CASCADE,
        related_name="customer_weights",
        db_constraint=False,
        db_index=False,  # looked up only when a label is deleted
    )
    alpha = models.FloatField()
    beta = models.FloatField()
    exposures = models.FloatField(help_text="Discounted count of sends carrying the label.")
    conversions = models.FloatField(help_text="Discounted count of those followed by the goal.")
    weight = models.FloatField(
        help_text="Posterior mean response rate (weight_low/high: its interval)."
    )
    weight_low = models.FloatField()
    weight_high = models.FloatField()
    thompson_share = models.FloatField(
        null=True, help_text="Exploration: share of Thompson draws the label wins in its set."
    )
    evidence = models.FloatField(help_text="alpha + beta")
    lift = models.FloatField(help_text="Response rate over the customer's own baseline.")
    computed_at = models.DateTimeField()

    class Meta(DerivedRow.Meta):
        constraints = [
            models.UniqueConstraint(fields=["customer", "label"], name="labelweight_unique")
        ]


class CustomerMessageHabituation(DerivedRow):
    """Non-associative memory: how worn a message is for a customer."""

    customer = models.ForeignKey(
        Customer,
        on_delete=models.CASCADE,
        related_name="habituation",
        db_constraint=False,
        db_index=False,  # the unique (customer, message) index serves customer lookups
    )
    message = models.ForeignKey(
        "campaigns.Message",
        on_delete=models.CASCADE,
        related_name="habituation",
        db_constraint=False,
        db_index=False,  # looked up only when a message is deleted
    )
    load = models.FloatField(help_text="Sum of similarity to past sends, decayed by age.")
    sends = models.PositiveIntegerField(default=0, help_text="Times this exact message was sent.")
    last_sent_at = models.DateTimeField(null=True, blank=True)
    computed_at = models.DateTimeField()

    class Meta(DerivedRow.Meta):
        constraints = [
            models.UniqueConstraint(fields=["customer", "message"], name="habituation_unique")
        ]


class CustomerNextBest(DerivedRow):
    """A customer's ranked next best message as of the recompute, with what sets it apart.

    The recompute keeps each customer's PRIMER_NEXT_BEST_STORED best active messages (label
    boosts honoured); rules that depend on the moment filter them when they are read. Rows
    without a customer are the population's list, for customers without events
    (docs/decisions/0106-stored-next-best.md).
    """

    customer = models.ForeignKey(
        Customer,
        null=True,
        on_delete=models.CASCADE,
        related_name="next_best",
        db_constraint=False,
        db_index=False,  # the unique (customer, rank) index serves customer lookups
    )
    message = models.ForeignKey(
        "campaigns.Message",
        on_delete=models.CASCADE,
        related_name="next_best",
        db_constraint=False,
        db_index=False,  # looked up only when a message is deleted
    )
    rank = models.PositiveSmallIntegerField()
    score = models.FloatField(help_text="logit p_goal + ln(boost odds) x the labels' mean boost.")
    p_goal = models.FloatField()
    boost = models.FloatField(help_text="Mean boost of the message's labels, -1 to 1.")
    pull = models.FloatField(help_text="Odds multiplier of the message's own pull.")
    labels = models.FloatField(help_text="Odds multiplier of their response to its labels.")
    wear_out = models.FloatField(help_text="Odds multiplier of wear-out from similar sends.")
    spread = models.FloatField(
        help_text="Sd of the labels' contribution on the logit scale: exploration draws with it."
    )
    cold_start = models.BooleanField(default=False, help_text="The population's list.")
    computed_at = models.DateTimeField()

    class Meta(DerivedRow.Meta):
        constraints = [models.UniqueConstraint(fields=["customer", "rank"], name="nextbest_unique")]


class PrimingIndicator(WorkspaceOwnedModel):
    """Priming memory: how much an action raises the chance of the goal soon after."""

    event_name = models.CharField(max_length=200)
    lift = models.FloatField()
    odds_ratio = models.FloatField()
    odds_ratio_low = models.FloatField()
    odds_ratio_high = models.FloatField()
    support = models.PositiveIntegerField(help_text="Occurrences counted.")
    median_lead_h = models.FloatField(null=True, blank=True)
    computed_at = models.DateTimeField()

    class Meta(WorkspaceOwnedModel.Meta):
        ordering = ["-lift"]
        constraints = [
            models.UniqueConstraint(fields=["workspace", "event_name"], name="priming_unique_event")
        ]


class CustomerState(DerivedRow):
    """Per-customer summary: how primed now, baseline, and when memory was last computed."""

    customer = models.OneToOneField(
        Customer, on_delete=models.CASCADE, related_name="state", db_constraint=False
    )
    primed_score = models.FloatField(default=0.0)
    baseline_rate = models.FloatField(null=True, blank=True)
    # The goal numbers the scoring model weighs, stored so a prompt can state them cheaply.
    goal_count = models.PositiveIntegerField(default=0, help_text="Goals before the memory time.")
    observed_hours = models.FloatField(
        null=True, blank=True, help_text="Hours from the customer's first event to memory time."
    )
    hours_since_goal = models.FloatField(null=True, blank=True)
    frequency_rate_h = models.FloatField(
        null=True, blank=True, help_text="Goal rate per hour, shrunk toward the segment's."
    )
    segment_rate_h = models.FloatField(
        null=True, blank=True, help_text="Goal rate per hour of the customer's trait segment."
    )
    signals = models.JSONField(default=list, blank=True)
    last_recompute_at = models.DateTimeField(null=True, blank=True)

    class Meta(DerivedRow.Meta):
        # The customers page sorted by either, highest first (each partition has its own).
        indexes = [
            models.Index(fields=["primed_score"], name="customerstate_primed"),
            models.Index(fields=["baseline_rate"], name="customerstate_baseline"),
        ]


class RecomputeRun(WorkspaceOwnedModel):
    """One recompute of a workspace's memory, with its progress and outcome."""

    class Status(models.TextChoices):
        QUEUED = "queued", "Queued"
        RUNNING = "running", "Running"
        SUCCEEDED = "succeeded", "Succeeded"
        FAILED = "failed", "Failed"

    class Mode(models.TextChoices):
        FULL = "full", "Full"
        INCREMENTAL = "incremental", "Incremental"

    status = models.CharField(max_length=16, choices=Status.choices, default=Status.QUEUED)
    mode = models.CharField(max_length=16, choices=Mode.choices, default=Mode.FULL)
    as_of = models.DateTimeField(null=True, blank=True)
    shards_total = models.PositiveIntegerField(default=0)
    shards_done = models.PositiveIntegerField(default=0)
    customers = models.PositiveIntegerField(default=0)
    events = models.PositiveBigIntegerField(default=0)
    timings = models.JSONField(default=dict, blank=True)
    stats = models.JSONField(default=dict, blank=True)
    # The population statistics every shard scores with (priors, priming table, model), as Arrow.
    population = models.BinaryField(null=True, blank=True)
    error = models.TextField(blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta(WorkspaceOwnedModel.Meta):
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["workspace", "-created_at"], name="recompute_recent")]

    @property
    def duration_s(self) -> float | None:
        if self.started_at is None or self.finished_at is None:
            return None
        return (self.finished_at - self.started_at).total_seconds()

    @property
    def progress(self) -> float:
        if self.shards_total == 0:
            return 1.0 if self.status == self.Status.SUCCEEDED else 0.0
        return self.shards_done / self.shards_total


class RecomputeShard(models.Model):
    """One bucket of customers of a recompute: its computed rows wait here until the swap.

    Shards are written idempotently (one row per run and index, replaced on retry), so a
    worker that dies mid-shard is simply run again; the derived tables change only when the
    run is finished, in one transaction.
    """

    run = models.ForeignKey(RecomputeRun, on_delete=models.CASCADE, related_name="shard_results")
    index = models.PositiveIntegerField()
    customers = models.PositiveIntegerField(default=0)
    events = models.PositiveBigIntegerField(default=0)
    payload = models.BinaryField(help_text="The shard's derived rows, as Arrow IPC frames.")
    seconds = models.FloatField(default=0.0)
    finished_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["run", "index"], name="recomputeshard_unique")
        ]

    def __str__(self) -> str:
        return f"run {self.run_id} shard {self.index}"


def import_upload_to(job: "EventImport", filename: str) -> str:
    """Keep each import's files in a folder of their own, under their canonical names."""
    return f"imports/{job.workspace_id}/{job.folder}/{filename}"


class EventImport(WorkspaceOwnedModel):
    """A file import started in the browser or over the API: its files, progress and report.

    The task reads the stored files from MEDIA_ROOT (shared by web and workers) and deletes
    them once imported. Events deduplicate by messageId, so running a job again (a lost
    worker) adds only what is missing.
    """

    class Status(models.TextChoices):
        QUEUED = "queued", "Queued"
        RUNNING = "running", "Running"
        SUCCEEDED = "succeeded", "Succeeded"
        FAILED = "failed", "Failed"

    class Format(models.TextChoices):
        JSONL = "jsonl", "Segment JSONL"
        CSV = "csv", "CSV"
        STARBUCKS = "starbucks", "Starbucks rewards data"

    format = models.CharField(max_length=16, choices=Format.choices)
    # As uploaded, for the list; the stored files carry canonical names in `folder`.
    file_name = models.CharField(max_length=500)
    file_size = models.PositiveBigIntegerField(default=0)
    folder = models.CharField(max_length=32)
    events_file = models.FileField(upload_to=import_upload_to, max_length=500, blank=True)
    portfolio_file = models.FileField(upload_to=import_upload_to, max_length=500, blank=True)
    profile_file = models.FileField(upload_to=import_upload_to, max_length=500, blank=True)
    # The CSV column mapping (CsvMapping's fields); empty for JSONL and Starbucks.
    options = models.JSONField(default=dict, blank=True)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.QUEUED)
    lines_total = models.PositiveBigIntegerField(null=True, blank=True)
    lines_done = models.PositiveBigIntegerField(default=0)
    stored = models.PositiveBigIntegerField(default=0)
    rejected = models.PositiveBigIntegerField(default=0)
    # ImportSummary.counts() when finished; the first bad lines as {source, line, field, reason}.
    summary = models.JSONField(default=dict, blank=True)
    errors = models.JSONField(default=list, blank=True)
    error = models.TextField(blank=True)
    attempts = models.PositiveSmallIntegerField(default=0)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    api_key = models.ForeignKey(
        "campaigns.ApiKey", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    # Who, as shown (a user name or "API key <name> (<prefix>…)"); kept if they go.
    actor = models.CharField(max_length=300)
    created_at = models.DateTimeField(default=timezone.now)
    started_at = models.DateTimeField(null=True, blank=True)
    # Moved by every progress write: a running job whose heartbeat stopped lost its worker.
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta(WorkspaceOwnedModel.Meta):
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["workspace", "-created_at"], name="eventimport_recent")]

    def __str__(self) -> str:
        return f"import {self.pk} of {self.file_name}"

    @property
    def finished(self) -> bool:
        return self.status in {self.Status.SUCCEEDED, self.Status.FAILED}

    @property
    def lost(self) -> bool:
        """Tell whether an unfinished import has shown no progress for PRIMER_IMPORT_STALLED_S."""
        if self.finished:
            return False
        last = self.heartbeat_at or self.created_at
        return (timezone.now() - last).total_seconds() >= settings.PRIMER_IMPORT_STALLED_S

    @property
    def can_run_again(self) -> bool:
        """Tell whether the import may be queued again: failed or lost, its files still kept."""
        return bool(self.events_file) and (self.status == self.Status.FAILED or self.lost)

    @property
    def progress(self) -> float:
        """Return the share of lines read, 0 to 1 (1 once succeeded)."""
        if self.status == self.Status.SUCCEEDED:
            return 1.0
        if not self.lines_total:
            return 0.0
        return min(self.lines_done / self.lines_total, 1.0)


class RecomputeOutbox(models.Model):
    """A debounced recompute that could not be queued (Redis did not answer), kept until it is.

    Written in the ingest transaction, so it commits (or rolls back) with the events it is for;
    the beat's drain task and the next successful enqueue queue it and delete it.
    """

    workspace = models.OneToOneField(
        "campaigns.Workspace", on_delete=models.CASCADE, related_name="+"
    )
    requested_at = models.DateTimeField(default=timezone.now)

    def __str__(self) -> str:
        return f"recompute of workspace {self.workspace_id} asked at {self.requested_at}"


class EventDayCount(models.Model):
    """Events stored per (occurrence day, event name), kept by the ingest path as it stores them.

    `slot` spreads concurrent writers over a few rows per day and name (the writer's backend
    id modulo a small number), so two ingest transactions rarely wait on one counter row;
    readers sum the slots. Deleting events does not decrement these counts.
    """

    workspace = models.ForeignKey(
        "campaigns.Workspace", on_delete=models.CASCADE, related_name="+", db_constraint=False
    )
    day = models.DateField()
    name = models.CharField(max_length=200)
    slot = models.PositiveSmallIntegerField(default=0)
    events = models.PositiveBigIntegerField(default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["workspace", "day", "name", "slot"], name="eventdaycount_unique"
            )
        ]

    def __str__(self) -> str:
        return f"{self.name} on {self.day}: {self.events}"


class IngestIssueCount(models.Model):
    """Items rejected, or stored late, future-dated or naming an unknown message, per (receipt
    day, kind, reason); kept by the ingest path like EventDayCount."""

    class Kind(models.TextChoices):
        REJECTED = "rejected", "Rejected"
        LATE = "late", "Late"
        FUTURE = "future", "Future-dated"
        UNKNOWN_MESSAGE = "unknown_message", "Naming an unknown message"

    workspace = models.ForeignKey(
        "campaigns.Workspace", on_delete=models.CASCADE, related_name="+", db_constraint=False
    )
    day = models.DateField()
    kind = models.CharField(max_length=16, choices=Kind.choices)
    reason = models.CharField(max_length=200, blank=True)
    slot = models.PositiveSmallIntegerField(default=0)
    count = models.PositiveBigIntegerField(default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["workspace", "day", "kind", "reason", "slot"], name="ingestissue_unique"
            )
        ]

    def __str__(self) -> str:
        return f"{self.kind} {self.reason!r} on {self.day}: {self.count}"


class Decision(WorkspaceOwnedModel):
    """A recommendation Primer served: whom, among which messages, what, how likely, and then
    which send it led to and what followed (docs/decisions/0600-logged-decisions.md).

    Written in bulk (COPY on PostgreSQL) by memory.decisions; matched to sends and resolved
    set-based by the periodic decisions task. Its propensity is the probability with which the
    served message was chosen, so later evaluation can weight by it.
    """

    class Source(models.TextChoices):
        API = "api", "Next-best API"
        COMMAND = "command", "manage.py next_best"
        PROMPT = "prompt", "Campaign prompt"
        EXPORT = "export", "Campaign prompt export"
        WEBHOOK = "webhook", "Campaign prompt webhook"

    class Arm(models.TextChoices):
        NONE = "", "No campaign holdout"
        PRIMER = "primer", "Primer's choice"
        RANDOM = "random", "Random choice"
        NO_MEMORY = "no_memory", "No memory"

    workspace = models.ForeignKey(
        "campaigns.Workspace",
        on_delete=models.CASCADE,
        related_name="decisions",
        db_index=False,  # every index below starts with the workspace or the customer
        db_constraint=False,
    )
    public_id = models.CharField(max_length=32, help_text="The id a send event may carry.")
    customer = models.ForeignKey(
        Customer,
        on_delete=models.CASCADE,
        related_name="decisions",
        db_index=False,  # the matching index starts with the customer
        db_constraint=False,
    )
    campaign = models.ForeignKey(
        "campaigns.Campaign",
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="decisions",
        db_index=False,  # the campaign index below
        db_constraint=False,
    )
    run = models.ForeignKey(
        RecomputeRun,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        db_constraint=False,
        help_text="The recompute whose memory made the decision.",
    )
    source = models.CharField(max_length=16, choices=Source.choices)
    arm = models.CharField(max_length=16, choices=Arm.choices, blank=True, default="")
    policy = models.CharField(
        max_length=16,
        help_text="thompson or epsilon (explored), uniform (random arm) or top (no exploration).",
    )
    eligible = models.JSONField(default=list, help_text="Message ids chosen among, best first.")
    eligible_count = models.PositiveSmallIntegerField(default=0)
    propensities = models.JSONField(
        default=list, help_text="Each eligible message's probability of being served, in order."
    )
    message = models.ForeignKey(
        "campaigns.Message",
        on_delete=models.CASCADE,
        related_name="+",
        db_index=False,
        db_constraint=False,
    )
    propensity = models.FloatField(help_text="Probability the served message was chosen with.")
    primer_message = models.ForeignKey(
        "campaigns.Message",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        db_index=False,
        db_constraint=False,
        help_text="Primer's top choice among the eligible (what it would have served).",
    )
    decided_at = models.DateTimeField()
    window_h = models.FloatField(help_text="The campaign's (or the workspace's) window.")
    expires_at = models.DateTimeField(help_text="A send after this is not matched to it.")
    send_event_id = models.BigIntegerField(null=True, blank=True)
    sent_at = models.DateTimeField(null=True, blank=True)
    matched_by = models.CharField(max_length=16, blank=True, help_text="decision_id or window.")
    goal = models.BooleanField(null=True, help_text="Goal within the window after the send.")
    revenue = models.FloatField(null=True, blank=True, help_text="Goal revenue in that window.")
    resolved_at = models.DateTimeField(null=True, blank=True)

    class Meta(WorkspaceOwnedModel.Meta):
        ordering = ["-decided_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["workspace", "public_id"], name="decision_unique_public_id"
            ),
            # A send is matched to one decision at most, whatever matched it.
            models.UniqueConstraint(
                fields=["workspace", "send_event_id"],
                name="decision_unique_send",
                condition=Q(send_event_id__isnull=False),
            ),
        ]
        indexes = [
            models.Index(
                fields=["customer", "message", "decided_at"],
                name="decision_match",
                condition=Q(send_event_id__isnull=True),
            ),
            models.Index(
                fields=["workspace", "decided_at"],
                name="decision_pending",
                condition=Q(send_event_id__isnull=True),
            ),
            models.Index(
                fields=["workspace", "sent_at"],
                name="decision_unresolved",
                condition=Q(send_event_id__isnull=False, resolved_at__isnull=True),
            ),
            models.Index(fields=["campaign", "arm"], name="decision_campaign_arm"),
        ]

    def __str__(self) -> str:
        return f"decision {self.public_id}"


class UpliftClusters(WorkspaceOwnedModel):
    """One campaign arm's customers and the sums of products of their decision totals, as of
    the last matching run that resolved any of the campaign's decisions.

    The uplift's per-customer variances need every customer's totals; summing them groups the
    campaign's decisions by customer (0.6 s at 500k decisions), so the matching task stores the
    result and the page reads it (docs/decisions/0602, addendum).
    """

    campaign = models.ForeignKey(
        "campaigns.Campaign", on_delete=models.CASCADE, related_name="+", db_constraint=False
    )
    arm = models.CharField(max_length=16, blank=True)
    customers = models.PositiveIntegerField()
    decisions = models.PositiveBigIntegerField(help_text="Resolved decisions summed.")
    products = models.JSONField(help_text="uplift.CUSTOMER_TOTALS pairs -> sums over customers.")
    computed_at = models.DateTimeField()

    class Meta(WorkspaceOwnedModel.Meta):
        constraints = [
            models.UniqueConstraint(fields=["campaign", "arm"], name="uplift_clusters_unique")
        ]

    def __str__(self) -> str:
        return f"uplift clusters of campaign {self.campaign_id}, arm {self.arm or '-'}"


class UpliftCounts(WorkspaceOwnedModel):
    """A campaign's decisions counted per arm, number of eligible messages, whether Primer's
    choice was served and whether resolved, as of the last matching run that counted them.

    Counting groups every decision of the campaign (0.2 s at 500k), so the matching task, which
    writes every outcome, stores the count and the uplift page and API read it
    (docs/decisions/0607-uplift-counted-by-the-matching.md).
    """

    campaign = models.ForeignKey(
        "campaigns.Campaign",
        on_delete=models.CASCADE,
        related_name="+",
        db_constraint=False,
        db_index=False,  # the unique constraint indexes it
    )
    rows = models.JSONField(
        default=list,
        help_text="decision_selectors.CountRow lists: the key, then served, matched, goals, "
        "revenue, revenue squared, revenues reported.",
    )
    counted_at = models.DateTimeField()

    class Meta(WorkspaceOwnedModel.Meta):
        constraints = [
            models.UniqueConstraint(fields=["campaign"], name="uplift_counts_unique_campaign")
        ]

    def __str__(self) -> str:
        return f"uplift counts of campaign {self.campaign_id}"


class SuppressedCustomer(WorkspaceOwnedModel):
    """A customer id whose events the workspace refuses: erased and suppressed, or suppressed
    before any event. Kept as a digest of the id (memory/ingest/suppression.py), so the list
    outlives the data without holding the id itself (docs/decisions/0604)."""

    workspace = models.ForeignKey(
        "campaigns.Workspace",
        on_delete=models.CASCADE,
        related_name="suppressedcustomers",
        db_index=False,  # the unique (workspace, digest) index starts with it
    )
    digest = models.CharField(max_length=64, help_text="SHA-256 of the workspace and the id.")
    suppressed_at = models.DateTimeField(default=timezone.now)
    suppressed_by = models.CharField(max_length=300, blank=True)

    class Meta(WorkspaceOwnedModel.Meta):
        constraints = [
            models.UniqueConstraint(
                fields=["workspace", "digest"], name="suppressed_customer_unique"
            )
        ]

    def __str__(self) -> str:
        return f"suppressed id {self.digest[:12]}…"


class PreferenceExport(WorkspaceOwnedModel):
    """A preference-data export started over the API: its options, progress and result.

    The task renders the pairs into files under MEDIA_ROOT/preference_exports/ and zips them
    (the splits and the dataset card) into `file`, which the API downloads.
    """

    class Status(models.TextChoices):
        QUEUED = "queued", "Queued"
        RUNNING = "running", "Running"
        SUCCEEDED = "succeeded", "Succeeded"
        FAILED = "failed", "Failed"

    format = models.CharField(max_length=8, default="dpo")
    # PreferenceOptions' fields (cutoff as ISO-8601).
    options = models.JSONField(default=dict, blank=True)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.QUEUED)
    stage = models.CharField(max_length=40, blank=True)
    done = models.PositiveBigIntegerField(default=0)
    total = models.PositiveBigIntegerField(default=0)
    # The dataset card's counts once finished.
    counts = models.JSONField(default=dict, blank=True)
    error = models.TextField(blank=True)
    file = models.FileField(upload_to="preference_exports/", max_length=500, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    api_key = models.ForeignKey(
        "campaigns.ApiKey", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    actor = models.CharField(max_length=300)
    created_at = models.DateTimeField(default=timezone.now)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta(WorkspaceOwnedModel.Meta):
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(fields=["workspace", "-created_at"], name="preferenceexport_recent")
        ]

    def __str__(self) -> str:
        return f"preference export {self.pk}"

    @property
    def progress(self) -> float:
        """Return the share of pairs rendered, 0 to 1 (1 once succeeded)."""
        if self.status == self.Status.SUCCEEDED:
            return 1.0
        if not self.total:
            return 0.0
        return min(self.done / self.total, 1.0)
