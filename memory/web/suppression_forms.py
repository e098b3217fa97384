"""Forms of the suppressed-ids page: look one id up (or lift it), suppress or delete a list."""

from django import forms

from memory.models import Customer
from memory.privacy import ERASE_AT_ONCE, SUPPRESS_AT_ONCE

ID_MAX = Customer._meta.get_field("external_id").max_length


class SuppressionLookupForm(forms.Form):
    id = forms.CharField(max_length=ID_MAX, label="Customer id")


class SuppressListForm(forms.Form):
    ids = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 4}),
        label="Customer ids, one per line",
        help_text=f"Up to {SUPPRESS_AT_ONCE:,}: an opt-out list of people with no data here yet.",
    )

    erase = forms.BooleanField(
        required=False,
        label="Also delete those with data here, for good",
        help_text="Each with their events, memory and prompt records, and suppressed (at most "
        f"{ERASE_AT_ONCE} at once): a deletion list.",
    )

    def clean_ids(self) -> list[str]:
        lines = [line.strip() for line in self.cleaned_data["ids"].splitlines()]
        for number, external_id in enumerate(lines, start=1):
            if len(external_id) > ID_MAX:
                raise forms.ValidationError(
                    f"Line {number}: an id has at most {ID_MAX} characters."
                )
        ids = [external_id for external_id in lines if external_id]
        if not ids:
            raise forms.ValidationError("Give at least one id.")
        if len(ids) > SUPPRESS_AT_ONCE:
            raise forms.ValidationError(
                f"{len(ids):,} ids: at most {SUPPRESS_AT_ONCE:,} at once; send the rest next."
            )
        return ids
