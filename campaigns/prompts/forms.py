"""Forms of the prompt pages: validation only; the views call services with the cleaned data."""

from django import forms

from campaigns.llm import MAX_DRAFTS
from campaigns.models import Campaign, Label, LabelSet, PromptTemplate, slug_validator
from campaigns.prompts.defaults import default_draft_brief, default_preview_question
from campaigns.prompts.engine import MAX_TEMPLATE_CHARS, TemplateProblem, compile_template


class TemplateCreateForm(forms.Form):
    slug = forms.SlugField(max_length=64, validators=[slug_validator])
    name = forms.CharField(max_length=200, required=False)


class TemplateSaveForm(forms.Form):
    text = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 24, "spellcheck": "false"}),
        max_length=MAX_TEMPLATE_CHARS,
        strip=False,
    )
    note = forms.CharField(max_length=300, required=False)

    def clean_text(self):
        text = self.cleaned_data["text"].replace("\r\n", "\n")
        try:
            compile_template(text)
        except TemplateProblem as problem:
            raise forms.ValidationError(str(problem)) from None
        return text


class PromptSettingsForm(forms.Form):
    template = forms.ModelChoiceField(
        queryset=PromptTemplate.unscoped.none(),
        required=False,
        empty_label="Primer's built-in default",
    )
    guidance = forms.CharField(widget=forms.Textarea(attrs={"rows": 3}), required=False)

    def __init__(self, *args, workspace, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["template"].queryset = PromptTemplate.objects.for_workspace(workspace)


class PromptChoiceForm(forms.Form):
    """Which template or campaign renders a customer's prompt on its page (GET)."""

    template = forms.ChoiceField(required=False)
    campaign = forms.ChoiceField(required=False)

    def __init__(self, *args, workspace, **kwargs):
        super().__init__(*args, **kwargs)
        templates = PromptTemplate.objects.for_workspace(workspace).values_list("slug", "name")
        campaigns = Campaign.objects.for_workspace(workspace).values_list("slug", "name")
        self.fields["template"].choices = [("", "Workspace default"), *templates]
        self.fields["campaign"].choices = [("", "No campaign"), *campaigns]


class PreviewForm(forms.Form):
    question = forms.CharField(max_length=2000)

    def __init__(self, *args, workspace, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["question"].initial = default_preview_question(workspace)


class DraftRequestForm(forms.Form):
    label = forms.ModelChoiceField(
        queryset=Label.unscoped.none(),
        label="Value proposition",
        help_text="Drafts are written for one of the workspace's value propositions.",
    )
    count = forms.IntegerField(min_value=1, max_value=MAX_DRAFTS, initial=3)
    guidance = forms.CharField(widget=forms.Textarea(attrs={"rows": 2}), required=False)

    def __init__(self, *args, workspace, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["label"].queryset = (
            Label.objects.for_workspace(workspace)
            .filter(active=True, label_set__slug=LabelSet.VALUE_PROPOSITION)
            .select_related("label_set")
            .order_by("slug")
        )
        self.fields["label"].label_from_instance = lambda label: label.phrase
        self.fields["guidance"].initial = default_draft_brief(workspace)


class DraftSaveForm(forms.Form):
    label = forms.ModelChoiceField(queryset=Label.unscoped.none(), widget=forms.HiddenInput)
    key = forms.CharField(max_length=200)
    subject = forms.CharField(max_length=500, required=False)
    body = forms.CharField(widget=forms.Textarea(attrs={"rows": 3}), required=False)

    def __init__(self, *args, workspace, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["label"].queryset = Label.objects.for_workspace(workspace)


class WebhookForm(forms.Form):
    url = forms.URLField(max_length=500, assume_scheme="https")
    description = forms.CharField(max_length=200, required=False)
    campaign = forms.ModelChoiceField(
        queryset=Campaign.unscoped.none(), required=False, empty_label="Workspace default"
    )

    def __init__(self, *args, workspace, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["campaign"].queryset = Campaign.objects.for_workspace(workspace)


class WebhookEditForm(WebhookForm):
    active = forms.BooleanField(required=False)
    version = forms.IntegerField(widget=forms.HiddenInput)

    def changes(self) -> dict:
        return {k: v for k, v in self.cleaned_data.items() if k != "version"}
