"""Forms of the "Draft the next message" page: what to draft for, and a draft to save."""

from django import forms

from campaigns.llm import MAX_DRAFTS
from campaigns.models import Campaign, Label, LabelSet


class NextMessageForm(forms.Form):
    brief = forms.ChoiceField(
        label="Draft for",
        help_text="A campaign (its guidance) or a value proposition (its phrase and meaning).",
    )
    count = forms.IntegerField(min_value=1, max_value=MAX_DRAFTS, initial=3, label="How many")

    def __init__(self, *args, workspace, **kwargs):
        super().__init__(*args, **kwargs)
        campaigns = [
            (f"campaign:{slug}", f"Campaign: {name}")
            for slug, name in Campaign.objects.for_workspace(workspace)
            .filter(active=True)
            .order_by("slug")
            .values_list("slug", "name")
        ]
        propositions = [
            (f"value_proposition:{slug}", f"Value proposition: {phrase or name}")
            for slug, name, phrase in Label.objects.for_workspace(workspace)
            .filter(active=True, label_set__slug=LabelSet.VALUE_PROPOSITION)
            .order_by("slug")
            .values_list("slug", "name", "prompt_phrase")
        ]
        self.fields["brief"].choices = campaigns + propositions

    def brief_arguments(self) -> dict:
        """Return the service's campaign= or value_proposition= argument."""
        kind, _, slug = self.cleaned_data["brief"].partition(":")
        return {kind: slug}


class NextMessageSaveForm(forms.Form):
    key = forms.CharField(max_length=200)
    subject = forms.CharField(max_length=500, required=False)
    body = forms.CharField(widget=forms.Textarea(attrs={"rows": 3}), required=False)
    labels = forms.CharField(
        required=False,
        max_length=2000,
        help_text="set:label, comma-separated (the suggested ones are filled in).",
    )

    def label_refs(self) -> list[str]:
        return [ref.strip() for ref in self.cleaned_data["labels"].split(",") if ref.strip()]
