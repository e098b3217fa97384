"""One customer's data: export all of it as JSON, or erase all of it, audited.

Both walk the customer's model relations (every model with a foreign key to Customer that
cascades), so a table added later is exported and erased without changing this module. Other
apps erase what they keep about the customer on `customer_erasing` (campaigns: webhook
deliveries; it also tells the webhooks), inside the same transaction.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.db import models, transaction
from django.utils import timezone

from campaigns.models import AuditEntry, Workspace
from campaigns.tenancy.changes import Actor, audit_record
from memory.decision_matching import uplift_store
from memory.ingest.suppression import id_digest, suppression_lock_exclusive
from memory.models import Customer, Decision, SuppressedCustomer
from memory.signals import customer_erasing

CUSTOMER_FIELDS = ["external_id", "anonymous_id", "traits", "first_seen_at", "last_seen_at"]


@dataclass(frozen=True)
class CustomerErased:
    """What erasing a customer removed: rows per table."""

    external_id: str
    rows: dict[str, int]
    suppressed: bool = False

    def as_dict(self) -> dict:
        return {"customer": self.external_id, "deleted": self.rows, "suppressed": self.suppressed}


def _customer(workspace: Workspace, external_id: str, *, lock: bool = False) -> Customer:
    customers = Customer.objects.for_workspace(workspace)
    if lock:
        customers = customers.select_for_update()
    return customers.get(external_id=external_id)


def _relations(customer: Customer):
    """Yield (name, rows) for every table that refers to the customer and cascades with it."""
    for relation in Customer._meta.related_objects:
        if relation.on_delete is not models.CASCADE:
            continue
        model = relation.related_model
        manager = model.objects
        rows = (
            manager.for_workspace(customer.workspace_id)
            if hasattr(manager, "for_workspace")
            else model._base_manager.all()
        )
        yield model._meta.label_lower, rows.filter(**{relation.field.name: customer})


def customer_data_export(*, workspace: Workspace, external_id: str, actor: Actor) -> dict:
    """Return everything stored about one customer, JSON-ready, and audit the export.

    Raise Customer.DoesNotExist when the workspace has no such customer.
    """
    customer = _customer(workspace, external_id)
    tables = {}
    for name, rows in _relations(customer):
        fields = [
            field.attname
            for field in rows.model._meta.concrete_fields
            if field.name not in ("workspace", "customer")
        ]
        tables[name] = list(rows.order_by("pk").values(*fields))
    audit_record(
        workspace=workspace,
        actor=actor,
        action=AuditEntry.Action.EXPORT,
        obj=customer,
        after={name: len(rows) for name, rows in tables.items()},
    )
    return {
        "workspace": workspace.slug,
        "exported_at": timezone.now(),
        "customer": {field: getattr(customer, field) for field in CUSTOMER_FIELDS},
        "tables": tables,
    }


@transaction.atomic
def customer_erase(
    *, workspace: Workspace, external_id: str, actor: Actor, suppress: bool = False
) -> CustomerErased:
    """Delete a customer with their events, derived memory and every record that refers to
    them, in one transaction, audited; other apps erase theirs on `customer_erasing`. With
    `suppress`, their id's later events are refused instead of creating them again.

    Raise Customer.DoesNotExist when the workspace has no such customer.
    """
    # First: batches being written finish (their rows are erased below); later ones wait for
    # this transaction, and then see the suppression or no customer.
    suppression_lock_exclusive(workspace.pk)
    customer = _customer(workspace, external_id, lock=True)
    if suppress:
        _suppressions_store(workspace, [external_id], actor)
    customer_erasing.send(
        sender=Customer,
        workspace_id=workspace.pk,
        customer_id=customer.pk,
        external_id=external_id,
        suppressed=suppress,
    )
    customer_pk = customer.pk
    # Their decisions leave the campaigns' stored uplift counts and sums: store those again.
    campaigns = set(
        Decision.objects.for_workspace(workspace)
        .filter(customer=customer, campaign__isnull=False)
        .values_list("campaign_id", flat=True)
        .distinct()
    )
    _, deleted = customer.delete()  # Django's collector follows every cascading relation
    uplift_store(workspace=workspace, campaign_ids=campaigns)
    rows = {name.lower(): count for name, count in sorted(deleted.items()) if count}
    audit_record(
        workspace=workspace,
        actor=actor,
        action=AuditEntry.Action.DELETE,
        object_type="customer",
        object_id=str(customer_pk),
        object_repr=external_id,
        before=rows,
        after={"suppressed": True} if suppress else None,
    )
    return CustomerErased(external_id=external_id, rows=rows, suppressed=suppress)


class CustomerStored(Exception):
    """The id names a stored customer: erase them with suppression instead."""


def _suppressions_store(
    workspace: Workspace, external_ids: list[str], actor: Actor
) -> tuple[list[str], list[str]]:
    """Store the digests of the ids not suppressed yet, in one statement; return (the ids
    newly suppressed, the ids suppressed before), each in the order given."""
    digests = {external_id: id_digest(workspace.pk, external_id) for external_id in external_ids}
    known = set(
        SuppressedCustomer.objects.for_workspace(workspace)
        .filter(digest__in=list(digests.values()))
        .values_list("digest", flat=True)
    )
    added = [x for x in external_ids if digests[x] not in known]
    SuppressedCustomer.objects.bulk_create(
        [
            SuppressedCustomer(
                workspace=workspace, digest=digests[x], suppressed_by=actor.name[:300]
            )
            for x in added
        ]
    )
    return added, [x for x in external_ids if digests[x] in known]


def _stored_ids(workspace: Workspace, external_ids: list[str]) -> set[str]:
    """Return those of the ids that name a stored customer of the workspace."""
    return set(
        Customer.objects.for_workspace(workspace)
        .filter(external_id__in=external_ids)
        .values_list("external_id", flat=True)
    )


@dataclass(frozen=True)
class Suppressed:
    """What suppressing a list of ids did to each."""

    added: list[str]
    already: list[str]  # suppressed before
    stored: list[str]  # customers with data here: refused, to be erased with suppression


def customer_suppress(*, workspace: Workspace, external_id: str, actor: Actor) -> bool:
    """Refuse the id's events from now on, for a person who has no data here yet (an opt-out
    received before their first event); audited. Return False when already suppressed.

    Raise CustomerStored when the workspace holds a customer with that id: suppressing them
    without erasing would keep a profile that can no longer change.
    """
    done = customers_suppress(workspace=workspace, external_ids=[external_id], actor=actor)
    if done.stored:
        raise CustomerStored(
            f"Customer {external_id!r} has data in this workspace; delete them with "
            "suppression instead."
        )
    return bool(done.added)


@transaction.atomic
def customers_suppress(
    *, workspace: Workspace, external_ids: list[str], actor: Actor
) -> Suppressed:
    """Refuse the events of each id that has no data here (an opt-out list), set-based, in one
    audited transaction; ids of stored customers are left out and reported."""
    suppression_lock_exclusive(workspace.pk)
    wanted = list(dict.fromkeys(external_ids))  # once each, in the order given
    stored = _stored_ids(workspace, wanted)
    added, already = _suppressions_store(workspace, [x for x in wanted if x not in stored], actor)
    if added:
        audit_record(
            workspace=workspace,
            actor=actor,
            action=AuditEntry.Action.CREATE,
            object_type="suppression",
            object_repr=added[0] if len(added) == 1 else f"{len(added)} ids",
            after={"ids": added},
        )
    return Suppressed(added=added, already=already, stored=[x for x in wanted if x in stored])


# A list suppresses at most this many ids; of them at most ERASE_AT_ONCE erased (each erasure
# pauses the workspace's writes while it runs).
SUPPRESS_AT_ONCE = 1_000
ERASE_AT_ONCE = 100


class TooManyToErase(Exception):
    """A list names more stored customers than one call erases."""


def customers_erase_and_suppress(
    *, workspace: Workspace, external_ids: list[str], actor: Actor
) -> tuple[Suppressed, list[CustomerErased]]:
    """Suppress a list of ids, erasing (with suppression) those that have data here, each in a
    transaction of its own and audited as one erasure: a deletion list.

    Raise TooManyToErase when more than ERASE_AT_ONCE of them are stored customers (each
    erasure pauses the workspace's writes while it runs); nothing is done then.
    """
    wanted = list(dict.fromkeys(external_ids))
    found = _stored_ids(workspace, wanted)
    stored = [x for x in wanted if x in found]
    if len(stored) > ERASE_AT_ONCE:
        raise TooManyToErase(
            f"{len(stored):,} of these ids have data here: erase at most {ERASE_AT_ONCE} at "
            "once; send the rest next."
        )
    erased = []
    for external_id in stored:
        try:
            erased.append(
                customer_erase(
                    workspace=workspace, external_id=external_id, actor=actor, suppress=True
                )
            )
        except Customer.DoesNotExist:
            continue  # erased meanwhile: suppressed with the rest below
    gone = {item.external_id for item in erased}  # suppressed by their erasure
    rest = [x for x in wanted if x not in gone]
    return customers_suppress(workspace=workspace, external_ids=rest, actor=actor), erased


@transaction.atomic
def customer_suppression_lift(*, workspace: Workspace, external_id: str, actor: Actor) -> bool:
    """Accept the id's events again (the person consented anew); audited. Return False when
    the id was not suppressed."""
    deleted, _ = (
        SuppressedCustomer.objects.for_workspace(workspace)
        .filter(digest=id_digest(workspace.pk, external_id))
        .delete()
    )
    if deleted:
        audit_record(
            workspace=workspace,
            actor=actor,
            action=AuditEntry.Action.DELETE,
            object_type="suppression",
            object_repr=external_id,
            before={"suppressed": True},
        )
    return bool(deleted)
