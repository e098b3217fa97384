"""A change's effect before it is made: next best messages (memory) and prompts (here).

The ranking part is memory/effect_preview.py's; this adds the prompt: the sampled customers
whose weights the change touches (at most ``PROMPT_CAP`` of them) have their prompt rendered
with the workspace's template under the overrides in force now and under the proposed ones,
from one read of their memory (docs/decisions/0110-effect-preview-of-rules.md).
"""

from __future__ import annotations

import difflib
import time

from campaigns.models import Workspace
from campaigns.prompts.context import CUSTOMER_COLUMNS, CustomerRow, MemoryReader
from campaigns.prompts.engine import TemplateProblem, compile_template, render_text
from campaigns.prompts.selectors import prompt_choice
from memory.effect_preview import PREVIEW_KINDS, EffectPreview, WeightChange, wilson_interval
from memory.models import Customer

# Prompts rendered per preview (twice each): enough for a share, a few hundred milliseconds.
PROMPT_CAP = 300


def prompt_diff(before: str, after: str) -> list[str]:
    """Return the unified diff of two prompts, line by line (no file header)."""
    lines = difflib.unified_diff(
        before.splitlines(), after.splitlines(), "before", "after", lineterm="", n=2
    )
    return [line for line in lines if not line.startswith(("---", "+++"))]


def prompt_effect(*, workspace: Workspace, weights: WeightChange, cap: int = PROMPT_CAP) -> dict:
    """Return how many of the touched sampled customers' prompts change, and one's diff."""
    started = time.perf_counter()
    touched = weights.customers
    chosen = touched[:cap]
    answer = {
        "touched": len(touched),
        "cap": cap,
        "rendered": len(chosen),
        "changed": 0,
        "share": 0.0,
        "interval": wilson_interval(0, 0),
        "template": "",
        "example": None,
        "note": "",
        "seconds": 0.0,
    }
    if not chosen:
        answer["note"] = (
            "The change touches no sampled customer's label weights: their prompts stay as "
            "they are (guardrails decide what may be sent, not what the prompt says)."
        )
        return answer
    choice = prompt_choice(workspace=workspace)
    answer["template"] = f"{choice.template_slug} v{choice.template_version}"
    try:
        template = compile_template(choice.text)
    except TemplateProblem as problem:
        answer["note"] = f"The workspace's template does not render: {problem}"
        return answer
    rows = [
        CustomerRow(*row)
        for row in Customer.objects.for_workspace(workspace)
        .filter(pk__in=[c.pk for c in chosen])
        .order_by("pk")
        .values_list(*CUSTOMER_COLUMNS)
    ]
    reader = MemoryReader(workspace, guidance=choice.guidance)
    memory = reader.read(rows)
    texts = {}
    for when, overrides in (("before", weights.before), ("after", weights.after)):
        reader.overrides = overrides
        for label_id, boost in weights.boosts.items():
            if label_id in reader.labels and when == "after":
                reader.labels[label_id]["boost"] = boost
        for row, context in zip(rows, reader.build(rows, memory), strict=True):
            try:
                texts.setdefault(row.external_id, {})[when] = render_text(template, context)
            except TemplateProblem as problem:
                texts.setdefault(row.external_id, {})[when] = str(problem)
    changed = sorted(eid for eid, pair in texts.items() if pair["before"] != pair["after"])
    answer |= {
        "changed": len(changed),
        "share": len(changed) / len(rows) if rows else 0.0,
        "interval": wilson_interval(len(changed), len(rows)),
        "note": (
            f"Rendered with the template {answer['template']} for {len(rows):,} of the "
            f"{len(touched):,} sampled customers whose label weights the change touches "
            f"(at most {cap:,})."
        ),
        "seconds": time.perf_counter() - started,
    }
    if changed:
        first = texts[changed[0]]
        answer["example"] = {
            "customer": changed[0],
            "diff": prompt_diff(first["before"], first["after"]),
        }
    return answer


def effect_preview(*, workspace: Workspace, kind: str, **fields) -> dict:
    """Return a change's effect on sampled customers' next best messages and prompts."""
    preview: EffectPreview = PREVIEW_KINDS[kind](workspace=workspace, **fields)
    answer = preview.as_dict()
    answer["prompts"] = prompt_effect(workspace=workspace, weights=preview.weights)
    answer["seconds"] += answer["prompts"]["seconds"]
    return answer
