"""Pages for prompts: templates and versions, customers' prompts with the LLM preview, drafts,
webhooks. Thin: a form validates, one selector or service runs, a template renders. Members see
everything of their workspace; only editors and owners change anything.
"""

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import Http404, JsonResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from campaigns.catalogue.messages import message_create
from campaigns.llm import LlmUnavailable, llm_configured, llm_preview
from campaigns.models import PromptTemplate
from campaigns.prompts.defaults import DEFAULT_TEMPLATE, DEFAULT_TEMPLATE_SLUG
from campaigns.prompts.drafts import message_drafts_propose
from campaigns.prompts.engine import TemplateProblem
from campaigns.prompts.forms import (
    DraftRequestForm,
    DraftSaveForm,
    PreviewForm,
    PromptChoiceForm,
    PromptSettingsForm,
    TemplateCreateForm,
    TemplateSaveForm,
    WebhookEditForm,
    WebhookForm,
)
from campaigns.prompts.selectors import (
    PromptChoiceError,
    prompt_choice,
    prompt_for_customer,
    prompt_settings_of,
    render_for_customer,
    template_diff,
    template_versions,
    templates_of_workspace,
)
from campaigns.prompts.services import (
    prompt_settings_update,
    prompt_template_create,
    prompt_template_revert,
    prompt_template_save,
)
from campaigns.tasks import webhook_ping, webhooks_deliver_changed_prompts_task
from campaigns.tenancy.changes import Actor, StaleEdit
from campaigns.tenancy.decorators import editor_required, viewers_cannot, workspace_required
from campaigns.web.support import form_refused, int_or_none
from campaigns.webhooks.selectors import (
    webhook_deliveries,
    webhook_of_workspace,
    webhooks_of_workspace,
)
from campaigns.webhooks.services import (
    webhook_create,
    webhook_delete,
    webhook_rotate_secret,
    webhook_set_active,
    webhook_update,
)
from campaigns.webhooks.signing import SIGNATURE_HEADER
from config.rate_limit import Refusal, llm_rate_refusal
from memory.selectors import customers_page


def _template_or_404(workspace, slug: str) -> PromptTemplate | None:
    """Return the saved template; None for the not yet saved built-in default; else 404."""
    template = PromptTemplate.objects.for_workspace(workspace).filter(slug=slug).first()
    if template is None and slug != DEFAULT_TEMPLATE_SLUG:
        raise Http404("No such template.")
    return template


# Templates ------------------------------------------------------------------------------------


@workspace_required
@require_GET
def prompt_templates(request):
    workspace = request.workspace
    settings = prompt_settings_of(workspace=workspace)
    templates = list(templates_of_workspace(workspace=workspace))
    return render(
        request,
        "campaigns/prompts/templates.html",
        {
            "templates": templates,
            "has_default": any(t.slug == DEFAULT_TEMPLATE_SLUG for t in templates),
            "default_slug": DEFAULT_TEMPLATE_SLUG,
            "settings": settings,
            "create_form": TemplateCreateForm(),
            "settings_form": PromptSettingsForm(
                workspace=workspace,
                initial={
                    "template": settings.template_id if settings else None,
                    "guidance": settings.guidance if settings else "",
                },
            ),
        },
    )


@editor_required
@require_POST
def prompt_template_new(request):
    form = TemplateCreateForm(request.POST)
    if form.is_valid():
        try:
            template = prompt_template_create(
                workspace=request.workspace,
                slug=form.cleaned_data["slug"],
                name=form.cleaned_data["name"],
                user=request.user,
            )
        except ValidationError as error:
            messages.error(request, "; ".join(error.messages))
        else:
            return redirect("prompt-template", slug=template.slug)
    else:
        messages.error(request, "A template needs a slug: lowercase letters, digits, - and _.")
    return redirect("prompt-templates")


@editor_required
@require_POST
def prompt_settings(request):
    form = PromptSettingsForm(request.POST, workspace=request.workspace)
    if form.is_valid():
        prompt_settings_update(
            workspace=request.workspace,
            template=form.cleaned_data["template"],
            guidance=form.cleaned_data["guidance"],
        )
        messages.success(request, "Saved the workspace's prompt defaults.")
    return redirect("prompt-templates")


@workspace_required
@require_http_methods(["GET", "POST"])
def prompt_template(request, slug: str):
    workspace = request.workspace
    template = _template_or_404(workspace, slug)
    versions = list(template_versions(template=template)) if template else []
    by_number = {version.number: version for version in versions}
    current = versions[0] if versions else None

    if request.method == "POST":
        if not request.membership.can_edit:
            return viewers_cannot()
        form = TemplateSaveForm(request.POST)
        if form.is_valid():
            if template is None:
                template = prompt_template_create(
                    workspace=workspace,
                    slug=DEFAULT_TEMPLATE_SLUG,
                    name="Default",
                    text=form.cleaned_data["text"],
                    user=request.user,
                )
                saved = template.current_version
            else:
                saved = prompt_template_save(
                    template=template,
                    text=form.cleaned_data["text"],
                    note=form.cleaned_data["note"],
                    user=request.user,
                )
            if current is not None and saved.pk == current.pk:
                messages.info(request, "Nothing changed, so no new version was saved.")
            else:
                messages.success(request, f"Saved version {saved.number}.")
            return redirect("prompt-template", slug=slug)
    else:
        shown = by_number.get(int_or_none(request.GET.get("version")), current)
        form = TemplateSaveForm(initial={"text": shown.text if shown else DEFAULT_TEMPLATE})

    diff = None
    diff_pair = None
    new = by_number.get(int_or_none(request.GET.get("diff")))
    if new is not None:
        old = by_number.get(int_or_none(request.GET.get("against")), by_number.get(new.number - 1))
        if old is not None:
            diff = template_diff(old=old, new=new)
            diff_pair = (old.number, new.number)
    customers = customers_page(workspace=workspace, size=20).rows
    return render(
        request,
        "campaigns/prompts/template_edit.html",
        {
            "template": template,
            "slug": slug,
            "versions": versions,
            "current": current,
            "form": form,
            "diff": diff,
            "diff_pair": diff_pair,
            "customers": customers,
            "render_customer": request.GET.get("customer")
            or (customers[0]["external_id"] if customers else ""),
        },
    )


@editor_required
@require_POST
def prompt_template_revert_view(request, slug: str, number: int):
    template = _template_or_404(request.workspace, slug)
    if template is None or not template.versions.filter(number=number).exists():
        raise Http404("No such version.")
    saved = prompt_template_revert(template=template, number=number, user=request.user)
    messages.success(request, f"Reverted to v{number}: saved as version {saved.number}.")
    return redirect("prompt-template", slug=slug)


@workspace_required
@require_POST
def prompt_template_render(request, slug: str):
    """Render unsaved template text for one customer: the editor's live preview (JSON)."""
    workspace = request.workspace
    settings = prompt_settings_of(workspace=workspace)
    external_id = request.POST.get("customer", "").strip()
    if not external_id:
        return JsonResponse({"error": "Choose a customer to render for."}, status=400)
    try:
        found = render_for_customer(
            workspace=workspace,
            external_id=external_id,
            text=request.POST.get("text", "").replace("\r\n", "\n"),
            guidance=settings.guidance if settings else "",
        )
    except TemplateProblem as problem:
        return JsonResponse({"error": str(problem)}, status=422)
    if found is None:
        return JsonResponse({"error": f"No customer {external_id!r}."}, status=404)
    prompt, _ = found
    return JsonResponse(
        {
            "prompt": prompt.text,
            "content_hash": prompt.content_hash,
            "memory_at": prompt.as_dict()["memory_at"],
        }
    )


# Customers' prompts and the LLM preview ------------------------------------------------------


@workspace_required
@require_GET
def prompt_customers(request):
    search = request.GET.get("q", "").strip()
    after = request.GET.get("after", "")
    page = customers_page(workspace=request.workspace, search=search, after=after)
    return render(
        request,
        "campaigns/prompts/customers.html",
        {"customers": page.rows, "next_after": page.next_after, "q": search},
    )


@workspace_required
@require_http_methods(["GET", "POST"])
def customer_prompt(request, external_id: str):
    workspace = request.workspace
    source = request.POST if request.method == "POST" else request.GET
    choice_form = PromptChoiceForm(source, workspace=workspace)
    choice_form.is_valid()
    picked = {k: v for k, v in choice_form.cleaned_data.items() if v}
    error = preview = None
    try:
        choice = prompt_choice(workspace=workspace, **picked)
        found = prompt_for_customer(workspace=workspace, external_id=external_id, choice=choice)
    except (PromptChoiceError, TemplateProblem) as problem:
        found, error = None, str(problem)
    else:
        if found is None:
            raise Http404("No such customer.")
    prompt, context = found if found else (None, None)

    preview_form = PreviewForm(
        request.POST if request.method == "POST" else None, workspace=request.workspace
    )
    llm_error = refusal = None
    if request.method == "POST" and prompt is not None and preview_form.is_valid():
        refusal = llm_rate_refusal(request)
        try:
            if refusal:
                raise LlmUnavailable("rate_limited", refusal.message)
            preview = llm_preview(
                prompt=prompt.text, question=preview_form.cleaned_data["question"]
            )
        except LlmUnavailable as unavailable:
            llm_error = unavailable
    if request.method == "GET":
        preview_form = PreviewForm(workspace=request.workspace)
    return _refused_or(
        refusal,
        request,
        "campaigns/prompts/customer_prompt.html",
        {
            "external_id": external_id,
            "prompt": prompt,
            "context": context,
            "error": error,
            "choice_form": choice_form,
            "preview_form": preview_form,
            "preview": preview,
            "llm_error": llm_error,
            "llm_configured": llm_configured(),
        },
    )


def _refused_or(refusal: Refusal | None, request, template: str, context: dict):
    """Render the page; 429 with Retry-After when its LLM call was refused by the rate limit."""
    if refusal is None:
        return render(request, template, context)
    response = render(request, template, context, status=429)
    response["Retry-After"] = str(refusal.retry_after_s)
    return response


# Drafts -------------------------------------------------------------------------------------


@workspace_required
@require_http_methods(["GET", "POST"])
def message_drafts(request):
    workspace = request.workspace
    drafts = llm_error = refusal = None
    label = None
    if request.method == "POST" and request.POST.get("action") == "save":
        if not request.membership.can_edit:
            return viewers_cannot()
        save_form = DraftSaveForm(request.POST, workspace=workspace)
        if save_form.is_valid():
            data = save_form.cleaned_data
            try:
                # The catalogue's own service: the set rules, the channel and the audit apply.
                message = message_create(
                    workspace=workspace,
                    actor=Actor.of_user(request.user),
                    key=data["key"],
                    subject=data["subject"],
                    body=data["body"],
                    labels=[data["label"]],
                )
            except ValidationError as invalid:
                messages.error(request, "; ".join(invalid.messages))
            else:
                messages.success(request, f"Saved message {message.key} with {data['label']}.")
                return redirect("message-drafts")
        else:
            messages.error(request, "A draft needs a key and a subject or body.")
        form = DraftRequestForm(workspace=workspace)
    elif request.method == "POST":
        form = DraftRequestForm(request.POST, workspace=workspace)
        if form.is_valid():
            label = form.cleaned_data["label"]
            refusal = llm_rate_refusal(request)
            try:
                if refusal:
                    raise LlmUnavailable("rate_limited", refusal.message)
                drafts = message_drafts_propose(
                    workspace=workspace,
                    label=label,
                    count=form.cleaned_data["count"],
                    guidance=form.cleaned_data["guidance"],
                )
            except LlmUnavailable as unavailable:
                llm_error = unavailable
    else:
        form = DraftRequestForm(workspace=workspace)
    return _refused_or(
        refusal,
        request,
        "campaigns/prompts/drafts.html",
        {
            "form": form,
            "drafts": drafts,
            "label": label,
            "llm_error": llm_error,
            "llm_configured": llm_configured(),
        },
    )


# Webhooks -----------------------------------------------------------------------------------


@workspace_required
@require_http_methods(["GET", "POST"])
def webhooks(request):
    workspace = request.workspace
    form = WebhookForm(workspace=workspace)
    if request.method == "POST":
        if not request.membership.can_edit:
            return viewers_cannot()
        form = WebhookForm(request.POST, workspace=workspace)
        if form.is_valid():
            try:
                webhook = webhook_create(
                    workspace=workspace, actor=Actor.of_user(request.user), **form.cleaned_data
                )
            except ValidationError as invalid:
                form_refused(form, invalid)
            else:
                messages.success(request, "Registered. Its secret signs every delivery.")
                return redirect("webhook", webhook_id=webhook.pk)
    return render(
        request,
        "campaigns/prompts/webhooks.html",
        {"webhooks": webhooks_of_workspace(workspace=workspace), "form": form},
    )


@workspace_required
@require_GET
def webhook(request, webhook_id: int):
    found = webhook_of_workspace(workspace=request.workspace, webhook_id=webhook_id)
    if found is None:
        raise Http404("No such webhook.")
    return render(
        request,
        "campaigns/prompts/webhook.html",
        {
            "webhook": found,
            "deliveries": webhook_deliveries(webhook=found),
            "signature_header": SIGNATURE_HEADER,
        },
    )


@editor_required
@require_POST
def webhook_action(request, webhook_id: int):
    found = webhook_of_workspace(workspace=request.workspace, webhook_id=webhook_id)
    if found is None:
        raise Http404("No such webhook.")
    action = request.POST.get("action")
    actor = Actor.of_user(request.user)
    if action == "pause":
        webhook_set_active(webhook=found, active=False, actor=actor)
        messages.success(request, "Paused: no deliveries until resumed.")
    elif action == "resume":
        webhook_set_active(webhook=found, active=True, actor=actor)
        messages.success(request, "Resumed.")
    elif action == "rotate":
        webhook_rotate_secret(workspace=request.workspace, actor=actor, webhook=found)
        messages.success(
            request,
            "New signing secret: the old one no longer verifies; give the receiver this one.",
        )
    elif action == "test":
        webhook_ping.delay_on_commit(found.pk)
        messages.success(request, "Sent a signed ping; its outcome is in the log.")
    elif action == "deliver":
        # Rendering every customer's prompt can take a while: a worker does it.
        webhooks_deliver_changed_prompts_task.delay_on_commit(request.workspace.pk)
        messages.success(request, "Finding changed prompts; deliveries appear in the log.")
    elif action == "delete":
        webhook_delete(webhook=found, actor=actor)
        messages.success(request, "Deleted the webhook and its log.")
        return redirect("webhooks")
    return redirect(reverse("webhook", args=[webhook_id]))


@editor_required
@require_http_methods(["GET", "POST"])
def webhook_edit(request, webhook_id: int):
    workspace = request.workspace
    found = webhook_of_workspace(workspace=workspace, webhook_id=webhook_id)
    if found is None:
        raise Http404("No such webhook.")
    if request.method == "POST":
        form = WebhookEditForm(request.POST, workspace=workspace)
        if form.is_valid():
            try:
                webhook_update(
                    workspace=workspace,
                    actor=Actor.of_user(request.user),
                    webhook=found,
                    expected_version=form.cleaned_data["version"],
                    changes=form.changes(),
                )
            except (ValidationError, StaleEdit) as refused:
                form_refused(form, refused)
            else:
                messages.success(request, "Saved the webhook.")
                return redirect("webhook", webhook_id=webhook_id)
    else:
        initial = {
            "url": found.url,
            "description": found.description,
            "campaign": found.campaign_id,
            "active": found.active,
            "version": found.version,
        }
        form = WebhookEditForm(initial=initial, workspace=workspace)
    return render(request, "campaigns/prompts/webhook_edit.html", {"webhook": found, "form": form})
