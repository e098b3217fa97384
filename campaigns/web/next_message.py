"""The "Draft the next message" page of a customer: drafts with their checks, saved as messages.

Thin: a form validates, one service runs, a template renders. Viewers see the page; only
editors and owners draft (an LLM call) or save.
"""

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import Http404
from django.shortcuts import redirect, render
from django.views.decorators.http import require_http_methods

from campaigns.llm import LlmUnavailable, llm_configured
from campaigns.prompts.engine import TemplateProblem
from campaigns.prompts.next_message import next_message_drafts, next_message_save
from campaigns.prompts.next_message_forms import NextMessageForm, NextMessageSaveForm
from campaigns.tenancy.changes import Actor
from campaigns.tenancy.decorators import viewers_cannot, workspace_required
from config.rate_limit import llm_rate_refusal
from memory.models import Customer


@workspace_required
@require_http_methods(["GET", "POST"])
def customer_next_message(request, external_id: str):
    workspace = request.workspace
    if not Customer.objects.for_workspace(workspace).filter(external_id=external_id).exists():
        raise Http404("No such customer.")
    action = request.POST.get("action") if request.method == "POST" else None
    if action and not request.membership.can_edit:
        return viewers_cannot()
    form = NextMessageForm(request.POST if action == "draft" else None, workspace=workspace)
    save_form = NextMessageSaveForm(request.POST if action == "save" else None)
    found = llm_error = problem = refusal = None
    if action == "save" and save_form.is_valid():
        data = save_form.cleaned_data
        try:
            message = next_message_save(
                workspace=workspace,
                actor=Actor.of_user(request.user),
                key=data["key"],
                subject=data["subject"],
                body=data["body"],
                labels=save_form.label_refs(),
            )
        except ValidationError as invalid:
            for field, errors in invalid.message_dict.items():
                save_form.add_error(field if field in save_form.fields else None, errors)
        else:
            messages.success(request, f"Saved message {message.key}.")
            return redirect("customer-next-message", external_id=external_id)
    elif action == "draft" and form.is_valid():
        refusal = llm_rate_refusal(request)
        try:
            if refusal:
                raise LlmUnavailable("rate_limited", refusal.message)
            found = next_message_drafts(
                workspace=workspace,
                external_id=external_id,
                count=form.cleaned_data["count"],
                **form.brief_arguments(),
            )
        except ValidationError as invalid:
            form.add_error("brief", invalid.messages)
        except TemplateProblem as error:
            problem = str(error)
        except LlmUnavailable as unavailable:
            llm_error = unavailable
    response = render(
        request,
        "campaigns/prompts/next_message.html",
        {
            "external_id": external_id,
            "form": form,
            "save_form": save_form,
            "found": found,
            "problem": problem,
            "llm_error": llm_error,
            "llm_configured": llm_configured(),
        },
        status=429 if refusal else 200,
    )
    if refusal:
        response["Retry-After"] = str(refusal.retry_after_s)
    return response
