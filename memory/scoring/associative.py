"""Associative memory: per customer x label Beta posteriors of the response to a send.

Every resolved send credits each label of its message (a message with two value propositions
cannot tell them apart, so both get the outcome). Per label, an empirical-Bayes prior comes from
the population by the method of moments; each customer's prior mean is their own baseline times
the label's population lift, so a frequent buyer does not seem to love every label. Outcomes are
discounted by age: S = sum(gamma_k * r_k), F = sum(gamma_k * (1 - r_k)), gamma_k =
0.5 ** (age_k / half-life) -- the closed form of S <- gamma * S + r applied send by send.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import numpy as np
import polars as pl
from scipy import sparse
from scipy.special import digamma, expit, ndtri

from memory.scoring.frames import EngineConfig

# Cells of draws per block: small enough that a block's arrays stay in the CPU's cache
# (docs/decisions/0105-draw-blocks-in-cache.md).
DRAW_BLOCK_CELLS = 262_144
COUNT_BLOCK_CELLS = 4_000_000
TRIGAMMA_SHIFT = 12
WEIGHTS_SCHEMA = {
    "customer": pl.Int64,
    "label_set": pl.Utf8,
    "label": pl.Utf8,
    "label_id": pl.Int64,
    **dict.fromkeys(
        (
            "exposures",
            "conversions",
            "alpha",
            "beta",
            "rate",
            "prior_rate",
            "weight",
            "weight_low",
            "weight_high",
            "thompson_share",
            "evidence",
            "lift",
            "association",
        ),
        pl.Float64,
    ),
}
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


def trigamma(x: np.ndarray) -> np.ndarray:
    """Return psi_1(x) for x > 0 to double precision (scipy's polygamma goes through zeta, slowly).

    psi_1(x) = sum_{k<n} 1 / (x + k)^2 + psi_1(x + n), shifting to x + n >= 12, where the
    asymptotic series 1/z + 1/(2z^2) + sum_k B_2k / z^(2k+1) (to B_14) is exact to rounding.
    """
    x = np.asarray(x, dtype=np.float64)
    shifts = np.ceil(np.maximum(TRIGAMMA_SHIFT - x, 0.0))
    total = np.zeros_like(x)
    for k in range(int(shifts.max()) if shifts.size else 0):
        total += (k < shifts) / (x + k) ** 2
    inverse = 1.0 / (x + shifts)
    square = inverse * inverse
    series = inverse * (
        1.0
        + inverse / 2.0
        + square
        * (
            1 / 6
            + square
            * (
                -1 / 30
                + square
                * (
                    1 / 42
                    + square
                    * (-1 / 30 + square * (5 / 66 + square * (-691 / 2730 + square * 7 / 6)))
                )
            )
        )
    )
    return total + series


def logit_normal_moments(alpha: np.ndarray, beta: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Return the exact mean and sd of logit(theta) for theta ~ Beta(alpha, beta)."""
    mean = digamma(alpha) - digamma(beta)
    sd = np.sqrt(trigamma(alpha) + trigamma(beta))
    return mean, sd


def message_label_incidence(
    message_labels: pl.DataFrame, catalogue: pl.DataFrame, n_messages: int
) -> sparse.csr_matrix:
    """Return the 0/1 messages x labels incidence with sorted label ids per message."""
    matrix = message_label_matrix(message_labels, catalogue, n_messages)
    matrix.sort_indices()
    return matrix


def label_counts(
    customer: np.ndarray,
    message: np.ndarray,
    values: dict[str, np.ndarray],
    incidence: sparse.csr_matrix,
) -> tuple[np.ndarray, np.ndarray, dict[str, np.ndarray]]:
    """Return (customer, label_id, sums) over every (send, label of its message) pair.

    Sums run in row order within a customer (``np.bincount``), so a customer's sums depend only
    on their own rows and their order, never on who else is in the frame. Rows come out sorted by
    customer, then label id; a pair is present when the customer had at least one row.
    """
    n_labels = incidence.shape[1]
    empty = np.empty(0, dtype=np.int64)
    if customer.size == 0 or n_labels == 0:
        return empty, empty, {name: np.empty(0) for name in values}
    order = np.argsort(customer, kind="stable")
    customer, message = customer[order], message[order]
    starts = incidence.indptr[message]
    lengths = incidence.indptr[message + 1] - starts
    pairs = int(lengths.sum())
    row = np.repeat(np.arange(customer.size), lengths)
    within = np.arange(pairs) - np.repeat(np.cumsum(lengths) - lengths, lengths)
    label = incidence.indices[np.repeat(starts, lengths) + within].astype(np.int64)
    pair_customer = customer[row]
    pair_values = {name: column[order][row] for name, column in values.items()}
    # Dense per block of customers: a bincount is linear and sums in row order.
    block = max(1, COUNT_BLOCK_CELLS // n_labels)
    out_customer, out_label, out_sums = [], [], {name: [] for name in values}
    first, last = int(pair_customer[0]), int(pair_customer[-1])
    bounds = np.searchsorted(pair_customer, np.arange(first, last + block + 1, block))
    starts = range(first, last + 1, block)
    for lo_customer, lo, hi in zip(starts, bounds[:-1], bounds[1:], strict=True):
        if lo == hi:
            continue
        cells = block * n_labels
        key = (pair_customer[lo:hi] - lo_customer) * n_labels + label[lo:hi]
        seen = np.bincount(key, minlength=cells) > 0
        kept = np.flatnonzero(seen)
        out_customer.append(lo_customer + kept // n_labels)
        out_label.append(kept % n_labels)
        for name, column in pair_values.items():
            out_sums[name].append(np.bincount(key, weights=column[lo:hi], minlength=cells)[kept])
    return (
        np.concatenate(out_customer).astype(np.int64),
        np.concatenate(out_label).astype(np.int64),
        {name: np.concatenate(parts) for name, parts in out_sums.items()},
    )


def later_sends(sends: pl.DataFrame) -> np.ndarray:
    """Return per send how many of its customer's sends come after it (ties: by row order)."""
    if sends.height == 0:
        return np.zeros(0)
    order = np.lexsort(
        (np.arange(sends.height), sends["t"].to_numpy(), sends["customer"].to_numpy())
    )
    customer = sends["customer"].to_numpy()[order]
    last = np.r_[np.flatnonzero(customer[1:] != customer[:-1]), customer.size - 1]
    end = last[np.searchsorted(last, np.arange(customer.size))]
    later = np.empty(customer.size)
    later[order] = end - np.arange(customer.size)
    return later


def customer_label_counts(
    resolved_sends: pl.DataFrame,
    message_labels: pl.DataFrame,
    catalogue: pl.DataFrame,
    config: EngineConfig,
    horizon: float,
    incidence: sparse.csr_matrix | None = None,
) -> pl.DataFrame:
    """Return per exposed customer x label: discounted successes/failures and raw counts."""
    if incidence is None:
        n_messages = int(
            max(
                resolved_sends["message"].max() if resolved_sends.height else -1,
                message_labels["message"].max() if message_labels.height else -1,
            )
            + 1
        )
        incidence = message_label_incidence(message_labels, catalogue, n_messages)
    message = resolved_sends["message"].to_numpy().astype(np.int64)
    known = message < incidence.shape[0]
    sends = resolved_sends.filter(pl.Series(known))
    goal = sends["goal"].cast(pl.Float64).to_numpy()
    gamma = 0.5 ** ((horizon - sends["t"].to_numpy()) / config.association_half_life_h)
    gamma *= 0.5 ** (later_sends(sends) / config.association_half_life_sends)
    values = {
        "successes": gamma * goal,
        "failures": gamma * (1.0 - goal),
        "exposures": np.ones(goal.size),
        "conversions": goal,
    }
    if "opened" in sends.columns:
        opened = sends["opened"].cast(pl.Float64).fill_null(0.0).to_numpy()
        values |= {
            "open_successes": gamma * opened,
            "open_failures": gamma * (1.0 - opened),
            "opens": opened,
        }
    customer, label, sums = label_counts(
        sends["customer"].to_numpy().astype(np.int64), message[known], values, incidence
    )
    return pl.DataFrame({"customer": customer, "label_id": label, **sums})


def engagement_counts(counts: pl.DataFrame) -> pl.DataFrame:
    """Return ``customer_label_counts`` with the open as the outcome instead of the goal
    (no rows when the sends carried no opens)."""
    if "opens" not in counts.columns:
        return counts.clear().select(
            "customer", "label_id", "successes", "failures", "exposures", "conversions"
        )
    return counts.select(
        "customer",
        "label_id",
        pl.col("open_successes").alias("successes"),
        pl.col("open_failures").alias("failures"),
        "exposures",
        pl.col("opens").alias("conversions"),
    )


def open_totals(resolved_sends: pl.DataFrame, n_customers: int) -> tuple[np.ndarray, np.ndarray]:
    """Return per dense customer their resolved sends and how many of them were opened."""
    if "opened" not in resolved_sends.columns or resolved_sends.height == 0:
        return np.zeros(n_customers), np.zeros(n_customers)
    customer = resolved_sends["customer"].to_numpy().astype(np.int64)
    opened = resolved_sends["opened"].cast(pl.Float64).fill_null(0.0).to_numpy()
    size = max(n_customers, int(customer.max()) + 1)
    sends = np.bincount(customer, minlength=size)[:n_customers].astype(np.float64)
    opens = np.bincount(customer, weights=opened, minlength=size)[:n_customers]
    return sends, opens


def open_prior(sends: np.ndarray, opens: np.ndarray, config: EngineConfig) -> tuple[float, float]:
    """Return the population's (open rate, prior strength) over customers; (0, 0) without any
    open, so that a workspace that records no opens gets no engagement memory at all."""
    if float(opens.sum()) == 0.0:
        return 0.0, 0.0
    return moment_prior(
        sends, opens, lower=config.prior_strength_min, upper=config.prior_strength_max
    )


def open_baseline(sends: np.ndarray, opens: np.ndarray, prior: tuple[float, float]) -> np.ndarray:
    """Return each customer's open rate shrunk toward the population's: their usual openness,
    which a label's open rate is measured against (as the goal baseline is for the goal)."""
    pooled, kappa = prior
    rate = (opens + kappa * pooled) / np.maximum(sends + kappa, 1e-12)
    return np.clip(rate, RATE_FLOOR, 1 - RATE_FLOOR)


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


class PosteriorRows(NamedTuple):
    """Every customer x label of each set the customer was sent, with its Beta posterior."""

    customer: np.ndarray
    label_id: np.ndarray
    group: np.ndarray  # one id per (customer, label set): Thompson draws compete within it
    counted: Callable[[str], np.ndarray]  # a counts column per row (0 where never sent)
    base: np.ndarray
    prior: np.ndarray
    alpha: np.ndarray
    beta: np.ndarray
    rate: np.ndarray


def _posterior_rows(
    counts: pl.DataFrame, priors: pl.DataFrame, baseline_rate: np.ndarray
) -> PosteriorRows:
    """Expand each (customer, label set) with a send to every label of the set; apply the
    priors (``priors`` sorted by label id, each set's labels contiguous)."""
    set_of = priors["label_set"].rank("dense").cast(pl.Int64).to_numpy() - 1
    set_start = np.searchsorted(set_of, np.arange(set_of.max() + 1))
    set_size = np.bincount(set_of)
    count_customer = counts["customer"].to_numpy().astype(np.int64)
    count_label = counts["label_id"].to_numpy().astype(np.int64)
    n_labels = priors.height
    count_key = count_customer * n_labels + count_label
    order = np.argsort(count_key, kind="stable")  # already sorted when from label_counts
    count_key = count_key[order]
    # Each (customer, set) with a send, expanded to every label of that set.
    pair_customer = count_customer[order]
    pair_set = set_of[count_label[order]]
    new_pair = np.r_[
        True, (pair_customer[1:] != pair_customer[:-1]) | (pair_set[1:] != pair_set[:-1])
    ]
    pair_customer, pair_set = pair_customer[new_pair], pair_set[new_pair]
    lengths = set_size[pair_set]
    group = np.repeat(np.arange(pair_set.size), lengths)
    within = np.arange(int(lengths.sum())) - np.repeat(np.cumsum(lengths) - lengths, lengths)
    customer = pair_customer[group]
    label_id = set_start[pair_set][group] + within
    where = np.minimum(np.searchsorted(count_key, customer * n_labels + label_id), order.size - 1)
    found = count_key[where] == customer * n_labels + label_id

    def counted(name: str) -> np.ndarray:
        column = counts[name].to_numpy().astype(np.float64)[order]
        return np.where(found, column[where], 0.0)

    successes, failures = counted("successes"), counted("failures")
    base = baseline_rate[customer]
    prior_rate = np.clip(
        base * priors["population_lift"].to_numpy()[label_id], RATE_FLOOR, 1 - RATE_FLOOR
    )
    kappa = priors["kappa"].to_numpy()[label_id]
    alpha = kappa * prior_rate + successes
    beta = kappa * (1.0 - prior_rate) + failures
    rate = alpha / (alpha + beta)
    return PosteriorRows(customer, label_id, group, counted, base, prior_rate, alpha, beta, rate)


def label_associations(
    counts: pl.DataFrame, priors: pl.DataFrame, baseline_rate: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Return (customer, label_id, ln(posterior mean / prior mean)) of ``label_posteriors``
    alone, without its intervals and draws (what a scoring feature needs)."""
    if counts.height == 0 or priors.height == 0:
        empty = np.empty(0, dtype=np.int64)
        return empty, empty, np.empty(0)
    rows = _posterior_rows(counts, priors.sort("label_id"), baseline_rate)
    return rows.customer, rows.label_id, np.log(rows.rate / rows.prior)


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
    (posterior mean), prior_rate, weight (the posterior mean rate: what marketers see and rank
    by), weight_low / weight_high (its credible interval), thompson_share (share of Thompson
    draws won within the set: for exploration, not ranking), evidence (alpha + beta),
    lift (rate over the customer's baseline), association (log of rate over prior mean).
    ``priors`` is ordered by label id with each set's labels contiguous (``label_catalogue``).
    """
    priors = priors.sort("label_id")
    if counts.height == 0 or priors.height == 0:
        return pl.DataFrame(schema=WEIGHTS_SCHEMA)
    rows = _posterior_rows(counts, priors, baseline_rate)
    customer, label_id, group, counted = rows.customer, rows.label_id, rows.group, rows.counted
    alpha, beta, rate, prior_rate, base = rows.alpha, rows.beta, rows.rate, rows.prior, rows.base
    mean, sd = logit_normal_moments(alpha, beta)
    z = float(ndtri(0.5 + config.interval_level / 2.0))
    if with_propensity:
        share = thompson_shares(mean, sd, group, config.propensity_draws, config.seed)
    else:
        share = np.full(customer.size, np.nan)
    take = pl.Series(label_id)
    return pl.DataFrame(
        {
            "customer": customer,
            "label_set": priors["label_set"].gather(take),
            "label": priors["label"].gather(take),
            "label_id": label_id,
            "exposures": counted("exposures"),
            "conversions": counted("conversions"),
            "alpha": alpha,
            "beta": beta,
            "rate": rate,
            "prior_rate": prior_rate,
            # A share of 256 draws ties and moves in steps of 1/256; the mean ranks better.
            "weight": rate,
            "weight_low": expit(mean - z * sd),
            "weight_high": expit(mean + z * sd),
            "thompson_share": share,
            "evidence": alpha + beta,
            "lift": rate / np.maximum(base, RATE_FLOOR),
            "association": np.log(rate / prior_rate),
        }
    )


def thompson_shares(
    mean: np.ndarray, sd: np.ndarray, groups: np.ndarray, draws: int, seed: int
) -> np.ndarray:
    """Return per row the share of draws in which it has the highest draw within its group.

    Draws are logit-normal with the Beta's exact logit moments, taken at ``draws`` stratified
    normal quantiles; each position within a group gets its own seeded permutation of them, so
    labels are drawn independently, the result is deterministic, and a group's shares depend on
    that group alone. Rows must be grouped contiguously (``groups`` non-decreasing).
    """
    n = mean.size
    if n == 0:
        return np.empty(0)
    quantiles = ndtri((np.arange(draws) + 0.5) / draws)
    starts = np.flatnonzero(np.r_[True, groups[1:] != groups[:-1]])
    sizes = np.diff(np.r_[starts, n])
    rng = np.random.default_rng(seed)
    z = quantiles[np.stack([rng.permutation(draws) for _ in range(int(sizes.max()))])]
    shares = np.empty(n)
    block = max(1, DRAW_BLOCK_CELLS // draws)
    for width in np.unique(sizes):
        # Groups of one width at a time: a running maximum over positions, no padding.
        first = starts[sizes == width]
        for lo in range(0, first.size, block):
            rows = first[lo : lo + block, None] + np.arange(width)[None, :]
            best = np.multiply(sd[rows[:, 0], None], z[0][None, :])
            best += mean[rows[:, 0], None]
            winner = np.zeros(best.shape, dtype=np.int8 if width < 128 else np.int32)
            draw, better = np.empty_like(best), np.empty(best.shape, dtype=bool)
            for position in range(1, width):
                np.multiply(sd[rows[:, position], None], z[position][None, :], out=draw)
                draw += mean[rows[:, position], None]
                np.greater(draw, best, out=better)
                np.maximum(best, draw, out=best)
                np.copyto(winner, position, where=better)
            won = np.zeros(rows.shape[0], dtype=np.int64)
            for position in range(width - 1):
                np.equal(winner, position, out=better)
                wins = np.count_nonzero(better, axis=1)
                shares[rows[:, position]] = wins / draws
                won += wins
            # The last position won every draw the others did not: one pass fewer.
            shares[rows[:, width - 1]] = (draws - won) / draws
    return shares
