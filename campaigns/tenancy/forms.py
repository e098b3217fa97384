"""Forms of the owner's pages: workspace settings, members and API keys (fields only)."""

import zoneinfo

from django import forms

from campaigns.models import ApiKey, Membership

TIME_ZONES = sorted(zoneinfo.available_timezones())


class WorkspaceSettingsForm(forms.Form):
    name = forms.CharField(max_length=200)
    time_zone = forms.ChoiceField(
        choices=[(tz, tz) for tz in TIME_ZONES], help_text="Pages show times in this zone."
    )
    goal_event = forms.CharField(
        max_length=200, help_text="The event memory learns to bring about."
    )
    send_event = forms.CharField(max_length=200, help_text="The event that records a send.")
    open_event = forms.CharField(max_length=200, help_text="The event that records an open.")
    attribution_window_h = forms.FloatField(
        min_value=0.01,
        label="Attribution window (hours)",
        help_text="A goal this soon after a send is credited to it.",
    )
    habituation_half_life_h = forms.FloatField(
        min_value=0.01,
        label="Habituation half-life (hours)",
        help_text="How fast wear-out from a message fades.",
    )
    priming_horizon_h = forms.FloatField(
        min_value=0.01,
        label="Priming horizon (hours)",
        help_text="How far back recent actions count as priming.",
    )
    version = forms.IntegerField(widget=forms.HiddenInput)

    def changes(self) -> dict:
        return {k: v for k, v in self.cleaned_data.items() if k != "version"}


class MemberAddForm(forms.Form):
    username = forms.CharField(max_length=150, help_text="An existing user's name.")
    role = forms.ChoiceField(choices=Membership.Role.choices, initial=Membership.Role.VIEWER)


class MemberRoleForm(forms.Form):
    role = forms.ChoiceField(choices=Membership.Role.choices)


class ApiKeyCreateForm(forms.Form):
    name = forms.CharField(max_length=200, required=False, help_text="Who or what uses it.")
    scopes = forms.MultipleChoiceField(
        choices=ApiKey.Scope.choices, widget=forms.CheckboxSelectMultiple
    )
