"""Associative memory: per customer x label Beta posteriors of the response to a send.

Every resolved send credits each label of its message (a message with two value propositions
cannot tell them apart, so both get the outcome). Per label, an empirical-Bayes prior comes from
the population by the method of moments; each customer's prior mean is their own baseline times
the label's population lift, so a frequent buyer does not seem to love every label. Outcomes are
discounted by age: S = sum(gamma_k * r_k), F = sum(gamma_k * (1 - r_k)), gamma_k =
0.5 ** (age_k / half-life) -- the closed form of S <- gamma * S + r applied send by send.
"""

from __future__ import annotations

import numpy as np
import polars as pl
from scipy import sparse
from scipy.special import digamma, expit, ndtri, polygamma

from memory.scoring.aggregate import group_sums
from memory.scoring.frames import EngineConfig

DRAW_BLOCK_CELLS = 8_000_000
RATE_FLOOR = 1e-4


def label_catalogue(message_labels: pl.DataFrame) -> pl.DataFrame:
    """Return the distinct labels with a dense ``label_id``, sorted by set and label."""
    return (
        message_labels.select("label_set", "label")
        .unique()
        .sort("label_set", "label")
        .with_row_index("label_id")
        .with_columns(pl.col("label_id").cast(pl.Int64))
    )


def message_label_matrix(
    message_labels: pl.DataFrame, catalogue: pl.DataFrame, n_messages: int
) -> sparse.csr_matrix:
    """Return the 0/1 incidence matrix messages x labels."""
    rows = message_labels.join(catalogue, on=["label_set", "label"])
    rows = rows.filter(pl.col("message") < n_messages)
    data = np.ones(rows.height)
    shape = (n_messages, catalogue.height)
    matrix = sparse.csr_matrix(
        (data, (rows["message"].to_numpy(), rows["label_id"].to_numpy())), shape=shape
    )
    matrix.data[:] = 1.0
    return matrix


def moment_prior(
    exposures: np.ndarray,
    conversions: np.ndarray,
    expected: np.ndarray | None = None,
    *,
    lower: float = 2.0,
    upper: float = 500.0,
) -> tuple[float, float]:
    """Return (pooled rate m, prior strength kappa) by the method of moments.

    m = sum(x) / sum(n). The between-customer variance s^2 of the true rates around their
    expected values (m, or a per-customer ``expected``) is the n-weighted variance of x / n minus
    the binomial noise: s^2 = (sum n (x/n - e)^2 - sum e (1 - e)) / sum n. Then
    kappa = m (1 - m) / s^2 - 1, clipped to [lower, upper] (upper when s^2 <= 0).
    """
    seen = exposures > 0
    n = exposures[seen].astype(np.float64)
    x = conversions[seen].astype(np.float64)
    total = float(n.sum())
    if total == 0.0:
        return 0.5, lower
    pooled = float(x.sum()) / total
    centre = np.full(n.shape, pooled) if expected is None else expected[seen]
    spread = float(np.sum(n * (x / n - centre) ** 2)) - float(np.sum(centre * (1 - centre)))
    variance = spread / total
    if variance <= 0.0:
        return pooled, upper
    kappa = pooled * (1.0 - pooled) / variance - 1.0
    return pooled, float(np.clip(kappa, lower, upper))


def logit_normal_moments(alpha: np.ndarray, beta: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Return the exact mean and sd of logit(theta) for theta ~ Beta(alpha, beta)."""
    mean = digamma(alpha) - digamma(beta)
    sd = np.sqrt(polygamma(1, alpha) + polygamma(1, beta))
    return mean, sd


def customer_label_counts(
    resolved_sends: pl.DataFrame,
    message_labels: pl.DataFrame,
    catalogue: pl.DataFrame,
    config: EngineConfig,
    horizon: float,
) -> pl.DataFrame:
    """Return per exposed customer x label: discounted successes/failures and raw counts."""
    half_life = config.association_half_life_h
    weighted = resolved_sends.select(
        "customer",
        "message",
        (0.5 ** ((pl.lit(horizon) - pl.col("t")) / half_life)).alias("gamma"),
        pl.col("goal").cast(pl.Float64),
    ).select(
        "customer",
        "message",
        (pl.col("gamma") * pl.col("goal")).alias("successes"),
        (pl.col("gamma") * (1.0 - pl.col("goal"))).alias("failures"),
        pl.lit(1.0).alias("exposures"),
        pl.col("goal").alias("conversions"),
    )
    labels = message_labels.join(catalogue, on=["label_set", "label"]).select("message", "label_id")
    return group_sums(
        weighted.join(labels, on="message"),
        ["customer", "label_id"],
        ["successes", "failures", "exposures", "conversions"],
    )


def label_priors(
    counts: pl.DataFrame, catalogue: pl.DataFrame, baseline_rate: np.ndarray, config: EngineConfig
) -> pl.DataFrame:
    """Return per label the pooled rate, population lift over baseline and prior strength."""
    counts = counts.with_columns(pl.Series("base", baseline_rate[counts["customer"].to_numpy()]))
    rows = []
    for label_id, group in counts.partition_by("label_id", as_dict=True).items():
        n = group["exposures"].to_numpy()
        x = group["conversions"].to_numpy()
        base = group["base"].to_numpy()
        lift = float(x.sum()) / max(float(np.sum(n * base)), 1e-12)
        expected = np.clip(base * lift, RATE_FLOOR, 1 - RATE_FLOOR)
        pooled, kappa = moment_prior(
            n, x, expected, lower=config.prior_strength_min, upper=config.prior_strength_max
        )
        rows.append((int(label_id[0]), pooled, lift, kappa, float(n.sum())))
    fitted = pl.DataFrame(
        rows,
        schema={
            "label_id": pl.Int64,
            "pooled_rate": pl.Float64,
            "population_lift": pl.Float64,
            "kappa": pl.Float64,
            "population_exposures": pl.Float64,
        },
        orient="row",
    )
    return (
        catalogue.join(fitted, on="label_id", how="left")
        .with_columns(
            pl.col("pooled_rate").fill_null(
                float(np.mean(baseline_rate)) if baseline_rate.size else 0.5
            ),
            pl.col("population_lift").fill_null(1.0),
            pl.col("kappa").fill_null(config.prior_strength_min),
            pl.col("population_exposures").fill_null(0.0),
        )
        .sort("label_id")
    )


def label_posteriors(
    counts: pl.DataFrame,
    priors: pl.DataFrame,
    baseline_rate: np.ndarray,
    config: EngineConfig,
    *,
    with_propensity: bool = True,
) -> pl.DataFrame:
    """Return the weights frame: one row per customer x label of every label set they were sent.

    Columns: customer, label_set, label, label_id, alpha, beta, exposures, conversions, rate
    (posterior mean), prior_rate, weight (share of Thompson draws won within the set),
    weight_low / weight_high (credible interval of the response rate), evidence (alpha + beta),
    lift (rate over the customer's baseline), association (log of rate over prior mean).
    """
    exposed_sets = (
        counts.join(priors.select("label_id", "label_set"), on="label_id")
        .select("customer", "label_set")
        .unique()
    )
    rows = (
        exposed_sets.join(priors, on="label_set")
        .join(counts, on=["customer", "label_id"], how="left")
        .with_columns(pl.col("successes", "failures", "exposures", "conversions").fill_null(0.0))
        .sort("customer", "label_set", "label")
    )
    base = baseline_rate[rows["customer"].to_numpy()]
    prior_rate = np.clip(base * rows["population_lift"].to_numpy(), RATE_FLOOR, 1 - RATE_FLOOR)
    kappa = rows["kappa"].to_numpy()
    alpha = kappa * prior_rate + rows["successes"].to_numpy()
    beta = kappa * (1.0 - prior_rate) + rows["failures"].to_numpy()
    rate = alpha / (alpha + beta)
    mean, sd = logit_normal_moments(alpha, beta)
    z = float(ndtri(0.5 + config.interval_level / 2.0))
    groups = rows.select(pl.struct("customer", "label_set").rle_id().alias("g"))["g"].to_numpy()
    if with_propensity:
        weight = thompson_shares(mean, sd, groups, config.propensity_draws, config.seed)
    else:
        weight = np.full(rows.height, np.nan)
    return rows.select(
        "customer", "label_set", "label", "label_id", "exposures", "conversions"
    ).with_columns(
        pl.Series("alpha", alpha),
        pl.Series("beta", beta),
        pl.Series("rate", rate),
        pl.Series("prior_rate", prior_rate),
        pl.Series("weight", weight),
        pl.Series("weight_low", expit(mean - z * sd)),
        pl.Series("weight_high", expit(mean + z * sd)),
        pl.Series("evidence", alpha + beta),
        pl.Series("lift", rate / np.maximum(base, RATE_FLOOR)),
        pl.Series("association", np.log(rate / prior_rate)),
    )


def thompson_shares(
    mean: np.ndarray, sd: np.ndarray, groups: np.ndarray, draws: int, seed: int
) -> np.ndarray:
    """Return per row the share of draws in which it has the highest draw within its group.

    Draws are logit-normal with the Beta's exact logit moments, taken at ``draws`` stratified
    normal quantiles; each position within a group gets its own seeded permutation of them, so
    labels are drawn independently and the result is deterministic. Rows must be grouped
    contiguously (``groups`` non-decreasing).
    """
    n = mean.size
    if n == 0:
        return np.empty(0)
    quantiles = ndtri((np.arange(draws) + 0.5) / draws)
    starts = np.flatnonzero(np.r_[True, groups[1:] != groups[:-1]])
    sizes = np.diff(np.r_[starts, n])
    position = np.arange(n) - np.repeat(starts, sizes)
    width = int(sizes.max())
    rng = np.random.default_rng(seed)
    permutations = np.stack([rng.permutation(draws) for _ in range(width)])
    # Pad groups to a (groups, width) grid so the winner is an argmax along one axis.
    grid = np.full((starts.size, width), -1, dtype=np.int64)
    grid[np.repeat(np.arange(starts.size), sizes), position] = np.arange(n)
    shares = np.empty(n)
    block = max(1, DRAW_BLOCK_CELLS // (width * draws))
    for lo in range(0, starts.size, block):
        index = grid[lo : lo + block]
        present = index >= 0
        rows = np.where(present, index, 0)
        z = quantiles[permutations]  # (width, draws)
        sample = mean[rows][:, :, None] + sd[rows][:, :, None] * z[None, :, :]
        sample[~present] = -np.inf
        winner = sample.argmax(axis=1)  # (groups, draws)
        won = (winner[:, None, :] == np.arange(width)[None, :, None]).mean(axis=2)
        shares[index[present]] = won[present]
    return shares
