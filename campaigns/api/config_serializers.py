"""Shapes of the configuration resources (campaigns, workspace, members, keys, webhooks).

Input serializers check types and resolve slugs and keys within the caller's workspace; the
service decides everything else (goal, audience, dates, scopes, last owner), so a form and the
API refuse the same things with the same words.
"""

from rest_framework import serializers

from campaigns.models import (
    EXPLORE_SHARE_MAX,
    HOLDOUT_MAX,
    ApiKey,
    Campaign,
    Membership,
    Message,
    PromptTemplate,
    Webhook,
    Workspace,
)
from campaigns.tenancy.services import SETTINGS_FIELDS


class VersionedInput(serializers.Serializer):
    version = serializers.IntegerField(
        required=False,
        min_value=1,
        help_text="The version you read; an older one is refused with 409 (omit: overwrite).",
    )


def _workspace(serializer) -> Workspace:
    return serializer.context["workspace"]


# Campaigns -------------------------------------------------------------------------------------


class CampaignSerializer(serializers.ModelSerializer):
    messages = serializers.SlugRelatedField(many=True, read_only=True, slug_field="key")
    prompt_template = serializers.SlugRelatedField(
        read_only=True, slug_field="slug", allow_null=True
    )
    effective_attribution_window_h = serializers.FloatField(read_only=True)

    class Meta:
        model = Campaign
        fields = [
            "id",
            "slug",
            "name",
            "goal_event",
            "attribution_window_h",
            "effective_attribution_window_h",
            "messages",
            "prompt_template",
            "guidance",
            "audience",
            "starts_at",
            "ends_at",
            "holdout_random",
            "holdout_no_memory",
            "exploration",
            "explore_share",
            "active",
            "version",
            "created_at",
        ]
        read_only_fields = fields


class CampaignInputSerializer(VersionedInput):
    slug = serializers.SlugField(max_length=64, help_text="Set once, on create.")
    name = serializers.CharField(max_length=200)
    goal_event = serializers.CharField(
        max_length=200, required=False, allow_blank=True, help_text="Blank or the workspace's."
    )
    attribution_window_h = serializers.FloatField(required=False, allow_null=True, min_value=0.01)
    messages = serializers.ListField(
        child=serializers.CharField(max_length=200), required=False, help_text="Message keys."
    )
    prompt_template = serializers.SlugField(
        required=False, allow_null=True, help_text="A template's slug; null: the default."
    )
    guidance = serializers.CharField(required=False, allow_blank=True)
    audience = serializers.JSONField(
        required=False,
        help_text='A trait filter: {"all": [{"trait": "age", "min": 30}, ...]}; {}: everyone.',
    )
    starts_at = serializers.DateTimeField(required=False, allow_null=True)
    ends_at = serializers.DateTimeField(required=False, allow_null=True)
    holdout_random = serializers.FloatField(
        required=False,
        min_value=0.0,
        max_value=HOLDOUT_MAX,
        help_text="Share of the audience served a random eligible message (0 to 0.5).",
    )
    holdout_no_memory = serializers.FloatField(
        required=False,
        min_value=0.0,
        max_value=HOLDOUT_MAX,
        help_text="Share of the audience prompted without their memory (0 to 0.5).",
    )
    exploration = serializers.ChoiceField(
        choices=Campaign.Exploration.choices,
        required=False,
        help_text="thompson: explore where the memory is unsure; epsilon: serve Primer's best "
        "but for `explore_share` of decisions, drawn at random.",
    )
    explore_share = serializers.FloatField(
        required=False,
        min_value=0.0,
        max_value=EXPLORE_SHARE_MAX,
        help_text="epsilon: the share of decisions drawn at random (0 to 0.5).",
    )
    active = serializers.BooleanField(required=False)

    def validate_messages(self, keys: list[str]) -> list[Message]:
        found = {
            m.key: m
            for m in Message.objects.for_workspace(_workspace(self)).filter(key__in=set(keys))
        }
        missing = sorted(set(keys) - found.keys())
        if missing:
            raise serializers.ValidationError(f"No such messages in this workspace: {missing}.")
        return [found[key] for key in dict.fromkeys(keys)]

    def validate_prompt_template(self, slug: str | None) -> PromptTemplate | None:
        if slug is None:
            return None
        found = PromptTemplate.objects.for_workspace(_workspace(self)).filter(slug=slug).first()
        if found is None:
            raise serializers.ValidationError(f"No prompt template {slug!r} in this workspace.")
        return found


# The workspace ---------------------------------------------------------------------------------


class WorkspaceSerializer(serializers.ModelSerializer):
    memory_stale = serializers.ListField(
        child=serializers.CharField(),
        read_only=True,
        help_text="Settings changed since the last recompute (empty: memory is current).",
    )

    class Meta:
        model = Workspace
        fields = ["slug", *SETTINGS_FIELDS, "version", "memory_stale"]
        read_only_fields = fields


class WorkspaceInputSerializer(VersionedInput):
    name = serializers.CharField(max_length=200, required=False)
    time_zone = serializers.CharField(max_length=64, required=False, help_text="IANA name.")
    goal_event = serializers.CharField(max_length=200, required=False)
    send_event = serializers.CharField(max_length=200, required=False)
    open_event = serializers.CharField(max_length=200, required=False)
    attribution_window_h = serializers.FloatField(required=False, min_value=0.01)
    habituation_half_life_h = serializers.FloatField(required=False, min_value=0.01)
    priming_horizon_h = serializers.FloatField(required=False, min_value=0.01)


# Members and keys ------------------------------------------------------------------------------


class MemberSerializer(serializers.ModelSerializer):
    username = serializers.CharField(source="user.username", read_only=True)

    class Meta:
        model = Membership
        fields = ["id", "username", "role"]
        read_only_fields = fields


class MemberInputSerializer(serializers.Serializer):
    username = serializers.CharField(max_length=150, help_text="An existing user.")
    role = serializers.ChoiceField(choices=Membership.Role.choices)


class MemberRoleSerializer(serializers.Serializer):
    role = serializers.ChoiceField(choices=Membership.Role.choices)


class ApiKeySerializer(serializers.ModelSerializer):
    created_by = serializers.CharField(
        source="created_by.username", read_only=True, default=None, allow_null=True
    )

    class Meta:
        model = ApiKey
        fields = [
            "id",
            "name",
            "prefix",
            "scopes",
            "created_at",
            "created_by",
            "last_used_at",
            "revoked_at",
        ]
        read_only_fields = fields


class ApiKeyInputSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=200, required=False, allow_blank=True, default="")
    scopes = serializers.ListField(
        child=serializers.ChoiceField(choices=ApiKey.Scope.choices),
        allow_empty=False,
        help_text="Only scopes your key holds itself; never admin (an owner grants it in the "
        "browser).",
    )


class ApiKeyCreatedSerializer(ApiKeySerializer):
    secret = serializers.CharField(read_only=True, help_text="Shown once; store it now.")

    class Meta(ApiKeySerializer.Meta):
        fields = [*ApiKeySerializer.Meta.fields, "secret"]
        read_only_fields = fields


# Webhooks --------------------------------------------------------------------------------------


class WebhookSerializer(serializers.ModelSerializer):
    campaign = serializers.SlugRelatedField(read_only=True, slug_field="slug", allow_null=True)

    class Meta:
        model = Webhook
        fields = [
            "id",
            "url",
            "description",
            "campaign",
            "active",
            "created_at",
            "secret_rotated_at",
            "version",
        ]
        read_only_fields = fields


class WebhookSecretSerializer(WebhookSerializer):
    secret = serializers.CharField(read_only=True, help_text="Signs every delivery (HMAC).")

    class Meta(WebhookSerializer.Meta):
        fields = [*WebhookSerializer.Meta.fields, "secret"]
        read_only_fields = fields


class WebhookInputSerializer(VersionedInput):
    url = serializers.URLField(max_length=500)
    description = serializers.CharField(max_length=200, required=False, allow_blank=True)
    campaign = serializers.SlugField(
        required=False, allow_null=True, help_text="A campaign's slug; null: workspace default."
    )
    active = serializers.BooleanField(required=False)

    def validate_campaign(self, slug: str | None) -> Campaign | None:
        if slug is None:
            return None
        found = Campaign.objects.for_workspace(_workspace(self)).filter(slug=slug).first()
        if found is None:
            raise serializers.ValidationError(f"No campaign {slug!r} in this workspace.")
        return found


# A campaign's uplift (the response's shape, for the schema) ------------------------------------


class EstimateSerializer(serializers.Serializer):
    value = serializers.FloatField(allow_null=True)
    low = serializers.FloatField(allow_null=True, help_text="95% interval; null: too few sends.")
    high = serializers.FloatField(allow_null=True)


class UpliftArmSerializer(serializers.Serializer):
    arm = serializers.ChoiceField(choices=["primer", "random", "no_memory"])
    share = serializers.FloatField(help_text="The arm's configured share of the audience.")
    served = serializers.IntegerField(help_text="Decisions served in this arm.")
    matched = serializers.IntegerField(help_text="Of those, matched to a send.")
    resolved = serializers.IntegerField(help_text="Of those, with the window closed.")
    sends = serializers.IntegerField(help_text="Resolved sends the rates are measured on.")
    goals = serializers.IntegerField()
    goal_rate = EstimateSerializer(help_text="Wilson interval.")
    revenue_per_send = EstimateSerializer(
        allow_null=True, help_text="Normal interval; null where no goal carries a revenue."
    )


class UpliftComparisonSerializer(serializers.Serializer):
    primer_against = serializers.ChoiceField(choices=["random", "no_memory"])
    difference = EstimateSerializer(help_text="Primer's goal rate minus the arm's (Newcombe).")
    revenue_difference = EstimateSerializer(allow_null=True, help_text="Welch interval.")
    can_tell = serializers.BooleanField(help_text="Whether the interval excludes 0.")
    minimum_detectable_effect = serializers.FloatField(
        allow_null=True, help_text="At the current counts, 80% power, 5% level."
    )


class UpliftOffPolicySerializer(serializers.Serializer):
    sends = serializers.IntegerField(help_text="Resolved sends of the random arm.")
    matches = serializers.IntegerField(help_text="Those that served Primer's choice.")
    ips = EstimateSerializer()
    snips = EstimateSerializer()
    random = EstimateSerializer(help_text="The random arm's own goal rate.")
    difference = EstimateSerializer(help_text="SNIPS minus the random arm's rate.")
    can_tell = serializers.BooleanField()
    minimum_detectable_effect = serializers.FloatField(allow_null=True)


class CampaignUpliftSerializer(serializers.Serializer):
    campaign = serializers.SlugField()
    counted_at = serializers.DateTimeField(
        allow_null=True,
        help_text="When the matching (every 5 minutes and after each recompute) last counted the "
        "campaign's decisions; null before its first count.",
    )
    goal_event = serializers.CharField()
    window_h = serializers.FloatField()
    level = serializers.FloatField()
    arms = UpliftArmSerializer(many=True)
    comparisons = UpliftComparisonSerializer(many=True)
    off_policy = UpliftOffPolicySerializer(
        allow_null=True, help_text="Primer's policy valued on the random arm; null without it."
    )
