"""Build each customer's template context from the derived memory, a chunk at a time.

`MemoryReader` loads what every prompt shares once (labels, priming indicators, message texts as
needed) and then, for a chunk of customers, reads their state, label weights, worn-out messages,
recent priming actions and recent sends in five set-based queries, whatever the chunk's size.
Everything relative ("2 h ago") is measured from the memory time, not the clock, and every
customer-supplied string leaves here already quoted (quoting.py): the template never sees it raw.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import NamedTuple

from django.db.models import Count, F, Q
from django.utils import timezone

from campaigns.models import Label, LabelSet, Message, Workspace
from campaigns.prompts.quoting import (
    MESSAGE_TEXT_LIMIT,
    TRAIT_KEY_LIMIT,
    VALUE_LIMIT,
    literal,
    one_line,
    quote,
)
from campaigns.prompts.wording import (
    MAX_AVOID_LABELS,
    MAX_AVOID_MESSAGES,
    MAX_SIGNAL_PROPERTIES,
    MAX_SIGNALS,
    MAX_TRAITS,
    PHRASE_LIMIT,
    RECENT_SENDS_DAYS,
    TOP_LABELS,
    ago,
    avoid_message_line,
    engine_signals,
    evidence_word,
    goal_summary,
    iso,
    label_set_summary,
    never_text,
    per_week,
    primed_word,
    signal_text,
)
from memory.models import (
    CustomerLabelWeight,
    CustomerMessageHabituation,
    CustomerState,
    Event,
    PrimingIndicator,
    RecomputeRun,
)
from memory.scoring.habituation import WORN_OUT_MIN_LOAD
from memory.scoring.overrides import EffectiveWeight, Learned, effective_weights
from memory.scoring.population import Population
from memory.scoring.priming import PRIMED_MIN_SCORE
from memory.strategy import BOOST_ODDS, label_prior_stats, overrides_of_workspace, priors_for


class StoredState(NamedTuple):
    """The columns of a customer's CustomerState row the prompt reads, by name."""

    customer_id: int
    primed_score: float
    baseline_rate: float | None
    last_recompute_at: datetime | None
    signals: list
    goal_count: int
    observed_hours: float | None
    hours_since_goal: float | None
    frequency_rate_h: float | None
    segment_rate_h: float | None


@dataclass(frozen=True)
class CustomerRow:
    """The columns of a customer a prompt needs."""

    pk: int
    external_id: str
    traits: dict
    first_seen_at: datetime | None
    last_seen_at: datetime | None


@dataclass(frozen=True)
class ChunkMemory:
    """The rows of memory read for a chunk of customers, keyed by customer id."""

    memory_times: dict[int, datetime | None]
    states: dict[int, tuple]
    weights: dict[int, list[tuple]]
    worn: dict[int, list[tuple]]
    signals: dict[int, list[tuple]]
    sends: dict[tuple[int, int], int]
    # Everyone's goal rate per hour, per memory time (from the run that wrote it).
    population_rates: dict[datetime, float | None]


CUSTOMER_COLUMNS = ("pk", "external_id", "traits", "first_seen_at", "last_seen_at")


class MemoryReader:
    """Read one workspace's memory into template contexts, a chunk of customers at a time."""

    def __init__(self, workspace: Workspace, *, guidance: str = "", campaign: dict | None = None):
        self.workspace = workspace
        self.guidance, self.campaign = guidance, campaign or {}
        sets = {
            label_set.pk: label_set
            for label_set in LabelSet.objects.for_workspace(workspace).only("slug", "name")
        }
        # The value proposition leads; the other sets follow alphabetically.
        self.set_order = [
            (s.pk, s.slug, one_line(s.name, PHRASE_LIMIT))
            for s in sorted(
                sets.values(), key=lambda s: (s.slug != LabelSet.VALUE_PROPOSITION, s.slug)
            )
        ]
        self.labels = {}
        for label in Label.objects.for_workspace(workspace).filter(active=True):
            self.labels[label.pk] = {
                "set": label.label_set_id,
                "slug": label.slug,
                "name": one_line(label.name, PHRASE_LIMIT),
                "phrase": one_line(label.phrase, PHRASE_LIMIT),
                "boost": label.boost,
            }
        self.primers = {
            name: lift
            for name, lift in PrimingIndicator.objects.for_workspace(workspace)
            .filter(odds_ratio_low__gt=1.0, lift__gt=1.0)
            .values_list("event_name", "lift")
        }
        # Overrides are configuration (a handful of rows): read once, matched per customer.
        self.overrides = overrides_of_workspace(workspace=workspace)
        self.prior_stats = label_prior_stats(workspace=workspace)
        self.horizon = timedelta(hours=workspace.priming_horizon_h)
        self.recent = timedelta(days=RECENT_SENDS_DAYS)
        self._messages: dict[int, dict] = {}
        self._population_rates: dict[datetime, float | None] = {}
        self.workspace_context = {
            "name": one_line(workspace.name, PHRASE_LIMIT),
            "goal_event": quote(workspace.goal_event),
        }

    def load_messages(self, message_ids: set[int]) -> None:
        """Read (once) the key, quoted text and labels of these messages."""
        missing = message_ids - self._messages.keys()
        if not missing:
            return
        labels_of = defaultdict(list)
        through = Message.labels.through.objects.filter(message_id__in=missing).order_by(
            "message_id", "label_id"
        )
        for message_id, label_id in through.values_list("message_id", "label_id"):
            labels_of[message_id].append(label_id)
        rows = Message.objects.for_workspace(self.workspace).filter(pk__in=missing)
        for pk, key, subject, body in rows.values_list("pk", "key", "subject", "body"):
            text = "\n".join(part for part in (subject, body) if part)
            self._messages[pk] = {
                "key": quote(key),
                "text": quote(text, MESSAGE_TEXT_LIMIT),
                "labels": labels_of[pk],
            }

    def contexts(self, customers: list[CustomerRow]) -> list[dict]:
        """Return the template context of each customer, in the order given."""
        return self.build(customers, self.read(customers))

    def read(self, customers: list[CustomerRow]) -> ChunkMemory:
        """Read a chunk's memory: a few queries, whatever the number of customers."""
        if not customers:
            return ChunkMemory({}, {}, {}, {}, {}, {}, {})
        ids = {customer.pk for customer in customers}
        lo, hi = min(ids), max(ids)
        # A chunk is an id range; a scattered sample (an effect preview) is read by its ids.
        own = (
            {"customer_id__gte": lo, "customer_id__lte": hi}
            if hi - lo < 4 * len(ids)
            else {"customer_id__in": sorted(ids)}
        )
        ws = self.workspace

        states = {
            row[0]: StoredState._make(row)
            for row in CustomerState.objects.for_workspace(ws)
            .filter(**own)
            .values_list(*StoredState._fields)
            if row[0] in ids
        }
        weights = defaultdict(list)
        for row in (
            CustomerLabelWeight.objects.for_workspace(ws)
            .filter(**own)
            .values_list(
                "customer_id",
                "label_id",
                "weight",
                "weight_low",
                "weight_high",
                "evidence",
                "exposures",
                "lift",
                "conversions",
            )
        ):
            if row[0] in ids and row[1] in self.labels:
                weights[row[0]].append(row)
        worn = defaultdict(list)
        for row in (
            CustomerMessageHabituation.objects.for_workspace(ws)
            .filter(**own, load__gte=WORN_OUT_MIN_LOAD)
            .values_list("customer_id", "message_id", "load", "sends", "last_sent_at")
        ):
            if row[0] in ids:
                worn[row[0]].append(row)
        for rows in worn.values():
            rows.sort(key=lambda r: (-r[2], r[1]))
            del rows[MAX_AVOID_MESSAGES:]
        self.load_messages({row[1] for rows in worn.values() for row in rows})

        times = [
            state.last_recompute_at
            for state in states.values()
            if state.last_recompute_at is not None
        ]
        signals = defaultdict(list)
        sends = defaultdict(int)
        if times:
            earliest, latest = min(times), max(times)
            # The engine's own signals name the actions; the events add their properties.
            names = set(self.primers)
            for state in states.values():
                names.update(signal[0] for signal in engine_signals(state.signals))
            if names:
                events = (
                    Event.objects.for_workspace(ws)
                    .filter(
                        **own,
                        name__in=sorted(names),
                        occurred_at__gte=earliest - self.horizon,
                        occurred_at__lt=latest,
                    )
                    .values_list("customer_id", "name", "occurred_at", "properties", "pk")
                )
                for row in events:
                    state = states.get(row[0])
                    if state is None or state.last_recompute_at is None:
                        continue
                    if state.last_recompute_at - self.horizon <= row[2] < state.last_recompute_at:
                        signals[row[0]].append(row)
            worn_messages = {row[1] for rows in worn.values() for row in rows}
            if worn_messages:
                # Counted in the database, each send against its own customer's memory time.
                # The query starts from the chunk's states (an id range the planner can use)
                # and probes each customer's events by time; started from the events, the
                # range did not reach the states through the join, and every customer's state
                # was scanned for each chunk.
                memory_time = F("last_recompute_at")
                recent_sends = (
                    CustomerState.objects.for_workspace(ws)
                    .filter(
                        # One filter() call: each further call would join the events again.
                        Q(customer__events__occurred_at__gte=earliest - self.recent),
                        Q(customer__events__occurred_at__lt=latest),
                        **own,
                        customer__events__workspace_id=ws.pk,
                        customer__events__name=ws.send_event,
                        customer__events__message_id__in=worn_messages,
                        customer__events__occurred_at__lt=memory_time,
                        customer__events__occurred_at__gte=memory_time - self.recent,
                    )
                    .order_by()
                    .values("customer_id", "customer__events__message_id")
                    .annotate(n=Count("customer__events"))
                    .values_list("customer_id", "customer__events__message_id", "n")
                )
                for customer_id, message_id, count in recent_sends:
                    sends[customer_id, message_id] = count

        return ChunkMemory(
            memory_times={pk: states[pk][3] if pk in states else None for pk in ids},
            states=states,
            weights=weights,
            worn=worn,
            signals=signals,
            sends=sends,
            population_rates={moment: self._population_rate(moment) for moment in set(times)},
        )

    def _population_rate(self, moment: datetime) -> float | None:
        """Return everyone's goal rate per hour in the run that wrote this memory time."""
        if moment not in self._population_rates:
            blob = (
                RecomputeRun.objects.for_workspace(self.workspace)
                .filter(
                    status=RecomputeRun.Status.SUCCEEDED, as_of=moment, population__isnull=False
                )
                .order_by("-finished_at", "-pk")
                .values_list("population", flat=True)
                .first()
            )
            self._population_rates[moment] = (
                None if blob is None else Population.from_bytes(bytes(blob)).baseline.pooled_rate_h
            )
        return self._population_rates[moment]

    def build(
        self,
        customers: list[CustomerRow],
        memory: ChunkMemory,
        *,
        without_memory: Collection[int] = (),
        arms: dict[int, str] | None = None,
        decisions: dict[int, dict] | None = None,
    ) -> list[dict]:
        """Return each customer's template context from the chunk's memory, in order.

        Customers in ``without_memory`` (a campaign's no-memory holdout) get the context of a
        customer Primer knows nothing about: no traits, weights, wear-out or priming, only the
        workspace's and the campaign's facts, so the LLM sees the average customer.
        """
        arms, decisions = arms or {}, decisions or {}
        contexts = []
        for customer in customers:
            if customer.pk in without_memory:
                anonymous = CustomerRow(customer.pk, customer.external_id, {}, None, None)
                context = self._context(anonymous, None, [], [], [], {}, {})
            else:
                context = self._context(
                    customer,
                    memory.states.get(customer.pk),
                    memory.weights.get(customer.pk, []),
                    memory.worn.get(customer.pk, []),
                    memory.signals.get(customer.pk, []),
                    memory.sends,
                    memory.population_rates,
                )
            context["arm"] = arms.get(customer.pk, "")
            context["next_best"] = decisions.get(customer.pk, {})
            contexts.append(context)
        return contexts

    def decision_item(self, served) -> dict:
        """Describe a served decision for the template: the message to send and its id."""
        self.load_messages({served.message_id})
        message = self._messages.get(served.message_id, {})
        return {
            "key": message.get("key", ""),
            "text": message.get("text", ""),
            "decision_id": served.public_id,
            "propensity": round(served.propensity, 4),
        }

    def _signal_items(self, state, events: list[tuple], memory_at: datetime | None) -> list[dict]:
        """Describe the customer's recent priming actions, newest first.

        The engine's signals (CustomerState.signals) say which actions count, as its primed
        score counted them; each takes the properties of the customer's event of that name
        nearest the time the engine gives. Without them (an older memory), the customer's events
        of types whose priming indicator has lift > 1 and an odds-ratio interval above 1.
        """
        engine = engine_signals(state.signals) if state else []
        found = []
        if engine and memory_at is not None:
            for name, hours, lift in engine[:MAX_SIGNALS]:
                when = memory_at - timedelta(hours=hours)
                same = [row for row in events if row[1] == name]
                nearest = min(same, key=lambda row: (abs(row[2] - when), row[4]), default=None)
                found.append((name, when, nearest[3] if nearest else {}, lift))
        else:
            for row in sorted(events, key=lambda row: (-row[2].timestamp(), row[4])):
                if row[1] in self.primers and len(found) < MAX_SIGNALS:
                    found.append((row[1], row[2], row[3], self.primers[row[1]]))
        items = []
        for name, when, properties, lift in found:
            props = sorted(properties.items()) if isinstance(properties, dict) else []
            items.append(
                {
                    "event": quote(name),
                    "ago": ago(when, memory_at),
                    "hours_before": round((memory_at - when).total_seconds() / 3600, 1),
                    "lift": round(lift, 1),
                    "properties": ", ".join(
                        f"{quote(str(key), TRAIT_KEY_LIMIT)}: {literal(value)}"
                        for key, value in props[:MAX_SIGNAL_PROPERTIES]
                    ),
                }
            )
        return items

    def _label_item(self, row: tuple, weight: EffectiveWeight | None) -> dict:
        _, label_id, stored, low, high, evidence, exposures, lift, _ = row
        label = self.labels[label_id]
        item = {
            "slug": label["slug"],
            "name": label["name"],
            "phrase": label["phrase"],
            "boost": label["boost"],
            "weight": round(stored, 2),
            "weight_low": round(low, 2),
            "weight_high": round(high, 2),
            "evidence": round(evidence, 1),
            "exposures": round(exposures, 1),
            "evidence_word": evidence_word(evidence, exposures),
            "lift": round(lift, 2),
            "provenance": "learned" if exposures > 0 else "population prior",
            "provenance_text": "",
            "set_by": "",
        }
        if weight is not None:
            item |= self._provenance(weight)
        return item

    @staticmethod
    def _provenance(weight: EffectiveWeight) -> dict:
        rule = weight.override
        return {
            "weight": round(weight.weight, 2),
            "provenance": weight.provenance,
            "provenance_text": weight.provenance_text(),
            "set_by": rule.set_text() if rule is not None else "",
        }

    def _weights_of(self, customer: CustomerRow, state, rows: list[tuple]) -> dict:
        """Return the customer's weights with provenance, where an override holds them."""
        rules = self.overrides.for_customer(customer.external_id, customer.traits)
        if not rules:
            return {}
        learned = {row[1]: Learned(row[2], row[6], row[8]) for row in rows}
        priors = priors_for(self.prior_stats, state.baseline_rate if state else None)
        return effective_weights(learned, priors, rules, timezone.now(), boost_odds=BOOST_ODDS)

    def _goal_item(self, state: StoredState | None, population_rates: dict) -> dict:
        """Describe the goal numbers the engine stored with the customer's memory."""
        memory_at = state.last_recompute_at if state else None
        count, observed_h, hours_since, frequency, segment = (
            (
                state.goal_count,
                state.observed_hours,
                state.hours_since_goal,
                state.frequency_rate_h,
                state.segment_rate_h,
            )
            if state
            else (0,) + (None,) * 4
        )
        last_goal = (
            memory_at - timedelta(hours=hours_since)
            if memory_at is not None and hours_since is not None
            else None
        )
        item = {
            "count": count,
            "observed_h": None if observed_h is None else round(observed_h, 1),
            "last_ago": ago(last_goal, memory_at) if last_goal is not None else "",
            "hours_since": None if hours_since is None else round(hours_since, 1),
            "rate_week": per_week(frequency),
            "segment_rate_week": per_week(segment),
            "population_rate_week": per_week(population_rates.get(memory_at)),
        }
        item["summary"] = goal_summary(self.workspace_context["goal_event"], item)
        return item

    def _context(self, customer, state, weights, worn, signals, sends, population_rates) -> dict:
        memory_at = state.last_recompute_at if state else None
        traits = (
            sorted((customer.traits or {}).items()) if isinstance(customer.traits, dict) else []
        )
        trait_items = [
            {"key": quote(str(key), TRAIT_KEY_LIMIT), "value": literal(value, VALUE_LIMIT)}
            for key, value in traits[:MAX_TRAITS]
        ]

        effective = self._weights_of(customer, state, weights)
        by_set = defaultdict(list)
        for row in weights:
            by_set[self.labels[row[1]]["set"]].append(row)
        # Labels pinned to 0 ("never") leave the ranking and are said apart, with who set them.
        never = defaultdict(list)
        for label_id, weight in effective.items():
            if weight.is_never and label_id in self.labels:
                never[self.labels[label_id]["set"]].append(
                    {"phrase": self.labels[label_id]["phrase"], **self._provenance(weight)}
                )
        label_sets = []
        for set_pk, set_slug, set_name in self.set_order:
            rows = [
                row
                for row in by_set.get(set_pk, [])
                if not (row[1] in effective and effective[row[1]].is_never)
            ]
            # An override on a label of a set never sent still speaks for that label.
            known = {row[1] for row in by_set.get(set_pk, [])}
            rows += [
                (
                    customer.pk,
                    label_id,
                    w.base_weight,
                    w.base_weight,
                    w.base_weight,
                    0.0,
                    0.0,
                    1.0,
                    0.0,
                )
                for label_id, w in effective.items()
                if label_id not in known
                and label_id in self.labels
                and self.labels[label_id]["set"] == set_pk
                and w.provenance == "marketer"
                and not w.is_never
            ]
            if not rows and not never.get(set_pk):
                continue

            def used(row):
                return effective[row[1]].weight if row[1] in effective else row[2]

            # Ties on the weight break on evidence, then slug, so the order never wavers.
            rows.sort(key=lambda r: (-used(r), -r[5], self.labels[r[1]]["slug"]))
            top = [self._label_item(row, effective.get(row[1])) for row in rows[:TOP_LABELS]]
            summary = label_set_summary(top)
            nevers = sorted(never.get(set_pk, []), key=lambda item: item["phrase"])
            if nevers:
                summary = "; ".join(part for part in (summary, never_text(nevers)) if part)
            label_sets.append(
                {
                    "slug": set_slug,
                    "name": set_name,
                    "labels": top,
                    "never": nevers,
                    "summary": summary,
                }
            )

        avoid_messages = []
        label_loads: dict[int, float] = {}
        for _, message_id, load, total_sends, last_sent_at in worn:
            message = self._messages.get(message_id)
            if message is None:
                continue
            recent = sends.get((customer.pk, message_id), 0)
            avoid_messages.append(
                {
                    "key": message["key"],
                    "text": message["text"],
                    "load": round(load, 2),
                    "sends": total_sends,
                    "sends_recent": recent,
                    "last_sent_ago": ago(last_sent_at, memory_at) if last_sent_at else "",
                }
            )
            for label_id in message["labels"]:
                if label_id in self.labels:
                    label_loads[label_id] = max(label_loads.get(label_id, 0.0), load)
        avoid_labels = [
            {"phrase": self.labels[label_id]["phrase"], "load": round(load, 2)}
            for label_id, load in sorted(
                label_loads.items(), key=lambda item: (-item[1], self.labels[item[0]]["slug"])
            )[:MAX_AVOID_LABELS]
        ]

        signal_items = self._signal_items(state, signals, memory_at)
        primed_score = round(state.primed_score, 2) if state else 0.0

        return {
            "workspace": self.workspace_context,
            "customer": {
                "id": quote(customer.external_id),
                "traits": trait_items,
                "traits_text": "{"
                + ", ".join(f"{t['key']}: {t['value']}" for t in trait_items)
                + "}",
                "first_seen_at": iso(customer.first_seen_at),
                "last_seen_at": iso(customer.last_seen_at),
            },
            "memory": {
                "at": iso(memory_at),
                "has_memory": memory_at is not None,
                "baseline_rate": round(state.baseline_rate, 4)
                if state and state.baseline_rate is not None
                else None,
            },
            "goal": self._goal_item(state, population_rates),
            "label_sets": label_sets,
            "label_sets_text": "\n".join(
                f"- {item['name']}: this customer {item['summary']}." for item in label_sets
            ),
            "avoid": {
                "messages": avoid_messages,
                "labels": avoid_labels,
                "summary": "\n".join(avoid_message_line(item) for item in avoid_messages),
                "labels_text": ", ".join(item["phrase"] for item in avoid_labels),
            },
            "primed": {
                "score": primed_score,
                "level": primed_word(primed_score),
                "is_primed": primed_score >= PRIMED_MIN_SCORE,
                "signals": signal_items,
                "summary": "; ".join(signal_text(item) for item in signal_items),
            },
            "guidance": self.guidance,
            "campaign": self.campaign,  # its name, goal and attribution window ({}: none)
        }
