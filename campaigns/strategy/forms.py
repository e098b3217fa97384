"""The guardrail and override forms: fields only; the services check what a kind needs."""

from django import forms

from campaigns.models import Campaign, Guardrail, Label, Message, Override
from memory.audiences import trait_filter_field

SEGMENT_HELP = (
    'The customers it holds for, as a trait filter, e.g. {"all": [{"trait": "plan", "equals": '
    '"pro"}]}. Leave empty when it is for one customer.'
)


class _LabelChoice(forms.ModelChoiceField):
    def label_from_instance(self, obj: Label) -> str:
        return f"{obj.label_set.name}: {obj.name}"


def _time_field(label: str) -> forms.TimeField:
    return forms.TimeField(
        required=False, label=label, widget=forms.TimeInput(attrs={"type": "time"}, format="%H:%M")
    )


class GuardrailForm(forms.Form):
    name = forms.CharField(max_length=200, help_text='e.g. "At most 2 discount messages a week".')
    kind = forms.ChoiceField(choices=Guardrail.Kind.choices)
    label = _LabelChoice(
        queryset=Label.unscoped.none(),
        required=False,
        help_text="Caps: count only sends carrying it (a channel is a label). After an event: "
        "only its messages. Blank: every send.",
    )
    message = forms.ModelChoiceField(queryset=Message.unscoped.none(), required=False)
    campaign = forms.ModelChoiceField(queryset=Campaign.unscoped.none(), required=False)
    limit = forms.IntegerField(min_value=0, required=False, label="At most (sends)")
    period = forms.ChoiceField(
        choices=[("", "—"), *Guardrail.Period.choices], required=False, label="Per"
    )
    audience = trait_filter_field(
        help_text="Eligibility: the traits a customer needs to get the message or campaign."
    )
    event_name = forms.CharField(max_length=200, required=False, label="Event")
    hours = forms.FloatField(required=False, min_value=0.01, label="Hours after the event")
    quiet_start = _time_field("Quiet from (local time)")
    quiet_end = _time_field("Quiet until (local time)")
    note = forms.CharField(widget=forms.Textarea(attrs={"rows": 2}), required=False)
    version = forms.IntegerField(widget=forms.HiddenInput, required=False)

    def __init__(self, *args, workspace, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["label"].queryset = (
            Label.objects.for_workspace(workspace)
            .filter(active=True)
            .select_related("label_set")
            .order_by("label_set__slug", "slug")
        )
        self.fields["message"].queryset = (
            Message.objects.for_workspace(workspace).filter(active=True).order_by("key")
        )
        self.fields["campaign"].queryset = Campaign.objects.for_workspace(workspace).filter(
            active=True
        )

    def changes(self) -> dict:
        data = dict(self.cleaned_data)
        data.pop("version", None)
        data["audience"] = data.get("audience") or {}
        data["period"] = data.get("period") or ""
        return data


class OverrideForm(forms.Form):
    customer_external_id = forms.CharField(
        max_length=255, required=False, label="Customer", help_text="Their id; or a segment."
    )
    segment = trait_filter_field(help_text=SEGMENT_HELP)
    label = _LabelChoice(queryset=Label.unscoped.none())
    action = forms.ChoiceField(choices=Override.Action.choices)
    value = forms.FloatField(
        required=False,
        min_value=0.0,
        max_value=1.0,
        help_text="Pin: the weight, 0 (never) to 1. Raise or lower: the strength, up to 1 "
        "(1 moves the odds as a full boost does). Forget: leave empty.",
    )
    expires_at = forms.DateTimeField(
        required=False,
        label="Ends",
        help_text="In the workspace's time zone; empty: until archived.",
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}, format="%Y-%m-%dT%H:%M"),
    )
    note = forms.CharField(widget=forms.Textarea(attrs={"rows": 2}), required=False)
    version = forms.IntegerField(widget=forms.HiddenInput, required=False)

    def __init__(self, *args, workspace, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["label"].queryset = (
            Label.objects.for_workspace(workspace)
            .filter(active=True)
            .select_related("label_set")
            .order_by("label_set__slug", "slug")
        )

    def changes(self) -> dict:
        data = dict(self.cleaned_data)
        data.pop("version", None)
        data["segment"] = data.get("segment") or {}
        return data
