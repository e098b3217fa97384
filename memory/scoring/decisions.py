"""What following a decision policy would have achieved on the sends after a cut-off.

Policies choose one message per send among the messages of its wave (the offers sent at that
time): the logging policy itself, the average customer's best (the highest population rate per
message), the best per trait segment, Primer's next best (the top full-memory p), Primer with
exploration (one Thompson draw of the customer's label posteriors per decision, so its
probability of each message is the share of draws it wins) and Primer 10% explored (its top
message but for a tenth of decisions drawn uniformly: a campaign's epsilon exploration). Values
come from ``offpolicy`` and are unbiased only where the sends were randomised:
``randomisation_check`` says whether the data agree with that declaration.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import polars as pl
from scipy import sparse
from scipy.special import expit
from scipy.stats import chi2, chi2_contingency, chisquare

from memory.scoring.associative import RATE_FLOOR, logit_normal_moments
from memory.scoring.exploration import epsilon_propensities
from memory.scoring.frames import EngineConfig, normalise_events
from memory.scoring.model import MemoryState, ScoringModel, calibrated_p, candidate_features
from memory.scoring.offpolicy import PolicyValue, Target, minimum_detectable_effect, policy_values
from memory.scoring.outcomes import events_before, send_outcomes

REFERENCE = "average customer's best"
POLICIES = (
    "logging policy",
    REFERENCE,
    "best per segment",
    "Primer next best",
    "Primer with exploration",
    "Primer, 10% explored",
)
# The epsilon policy valued beside Thompson: the campaigns' default explored share.
EVALUATED_EXPLORE_SHARE = 0.1
# Sends less than this apart belong to one wave (a campaign's send-out).
WAVE_GAP_H = 24.0


@dataclass
class RandomisationCheck:
    """Hold per-wave offer shares and the tests of uniformity and independence from segments."""

    waves: pl.DataFrame  # wave, start_t, sends, messages, min_share, max_share, uniform_p
    independence_chi2: float
    independence_dof: int
    independence_p: float

    @property
    def uniform_p(self) -> float:
        """Return the smallest per-wave p-value of 'every message equally likely'."""
        return float(self.waves["uniform_p"].min()) if self.waves.height else float("nan")


@dataclass
class Decisions:
    """Hold the policies' off-policy values per outcome and what they were measured on."""

    randomised: bool  # an unbiased estimate is possible: declared randomised, or logged
    check: RandomisationCheck
    segment_traits: tuple[str, ...]
    sends: int
    cold_start_sends: int
    # outcome ("goal", "revenue") -> one PolicyValue per policy, in POLICIES order
    values: dict[str, list[PolicyValue]] = field(default_factory=dict)
    # policy -> the smallest goal-rate difference from the reference detectable at its matches
    detectable: dict[str, float] = field(default_factory=dict)
    # "declared" (uniform within waves), "logged" (served decisions' propensities) or "".
    propensities: str = ""
    logged_sends: int = 0  # sends after the cut-off matched to a logged decision


def send_waves(sends: pl.DataFrame, gap_h: float = WAVE_GAP_H) -> pl.DataFrame:
    """Add ``wave``: send times closer than gap_h to the previous one share a wave."""
    times = sends.select(pl.col("t").unique().sort())
    starts = times.with_columns(
        ((pl.col("t").diff().fill_null(np.inf) >= gap_h).cum_sum() - 1).cast(pl.Int64).alias("wave")
    )
    return sends.join(starts, on="t", how="left")


def trait_segments(
    traits: pl.DataFrame | None, names: tuple[str, ...], bands: int = 3
) -> pl.DataFrame:
    """Return customer, segment: categorical traits as they are, numeric ones in quantile bands.

    A missing value is its own band ("unknown"); without traits everyone is in one segment.
    """
    present = tuple(n for n in names if traits is not None and n in traits.columns)
    if traits is None or not present:
        base = traits.select("customer") if traits is not None else pl.DataFrame({"customer": []})
        return base.with_columns(pl.lit("everyone").alias("segment"))
    parts = []
    for name in present:
        column = traits[name]
        if column.dtype.is_numeric():
            edges = np.nanquantile(column.drop_nulls().to_numpy(), np.linspace(0, 1, bands + 1))
            band = np.searchsorted(edges[1:-1], column.fill_null(np.nan).to_numpy(), side="right")
            text = pl.Series([f"{name} band {b + 1}/{bands}" for b in band])
            parts.append(pl.when(column.is_null()).then(pl.lit(f"{name} unknown")).otherwise(text))
        else:
            parts.append(pl.lit(f"{name} ") + column.cast(pl.Utf8).fill_null("unknown"))
    return traits.select(
        pl.col("customer").cast(pl.Int64), pl.concat_str(parts, separator=" x ").alias("segment")
    )


def randomisation_check(sends: pl.DataFrame, segments: pl.DataFrame) -> RandomisationCheck:
    """Test, per wave, that every message was equally likely and independent of the segment."""
    waves, statistic, dof = [], 0.0, 0
    for (wave,), group in sends.group_by("wave", maintain_order=True):
        counts = group.group_by("message").len()["len"].to_numpy()
        waves.append(
            {
                "wave": wave,
                "start_t": float(group["t"].min()),
                "sends": group.height,
                "messages": counts.size,
                "min_share": float(counts.min() / counts.sum()),
                "max_share": float(counts.max() / counts.sum()),
                "uniform_p": float(chisquare(counts).pvalue) if counts.size > 1 else 1.0,
            }
        )
        table = (
            group.join(segments, on="customer", how="left")
            .with_columns(pl.col("segment").fill_null("unknown"))
            .group_by("segment", "message")
            .len()
            .pivot(on="message", index="segment", values="len")
            .fill_null(0)
            .drop("segment")
            .to_numpy()
        )
        if min(table.shape) > 1:
            result = chi2_contingency(table, correction=False)
            statistic, dof = statistic + float(result.statistic), dof + int(result.dof)
    return RandomisationCheck(
        waves=pl.DataFrame(waves).sort("start_t") if waves else pl.DataFrame(),
        independence_chi2=statistic,
        independence_dof=dof,
        independence_p=float(chi2.sf(statistic, dof)) if dof else float("nan"),
    )


def window_revenue(sends: pl.DataFrame, revenue: pl.DataFrame, window_h: float) -> np.ndarray:
    """Return per send the revenue (customer, t, revenue) in (t, t + window], as the goal is
    attributed."""
    goals = revenue.select("customer", pl.col("t").alias("goal_t"), "revenue")
    matched = (
        sends.select("send", "customer", "t")
        .join(goals, on="customer")
        .filter((pl.col("goal_t") > pl.col("t")) & (pl.col("goal_t") <= pl.col("t") + window_h))
        .group_by("send")
        .agg(pl.col("revenue").sum())
    )
    joined = sends.select("send").join(matched, on="send", how="left", maintain_order="left")
    return joined["revenue"].fill_null(0.0).to_numpy()


def segment_message_rates(
    training: pl.DataFrame, segments: pl.DataFrame, message_rate: np.ndarray, prior_sends: float
) -> pl.DataFrame:
    """Return segment, message, rate: each segment's goal rate after a message, shrunk toward
    the message's population rate with ``prior_sends`` pseudo sends."""
    prior = pl.DataFrame({"message": np.arange(message_rate.size), "prior": message_rate})
    return (
        training.join(segments, on="customer", how="left")
        .with_columns(pl.col("segment").fill_null("unknown"))
        .group_by("segment", "message")
        .agg(pl.col("goal").sum().alias("goals"), pl.len().alias("n"))
        .join(prior, on="message", how="left")
        .select(
            "segment",
            "message",
            ((pl.col("goals") + prior_sends * pl.col("prior")) / (pl.col("n") + prior_sends)).alias(
                "rate"
            ),
        )
    )


def thompson_associations(state: MemoryState, rng: np.random.Generator) -> sparse.csr_matrix:
    """Return one Thompson draw of every customer's label associations (as ``thompson_association``
    draws one customer's), vectorised over customers."""
    priors = state.label_priors
    lift = priors["population_lift"].to_numpy()
    prior_rate = np.clip(state.baseline_rate[:, None] * lift[None, :], RATE_FLOOR, 1 - RATE_FLOOR)
    kappa = priors["kappa"].to_numpy()[None, :]
    alpha, beta = kappa * prior_rate, kappa * (1 - prior_rate)
    weights = state.weights
    rows, cols = weights["customer"].to_numpy(), weights["label_id"].to_numpy()
    alpha[rows, cols] = weights["alpha"].to_numpy()
    beta[rows, cols] = weights["beta"].to_numpy()
    mean, sd = logit_normal_moments(alpha, beta)
    draw = expit(mean + sd * rng.standard_normal(mean.shape))
    return sparse.csr_matrix(np.log(draw / prior_rate))


def _with_logged(test: pl.DataFrame, logged: pl.DataFrame) -> pl.DataFrame:
    """Keep the sends a logged decision was matched to, with its eligible messages and their
    propensities (sends are matched on customer, message and time to the microsecond)."""
    micro = (pl.col("t") * 3.6e9).round(0).cast(pl.Int64).alias("t_us")
    keyed = logged.select("customer", "message", micro, "eligible", "propensities").unique(
        ["customer", "message", "t_us"], keep="first"
    )
    return (
        test.with_columns(micro)
        .join(keyed, on=["customer", "message", "t_us"], how="inner")
        .drop("t_us")
        .sort("send")
    )


def _first_best(candidates: pl.DataFrame, score: np.ndarray) -> np.ndarray:
    """Return per candidate row whether it is its send's top score (ties: the lowest message)."""
    ranked = candidates.select("send", "message").with_columns(pl.Series("score", score))
    top = ranked.sort(["send", "score", "message"], descending=[False, True, False]).unique(
        "send", keep="first", maintain_order=True
    )
    flagged = ranked.join(
        top.select("send", "message", pl.lit(True).alias("top")),
        on=["send", "message"],
        how="left",
        maintain_order="left",
    )
    return flagged["top"].fill_null(False).to_numpy()


def decision_values(
    *,
    events: pl.DataFrame,
    state: MemoryState,
    model: ScoringModel,
    config: EngineConfig,
    cutoff: float,
    traits: pl.DataFrame | None,
    segment_traits: tuple[str, ...],
    randomised: bool,
    revenue: pl.DataFrame | None = None,
    logged: pl.DataFrame | None = None,
    draws: int = 1000,
    thompson_draws: int = 32,
    seed: int = 0,
) -> Decisions:
    """Check the randomisation and value each policy on the sends after the cut-off, where an
    unbiased estimate is possible.

    Declared ``randomised``: the logging propensity of a send is 1 / (messages sent in its
    wave), and every policy chooses among the wave's messages. Otherwise, with ``logged``
    decisions (customer, t, message: the matched send; eligible: list of messages; propensities:
    list, in the same order), only the sends matched to a decision are valued, each policy
    choosing among that decision's eligible messages and the logging propensity being the one
    Primer served with. ``revenue`` (customer, t, revenue) defaults to the goal events' own.
    """
    everything, horizon = events_before(normalise_events(events), None)
    sends = send_waves(send_outcomes(everything, config, horizon))
    segments = trait_segments(traits, segment_traits)
    check = randomisation_check(sends, segments)
    test = sends.filter((pl.col("t") >= cutoff) & pl.col("resolved"))
    known_before = everything.filter(pl.col("t") < cutoff)["customer"].unique()
    cold = int(test.filter(~pl.col("customer").is_in(known_before.implode())).height)
    use_logged = not randomised and logged is not None and logged.height > 0
    decisions = Decisions(randomised or use_logged, check, segment_traits, test.height, cold)
    decisions.propensities = "declared" if randomised else ("logged" if use_logged else "")
    if use_logged:
        test = _with_logged(test, logged)
        decisions.logged_sends = test.height
    if not decisions.randomised or test.height == 0:
        return decisions
    if use_logged:
        candidates = (
            test.select(
                "send",
                "customer",
                "wave",
                pl.col("message").alias("logged"),
                pl.col("eligible").alias("candidate"),
                pl.col("propensities").alias("logging"),
            )
            .explode(["candidate", "logging"])
            .sort("send", "candidate")
            .rename({"candidate": "message"})
        )
    else:
        offered = sends.select("wave", pl.col("message").alias("candidate")).unique()
        candidates = (
            test.select("send", "customer", "wave", pl.col("message").alias("logged"))
            .join(offered, on="wave")
            .sort("send", "candidate")
            .rename({"candidate": "message"})
        )
    choices = candidates.select("send", "message")
    customers = candidates["customer"].to_numpy()
    messages = candidates["message"].to_numpy()
    logged = messages == candidates["logged"].to_numpy()
    p = calibrated_p(model, candidate_features(state, customers, messages))
    training = sends.filter((pl.col("t") < cutoff) & pl.col("resolved"))
    per_segment = segment_message_rates(
        training, segments, state.message_rate, config.message_rate_prior_sends
    )
    # A message first sent after the cut-off has the pooled rate; a segment that never got a
    # message, the message's population rate (the shrinkage prior itself).
    known = messages < state.n_messages
    pooled = float(np.mean(state.message_rate)) if state.n_messages else 0.5
    population_rate = np.full(messages.size, pooled)
    population_rate[known] = state.message_rate[messages[known]]
    segment_rate = (
        candidates.join(segments, on="customer", how="left")
        .with_columns(pl.col("segment").fill_null("unknown"))
        .join(per_segment, on=["segment", "message"], how="left", maintain_order="left")["rate"]
        .to_numpy()
    )
    segment_rate = np.where(np.isnan(segment_rate), population_rate, segment_rate)
    rng = np.random.default_rng(seed)
    wins = np.zeros(candidates.height)
    for _ in range(thompson_draws):
        drawn = candidate_features(state, customers, messages, thompson_associations(state, rng))
        wins += _first_best(choices, calibrated_p(model, drawn))
    eligible = candidates.group_by("send", maintain_order=True).len()["len"].to_numpy()
    per_row = (  # candidates are sorted by send
        candidates["logging"].to_numpy().astype(np.float64)
        if use_logged
        else np.repeat(1.0 / eligible, eligible)
    )
    send_index = np.repeat(np.arange(test.height), eligible)
    chosen = {
        "logging policy": per_row,
        REFERENCE: _first_best(choices, population_rate).astype(float),
        "best per segment": _first_best(choices, segment_rate).astype(float),
        "Primer next best": _first_best(choices, p).astype(float),
        "Primer with exploration": wins / thompson_draws,
        "Primer, 10% explored": epsilon_propensities(send_index, p, share=EVALUATED_EXPLORE_SHARE),
    }
    targets = {
        name: Target(
            probability=probability[logged],
            model_value=np.bincount(send_index, probability * p, minlength=test.height),
        )
        for name, probability in chosen.items()
    }
    propensity = per_row[logged]
    goal = test["goal"].to_numpy().astype(np.float64)
    common = {"propensity": propensity, "clusters": test["customer"].to_numpy(), "draws": draws}
    decisions.values["goal"] = policy_values(
        reward=goal, targets=targets, reference=REFERENCE, model_logged=p[logged], **common
    )
    if revenue is None:
        revenue = everything.filter(
            (pl.col("name") == config.goal_event) & pl.col("revenue").is_not_null()
        ).select("customer", "t", "revenue")
    if revenue.height:
        revenue_targets = {name: Target(t.probability) for name, t in targets.items()}
        decisions.values["revenue"] = policy_values(
            reward=window_revenue(test, revenue, config.attribution_window_h),
            targets=revenue_targets,
            reference=REFERENCE,
            **common,
        )
    reference = decisions.values["goal"][1]
    for value in decisions.values["goal"]:
        decisions.detectable[value.name] = minimum_detectable_effect(
            reference.estimates["snips"].value, reference.matches, value.matches
        )
    return decisions
