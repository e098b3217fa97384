"""Evaluate the memory engine offline on the Starbucks rewards data (no Django)."""

from __future__ import annotations

import argparse
import json
import lzma
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import polars as pl
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.metrics import log_loss, roc_auc_score

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from memory.scoring.baseline import date_as_year
from memory.scoring.evaluation import VARIANTS
from memory.scoring.evaluation import metrics as score_metrics
from memory.scoring.frames import EngineConfig
from memory.scoring.model import (
    ALL_FEATURES,
    candidate_features,
    feature_matrix,
    predict,
)
from memory.scoring.outcomes import events_before, send_outcomes
from memory.scoring.pipeline import compute_memory, fit_model
from memory.scoring.sharded import fit_population, score_with_population

DATA_DIR = Path("/work/shared/data/starbucks")
SEND_EVENT = "Message Sent"
OPEN_EVENT = "Message Opened"
GOAL_EVENT = "Order Completed"
EVENT_NAMES = {
    "offer received": SEND_EVENT,
    "offer viewed": OPEN_EVENT,
    "transaction": GOAL_EVENT,
    "offer completed": "Offer Completed",
}


def read_json_lines(path: Path) -> list[dict]:
    """Read one JSON object a line, skipping blank lines."""
    opener = lzma.open if path.suffix == ".xz" else open
    with opener(path, "rt") as handle:
        return [json.loads(line) for line in handle if line.strip()]


def load_portfolio(data_dir: Path = DATA_DIR) -> pl.DataFrame:
    """Return the offers with their attributes."""
    return pl.DataFrame(read_json_lines(data_dir / "portfolio.json"))


def load_events(data_dir: Path = DATA_DIR) -> tuple[pl.DataFrame, pl.DataFrame, pl.DataFrame]:
    """Return (transcript rows, profile, portfolio) as raw polars frames."""
    rows = read_json_lines(data_dir / "transcript.json.xz")
    transcript = pl.DataFrame(
        {
            "person": [row["person"] for row in rows],
            "event": [row["event"] for row in rows],
            "time": [float(row["time"]) for row in rows],
            # The offer key is spelled both "offer id" and "offer_id".
            "offer": [row["value"].get("offer id", row["value"].get("offer_id")) for row in rows],
            "amount": [row["value"].get("amount") for row in rows],
        },
        schema={
            "person": pl.Utf8,
            "event": pl.Utf8,
            "time": pl.Float64,
            "offer": pl.Utf8,
            "amount": pl.Float64,
        },
    )
    profile = pl.DataFrame(read_json_lines(data_dir / "profile.json"))
    return transcript, profile, load_portfolio(data_dir)


def reward_level(reward: int) -> str:
    """Return a label for the size of an offer's reward."""
    if reward == 0:
        return "none"
    return "low" if reward <= 3 else ("medium" if reward <= 5 else "high")


def offer_text(offer: dict) -> str:
    """Return a short description of an offer synthesised from its attributes."""
    days = int(offer["duration"])
    channels = ", ".join(sorted(offer["channels"]))
    if offer["offer_type"] == "bogo":
        body = f"Buy one, get one: spend ${offer['difficulty']} and get ${offer['reward']} back"
    elif offer["offer_type"] == "discount":
        body = f"Discount: spend ${offer['difficulty']} and get ${offer['reward']} off"
    else:
        body = "News about our drinks and stores, no purchase needed"
    return f"{body}, valid {days} days. Sent by {channels}."


def to_contract(
    transcript: pl.DataFrame, profile: pl.DataFrame, portfolio: pl.DataFrame
) -> tuple[pl.DataFrame, pl.DataFrame, pl.DataFrame, pl.DataFrame]:
    """Map the raw Starbucks frames to (events, messages, message_labels, traits)."""
    people = profile.select(pl.col("id").alias("person")).with_row_index("customer")
    offers = portfolio.with_row_index("message")
    messages = pl.DataFrame(
        {
            "message": offers["message"].cast(pl.Int64),
            "key": offers["id"],
            "text": [offer_text(row) for row in offers.iter_rows(named=True)],
        }
    )
    label_rows = []
    for row in offers.iter_rows(named=True):
        label_rows.append((row["message"], "offer-type", row["offer_type"]))
        label_rows.append((row["message"], "reward", reward_level(row["reward"])))
        label_rows.extend((row["message"], "channel", channel) for channel in row["channels"])
    message_labels = pl.DataFrame(
        label_rows,
        schema={"message": pl.Int64, "label_set": pl.Utf8, "label": pl.Utf8},
        orient="row",
    )
    events = (
        transcript.join(people, on="person", how="left")
        .join(offers.select(pl.col("id").alias("offer"), "message"), on="offer", how="left")
        .select(
            pl.col("customer").cast(pl.Int64),
            pl.col("event").replace_strict(EVENT_NAMES).alias("name"),
            pl.col("time").alias("t"),
            pl.col("message").cast(pl.Int64),
            pl.col("amount").alias("revenue"),
        )
    )
    traits = profile.with_row_index("customer").select(
        pl.col("customer").cast(pl.Int64),
        pl.when(pl.col("age") == 118)
        .then(None)
        .otherwise(pl.col("age"))
        .cast(pl.Float64)
        .alias("age"),
        pl.col("income").cast(pl.Float64),
        pl.col("gender").fill_null("unknown"),
        # As the product reads a date trait (memory.db.reads): the year, with its fraction.
        date_as_year(pl.col("became_member_on").cast(pl.Utf8).str.to_date("%Y%m%d")).alias(
            "member_year"
        ),
    )
    return events, messages, message_labels, traits


def evaluation_sends(events: pl.DataFrame, config: EngineConfig, cutoff: float) -> pl.DataFrame:
    """Return the sends at or after the cut-off whose window fits in the data, with outcomes."""
    _, horizon = events_before(events, None)
    outcomes = send_outcomes(events, config, horizon)
    return outcomes.filter((pl.col("t") >= cutoff) & pl.col("resolved"))


def metrics(outcome: np.ndarray, p: np.ndarray) -> tuple[float, float, float]:
    """Return AUC, log loss and the goal rate in the top decile of p."""
    top = np.argsort(-p, kind="stable")[: max(1, p.size // 10)]
    return roc_auc_score(outcome, p), log_loss(outcome, p), float(outcome[top].mean())


def evaluate(cutoff: float, use_traits: bool) -> None:
    """Print AUC, log loss and top-decile rate of each model on sends after the cut-off."""
    started = time.perf_counter()
    events, messages, message_labels, traits = to_contract(*load_events())
    loaded = time.perf_counter()
    config = EngineConfig(goal_event=GOAL_EVENT, send_event=SEND_EVENT, open_event=OPEN_EVENT)
    result = compute_memory(
        events,
        messages,
        message_labels,
        config,
        as_of=cutoff,
        traits=traits if use_traits else None,
    )
    computed = time.perf_counter()
    test = evaluation_sends(events, config, cutoff)
    outcome = test["goal"].to_numpy().astype(np.float64)
    features = candidate_features(
        result.state, test["customer"].to_numpy(), test["message"].to_numpy()
    )
    print(
        f"Starbucks, cut-off {cutoff:g} h, window {config.attribution_window_h:g} h, "
        f"traits {'on' if use_traits else 'off'}: {int(result.stats['resolved_sends'])} resolved "
        f"sends before the cut-off, {test.height} sends scored after it "
        f"(goal rate {outcome.mean():.3f})"
    )
    print(
        f"{'model':36s} {'AUC':>6s} {'log loss':>9s} {'top-decile rate':>16s} "
        f"{'mean p':>7s} {'p - rate':>9s} {'ECE':>6s}"
    )
    for name, feature_names in VARIANTS.items():
        model = fit_model(result.replay, feature_names, config)
        p, _ = predict(model, features)
        m = score_metrics(outcome, p)
        print(
            f"{name:36s} {m['auc']:6.4f} {m['log_loss']:9.4f} {m['top_decile_rate']:16.3f} "
            f"{m['mean_p']:7.3f} {m['mean_p'] - m['goal_rate']:+9.3f} {m['ece']:6.3f}"
        )
    boosted = gradient_boosted_p(result.replay, features)
    m = score_metrics(outcome, boosted)
    print(
        f"{'gradient boosting, same features':36s} {m['auc']:6.4f} {m['log_loss']:9.4f} "
        f"{m['top_decile_rate']:16.3f} {m['mean_p']:7.3f} {m['mean_p'] - m['goal_rate']:+9.3f} "
        f"{m['ece']:6.3f}"
    )
    full = fit_model(result.replay, ALL_FEATURES, config)
    print(
        "full model coefficients:",
        dict(zip(("intercept", *full.features), np.round(full.coefficients, 3), strict=True)),
    )
    print(f"calibration (a, b): {tuple(round(x, 3) for x in full.calibration)}")
    print(
        result.priming.select(
            "event_name",
            "lift",
            "odds_ratio",
            "odds_ratio_low",
            "odds_ratio_high",
            "support",
            "median_lead_h",
        )
    )
    print(result.habituation_curve)
    print({k: round(v, 4) for k, v in result.stats.items()})
    print(f"load {loaded - started:.1f} s, compute_memory {computed - loaded:.1f} s")


def gradient_boosted_p(
    replay: list[tuple[dict[str, np.ndarray], np.ndarray]], test_features: dict[str, np.ndarray]
) -> np.ndarray:
    """Return p from a gradient-boosted model fitted on the memory's replayed slices.

    The same features (ALL_FEATURES) and the same sends as the memory's scoring model; the
    library's defaults, with early stopping on a tenth of those sends: nothing is tuned on
    the test period.
    """
    design = np.vstack([feature_matrix(features, ALL_FEATURES) for features, _ in replay])
    outcome = np.concatenate([outcomes for _, outcomes in replay])
    model = HistGradientBoostingClassifier(early_stopping=True, random_state=0)
    model.fit(design, outcome)
    return model.predict_proba(feature_matrix(test_features, ALL_FEATURES))[:, 1]


# The choice of features and replay defaults is made on data before the test cut-off only.
VALIDATION_END = 504.0
VALIDATION_CUTOFFS = (336.0, 408.0)
# The defaults before issue #6: what the validation compares the new ones with.
PREVIOUS_REPLAY = {
    "training_snapshots": 3,
    "training_step_h": 144.0,
    "max_training_customers": 10_000,
}
PREVIOUS_FEATURES = tuple(f for f in ALL_FEATURES if f not in ("segment", "message_frequency"))
Check = tuple[list[tuple[dict[str, np.ndarray], np.ndarray]], dict[str, np.ndarray], np.ndarray]


def validation_checks(
    config: EngineConfig, use_traits: bool, features_of=candidate_features
) -> dict[str, Check]:
    """Return (replayed slices, test features, test outcomes) of each check before the cut-off.

    Every event at or after ``VALIDATION_END`` is dropped first. "cut-off c": memory as of c,
    scored on the sends at or after c whose window closes before VALIDATION_END (336: the sends
    at 336 and 408; 408: those at 408). "replay": the replay a run as of VALIDATION_END fits on,
    its newest slice held out as the test and the older ones fitting and calibrating the model.
    """
    events, messages, message_labels, traits = to_contract(*load_events())
    events = events.filter(pl.col("t") < VALIDATION_END)
    traits = traits if use_traits else None
    checks = {}
    for cutoff in VALIDATION_CUTOFFS:
        result = compute_memory(events, messages, message_labels, config, cutoff, traits=traits)
        test = evaluation_sends(events, config, cutoff)
        features = features_of(
            result.state, test["customer"].to_numpy(), test["message"].to_numpy()
        )
        checks[f"cut-off {cutoff:g}"] = (
            result.replay,
            features,
            test["goal"].to_numpy().astype(np.float64),
        )
    result = compute_memory(events, messages, message_labels, config, VALIDATION_END, traits=traits)
    if len(result.replay) > 1:
        newest_features, newest_outcomes = result.replay[0]
        checks["replay"] = (result.replay[1:], newest_features, newest_outcomes)
    return checks


def validate(use_traits: bool) -> None:
    """Print each variant's AUC and log loss on the checks before the cut-off, and their means."""
    started = time.perf_counter()
    config = EngineConfig(goal_event=GOAL_EVENT, send_event=SEND_EVENT, open_event=OPEN_EVENT)
    variants = {
        **{name: (config, names) for name, names in VARIANTS.items()},
        "full memory without segment": (
            config,
            tuple(f for f in ALL_FEATURES if f != "segment"),
        ),
        "previous features": (config, PREVIOUS_FEATURES),
        "previous features and replay": (replace(config, **PREVIOUS_REPLAY), PREVIOUS_FEATURES),
        "full memory, previous replay": (replace(config, **PREVIOUS_REPLAY), ALL_FEATURES),
        "full memory, 5 trait bins (previous)": (
            replace(config, trait_quantile_bins=5),
            ALL_FEATURES,
        ),
    }
    checks = {key: validation_checks(key, use_traits) for key in {c for c, _ in variants.values()}}
    names = list(checks[config])
    print(
        f"Validation: events before {VALIDATION_END:g} h only, traits "
        f"{'on' if use_traits else 'off'}. Test sends per check: "
        + ", ".join(f"{name} {check[2].size}" for name, check in checks[config].items())
    )
    print(
        "(the replay check's held-out slice depends on the replay step: compare replay "
        "settings on the cut-off checks)"
    )
    header = "".join(f" {name:>22s}" for name in [*names, "mean"])
    print(f"{'AUC / log loss / ECE':36s}{header}")
    for name, (variant_config, features) in variants.items():
        cells, scores = [], []
        for replay, test_features, outcome in checks[variant_config].values():
            model = fit_model(replay, features, variant_config)
            p, _ = predict(model, test_features)
            scores.append(score_metrics(outcome, p))
        scores.append({key: float(np.mean([m[key] for m in scores])) for key in scores[0]})
        cells = [f"{m['auc']:.4f} {m['log_loss']:.4f} {m['ece']:.3f}" for m in scores]
        print(f"{name:36s}" + "".join(f" {cell:>22s}" for cell in cells))
    print(f"validation {time.perf_counter() - started:.1f} s\n")


def bucket(frame: pl.DataFrame | None, index: int, count: int) -> pl.DataFrame | None:
    """Keep hash bucket ``index`` of ``count`` (customer mod count), renumbered densely."""
    if frame is None:
        return None
    return frame.filter(pl.col("customer") % count == index).with_columns(
        pl.col("customer") // count
    )


def evaluate_sharded(cutoff: float, use_traits: bool, population_buckets: int, shards: int) -> None:
    """Print the full memory's scores when fitted like a sharded recompute.

    The population comes from one of ``population_buckets`` hash buckets of customers; each of
    ``shards`` buckets is then scored from its own events and that population only.
    """
    events, messages, message_labels, traits = to_contract(*load_events())
    traits = traits if use_traits else None
    config = EngineConfig(goal_event=GOAL_EVENT, send_event=SEND_EVENT, open_event=OPEN_EVENT)
    started = time.perf_counter()
    population = fit_population(
        events=bucket(events, 0, population_buckets),
        messages=messages,
        message_labels=message_labels,
        config=config,
        horizon=cutoff,
        traits=bucket(traits, 0, population_buckets),
    )
    fitted = time.perf_counter()
    test = evaluation_sends(events, config, cutoff)
    outcome, p = [], []
    for index in range(shards):
        rows = bucket(test, index, shards)
        scored = score_with_population(
            events=bucket(events.filter(pl.col("t") < cutoff), index, shards),
            population=population,
            horizon=cutoff,
            candidates=rows.select("customer", "message"),
            traits=bucket(traits, index, shards),
        )
        outcome.append(rows["goal"].to_numpy().astype(np.float64))
        p.append(scored["p_goal"].to_numpy())
    scored_at = time.perf_counter()
    auc, loss, top = metrics(np.concatenate(outcome), np.concatenate(p))
    print(
        f"sharded: population on 1/{population_buckets} of the customers "
        f"({int(population.stats['customers'])}), {shards} shards: full memory AUC {auc:.3f}, "
        f"log loss {loss:.4f}, top-decile rate {top:.3f} "
        f"(fit {fitted - started:.1f} s, shards {scored_at - fitted:.1f} s)"
    )


def main() -> None:
    """Run the offline evaluation from the command line."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--cutoff", type=float, default=504.0)
    parser.add_argument("--no-traits", action="store_true", help="leave demographics out")
    parser.add_argument("--shards", type=int, default=0, help="also score shard by shard (0: skip)")
    parser.add_argument(
        "--population-buckets",
        type=int,
        default=1,
        help="fit the sharded run's population on one of this many customer buckets",
    )
    parser.add_argument(
        "--validate",
        action="store_true",
        help=f"first score every variant on data before {VALIDATION_END:g} h only "
        f"(cut-offs {', '.join(f'{c:g}' for c in VALIDATION_CUTOFFS)} and the replay)",
    )
    arguments = parser.parse_args()
    if arguments.validate:
        validate(not arguments.no_traits)
    evaluate(arguments.cutoff, not arguments.no_traits)
    if arguments.shards:
        evaluate_sharded(
            arguments.cutoff,
            not arguments.no_traits,
            arguments.population_buckets,
            arguments.shards,
        )


if __name__ == "__main__":
    main()
