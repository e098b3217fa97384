"""Move a taxonomy between workspaces as JSON: label sets and labels, messages, prompt templates'
current text, campaigns, guardrails and segment overrides (a customer's own overrides name
customers of one workspace and stay there).

`config_export` reads; `config_import` writes through the audited changes (as the system actor),
matching by slug or key so that importing the same file twice changes nothing the second time,
and in one transaction so that a bad item leaves nothing half-imported. A refusal names the item
by its path in the file (``campaigns[2].audience: ...``).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from campaigns.catalogue.campaign_services import campaign_create, campaign_update
from campaigns.models import (
    EXPLORE_SHARE_DEFAULT,
    AuditEntry,
    Campaign,
    Guardrail,
    Label,
    LabelSet,
    Message,
    Override,
    PromptTemplate,
    Workspace,
)
from campaigns.prompts.services import prompt_template_create, prompt_template_save
from campaigns.strategy.services import (
    guardrail_archive,
    guardrail_create,
    guardrail_update,
    override_archive,
    override_create,
    override_update,
)
from campaigns.tenancy.changes import Actor, audit_record, change_create, change_update

FORMAT = "primer-config"
FORMAT_VERSION = 1
SET_FIELDS = ["name", "description", "multiple", "active"]
LABEL_FIELDS = ["name", "description", "prompt_phrase", "boost", "active"]
MESSAGE_FIELDS = ["channel", "subject", "body", "active"]
CAMPAIGN_FIELDS = [
    "name",
    "goal_event",
    "attribution_window_h",
    "guidance",
    "audience",
    "holdout_random",
    "holdout_no_memory",
    "exploration",
    "explore_share",
    "active",
]
GUARDRAIL_FIELDS = ["kind", "limit", "period", "audience", "event_name", "hours", "note"]


class ConfigImportError(ValueError):
    """A part of the file is refused: where (a path such as labels[3].boost) and why."""

    def __init__(self, path: str, reason: str):
        self.path, self.reason = path, reason
        super().__init__(f"{path}: {reason}")


@dataclass
class ConfigImportSummary:
    """How many objects of each kind the import created and changed."""

    created: dict[str, int] = field(default_factory=dict)
    changed: dict[str, int] = field(default_factory=dict)

    def count(self, kind: str, created: bool, changed: bool) -> None:
        if created:
            self.created[kind] = self.created.get(kind, 0) + 1
        elif changed:
            self.changed[kind] = self.changed.get(kind, 0) + 1

    def __str__(self) -> str:
        created = ", ".join(f"{n} {kind}" for kind, n in sorted(self.created.items()))
        changed = ", ".join(f"{n} {kind}" for kind, n in sorted(self.changed.items()))
        return f"created: {created or 'nothing'}; changed: {changed or 'nothing'}"


def config_export(*, workspace: Workspace) -> dict:
    """Return the workspace's taxonomy, messages, templates and campaigns as plain JSON."""
    label_sets = []
    for label_set in LabelSet.objects.for_workspace(workspace).prefetch_related("labels"):
        label_sets.append(
            {"slug": label_set.slug, **{name: getattr(label_set, name) for name in SET_FIELDS}}
            | {
                "labels": [
                    {"slug": label.slug, **{name: getattr(label, name) for name in LABEL_FIELDS}}
                    for label in sorted(label_set.labels.all(), key=lambda label: label.slug)
                ]
            }
        )
    messages = [
        {"key": message.key, **{name: getattr(message, name) for name in MESSAGE_FIELDS}}
        | {"labels": sorted(f"{lb.label_set.slug}:{lb.slug}" for lb in message.labels.all())}
        for message in Message.objects.for_workspace(workspace).prefetch_related(
            "labels__label_set"
        )
    ]
    templates = []
    for template in PromptTemplate.objects.for_workspace(workspace):
        current = template.current_version
        if current is not None:
            templates.append({"slug": template.slug, "name": template.name, "text": current.text})
    campaigns = [
        {"slug": campaign.slug, **{name: getattr(campaign, name) for name in CAMPAIGN_FIELDS}}
        | {
            "messages": sorted(message.key for message in campaign.messages.all()),
            "prompt_template": campaign.prompt_template.slug if campaign.prompt_template else None,
            "starts_at": campaign.starts_at.isoformat() if campaign.starts_at else None,
            "ends_at": campaign.ends_at.isoformat() if campaign.ends_at else None,
        }
        for campaign in Campaign.objects.for_workspace(workspace)
        .select_related("prompt_template")
        .prefetch_related("messages")
    ]
    return {
        "format": FORMAT,
        "version": FORMAT_VERSION,
        "workspace": workspace.slug,
        "label_sets": label_sets,
        "messages": messages,
        "prompt_templates": templates,
        "campaigns": campaigns,
        "guardrails": _guardrails_export(workspace),
        "overrides": _overrides_export(workspace),
    }


def _ref(label: Label | None) -> str | None:
    return None if label is None else f"{label.label_set.slug}:{label.slug}"


def _guardrails_export(workspace: Workspace) -> list[dict]:
    rows = Guardrail.objects.for_workspace(workspace).select_related(
        "label__label_set", "message", "campaign"
    )
    return [
        {"name": g.name, **{name: getattr(g, name) for name in GUARDRAIL_FIELDS}}
        | {
            "label": _ref(g.label),
            "message": g.message.key if g.message else None,
            "campaign": g.campaign.slug if g.campaign else None,
            "quiet_start": g.quiet_start.strftime("%H:%M") if g.quiet_start else None,
            "quiet_end": g.quiet_end.strftime("%H:%M") if g.quiet_end else None,
            "active": g.active,
        }
        for g in rows.order_by("created_at", "id")
    ]


def _overrides_export(workspace: Workspace) -> list[dict]:
    now = timezone.now()
    rows = (
        Override.objects.for_workspace(workspace)
        .filter(customer_external_id="")
        .exclude(expires_at__lte=now)
        .select_related("label__label_set")
    )
    return [
        {
            "segment": o.segment,
            "label": _ref(o.label),
            "action": o.action,
            "value": o.value,
            "note": o.note,
            "expires_at": o.expires_at.isoformat() if o.expires_at else None,
            "active": o.active,
        }
        for o in rows.order_by("created_at", "id")
    ]


# Reading the file -------------------------------------------------------------------------------


def _items(data: dict, key: str) -> list[tuple[str, dict]]:
    items = data.get(key, [])
    if not isinstance(items, list):
        raise ConfigImportError(key, "expected a list.")
    for i, item in enumerate(items):
        if not isinstance(item, dict):
            raise ConfigImportError(f"{key}[{i}]", "expected an object.")
    return [(f"{key}[{i}]", item) for i, item in enumerate(items)]


def _text(item: dict, name: str, path: str, *, required: bool = False) -> str:
    value = item.get(name, "")
    if value is None:
        value = ""
    if not isinstance(value, str):
        raise ConfigImportError(f"{path}.{name}", f"expected a string, got {value!r}.")
    if required and not value.strip():
        raise ConfigImportError(f"{path}.{name}", "required.")
    return value


def _fields(item: dict, names: list[str], path: str, defaults: dict) -> dict:
    """Return the named fields present in the item (missing ones: the model's default)."""
    picked = {}
    for name in names:
        value = item.get(name, defaults.get(name))
        kind = type(defaults.get(name))
        if name in {"multiple", "active"} and not isinstance(value, bool):
            raise ConfigImportError(f"{path}.{name}", f"expected true or false, got {value!r}.")
        if kind is str and not isinstance(value, str):
            raise ConfigImportError(f"{path}.{name}", f"expected a string, got {value!r}.")
        picked[name] = value
    return picked


def _refused(path: str, error: ValidationError) -> ConfigImportError:
    if hasattr(error, "error_dict"):
        name, messages = next(iter(error.message_dict.items()))
        where = path if name == "__all__" else f"{path}.{name}"
        return ConfigImportError(where, " ".join(messages))
    return ConfigImportError(path, " ".join(error.messages))


def _upsert(workspace, actor, existing, new, changes: dict, audited: list[str]) -> tuple:
    """Create `new`, or change `existing` where it differs; return (object, created, changed)."""
    if existing is None:
        for name, value in changes.items():
            setattr(new, name, value)
        return change_create(workspace=workspace, actor=actor, obj=new, audited=audited), True, True
    differs = {k: v for k, v in changes.items() if getattr(existing, k) != v}
    if not differs:
        return existing, False, False
    saved = change_update(
        workspace=workspace,
        actor=actor,
        obj=existing,
        changes=differs,
        expected_version=None,
        audited=audited,
    )
    return saved, False, True


# Writing ---------------------------------------------------------------------------------------


def _import_label_sets(workspace, actor, data, summary) -> dict[str, Label]:
    sets = {s.slug: s for s in LabelSet.objects.for_workspace(workspace)}
    labels = {
        f"{label.label_set.slug}:{label.slug}": label
        for label in Label.objects.for_workspace(workspace).select_related("label_set")
    }
    set_defaults = {"name": "", "description": "", "multiple": False, "active": True}
    label_defaults = {
        "name": "",
        "description": "",
        "prompt_phrase": "",
        "boost": 0.0,
        "active": True,
    }
    for path, item in _items(data, "label_sets"):
        slug = _text(item, "slug", path, required=True)
        changes = _fields(item, SET_FIELDS, path, set_defaults | {"name": slug})
        try:
            label_set, created, changed = _upsert(
                workspace,
                actor,
                sets.get(slug),
                LabelSet(workspace=workspace, slug=slug),
                changes,
                ["slug", *SET_FIELDS],
            )
        except ValidationError as error:
            raise _refused(path, error) from None
        sets[slug] = label_set
        summary.count("label sets", created, changed)
        for label_path, label_item in _items(item, "labels"):
            label_path = f"{path}.{label_path}"
            label_slug = _text(label_item, "slug", label_path, required=True)
            label_changes = _fields(
                label_item, LABEL_FIELDS, label_path, label_defaults | {"name": label_slug}
            )
            boost = label_changes["boost"]
            if isinstance(boost, bool) or not isinstance(boost, int | float):
                raise ConfigImportError(f"{label_path}.boost", f"expected a number, got {boost!r}.")
            existing = labels.get(f"{slug}:{label_slug}")
            if boost != (existing.boost if existing else 0.0):
                # Provenance: the boost now comes from the import.
                label_changes |= {"boost_set_by": actor.name, "boost_set_at": timezone.now()}
            try:
                label, created, changed = _upsert(
                    workspace,
                    actor,
                    existing,
                    Label(workspace=workspace, label_set=label_set, slug=label_slug),
                    label_changes,
                    ["slug", *LABEL_FIELDS],
                )
            except ValidationError as error:
                raise _refused(label_path, error) from None
            labels[f"{slug}:{label_slug}"] = label
            summary.count("labels", created, changed)
    return labels


def _import_messages(workspace, actor, data, labels, summary) -> dict[str, Message]:
    messages = {m.key: m for m in Message.objects.for_workspace(workspace)}
    defaults = {"channel": "", "subject": "", "body": "", "active": True}
    for path, item in _items(data, "messages"):
        key = _text(item, "key", path, required=True)
        changes = _fields(item, MESSAGE_FIELDS, path, defaults)
        names = item.get("labels", [])
        if not isinstance(names, list):
            raise ConfigImportError(f"{path}.labels", "expected a list of 'set:label' names.")
        unknown = [name for name in names if name not in labels]
        if unknown:
            raise ConfigImportError(
                f"{path}.labels", f"no such labels {unknown} (in the file or the workspace)."
            )
        wanted = sorted(names)
        existing = messages.get(key)
        before = (
            sorted(f"{lb.label_set.slug}:{lb.slug}" for lb in existing.labels.all())
            if existing
            else []
        )
        try:
            message, created, changed = _upsert(
                workspace,
                actor,
                existing,
                Message(workspace=workspace, key=key),
                changes,
                ["key", *MESSAGE_FIELDS],
            )
        except ValidationError as error:
            raise _refused(path, error) from None
        if wanted != before:
            message.labels.set([labels[name] for name in wanted])
            audit_record(
                workspace=workspace,
                actor=actor,
                action=AuditEntry.Action.UPDATE,
                obj=message,
                before={"labels": before},
                after={"labels": wanted},
            )
            changed = True
        messages[key] = message
        summary.count("messages", created, changed)
    return messages


def _import_templates(workspace, actor, data, summary) -> dict[str, PromptTemplate]:
    templates = {t.slug: t for t in PromptTemplate.objects.for_workspace(workspace)}
    for path, item in _items(data, "prompt_templates"):
        slug = _text(item, "slug", path, required=True)
        text = _text(item, "text", path, required=True)
        name = _text(item, "name", path) or slug
        existing = templates.get(slug)
        if existing is None:
            try:
                template = prompt_template_create(
                    workspace=workspace, slug=slug, name=name, text=text
                )
            except ValidationError as error:
                raise _refused(path, error) from None
            number, created = 1, True
        else:
            current = existing.current_version
            if current is not None and current.text == text:
                summary.count("prompt templates", False, False)
                continue
            template = existing
            number = prompt_template_save(template=existing, text=text, note="import_config").number
            created = False
        audit_record(
            workspace=workspace,
            actor=actor,
            action=AuditEntry.Action.CREATE if created else AuditEntry.Action.UPDATE,
            obj=template,
            after={"version": number},
        )
        templates[slug] = template
        summary.count("prompt templates", created, True)
    return templates


def _when(item: dict, name: str, path: str):
    value = item.get(name)
    if value in (None, ""):
        return None
    parsed = parse_datetime(value) if isinstance(value, str) else None
    if parsed is None:
        raise ConfigImportError(f"{path}.{name}", f"expected an ISO date-time, got {value!r}.")
    return parsed


def _import_campaigns(workspace, actor, data, messages, templates, summary) -> None:
    campaigns = {c.slug: c for c in Campaign.objects.for_workspace(workspace)}
    defaults = {
        "name": "",
        "goal_event": "",
        "attribution_window_h": None,
        "guidance": "",
        "audience": {},
        "holdout_random": 0.0,
        "holdout_no_memory": 0.0,
        "exploration": Campaign.Exploration.THOMPSON.value,
        "explore_share": EXPLORE_SHARE_DEFAULT,
        "active": True,
    }
    for path, item in _items(data, "campaigns"):
        slug = _text(item, "slug", path, required=True)
        fields = _fields(item, CAMPAIGN_FIELDS, path, defaults | {"name": slug})
        keys = item.get("messages", [])
        if not isinstance(keys, list) or any(key not in messages for key in keys):
            missing = (
                [key for key in keys if key not in messages] if isinstance(keys, list) else keys
            )
            raise ConfigImportError(f"{path}.messages", f"no such messages {missing}.")
        template_slug = item.get("prompt_template")
        if template_slug is not None and template_slug not in templates:
            raise ConfigImportError(f"{path}.prompt_template", f"no template {template_slug!r}.")
        fields |= {
            "messages": [messages[key] for key in keys],
            "prompt_template": templates.get(template_slug) if template_slug else None,
            "starts_at": _when(item, "starts_at", path),
            "ends_at": _when(item, "ends_at", path),
        }
        existing = campaigns.get(slug)
        try:
            if existing is None:
                campaign_create(workspace=workspace, actor=actor, slug=slug, **fields)
                summary.count("campaigns", True, True)
                continue
            current = {name: getattr(existing, name) for name in fields if name != "messages"}
            differs = {k: v for k, v in fields.items() if k != "messages" and current[k] != v}
            if sorted(m.key for m in existing.messages.all()) != sorted(keys):
                differs["messages"] = fields["messages"]
            if differs:
                campaign_update(
                    workspace=workspace,
                    actor=actor,
                    campaign=existing,
                    expected_version=None,
                    changes=differs,
                )
            summary.count("campaigns", False, bool(differs))
        except ValidationError as error:
            raise _refused(path, error) from None


def _reference(item: dict, name: str, path: str, known: dict):
    ref = item.get(name)
    if ref in (None, ""):
        return None
    if ref not in known:
        raise ConfigImportError(f"{path}.{name}", f"no such {name} {ref!r}.")
    return known[ref]


def _clock(item: dict, name: str, path: str):
    value = item.get(name)
    if value in (None, ""):
        return None
    try:
        return datetime.strptime(value, "%H:%M").time()
    except (TypeError, ValueError):
        raise ConfigImportError(f"{path}.{name}", f"expected HH:MM, got {value!r}.") from None


def _active(item: dict, path: str) -> bool:
    active = item.get("active", True)
    if not isinstance(active, bool):
        raise ConfigImportError(f"{path}.active", f"expected true or false, got {active!r}.")
    return active


def _rule_upsert(found, fields: dict, active: bool, *, argument: str, services, workspace, actor):
    """Create the rule, or change the fields that differ; then archive or restore it.

    `services` is (create, update, archive) of the rule's kind; `argument` the name its update
    and archive take it by. Returns (the rule, created, changed).
    """
    create, update, archive = services
    if found is None:
        found = create(workspace=workspace, actor=actor, **fields)
        created = changed = True
    else:
        differs = {k: v for k, v in fields.items() if getattr(found, k) != v}
        if differs:
            found = update(
                workspace=workspace,
                actor=actor,
                changes=differs,
                expected_version=None,
                **{argument: found},
            )
        created, changed = False, bool(differs)
    if found.active != active:
        archive(workspace=workspace, actor=actor, active=active, **{argument: found})
        changed = True
    return found, created, changed


def _import_guardrails(workspace, actor, data, labels, messages, summary) -> None:
    """Create or change guardrails, matched by name."""
    campaigns = {c.slug: c for c in Campaign.objects.for_workspace(workspace)}
    existing = {}
    for guardrail in Guardrail.objects.for_workspace(workspace).order_by("id"):
        existing.setdefault(guardrail.name, guardrail)
    for path, item in _items(data, "guardrails"):
        name = _text(item, "name", path, required=True)
        fields = {key: item.get(key) for key in GUARDRAIL_FIELDS}
        fields |= {
            "name": name,
            "audience": fields["audience"] or {},
            "period": fields["period"] or "",
            "event_name": fields["event_name"] or "",
            "note": fields["note"] or "",
            "label": _reference(item, "label", path, labels),
            "message": _reference(item, "message", path, messages),
            "campaign": _reference(item, "campaign", path, campaigns),
            "quiet_start": _clock(item, "quiet_start", path),
            "quiet_end": _clock(item, "quiet_end", path),
        }
        active = _active(item, path)
        try:
            found, created, changed = _rule_upsert(
                existing.get(name),
                fields,
                active,
                argument="guardrail",
                services=(guardrail_create, guardrail_update, guardrail_archive),
                workspace=workspace,
                actor=actor,
            )
        except ValidationError as error:
            raise _refused(path, error) from None
        existing[name] = found
        summary.count("guardrails", created, changed)


def _import_overrides(workspace, actor, data, labels, summary) -> None:
    """Create or change segment overrides, matched by segment, label and action."""
    existing = {}
    for override in Override.objects.for_workspace(workspace).filter(customer_external_id=""):
        key = (json.dumps(override.segment, sort_keys=True), override.label_id, override.action)
        existing.setdefault(key, override)
    for path, item in _items(data, "overrides"):
        label = _reference(item, "label", path, labels)
        if label is None:
            raise ConfigImportError(f"{path}.label", "required.")
        fields = {
            "segment": item.get("segment") or {},
            "label": label,
            "action": item.get("action"),
            "value": item.get("value"),
            "note": _text(item, "note", path),
            "expires_at": _when(item, "expires_at", path),
        }
        active = _active(item, path)
        key = (json.dumps(fields["segment"], sort_keys=True), label.pk, fields["action"])
        try:
            found, created, changed = _rule_upsert(
                existing.get(key),
                fields,
                active,
                argument="override",
                services=(override_create, override_update, override_archive),
                workspace=workspace,
                actor=actor,
            )
        except ValidationError as error:
            raise _refused(path, error) from None
        existing[key] = found
        summary.count("overrides", created, changed)


@transaction.atomic
def config_import(*, workspace: Workspace, data, actor: Actor | None = None) -> ConfigImportSummary:
    """Create or update the file's objects in the workspace, all or nothing; audit each change."""
    actor = actor or Actor.system("import_config")
    if not isinstance(data, dict):
        raise ConfigImportError("(file)", "expected a JSON object, as export_config writes.")
    if data.get("format") != FORMAT:
        raise ConfigImportError("format", f"expected {FORMAT!r}; is this an export_config file?")
    if data.get("version") != FORMAT_VERSION:
        raise ConfigImportError("version", f"this Primer reads version {FORMAT_VERSION}.")
    summary = ConfigImportSummary()
    labels = _import_label_sets(workspace, actor, data, summary)
    messages = _import_messages(workspace, actor, data, labels, summary)
    templates = _import_templates(workspace, actor, data, summary)
    _import_campaigns(workspace, actor, data, messages, templates, summary)
    _import_guardrails(workspace, actor, data, labels, messages, summary)
    _import_overrides(workspace, actor, data, labels, summary)
    return summary
