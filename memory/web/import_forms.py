"""The import page's form: the files, their format, and a CSV file's column mapping."""

from django import forms

from memory.imports import FORMATS


class MultipleFileInput(forms.FileInput):
    allow_multiple_selected = True


class MultipleFileField(forms.FileField):
    """One or several files (the Starbucks data is three)."""

    widget = MultipleFileInput

    def clean(self, data, initial=None):
        single = super().clean
        if isinstance(data, list | tuple):
            return [single(item, initial) for item in data]
        return [single(data, initial)]


FORMAT_LABELS = {
    "auto": "Recognise it (by name and content)",
    "jsonl": "Segment JSONL: one call a line",
    "csv": "CSV with the column mapping below",
    "starbucks": "Starbucks rewards data (portfolio, profile, transcript)",
}
FORMAT_CHOICES = [(value, FORMAT_LABELS[value]) for value in FORMATS]


class EventImportForm(forms.Form):
    files = MultipleFileField(
        label="File",
        help_text="JSONL or CSV, plain or .gz/.xz; or the three Starbucks files together.",
    )
    format = forms.ChoiceField(choices=FORMAT_CHOICES, initial="auto", required=False)
    user_id = forms.CharField(label="User id column", required=False, max_length=200)
    anonymous_id = forms.CharField(label="Anonymous id column", required=False, max_length=200)
    event = forms.CharField(label="Event name column", required=False, max_length=200)
    event_name = forms.CharField(
        label="…or one event name for every row", required=False, max_length=200
    )
    timestamp = forms.CharField(
        label="Timestamp column",
        required=False,
        max_length=200,
        help_text="ISO 8601, or Unix seconds or milliseconds.",
    )
    message_id = forms.CharField(
        label="Message id column",
        required=False,
        max_length=200,
        help_text="A unique id per row: importing the file again then adds nothing.",
    )
    type = forms.CharField(
        label="Call type column",
        required=False,
        max_length=200,
        help_text="track (the default), identify, page or screen.",
    )
    properties = forms.CharField(
        label="Property columns",
        required=False,
        max_length=2000,
        help_text="Comma-separated; empty: every column not mapped above.",
    )
    numeric = forms.CharField(
        label="Numeric columns",
        required=False,
        max_length=2000,
        help_text="Comma-separated properties read as numbers.",
    )
    delimiter = forms.CharField(
        required=False, max_length=3, initial=",", strip=False, help_text="\\t for tab."
    )

    def clean_format(self) -> str:
        return self.cleaned_data["format"] or "auto"

    def csv_options(self) -> dict:
        """Return the CSV mapping as entered (the service checks it against the header)."""
        return {
            name: self.cleaned_data[name]
            for name in self.fields
            if name not in {"files", "format"} and self.cleaned_data.get(name)
        }
