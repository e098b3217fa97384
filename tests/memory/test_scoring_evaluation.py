import numpy as np
import polars as pl
import pytest

from memory.scoring.evaluation import VARIANTS, calibration, evaluate, metrics
from memory.scoring.synthetic import synthetic_workspace


def test_it_gives_the_mean_p_the_goal_rate_and_the_ece_over_equal_count_bins():
    p = np.array([0.1, 0.2, 0.3, 0.4, 0.6, 0.7, 0.8, 0.9])
    goal = np.array([0.0, 0.0, 0.0, 0.0, 1.0, 1.0, 1.0, 0.0])
    # Two bins of four: mean p 0.25 against a rate of 0, and 0.75 against 3/4.
    result = calibration(goal, p, bins=2)
    assert result["mean_p"] == pytest.approx(0.5)
    assert result["goal_rate"] == pytest.approx(0.375)
    assert result["ece"] == pytest.approx(0.5 * 0.25 + 0.5 * 0.0)


def test_it_sees_a_miscalibration_that_cancels_in_the_large():
    # Right on average (0.5 against 0.5), wrong by 0.8 in each half.
    result = calibration(np.array([1.0, 1.0, 0.0, 0.0]), np.array([0.2, 0.2, 0.8, 0.8]), bins=2)
    assert result["mean_p"] == pytest.approx(result["goal_rate"])
    assert result["ece"] == pytest.approx(0.8)


def test_it_reports_calibration_beside_discrimination():
    rng = np.random.default_rng(3)
    p = rng.uniform(0.05, 0.85, 4000)
    goal = (rng.uniform(size=p.size) < p).astype(np.float64)
    calibrated = metrics(goal, p)
    # The same ranking 0.1 too high: AUC unchanged, the level error shows in both measures.
    shifted = metrics(goal, p + 0.1)
    assert shifted["auc"] == pytest.approx(calibrated["auc"])
    assert calibrated["ece"] < 0.03
    assert shifted["mean_p"] - shifted["goal_rate"] == pytest.approx(
        calibrated["mean_p"] - calibrated["goal_rate"] + 0.1
    )
    assert shifted["ece"] > calibrated["ece"] + 0.05


def test_it_scores_every_model_with_its_own_calibration():
    workspace = synthetic_workspace(200, 16_000, seed=4)
    heard = []
    result = evaluate(
        workspace.events,
        workspace.messages,
        workspace.message_labels,
        workspace.config,
        1_500.0,
        on_progress=lambda stage, done, total: heard.append((stage, done, total)),
    )
    # Each step is heard once, in order: the memory, every variant, then the end.
    assert [stage for stage, _, _ in heard] == ["memory before the cut-off", *VARIANTS, "done"]
    assert [done for _, done, _ in heard] == list(range(len(VARIANTS) + 2))
    assert {total for _, _, total in heard} == {len(VARIANTS) + 1}
    goal = result.predictions["goal"].to_numpy().astype(np.float64)
    assert result.scores.height == len(VARIANTS)
    for row in result.scores.iter_rows(named=True):
        p = result.predictions[row["model"]].to_numpy()
        assert row["mean_p"] == pytest.approx(p.mean())
        assert row["goal_rate"] == pytest.approx(result.goal_rate)
        assert row["ece"] == pytest.approx(calibration(goal, p)["ece"])
        # Binning can only add error: |sum of w (p - y)| <= sum of w |p - y|.
        assert abs(row["mean_p"] - row["goal_rate"]) <= row["ece"] + 1e-12


def test_it_scores_a_customer_new_after_the_cut_off_as_cold_start():
    workspace = synthetic_workspace(200, 16_000, seed=4)
    config = workspace.config
    newcomer = pl.DataFrame(
        {
            "customer": [200, 200],
            "name": [config.send_event, config.goal_event],
            "t": [1_600.0, 1_610.0],
            "message": [3, None],
            "revenue": [None, None],
        },
        schema=workspace.events.schema,
    )
    traits = pl.DataFrame(
        {"customer": list(range(201)), "plan": ["gold" if i % 2 else "basic" for i in range(201)]}
    )
    result = evaluate(
        pl.concat([workspace.events, newcomer]),
        workspace.messages,
        workspace.message_labels,
        config,
        1_500.0,
        traits=traits,
        variants={"full memory": VARIANTS["full memory"]},
    )
    cold = result.predictions.filter(pl.col("cold_start"))
    # Scored, not refused: only the newcomer has no event before the cut-off.
    assert cold["customer"].unique().to_list() == [200]
    assert result.cold_start_sends == cold.height == 1
    assert 0.0 < cold["full memory"][0] < 1.0
