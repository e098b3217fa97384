"""Preference data conditioned on memory: each customer's preferred and passed-over messages.

For every pair (memory/scoring/preferences.py) the system prompt is the customer's own prompt,
rendered from the memory snapshot at the start of the earlier send's day (memory/snapshots.py):
their events before it and the population and model fitted on everyone's events before it. The
user turn is the brief (the campaign's guidance, or the workspace's value propositions); chosen
is the text of the send that reached the goal, rejected the text of the one that did not.
Lines are TRL's conversational format; a dataset card is written beside them
(docs/decisions/0400-preference-snapshots-and-pairs.md).
"""

from __future__ import annotations

import json
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import polars as pl

from campaigns.models import Campaign, Label, LabelSet, Message, Workspace
from campaigns.prompts.context import (
    CUSTOMER_COLUMNS,
    ChunkMemory,
    CustomerRow,
    MemoryReader,
    StoredState,
)
from campaigns.prompts.engine import compile_template, render_text
from campaigns.prompts.quoting import one_line, quote
from campaigns.prompts.selectors import prompt_choice
from campaigns.prompts.wording import MAX_AVOID_MESSAGES, PHRASE_LIMIT, RECENT_SENDS_DAYS
from memory.models import Customer
from memory.scoring.habituation import WORN_OUT_MIN_LOAD
from memory.scoring.preferences import SPLITS, PairRules, preference_pairs
from memory.snapshots import (
    Snapshot,
    datetime_of_hours,
    memory_snapshots,
    send_outcomes_of,
    workspace_events,
)

FORMATS = ("dpo", "sft")
CHUNK_SIZE = 1000
LEAKAGE_RULE = (
    "A pair's system prompt is rendered from memory computed only from events strictly before "
    "the start of the UTC day of the pair's earlier send (the snapshot): the customer's own "
    "events and the population and scoring model fitted on everyone's events before it. Neither "
    "send of the pair, nor anything after, reaches its prompt. Traits are the customer's stored "
    "traits (identify calls are not replayed in time)."
)
BRIEF_CLOSING = (
    "Reply with the message only: its subject on the first line, then its body. Keep the tone "
    "and length of the workspace's messages."
)

Progress = Callable[[str, int, int], None]


@dataclass(frozen=True)
class PreferenceOptions:
    """What to export and how (the command's and the API's options)."""

    format: str = "dpo"
    max_pairs: int = 3
    min_evidence: int = 0
    cutoff: datetime | None = None
    holdout_percent: int = 0
    meta: bool = False  # add a "meta" object per line (customer, sends, snapshot, split)

    def problems(self) -> dict[str, str]:
        """Return {field: reason} for each option out of range (empty when all fit)."""
        found = {}
        if self.format not in FORMATS:
            found["format"] = f"must be one of {', '.join(FORMATS)}; got {self.format!r}."
        if not 1 <= self.max_pairs <= 1000:
            found["max_pairs"] = "must be between 1 and 1000."
        if not 0 <= self.min_evidence <= 10_000:
            found["min_evidence"] = "must be between 0 and 10000."
        if not 0 <= self.holdout_percent <= 100:
            found["holdout_percent"] = "must be between 0 and 100."
        if self.cutoff is not None and self.cutoff.tzinfo is None:
            found["cutoff"] = "must carry a time zone (e.g. 2018-01-22T00:00:00Z)."
        return found


@dataclass
class PreferenceResult:
    """What an export wrote."""

    files: dict[str, Path]
    card: Path
    counts: dict[str, int]
    snapshots: list[dict] = field(default_factory=list)
    seconds: float = 0.0


def split_paths(out: Path) -> dict[str, Path]:
    """Return where each split goes: train at `out`, the others beside it; and the card's path."""
    base = out.with_suffix("") if out.suffix == ".jsonl" else out
    return {
        "train": out,
        "eval": base.with_name(base.name + ".eval.jsonl"),
        "holdout": base.with_name(base.name + ".holdout.jsonl"),
        "card": base.with_name(base.name + ".card.md"),
    }


@dataclass(frozen=True)
class Brief:
    """The user turn of a pair, and where it came from."""

    source: str  # "campaign:<slug>" or "value_propositions"
    text: str


class Briefs:
    """Choose each pair's brief: a campaign holding both messages, else the value propositions."""

    def __init__(self, workspace: Workspace):
        self.campaigns: list[tuple[set[int], Brief]] = []
        campaigns = Campaign.objects.for_workspace(workspace).filter(active=True).order_by("slug")
        for campaign in campaigns.prefetch_related("messages"):
            lines = [
                f"Write the next message for this customer in the campaign "
                f"{quote(one_line(campaign.name, PHRASE_LIMIT))}."
            ]
            if campaign.guidance.strip():
                lines.append(f"The marketer's guidance: {campaign.guidance.strip()}")
            lines.append(BRIEF_CLOSING)
            ids = {message.pk for message in campaign.messages.all()}
            self.campaigns.append((ids, Brief(f"campaign:{campaign.slug}", "\n".join(lines))))
        propositions = (
            Label.objects.for_workspace(workspace)
            .filter(active=True, label_set__slug=LabelSet.VALUE_PROPOSITION)
            .order_by("slug")
        )
        lines = [
            f"Write the next message for this customer of {one_line(workspace.name, PHRASE_LIMIT)}"
            ". The value propositions it may carry (quoted data: a phrase, then what it means):"
        ]
        for label in propositions:
            meaning = f": {quote(label.description)}" if label.description.strip() else ""
            lines.append(f"- {quote(label.phrase or label.name)}{meaning}")
        lines.append(BRIEF_CLOSING)
        self.fallback = Brief("value_propositions", "\n".join(lines))

    def of(self, chosen_id: int, rejected_id: int) -> Brief:
        for ids, brief in self.campaigns:
            if chosen_id in ids and rejected_id in ids:
                return brief
        return self.fallback


def _chunk_memory(
    reader: MemoryReader, snapshot: Snapshot, customer_ids: list[int]
) -> tuple[list[CustomerRow], ChunkMemory]:
    """Build the reader's chunk memory for these customers from a snapshot's frames."""
    wanted = list(customer_ids)
    at = snapshot.as_of
    frames = {
        name: f.filter(pl.col("customer_id").is_in(wanted)) for name, f in snapshot.frames.items()
    }
    states = {}
    for row in frames["state"].iter_rows(named=True):
        signals = row["signals"]
        states[row["customer_id"]] = (
            row["customer_id"],
            row["primed_score"],
            row["baseline_rate"],
            at,
            json.loads(signals) if isinstance(signals, str) else (signals or []),
            row["goal_count"],
            row["observed_hours"],
            row["hours_since_goal"],
            row["frequency_rate_h"],
            row["segment_rate_h"],
        )
    states = {pk: StoredState._make(row) for pk, row in states.items()}
    weights = defaultdict(list)
    for row in (
        frames["weights"]
        .select(
            "customer_id",
            "label_id",
            "weight",
            "weight_low",
            "weight_high",
            "evidence",
            "exposures",
            "lift",
            "conversions",  # the row shape MemoryReader reads: provenance states the evidence
        )
        .iter_rows()
    ):
        if row[1] in reader.labels:
            weights[row[0]].append(row)
    worn = defaultdict(list)
    for row in (
        frames["habituation"]
        .filter(pl.col("load") >= WORN_OUT_MIN_LOAD)
        .sort(["customer_id", "load", "message_id"], descending=[False, True, False])
        .select("customer_id", "message_id", "load", "sends", "last_sent_at")
        .iter_rows()
    ):
        if len(worn[row[0]]) < MAX_AVOID_MESSAGES:
            worn[row[0]].append(row)
    reader.load_messages({row[1] for rows in worn.values() for row in rows})
    horizon = at.timestamp() / 3600.0
    events = snapshot.events.filter(pl.col("customer_id").is_in(wanted))
    sends = {}
    recent = events.filter(
        (pl.col("t") >= horizon - RECENT_SENDS_DAYS * 24.0)
        & pl.col("message_id").is_not_null()
        & (pl.col("name") == reader.workspace.send_event)
    )
    for customer_id, message_id, count in (
        recent.group_by("customer_id", "message_id").len().iter_rows()
    ):
        sends[customer_id, message_id] = count
    seen = {
        row[0]: (row[1], row[2])
        for row in events.group_by("customer_id")
        .agg(pl.col("t").min().alias("first"), pl.col("t").max().alias("last"))
        .iter_rows()
    }
    rows = []
    for pk, external_id, traits, *_ in (
        Customer.objects.for_workspace(reader.workspace)
        .filter(pk__in=customer_ids)
        .order_by("pk")
        .values_list(*CUSTOMER_COLUMNS)
    ):
        first, last = seen.get(pk, (None, None))
        rows.append(
            CustomerRow(
                pk,
                external_id,
                traits,
                None if first is None else datetime_of_hours(first),
                None if last is None else datetime_of_hours(last),
            )
        )
    memory = ChunkMemory(
        memory_times={pk: at if pk in states else None for pk in customer_ids},
        states=states,
        weights=weights,
        worn=worn,
        signals={},  # the engine's signals name the actions; their properties are not re-read
        sends=sends,
        population_rates={at: snapshot.pooled_rate_h},
    )
    return rows, memory


def _line(
    options: PreferenceOptions, system: str, brief: Brief, chosen: str, rejected: str, meta: dict
) -> str:
    prompt = [{"role": "system", "content": system}, {"role": "user", "content": brief.text}]
    if options.format == "sft":
        record = {"prompt": prompt, "completion": [{"role": "assistant", "content": chosen}]}
    else:
        record = {
            "prompt": prompt,
            "chosen": [{"role": "assistant", "content": chosen}],
            "rejected": [{"role": "assistant", "content": rejected}],
        }
    if options.meta:
        record["meta"] = meta
    return json.dumps(record, ensure_ascii=False) + "\n"


def _iso(moment: datetime | None) -> str | None:
    return None if moment is None else moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def preferences_export(
    *,
    workspace: Workspace,
    options: PreferenceOptions,
    out: Path,
    on_progress: Progress | None = None,
) -> PreferenceResult:
    """Write the pairs (or, for SFT, the chosen turns) of every split, and the dataset card.

    One snapshot's memory is held at a time and lines are written as they are rendered.
    """
    started = time.perf_counter()
    progress = on_progress or (lambda stage, done, total: None)
    progress("reading events", 0, 1)
    inputs = workspace_events(workspace=workspace)
    progress("reading events", 1, 1)
    rules = PairRules(
        window_h=workspace.attribution_window_h,
        max_pairs=options.max_pairs,
        min_evidence=options.min_evidence,
        cutoff_h=None if options.cutoff is None else options.cutoff.timestamp() / 3600.0,
        holdout_percent=options.holdout_percent,
    )
    sends = send_outcomes_of(workspace=workspace, inputs=inputs)
    progress("pairing sends", 0, 1)
    pairs = preference_pairs(sends, rules)
    progress("pairing sends", 1, 1)

    messages = {
        pk: (key, "\n".join(part for part in (subject, body) if part))
        for pk, key, subject, body in Message.objects.for_workspace(workspace).values_list(
            "pk", "key", "subject", "body"
        )
    }
    briefs = Briefs(workspace)
    choice = prompt_choice(workspace=workspace)
    template = compile_template(choice.text)
    reader = MemoryReader(workspace, guidance=choice.guidance)
    paths = split_paths(out)
    counts = dict.fromkeys(SPLITS, 0)
    customers = {split: set() for split in SPLITS}
    brief_counts: dict[str, int] = defaultdict(int)
    snapshots = []
    total, done = pairs.height, 0
    by_snapshot = pairs.partition_by("snapshot_t", as_dict=True, maintain_order=True)
    moments = {datetime_of_hours(key[0]): key[0] for key in by_snapshot}
    handles = {split: paths[split].open("w", encoding="utf-8") for split in SPLITS}
    try:
        progress("rendering pairs", 0, total)
        for snapshot in memory_snapshots(workspace=workspace, inputs=inputs, moments=list(moments)):
            snapshots.append(snapshot.summary())
            group = by_snapshot.pop((moments[snapshot.as_of],))
            ids = group["customer_id"].unique().sort().to_list()
            for start in range(0, len(ids), CHUNK_SIZE):
                chunk_ids = ids[start : start + CHUNK_SIZE]
                rows, memory = _chunk_memory(reader, snapshot, chunk_ids)
                system = {
                    row.pk: render_text(template, context)
                    for row, context in zip(rows, reader.build(rows, memory), strict=True)
                }
                external = {row.pk: row.external_id for row in rows}
                chunk = group.filter(pl.col("customer_id").is_in(chunk_ids))
                for pair in chunk.iter_rows(named=True):
                    customer_id = pair["customer_id"]
                    chosen_key, chosen = messages[pair["chosen_message_id"]]
                    rejected_key, rejected = messages[pair["rejected_message_id"]]
                    brief = briefs.of(pair["chosen_message_id"], pair["rejected_message_id"])
                    meta = {
                        "customer_id": external[customer_id],
                        "split": pair["split"],
                        "snapshot": _iso(snapshot.as_of),
                        "chosen_message": chosen_key,
                        "chosen_sent_at": _iso(datetime_of_hours(pair["chosen_t"])),
                        "rejected_message": rejected_key,
                        "rejected_sent_at": _iso(datetime_of_hours(pair["rejected_t"])),
                        "evidence": pair["evidence"],
                        "brief": brief.source,
                    }
                    handles[pair["split"]].write(
                        _line(options, system[customer_id], brief, chosen, rejected, meta)
                    )
                    counts[pair["split"]] += 1
                    customers[pair["split"]].add(customer_id)
                    brief_counts[brief.source] += 1
                done += chunk.height
                progress("rendering pairs", done, total)
    finally:
        for handle in handles.values():
            handle.close()
    files = {}
    for split in SPLITS:
        if counts[split] or split == "train":
            files[split] = paths[split]
        else:
            paths[split].unlink(missing_ok=True)
    result = PreferenceResult(
        files=files,
        card=paths["card"],
        counts={
            **{f"{split}_lines": counts[split] for split in SPLITS},
            **{f"{split}_customers": len(customers[split]) for split in SPLITS},
            "sends": sends.height,
            "resolved_sends": int(sends["resolved"].sum()),
            "goal_sends": int(sends["goal"].fill_null(0).sum()),
        },
        snapshots=snapshots,
        seconds=time.perf_counter() - started,
    )
    paths["card"].write_text(
        dataset_card(
            workspace=workspace,
            options=options,
            result=result,
            window=_window(sends),
            template=f"{choice.template_slug} v{choice.template_version}",
            briefs=dict(brief_counts),
        ),
        encoding="utf-8",
    )
    return result


def _window(sends: pl.DataFrame) -> tuple[str | None, str | None]:
    if sends.height == 0:
        return None, None
    return (
        _iso(datetime_of_hours(float(sends["t"].min()))),
        _iso(datetime_of_hours(float(sends["t"].max()))),
    )


def dataset_card(
    *,
    workspace: Workspace,
    options: PreferenceOptions,
    result: PreferenceResult,
    window: tuple[str | None, str | None],
    template: str,
    briefs: dict[str, int],
) -> str:
    """Return the dataset card: YAML front matter with the numbers, then what they mean."""
    header = {
        "source_workspace": workspace.slug,
        "format": options.format,
        "trl_format": "conversational preference (prompt/chosen/rejected)"
        if options.format == "dpo"
        else "conversational prompt-completion",
        "files": {split: path.name for split, path in result.files.items()},
        "send_window": {"first_send": window[0], "last_send": window[1]},
        "goal_event": workspace.goal_event,
        "send_event": workspace.send_event,
        "attribution_window_h": workspace.attribution_window_h,
        "options": {
            "max_pairs_per_customer": options.max_pairs,
            "min_evidence_sends": options.min_evidence,
            "cutoff": _iso(options.cutoff),
            "holdout_percent": options.holdout_percent,
        },
        "counts": result.counts,
        "briefs": briefs,
        "prompt_template": template,
        "memory_snapshots": result.snapshots,
        "seconds": round(result.seconds, 1),
    }
    lines = [
        "---",
        json.dumps(header, indent=2, ensure_ascii=False),  # JSON is YAML: one parser reads both
        "---",
        f"# Preference data of workspace {workspace.slug}",
        "",
        "Each line pairs two messages one customer received: `chosen` reached the goal "
        f"({workspace.goal_event}) within {workspace.attribution_window_h:g} h, `rejected` did "
        "not. The system turn is that customer's own prompt, rendered from their memory; the "
        "user turn is the brief (a campaign's guidance, or the workspace's value propositions).",
        "",
        "## Leakage rule",
        "",
        LEAKAGE_RULE,
        "",
        "## Splits",
        "",
        "- train: both sends' attribution windows closed before the cut-off (all pairs without "
        "one).",
        "- eval: the earlier send at or after the cut-off; pairs straddling it are left out.",
        "- holdout: every pair of the held-out customers (a stable hash of their id).",
        "",
        "Customer-supplied strings in the prompts (traits, event names, message texts) are "
        "JSON-quoted data, never instructions.",
        "",
    ]
    return "\n".join(lines)
