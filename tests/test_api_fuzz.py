"""Fuzz every operation of the OpenAPI schema against a live server, with a key of every scope.

schemathesis generates requests from the schema (bounded: PRIMER_FUZZ_EXAMPLES per operation)
and checks each answer: never a 5xx, a documented status code and content type, and a body that
conforms to the schema. All failures are gathered and reported together.
"""

import os

import pytest
import schemathesis
from drf_spectacular.generators import SchemaGenerator
from hypothesis import HealthCheck, Phase, given, settings
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)

from campaigns.models import ApiKey, Webhook
from campaigns.tenancy.services import workspace_create
from campaigns.webhooks.services import webhook_create
from memory.recompute.plan import recompute_start
from memory.recompute.service import recompute_runner
from tests.campaigns.prompt_support import fake_llm  # noqa: F401
from tests.memory.engine_fixtures import AS_OF, load_synthetic

EXAMPLES = int(os.environ.get("PRIMER_FUZZ_EXAMPLES", "10"))
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]
# A fixed, large id for the fuzzing key, so generated ids do not revoke it mid-run.
KEY_ID = 987_654_321


@pytest.fixture
def fuzz_target(live_server, transactional_db, settings, fake_llm):  # noqa: F811
    """A workspace with memory, a webhook, an LLM and a key of every scope, served live."""
    settings.PRIMER_INGEST_RATE_LIMIT = 100_000
    workspace = workspace_create(slug="fuzz", name="Fuzz")
    load_synthetic(workspace, customers=20, events=1_000)
    plan = recompute_start(workspace=workspace, as_of=AS_OF)
    recompute_runner(plan=plan, on_workers=False).run(plan)
    webhook_create(workspace=workspace, url="https://crm.example/hook")
    raw_key, prefix = ApiKey.generate()
    ApiKey.objects.create(
        pk=KEY_ID,
        workspace=workspace,
        name="fuzz",
        prefix=prefix,
        key_hash=ApiKey.hash_of(raw_key),
        scopes=sorted(ApiKey.Scope.values),
    )
    assert Webhook.objects.for_workspace(workspace).exists()
    return live_server.url, {"Authorization": f"Bearer {raw_key}"}


def test_every_operation_answers_as_its_schema_says(fuzz_target):
    base_url, headers = fuzz_target
    schema = schemathesis.openapi.from_dict(SchemaGenerator().get_schema(request=None, public=True))
    failures: dict[str, list[str]] = {}
    operations = 0
    for result in schema.get_all_operations():
        operation = result.ok()
        operations += 1

        @given(case=operation.as_strategy())
        @settings(
            max_examples=EXAMPLES,
            deadline=None,
            derandomize=True,
            database=None,
            phases=[Phase.explicit, Phase.generate],
            suppress_health_check=list(HealthCheck),
        )
        def fuzz(case):
            case.call_and_validate(base_url=base_url, headers=headers, checks=CHECKS)

        try:
            fuzz()
        # Gathered (schemathesis raises a group of failures): one run reports them all.
        except (Exception, BaseExceptionGroup) as error:
            failures.setdefault(operation.label, []).append(str(error)[:3000])
    report = "\n\n".join(
        f"{label}:\n" + "\n".join(errors) for label, errors in sorted(failures.items())
    )
    if os.environ.get("PRIMER_FUZZ_REPORT"):  # the whole report, when pytest's is cut short
        with open(os.environ["PRIMER_FUZZ_REPORT"], "w", encoding="utf-8") as file:
            file.write(report or "no failures\n")
    assert operations > 40
    assert not failures, report
