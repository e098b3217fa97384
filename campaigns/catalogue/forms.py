"""Forms of the catalogue pages: shapes and types only; the services validate the rules."""

from __future__ import annotations

from django import forms
from django.core.exceptions import NON_FIELD_ERRORS, ValidationError

from campaigns.catalogue.messages import label_ref
from campaigns.catalogue.selectors import label_choices
from campaigns.models import LabelSet, slug_validator


class VersionedForm(forms.Form):
    """An edit form carrying the version it was read at, so a stale save is refused."""

    version = forms.IntegerField(widget=forms.HiddenInput, required=False, min_value=1)

    def add_service_error(self, error: ValidationError) -> None:
        """Put a service's errors beside their fields (the others above the form)."""
        if not hasattr(error, "error_dict"):
            self.add_error(None, error)
            return
        for name, messages in error.message_dict.items():
            target = name if name in self.fields and name != NON_FIELD_ERRORS else None
            if target is None and name != NON_FIELD_ERRORS:
                messages = [f"{name}: {message}" for message in messages]
            for message in messages:
                self.add_error(target, message)


class LabelSetForm(VersionedForm):
    slug = forms.SlugField(
        max_length=64,
        validators=[slug_validator],
        help_text="Fixed once created: prompts, imports and events name the set by it.",
    )
    name = forms.CharField(max_length=200)
    description = forms.CharField(widget=forms.Textarea(attrs={"rows": 2}), required=False)
    multiple = forms.BooleanField(
        required=False, label="A message may carry several labels of this set"
    )

    def __init__(self, *args, editing: bool = False, **kwargs):
        super().__init__(*args, **kwargs)
        if editing:
            del self.fields["slug"]


class LabelForm(VersionedForm):
    label_set = forms.ModelChoiceField(queryset=LabelSet.unscoped.none(), empty_label=None)
    slug = forms.SlugField(
        max_length=64,
        validators=[slug_validator],
        help_text="Fixed once created: boosts, prompts and imports key on it.",
    )
    name = forms.CharField(max_length=200)
    prompt_phrase = forms.CharField(
        max_length=300, required=False, help_text="What the prompt says, e.g. 'convenience'."
    )
    description = forms.CharField(widget=forms.Textarea(attrs={"rows": 2}), required=False)
    boost = forms.FloatField(
        min_value=-1.0,
        max_value=1.0,
        initial=0.0,
        widget=forms.NumberInput(attrs={"step": "0.05"}),
        help_text="The marketer's nudge for everyone: -1 avoid, 0 neutral, +1 prefer.",
    )

    def __init__(self, *args, workspace, editing: bool = False, **kwargs):
        super().__init__(*args, **kwargs)
        if editing:
            del self.fields["label_set"], self.fields["slug"]
        else:
            sets = LabelSet.objects.for_workspace(workspace).filter(active=True)
            self.fields["label_set"].queryset = sets
            self.fields["label_set"].initial = (
                sets.filter(slug=LabelSet.VALUE_PROPOSITION).values_list("pk", flat=True).first()
            )


class MessageForm(VersionedForm):
    key = forms.CharField(max_length=200)
    subject = forms.CharField(max_length=500, required=False)
    body = forms.CharField(widget=forms.Textarea(attrs={"rows": 6}), required=False)
    labels = forms.MultipleChoiceField(required=False, widget=forms.CheckboxSelectMultiple)

    def __init__(self, *args, workspace, carried=(), **kwargs):
        super().__init__(*args, **kwargs)
        carried_refs = {label_ref(label) for label in carried}
        self.taxonomy = [
            label
            for label in label_choices(workspace=workspace)
            if (label.active and label.label_set.active) or label_ref(label) in carried_refs
        ]
        self.fields["labels"].choices = [(label_ref(x), x.phrase) for x in self.taxonomy]

    def label_groups(self) -> list[tuple[LabelSet, list[dict]]]:
        """Return the choices grouped by set, each with whether it is ticked."""
        ticked = set(self["labels"].value() or [])
        groups: dict[int, tuple[LabelSet, list[dict]]] = {}
        for label in self.taxonomy:
            _, items = groups.setdefault(label.label_set_id, (label.label_set, []))
            ref = label_ref(label)
            items.append({"ref": ref, "label": label, "checked": ref in ticked})
        return list(groups.values())


class MessageImportForm(forms.Form):
    file = forms.FileField(help_text="CSV with columns key, subject, body, labels.")


class MessageFilterForm(forms.Form):
    """The messages list's filters (GET)."""

    q = forms.CharField(required=False, label="Search")
    label = forms.ChoiceField(required=False)
    active = forms.ChoiceField(
        required=False,
        choices=[("true", "Active"), ("false", "Archived"), ("", "All")],
        initial="true",
    )

    def __init__(self, *args, workspace, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["label"].choices = [("", "Any label")] + [
            (label_ref(x), f"{x.label_set.name}: {x.phrase}")
            for x in label_choices(workspace=workspace)
        ]
