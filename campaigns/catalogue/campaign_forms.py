"""The campaign form: fields only; the service validates the goal, audience and dates."""

from django import forms
from django.db.models import Q

from campaigns.models import (
    EXPLORE_SHARE_DEFAULT,
    HOLDOUT_MAX,
    Campaign,
    Message,
    PromptTemplate,
    slug_validator,
)
from memory.audiences import trait_filter_field


class CampaignForm(forms.Form):
    slug = forms.SlugField(max_length=64, validators=[slug_validator])
    name = forms.CharField(max_length=200)
    goal_event = forms.CharField(
        max_length=200, required=False, help_text="Blank: the workspace's goal event."
    )
    attribution_window_h = forms.FloatField(
        min_value=0.01,
        required=False,
        label="Attribution window (hours)",
        help_text="Blank: the workspace's window.",
    )
    messages = forms.ModelMultipleChoiceField(
        queryset=Message.unscoped.none(),
        required=False,
        widget=forms.CheckboxSelectMultiple,
        help_text="The messages this campaign may send.",
    )
    prompt_template = forms.ModelChoiceField(
        queryset=PromptTemplate.unscoped.none(), required=False, empty_label="Workspace default"
    )
    guidance = forms.CharField(widget=forms.Textarea(attrs={"rows": 3}), required=False)
    audience = trait_filter_field()
    starts_at = forms.DateTimeField(
        required=False,
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}, format="%Y-%m-%dT%H:%M"),
    )
    ends_at = forms.DateTimeField(
        required=False,
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}, format="%Y-%m-%dT%H:%M"),
    )
    holdout_random = forms.FloatField(
        min_value=0.0,
        max_value=HOLDOUT_MAX,
        required=False,
        initial=0.0,
        label="Random holdout (share)",
        help_text="Share of the audience served a random eligible message, 0 to 0.5: what "
        "Primer's choice is measured against.",
    )
    holdout_no_memory = forms.FloatField(
        min_value=0.0,
        max_value=HOLDOUT_MAX,
        required=False,
        initial=0.0,
        label="No-memory holdout (share)",
        help_text="Share of the audience whose prompt is rendered without their memory (the "
        "average customer), 0 to 0.5.",
    )
    exploration = forms.ChoiceField(
        choices=Campaign.Exploration.choices,
        required=False,
        initial=Campaign.Exploration.THOMPSON,
        help_text="How Primer's choice explores, so its decisions can be valued later. Thompson "
        "tries other messages where the memory is unsure, which costs most where it knows "
        "little of each customer; epsilon serves Primer's best but for the share below.",
    )
    explore_share = forms.FloatField(
        min_value=0.0,
        max_value=HOLDOUT_MAX,
        required=False,
        initial=EXPLORE_SHARE_DEFAULT,
        label="Explored share (epsilon)",
        help_text="Share of decisions drawn at random among the eligible messages, 0 to 0.5 "
        "(each message keeps at least a 1% chance).",
    )
    active = forms.BooleanField(required=False, initial=True)
    version = forms.IntegerField(widget=forms.HiddenInput, required=False)

    def __init__(self, *args, workspace, campaign: Campaign | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        # Archived messages stay offered only where the campaign already has them.
        offered = Q(active=True) | Q(campaigns=campaign) if campaign else Q(active=True)
        self.fields["messages"].queryset = (
            Message.objects.for_workspace(workspace).filter(offered).distinct().order_by("key")
        )
        self.fields["prompt_template"].queryset = PromptTemplate.objects.for_workspace(workspace)
        if campaign is not None:
            # The slug names the campaign in prompts, webhooks and the API: it stays.
            del self.fields["slug"]

    def changes(self) -> dict:
        """Return the cleaned fields a service takes (all but the version)."""
        data = dict(self.cleaned_data)
        data.pop("version", None)
        data["audience"] = data.get("audience") or {}
        data["goal_event"] = data.get("goal_event") or ""
        for name in ("holdout_random", "holdout_no_memory"):
            data[name] = data.get(name) or 0.0
        # Not posted (a client of the form that predates them): left as they are.
        for name in ("exploration", "explore_share"):
            if data.get(name) in (None, ""):
                data.pop(name, None)
        return data
