"""Memory endpoints: a customer's memory and scores, recompute runs, and bulk export.

Thin: validate with a serializer, call one service or selector, shape the answer.
"""

import polars as pl
from django.http import StreamingHttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers, status
from rest_framework.exceptions import NotFound, ValidationError
from rest_framework.response import Response
from rest_framework.views import APIView

from campaigns.models import ApiKey, Campaign
from campaigns.tenancy.authentication import HasScope, request_workspace
from config.rate_limit import ClearThrottleMessage
from config.renderers import CONTENT_TYPES, ExportFormatMixin
from memory.api.throttling import MatchingRateThrottle, RecomputeRateThrottle
from memory.db.reads import EXPORT_KINDS, memory_export_chunks
from memory.decisions import next_best_decide
from memory.exports import FORMATS, encode_chunks
from memory.models import Customer, Decision, RecomputeRun
from memory.next_best import next_best_for
from memory.predict import NoMemoryYet, memory_score
from memory.recompute.service import BrokerUnavailable, RecomputeUnavailable, recompute_ask
from memory.selectors import (
    customer_memory_summary,
    customer_missing,
    latest_succeeded_run,
    memory_summary,
)
from memory.strategy import (
    customer_weights,
    memory_with_provenance,
    strategy_context,
    strategy_decide,
    weights_with_provenance,
)
from memory.tasks import decisions_match_now


class RecomputeRunSerializer(serializers.ModelSerializer):
    progress = serializers.FloatField(read_only=True)

    class Meta:
        model = RecomputeRun
        fields = [
            "id",
            "status",
            "mode",
            "as_of",
            "shards_total",
            "shards_done",
            "progress",
            "customers",
            "events",
            "timings",
            "error",
            "created_at",
            "started_at",
            "finished_at",
        ]


class RecomputeAnswerSerializer(RecomputeRunSerializer):
    started = serializers.BooleanField(
        read_only=True,
        help_text="False: a run was already queued or running, and this is that run.",
    )

    class Meta(RecomputeRunSerializer.Meta):
        fields = [*RecomputeRunSerializer.Meta.fields, "started"]


class UnavailableSerializer(serializers.Serializer):
    detail = serializers.CharField()
    retryable = serializers.BooleanField()


class RecomputeRequestSerializer(serializers.Serializer):
    as_of = serializers.DateTimeField(required=False, default=None)
    incremental = serializers.BooleanField(required=False, default=False)


class ScoreRequestSerializer(serializers.Serializer):
    messages = serializers.ListField(
        child=serializers.CharField(max_length=200), min_length=1, max_length=500
    )
    as_of = serializers.DateTimeField(required=False, default=None)


class NextBestQuerySerializer(serializers.Serializer):
    explore = serializers.BooleanField(
        required=False, default=False, help_text="Thompson-sample among the allowed messages."
    )
    seed = serializers.IntegerField(
        required=False, default=0, min_value=0, max_value=2**32 - 1, help_text="Of the draws."
    )
    limit = serializers.IntegerField(required=False, default=10, min_value=1, max_value=100)
    campaign = serializers.SlugField(
        required=False,
        help_text="A campaign's slug: choose among its messages, in the customer's holdout arm.",
    )
    decide = serializers.BooleanField(
        required=False,
        default=True,
        help_text="Serve and log a decision (explored, with its propensity); false: rank only.",
    )


class NextBestEligibleSerializer(serializers.Serializer):
    message_id = serializers.IntegerField()
    key = serializers.CharField()
    propensity = serializers.FloatField(help_text="Its probability of being the one served.")


class NextBestDecisionSerializer(serializers.Serializer):
    decision_id = serializers.CharField(
        help_text="Send it back as properties.decision_id on the send event."
    )
    arm = serializers.CharField()
    policy = serializers.ChoiceField(choices=["thompson", "epsilon", "uniform", "top"])
    message_id = serializers.IntegerField()
    key = serializers.CharField(help_text="The message to send.")
    propensity = serializers.FloatField(help_text="The probability it was chosen with.")
    primer_message_id = serializers.IntegerField(help_text="Primer's top choice.")
    eligible = NextBestEligibleSerializer(many=True)


class NextBestOfferSerializer(serializers.Serializer):
    """One offered message (documents the answer's shape)."""

    rank = serializers.IntegerField(help_text="In this answer, 1 = best.")
    stored_rank = serializers.IntegerField(help_text="In the list the recompute stored.")
    message_id = serializers.IntegerField()
    key = serializers.CharField()
    subject = serializers.CharField()
    p_goal = serializers.FloatField(help_text="P(goal within the window) if sent.")
    score = serializers.FloatField(help_text="logit p_goal + ln(boost odds) x its labels' boost.")
    boost = serializers.FloatField(help_text="Mean marketer boost of its labels, -1 to 1.")
    pull = serializers.FloatField(help_text="Odds multiplier: the message's own pull.")
    labels = serializers.FloatField(help_text="Odds multiplier: their response to its labels.")
    wear_out = serializers.FloatField(help_text="Odds multiplier: wear-out from similar sends.")
    spread = serializers.FloatField(help_text="Sd of the labels' part of the score (logit).")
    drawn = serializers.FloatField(allow_null=True, help_text="The explored score (explore=1).")


class NextBestAnswerSerializer(serializers.Serializer):
    """A customer's next best messages now (documents the answer's shape)."""

    customer = serializers.CharField()
    offers = NextBestOfferSerializer(many=True)
    excluded = serializers.ListField(
        child=serializers.DictField(),
        help_text="Messages that may not be sent now: {message, guardrail or override, reason}.",
    )
    as_of = serializers.DateTimeField(allow_null=True, help_text="The memory's time.")
    cold_start = serializers.BooleanField(help_text="No events of their own: everyone's list.")
    explore = serializers.BooleanField()
    seed = serializers.IntegerField()
    nothing_now = serializers.CharField(
        help_text="Empty when there are offers; else why there are none (no recompute yet, "
        "or nothing may be sent now)."
    )
    arm = serializers.CharField(
        required=False,
        help_text="With decide: the holdout arm in the campaign (primer, random, no_memory; "
        "'' without a campaign).",
    )
    decision = NextBestDecisionSerializer(
        required=False, allow_null=True, help_text="With decide: the served message; null: none."
    )


def _valid(serializer_class, data) -> dict:
    serializer = serializer_class(data=data)
    if not serializer.is_valid():
        # Field and reason, e.g. {"messages": ["This field is required."]}.
        raise ValidationError(serializer.errors)
    return serializer.validated_data


class CustomerMemoryView(APIView):
    permission_classes = [HasScope]
    required_scope = ApiKey.Scope.READ

    @extend_schema(
        summary="A customer's memory",
        description="Tagged weights with evidence and intervals by label set, each with its"
        " provenance (learned with its evidence, the population prior, or set by a marketer: who,"
        " when, which override); the overrides in force; the habituation of the customer's most"
        " worn messages; the primed score with its signals; and `now`: the messages guardrails"
        " and overrides exclude at this moment, each with its rule and reason, and why nothing"
        " may be sent now ('' when something may).",
        responses={200: OpenApiTypes.OBJECT, 404: OpenApiTypes.OBJECT},
    )
    def get(self, request, external_id: str):
        workspace = request_workspace(request)
        try:
            memory = customer_memory_summary(workspace=workspace, external_id=external_id)
        except Customer.DoesNotExist:
            raise NotFound(customer_missing(workspace=workspace, external_id=external_id)) from None
        customer = Customer.objects.for_workspace(workspace).get(external_id=external_id)
        context = strategy_context(workspace=workspace, customers=[external_id])
        decision = strategy_decide(workspace=workspace, customer=customer, context=context)
        weights = customer_weights(workspace=workspace, customer=customer, context=context)
        memory = memory_with_provenance(workspace=workspace, memory=memory, weights=weights)
        memory["now"] = {"nothing_now": decision.nothing_now, "excluded": decision.excluded_dicts()}
        return Response(memory)


class CustomerScoreView(APIView):
    permission_classes = [HasScope]
    required_scope = ApiKey.Scope.READ

    @extend_schema(
        summary="Score candidate messages for a customer",
        request=ScoreRequestSerializer,
        responses={200: OpenApiTypes.OBJECT, 400: OpenApiTypes.OBJECT, 409: OpenApiTypes.OBJECT},
    )
    def post(self, request, external_id: str):
        data = _valid(ScoreRequestSerializer, request.data)
        pairs = pl.DataFrame(
            {"customer_id": [external_id] * len(data["messages"]), "message_key": data["messages"]}
        )
        try:
            scored = memory_score(
                workspace=request_workspace(request), pairs=pairs, as_of=data["as_of"]
            )
        except NoMemoryYet as error:
            return Response({"detail": str(error)}, status=status.HTTP_409_CONFLICT)
        return Response({"customer": external_id, "scores": scored.drop("customer_id").to_dicts()})


class CustomerNextBestView(APIView):
    permission_classes = [HasScope]
    required_scope = ApiKey.Scope.READ

    @extend_schema(
        summary="A customer's next best messages now",
        description="Read from the list the last recompute stored (label boosts honoured, "
        "archived messages left out); with `explore=1` ranked by one Thompson draw per message, "
        "the same for the same `seed`. Without a recompute yet, `offers` is empty and "
        "`nothing_now` says so.",
        parameters=[NextBestQuerySerializer],
        responses={
            200: NextBestAnswerSerializer,
            400: OpenApiTypes.OBJECT,
            404: OpenApiTypes.OBJECT,
        },
    )
    def get(self, request, external_id: str):
        query = dict(_valid(NextBestQuerySerializer, request.query_params))
        workspace = request_workspace(request)
        slug, decide = query.pop("campaign", None), query.pop("decide")
        campaign = None
        if slug is not None:
            campaign = Campaign.objects.for_workspace(workspace).filter(slug=slug).first()
            if campaign is None:
                raise NotFound(f"No campaign {slug!r} in this workspace.")
        try:
            answer = next_best_for(workspace=workspace, external_id=external_id, **query)
            data = answer.as_dict()
            if decide:
                # Served and logged: explored by default, so it can be evaluated later.
                decided = next_best_decide(
                    workspace=workspace,
                    external_id=external_id,
                    source=Decision.Source.API,
                    campaign=campaign,
                )
                data |= decided.as_dict()
                if campaign is not None:  # the campaign's messages, as its arm sees them
                    data["offers"] = [offer.as_dict() for offer in decided.offers]
                    data["nothing_now"] = answer.nothing_now or decided.nothing_now
        except Customer.DoesNotExist:
            raise NotFound(customer_missing(workspace=workspace, external_id=external_id)) from None
        return Response(data)


def _unavailable(error: BrokerUnavailable) -> Response:
    """503: no broker answers, so nothing was queued; the client may retry."""
    return Response(
        {"detail": str(error), "retryable": True},
        status=status.HTTP_503_SERVICE_UNAVAILABLE,
        headers={"Retry-After": "30"},
    )


class RecomputeView(ClearThrottleMessage, APIView):
    permission_classes = [HasScope]
    required_scope = ApiKey.Scope.WRITE
    throttle_classes = [RecomputeRateThrottle]

    @extend_schema(
        summary="Start a recompute",
        description="Queued on the Celery workers (202); without a broker it runs at once "
        "(200). At most one run per workspace is queued or running: while one is, the answer "
        "is that run with `started` false (a full request replaces a queued incremental run). "
        "503 when the task broker does not answer (nothing is started); 429 past the "
        "per-key limit.",
        request=RecomputeRequestSerializer,
        responses={
            202: RecomputeAnswerSerializer,
            200: RecomputeAnswerSerializer,
            400: OpenApiTypes.OBJECT,
            429: OpenApiTypes.OBJECT,
            503: UnavailableSerializer,
        },
    )
    def post(self, request):
        data = _valid(RecomputeRequestSerializer, request.data)
        try:
            run, started = recompute_ask(
                workspace=request_workspace(request),
                as_of=data["as_of"],
                incremental=data["incremental"],
                requested_by="api",
            )
        except RecomputeUnavailable as error:
            return _unavailable(error)
        finished = run.status in (RecomputeRun.Status.SUCCEEDED, RecomputeRun.Status.FAILED)
        return Response(
            {**RecomputeRunSerializer(run).data, "started": started},
            status=status.HTTP_200_OK if finished else status.HTTP_202_ACCEPTED,
        )


class DecisionsMatchAnswerSerializer(serializers.Serializer):
    queued = serializers.BooleanField(help_text="True: the workers will match and count.")
    named = serializers.IntegerField(
        allow_null=True, help_text="Sends matched by their decision_id (null while queued)."
    )
    windowed = serializers.IntegerField(
        allow_null=True, help_text="Sends matched by customer, message and window."
    )
    resolved = serializers.IntegerField(
        allow_null=True, help_text="Decisions whose goal window closed and was resolved."
    )


class DecisionsMatchView(ClearThrottleMessage, APIView):
    permission_classes = [HasScope]
    required_scope = ApiKey.Scope.WRITE
    throttle_classes = [MatchingRateThrottle]

    @extend_schema(
        summary="Match served decisions to their sends and count the campaigns' uplift now",
        description="What the matching does every 5 minutes and after each recompute, for this "
        "workspace: queued on the workers (202); without a broker configured it runs at once "
        "(200, with what it matched). 503 when the broker does not answer.",
        request=None,
        responses={
            202: DecisionsMatchAnswerSerializer,
            200: DecisionsMatchAnswerSerializer,
            429: OpenApiTypes.OBJECT,
            503: UnavailableSerializer,
        },
    )
    def post(self, request):
        try:
            matched = decisions_match_now(workspace_id=request_workspace(request).pk)
        except BrokerUnavailable as error:
            return _unavailable(error)
        if matched is None:
            return Response(
                {"queued": True, "named": None, "windowed": None, "resolved": None},
                status=status.HTTP_202_ACCEPTED,
            )
        return Response({"queued": False, **matched})


class RecomputeDetailView(APIView):
    permission_classes = [HasScope]
    required_scope = ApiKey.Scope.READ

    @extend_schema(
        summary="A recompute run's status and progress", responses=RecomputeRunSerializer
    )
    def get(self, request, run_id: int):
        run = (
            RecomputeRun.objects.for_workspace(request_workspace(request)).filter(pk=run_id).first()
        )
        if run is None:
            raise NotFound(f"No recompute {run_id} in this workspace.")
        return Response(RecomputeRunSerializer(run).data)


class MemorySummaryView(APIView):
    permission_classes = [HasScope]
    required_scope = ApiKey.Scope.READ

    @extend_schema(
        summary="The workspace's memory at a glance (the memory page's numbers)",
        description="Customers with memory, primed now and worn out; the last successful run; "
        "what its scoring model weighs (odds per standard deviation of each feature), the "
        "weeks it learned from (goal rate against the model's mean p per replayed slice), and "
        "everyone's goal rate after a send per label. Before any recompute, `run` and `model` "
        "are null.",
        responses={200: OpenApiTypes.OBJECT},
    )
    def get(self, request):
        workspace = request_workspace(request)
        run = latest_succeeded_run(workspace=workspace)
        return Response(
            {
                "run": RecomputeRunSerializer(run).data if run else None,
                **memory_summary(workspace=workspace, run=run),
            }
        )


class MemoryExportView(ExportFormatMixin, APIView):
    permission_classes = [HasScope]
    required_scope = ApiKey.Scope.READ

    @extend_schema(
        summary="Export tagged weights, habituation or priming (streamed)",
        parameters=[
            OpenApiParameter("kind", str, enum=list(EXPORT_KINDS), required=True),
            OpenApiParameter("format", str, enum=list(FORMATS), default="jsonl"),
        ],
        responses={
            (200, "application/x-ndjson"): OpenApiTypes.STR,
            (200, "text/csv"): OpenApiTypes.STR,
            400: OpenApiTypes.OBJECT,
        },
    )
    def get(self, request):
        kind = request.query_params.get("kind", "")
        fmt = request.query_params.get("format", "jsonl")
        if kind not in EXPORT_KINDS:
            raise ValidationError({"kind": [f"Must be one of {', '.join(EXPORT_KINDS)}."]})
        if fmt not in FORMATS:
            raise ValidationError({"format": [f"Must be one of {', '.join(FORMATS)}."]})
        workspace = request_workspace(request)
        chunks = memory_export_chunks(workspace=workspace, kind=kind)
        if kind == "weights":
            chunks = weights_with_provenance(workspace=workspace, chunks=chunks)
        response = StreamingHttpResponse(
            encode_chunks(chunks, fmt), content_type=CONTENT_TYPES[fmt]
        )
        response["Content-Disposition"] = f'attachment; filename="{kind}.{fmt}"'
        return response
