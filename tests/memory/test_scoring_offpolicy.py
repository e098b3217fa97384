"""Off-policy estimators: IPS, SNIPS, DR, customer-level bootstrap, paired differences, MDE."""

import numpy as np
import pytest

from memory.scoring.offpolicy import (
    Target,
    doubly_robust,
    importance_weights,
    ips,
    minimum_detectable_effect,
    policy_values,
    snips,
)

# Four sends, logged uniformly over two messages (propensity 1/2); the target always sends 1.
ACTIONS = np.array([1, 1, 1, 0])
REWARDS = np.array([1.0, 1.0, 0.0, 1.0])
HALF = np.full(4, 0.5)
ALWAYS_ONE = (ACTIONS == 1).astype(float)


def test_it_scales_the_matched_mean_by_the_matched_share_over_the_propensity():
    weight = importance_weights(ALWAYS_ONE, HALF)
    # Three of four sends match, their mean reward is 2/3: IPS = (3/4) / (1/2) * 2/3 = 1.
    assert weight.tolist() == [2.0, 2.0, 2.0, 0.0]
    assert ips(REWARDS, weight) == pytest.approx(1.0)
    # Self-normalised, it is the matched sends' own mean.
    assert snips(REWARDS, weight) == pytest.approx(2 / 3)


def test_it_equals_the_plain_mean_for_the_logging_policy_itself():
    weight = importance_weights(HALF, HALF)
    assert ips(REWARDS, weight) == pytest.approx(0.75)
    assert snips(REWARDS, weight) == pytest.approx(0.75)


def test_it_refuses_a_zero_propensity():
    with pytest.raises(ValueError, match="unidentifiable"):
        importance_weights(ALWAYS_ONE, np.array([0.5, 0.5, 0.0, 0.5]))


def test_it_returns_the_models_mean_when_the_model_is_perfect():
    # Two contexts; the true (and modelled) reward of message a for context x is truth[x, a].
    truth = np.array([[0.2, 0.9], [0.6, 0.1]])
    context = np.array([0, 0, 1, 1, 1])
    action = np.array([0, 1, 0, 1, 1])
    reward = truth[context, action]
    choice = truth[context].argmax(axis=1)  # target: the better message per context
    weight = importance_weights((action == choice).astype(float), np.full(5, 0.5))
    value = doubly_robust(reward, weight, truth[context, action], truth[context, choice])
    # (0.9 + 0.9 + 0.6 + 0.6 + 0.6) / 5, whatever the weights: the residuals are all zero.
    assert value == pytest.approx(0.72)


def test_it_corrects_a_wrong_model_with_the_weighted_residual():
    reward, weight = np.array([1.0, 0.0]), np.array([2.0, 0.0])
    # Model says 0.5 everywhere: DR = mean(0.5 + w (r - 0.5)) = (0.5 + 1.0 + 0.5) / 2 = 1.0.
    assert doubly_robust(reward, weight, np.full(2, 0.5), np.full(2, 0.5)) == pytest.approx(1.0)


def many_sends(seed=0, customers=400, sends_each=3):
    """Return a uniformly logged two-message workspace where message 1 pays 0.2 more."""
    rng = np.random.default_rng(seed)
    customer = np.repeat(np.arange(customers), sends_each)
    action = rng.integers(0, 2, customer.size)
    reward = (rng.random(customer.size) < 0.4 + 0.2 * action).astype(float)
    return customer, action, reward


def test_it_gives_intervals_that_contain_the_estimates_and_a_paired_difference():
    customer, action, reward = many_sends()
    model = np.where(action == 1, 0.6, 0.4)
    results = policy_values(
        reward=reward,
        propensity=np.full(reward.size, 0.5),
        clusters=customer,
        targets={
            "logging": Target(np.full(reward.size, 0.5), np.full(reward.size, 0.5)),
            "always 1": Target((action == 1).astype(float), np.full(reward.size, 0.6)),
        },
        reference="logging",
        model_logged=model,
        draws=400,
    )
    logging, always = results
    assert logging.matches == reward.size and always.matches == int((action == 1).sum())
    for result in results:
        for estimate in result.estimates.values():
            assert estimate.contains(estimate.value) and estimate.low < estimate.high
    # The reference against itself differs by exactly 0 in every draw.
    assert logging.differences["snips"].low == logging.differences["snips"].high == 0.0
    # Always sending the better message is worth about 0.1 more than a coin flip.
    assert always.differences["snips"].value == pytest.approx(0.1, abs=0.05)
    assert always.differences["dr"].low > 0


def test_it_widens_the_interval_when_a_customers_sends_move_together():
    customer, action, reward = many_sends(sends_each=1)
    # Each customer's single send copied four times: four rows, one piece of evidence.
    repeated = {
        "customer": np.repeat(customer, 4),
        "action": np.repeat(action, 4),
        "reward": np.repeat(reward, 4),
    }

    def width(clusters):
        (result,) = policy_values(
            reward=repeated["reward"],
            propensity=np.full(repeated["reward"].size, 0.5),
            clusters=clusters,
            targets={"always 1": Target((repeated["action"] == 1).astype(float))},
            reference="always 1",
            draws=400,
        )
        assert "dr" not in result.estimates  # no outcome model given
        return result.estimates["snips"].high - result.estimates["snips"].low

    by_customer = width(repeated["customer"])
    by_send = width(np.arange(repeated["reward"].size))
    # Resampling sends as if independent would claim twice the precision (sqrt of 4).
    assert by_customer / by_send == pytest.approx(2.0, rel=0.25)


def test_it_computes_the_minimum_detectable_effect_of_two_proportions():
    # (1.960 + 0.842) * sqrt(0.25 * 2 / 1000) = 0.0626 before the variance at p2 is iterated.
    assert minimum_detectable_effect(0.5, 1000, 1000) == pytest.approx(0.0625, abs=0.001)
    # Four times the sends, half the effect.
    assert minimum_detectable_effect(0.5, 4000, 4000) == pytest.approx(0.0625 / 2, abs=0.001)
    # At 10%, (2.802) * sqrt(0.09 * 0.0008) = 0.0238, a little more at p2 = 0.125.
    assert minimum_detectable_effect(0.1, 2500, 2500) == pytest.approx(0.0250, abs=0.001)
    assert minimum_detectable_effect(0.1, 0, 10) == float("inf")
