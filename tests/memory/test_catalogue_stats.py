"""What the last run says per label: everyone's rate and lift, and who favours it."""

from django.utils import timezone

from campaigns.catalogue.selectors import taxonomy_overview
from memory.catalogue_stats import catalogue_stats
from memory.models import RecomputeRun
from tests.campaigns.prompt_support import customer, label, remember


def test_it_counts_each_customers_top_label_per_set_and_reads_the_runs_priors(workspace):
    discount, convenience = label(workspace, "discount"), label(workspace, "convenience")
    playful = label(workspace, "playful", set_slug="tone")
    ann, bob, cy = (customer(workspace, name) for name in ("ann", "bob", "cy"))
    remember(
        ann, weights={discount: (0.7, 5, 5, 3), convenience: (0.3, 2, 5, 1), playful: (1, 2, 2, 1)}
    )
    remember(bob, weights={discount: (0.2, 5, 5, 3), convenience: (0.8, 2, 5, 1)})
    remember(cy, weights={convenience: (0.9, 2, 5, 1)})
    RecomputeRun.objects.create(
        workspace=workspace,
        status=RecomputeRun.Status.SUCCEEDED,
        finished_at=timezone.now(),
        stats={
            "label_priors": [
                {
                    "label_set": "value_proposition",
                    "label": "discount",
                    "pooled_rate": 0.12,
                    "population_lift": 1.3,
                    "kappa": 5.0,
                    "population_exposures": 40.0,
                },
            ]
        },
    )
    stats = catalogue_stats(workspace=workspace)
    assert stats.of(discount.pk).favoured_by == 1
    assert stats.of(convenience.pk).favoured_by == 2
    assert stats.of(playful.pk).favoured_by == 1
    assert (stats.of(discount.pk).rate, stats.of(discount.pk).lift) == (0.12, 1.3)
    assert stats.of(convenience.pk).rate is None
    rows = {
        row.label.slug: row
        for _, rows in taxonomy_overview(workspace=workspace).sets
        for row in rows
    }
    assert rows["convenience"].favoured_by == 2 and rows["discount"].content_gap
