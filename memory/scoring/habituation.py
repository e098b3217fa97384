"""Habituation (non-associative memory): repeated, similar messages wear out.

The load of message m for customer u at time T is H = sum_k sim(m, m_k) * exp(-(T - t_k) / tau)
over u's sends k before T, with tau = half-life / ln 2. Similarity comes from the message texts
(character n-gram TF-IDF cosine by default; any ``SimilarityFn`` can replace it). The population
curve relates the response (open, goal) of past sends to their load at send time; the fitted decay
lambda is the slope of a logistic regression of the response on H, with the customer's baseline as
offset for the goal (so heavy buyers, who also get more sends, do not bend the curve).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import polars as pl
from scipy import sparse
from sklearn.feature_extraction.text import TfidfVectorizer

from memory.scoring.aggregate import group_sums
from memory.scoring.frames import EngineConfig
from memory.scoring.regression import fit_logistic, logit

SimilarityFn = Callable[[Sequence[str]], sparse.spmatrix]
CURVE_EDGES = (0.0, 0.1, 0.5, 1.0, 2.0, 4.0, np.inf)
LOOKBACK_TAUS = 10.0
SIMILARITY_BLOCK_ROWS = 1024
MIN_LOAD = 0.01
# A customer is worn out on a message from this load up (the prompt's "avoid" and the memory
# page's count): a load of 1 is about one send of this very message a moment ago, or several
# similar ones.
WORN_OUT_MIN_LOAD = 1.0


def tfidf_similarity(texts: Sequence[str]) -> sparse.csr_matrix:
    """Return the cosine similarity of texts' character 3-5-gram TF-IDF vectors."""
    if len(texts) == 0:
        return sparse.csr_matrix((0, 0))
    if not any(text.strip() for text in texts):
        return sparse.identity(len(texts), format="csr")
    vectors = TfidfVectorizer(analyzer="char_wb", ngram_range=(3, 5), sublinear_tf=True)
    matrix = vectors.fit_transform([text.lower() for text in texts])
    return sparse.csr_matrix(matrix @ matrix.T)


def nearest_similarity(similarity: sparse.spmatrix, neighbours: int) -> sparse.csr_matrix:
    """Keep each message's ``neighbours`` most similar messages (itself always, at 1)."""
    matrix = sparse.csr_matrix(similarity, dtype=np.float64)
    n = matrix.shape[0]
    rows, cols, values = [], [], []
    for lo in range(0, n, SIMILARITY_BLOCK_ROWS):
        block = matrix[lo : lo + SIMILARITY_BLOCK_ROWS].toarray()
        np.clip(block, 0.0, 1.0, out=block)
        local = np.arange(block.shape[0])
        block[local, lo + local] = 1.0
        keep = min(neighbours + 1, n)
        top = np.argpartition(-block, keep - 1, axis=1)[:, :keep]
        picked = np.take_along_axis(block, top, axis=1)
        mask = picked > 0
        rows.append(np.repeat(lo + local, keep)[mask.ravel()])
        cols.append(top.ravel()[mask.ravel()])
        values.append(picked.ravel()[mask.ravel()])
    if not rows:
        return sparse.csr_matrix((n, n))
    kept = sparse.csr_matrix(
        (np.concatenate(values), (np.concatenate(rows), np.concatenate(cols))), shape=(n, n)
    )
    # Symmetrise so that sim(a, b) == sim(b, a) even when only one kept the other.
    return kept.maximum(kept.T).tocsr()


def exposure_matrix(
    sends: pl.DataFrame, n_customers: int, n_messages: int, tau: float, horizon: float
) -> sparse.csr_matrix:
    """Return customers x messages with sum_k exp(-(horizon - t_k) / tau) over past sends."""
    decay = np.exp(-(horizon - sends["t"].to_numpy()) / tau)
    return sparse.csr_matrix(
        (decay, (sends["customer"].to_numpy(), sends["message"].to_numpy())),
        shape=(n_customers, n_messages),
    )


def load_matrix(exposure: sparse.csr_matrix, similarity: sparse.csr_matrix) -> sparse.csr_matrix:
    """Return customers x messages habituation loads H = exposure @ similarity."""
    return sparse.csr_matrix(exposure @ similarity)


def habituation_frame(
    loads: sparse.csr_matrix, sends: pl.DataFrame, min_load: float = MIN_LOAD
) -> pl.DataFrame:
    """Return rows (customer, message, load, sends, last_sent_t) with a load of at least min_load.

    ``sends`` counts past sends of that exact message; ``last_sent_t`` is the latest (null if
    the load comes only from similar messages).
    """
    loads = sparse.csr_matrix(loads)
    loads.sort_indices()
    # Row-major with sorted columns: the rows come out ordered by (customer, message).
    coo = loads.tocoo()
    keep = coo.data >= min_load
    customer = coo.row[keep].astype(np.int64)
    message = coo.col[keep].astype(np.int64)
    n_messages = max(loads.shape[1], 1)
    load_key = customer * n_messages + message
    sent_key = sends["customer"].to_numpy().astype(np.int64) * n_messages + sends[
        "message"
    ].to_numpy().astype(np.int64)
    sent_t = sends["t"].to_numpy().astype(np.float64)
    # Sends arrive nearly sorted by customer: a stable integer sort is cheap (a lexsort is not).
    order = np.argsort(sent_key, kind="stable")
    sent_key, sent_t = sent_key[order], sent_t[order]
    starts = np.flatnonzero(np.r_[True, sent_key[1:] != sent_key[:-1]]) if order.size else order
    counts = np.diff(np.r_[starts, sent_key.size])
    last = np.maximum.reduceat(sent_t, starts) if starts.size else sent_t
    unique_key = sent_key[starts]
    where = np.minimum(np.searchsorted(unique_key, load_key), max(unique_key.size - 1, 0))
    found = unique_key[where] == load_key if unique_key.size else np.zeros(load_key.size, bool)
    return pl.DataFrame(
        {
            "customer": customer,
            "message": message,
            "load": coo.data[keep],
            "sends": np.where(found, counts[where] if counts.size else 0, 0).astype(np.int64),
            "last_sent_t": pl.Series(
                np.where(found, last[where] if last.size else 0.0, np.nan)
            ).fill_nan(None),
        }
    )


def send_loads(sends: pl.DataFrame, similarity: sparse.csr_matrix, tau: float) -> np.ndarray:
    """Return each send's load at its own time from the same customer's earlier sends."""
    if sends.height == 0:
        return np.empty(0)
    coo = sparse.coo_matrix(similarity)
    pairs_sim = pl.DataFrame(
        {
            "message": coo.row.astype(np.int64),
            "message_prev": coo.col.astype(np.int64),
            "sim": coo.data,
        }
    )
    current = sends.select("send", "customer", "message", "t")
    earlier = sends.select(
        "customer", pl.col("message").alias("message_prev"), pl.col("t").alias("t_prev")
    )
    loads = (
        current.join(earlier, on="customer")
        .filter(
            (pl.col("t_prev") < pl.col("t"))
            & (pl.col("t") - pl.col("t_prev") < LOOKBACK_TAUS * tau)
        )
        .join(pairs_sim, on=["message", "message_prev"])
        .select(
            "send", (pl.col("sim") * (-(pl.col("t") - pl.col("t_prev")) / tau).exp()).alias("load")
        )
        .pipe(group_sums, ["send"], ["load"])
    )
    by_send = current.select("send").join(loads, on="send", how="left").sort("send")
    return by_send["load"].fill_null(0.0).to_numpy()


def curve_sample(sends: pl.DataFrame, max_sends: int, seed: int) -> pl.DataFrame:
    """Return the sends of a seeded random subset of customers holding about max_sends sends."""
    if sends.height <= max_sends:
        return sends
    customers = sends["customer"].unique().sort().to_numpy()
    fraction = max_sends / sends.height
    rng = np.random.default_rng(seed)
    chosen = customers[rng.random(customers.size) < fraction]
    return sends.filter(pl.col("customer").is_in(chosen))


def habituation_curve(
    sends: pl.DataFrame,
    loads: np.ndarray,
    baseline_rate: np.ndarray,
    config: EngineConfig,
) -> tuple[pl.DataFrame, dict[str, float]]:
    """Return the response by load bin and the fitted decays (lambda for goal and open).

    ``sends`` are resolved sends (``goal``, ``opened``) and ``loads`` their loads at send time.
    Curve columns: load_low, load_high, sends, mean_load, open_rate, goal_rate,
    fitted_goal_rate (the goal model at the bin's mean load and mean baseline offset).
    """
    edges = np.asarray(CURVE_EDGES)
    goal = sends["goal"].cast(pl.Float64).to_numpy()
    opened = sends["opened"].cast(pl.Float64).to_numpy()
    offset = logit(baseline_rate[sends["customer"].to_numpy()])
    stats = {"habituation_lambda_goal": 0.0, "habituation_lambda_open": 0.0}
    goal_fit = np.zeros(2)
    if goal.size >= 10 and np.ptp(loads) > 0:
        goal_fit = fit_logistic(loads[:, None], goal, offset=offset, l2=1e-6)
        open_fit = fit_logistic(loads[:, None], opened, l2=1e-6)
        stats = {
            "habituation_lambda_goal": float(-goal_fit[1]),
            "habituation_lambda_open": float(-open_fit[1]),
        }
    bins = np.clip(np.searchsorted(edges, loads, side="right") - 1, 0, edges.size - 2)
    # numpy bincount sums in row order, so the curve is bit-for-bit reproducible.
    size = edges.size - 1
    counts = np.bincount(bins, minlength=size).astype(np.float64)
    present = counts > 0

    def bin_mean(values: np.ndarray) -> np.ndarray:
        return np.bincount(bins, weights=values, minlength=size)[present] / counts[present]

    curve = pl.DataFrame(
        {
            "bin": np.flatnonzero(present),
            "sends": counts[present].astype(np.int64),
            "mean_load": bin_mean(loads),
            "open_rate": bin_mean(opened),
            "goal_rate": bin_mean(goal),
            "mean_offset": bin_mean(offset),
        }
    )
    bin_index = curve["bin"].to_numpy()
    fitted = 1.0 / (
        1.0
        + np.exp(
            -(
                curve["mean_offset"].to_numpy()
                + goal_fit[0]
                + goal_fit[1] * curve["mean_load"].to_numpy()
            )
        )
    )
    curve = curve.with_columns(
        pl.Series("load_low", edges[bin_index]),
        pl.Series("load_high", edges[bin_index + 1]),
        pl.Series("fitted_goal_rate", fitted),
    ).select(
        "load_low", "load_high", "sends", "mean_load", "open_rate", "goal_rate", "fitted_goal_rate"
    )
    return curve, stats
