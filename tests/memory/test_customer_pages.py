"""The customers page: who is primed now, in pages that keep the filter."""

from memory.models import CustomerState
from memory.recompute import memory_recompute
from memory.scoring.priming import PRIMED_MIN_SCORE
from tests.memory.engine_fixtures import AS_OF, load_synthetic


def listed(response) -> list[str]:
    return [row["external_id"] for row in response.context["rows"]]


def test_it_lists_only_the_customers_primed_now(member_client, workspace):
    load_synthetic(workspace, customers=60, events=6_000)
    memory_recompute(workspace=workspace, as_of=AS_OF)
    scores = dict(
        CustomerState.objects.for_workspace(workspace).values_list(
            "customer__external_id", "primed_score"
        )
    )
    primed = sorted(name for name, score in scores.items() if score >= PRIMED_MIN_SCORE)
    assert 0 < len(primed) < len(scores)  # the data has both kinds

    everyone = member_client.get("/customers/")
    only = member_client.get("/customers/?primed=1")
    assert len(listed(everyone)) == min(len(scores), 50)
    assert listed(only) == primed[:50]
    assert b'name="primed" value="1" checked' in only.content


def test_it_keeps_the_filter_on_the_next_page(member_client, workspace):
    load_synthetic(workspace, customers=60, events=6_000)
    memory_recompute(workspace=workspace, as_of=AS_OF)
    CustomerState.objects.for_workspace(workspace).update(primed_score=1.0)

    first = member_client.get("/customers/?primed=1")
    assert len(listed(first)) == 50
    after = first.context["next_after"]
    assert f"primed=1&amp;after={after}" in first.content.decode()
    CustomerState.objects.for_workspace(workspace).filter(customer__external_id__gt=after).update(
        primed_score=0.0
    )
    assert listed(member_client.get(f"/customers/?primed=1&after={after}")) == []
    assert len(listed(member_client.get(f"/customers/?after={after}"))) == 10
