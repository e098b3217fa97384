from django.apps import AppConfig


class CampaignsConfig(AppConfig):
    name = "campaigns"
    verbose_name = "Campaigns"

    def ready(self):
        from campaigns.receivers import (
            campaign_tallies_count,
            changed_prompts_deliver,
            customer_erased_tell_webhooks,
        )
        from memory.signals import customer_erasing, memory_recomputed

        memory_recomputed.connect(changed_prompts_deliver, dispatch_uid="campaigns.webhooks")
        memory_recomputed.connect(campaign_tallies_count, dispatch_uid="campaigns.tallies")
        customer_erasing.connect(
            customer_erased_tell_webhooks, dispatch_uid="campaigns.webhooks.customer_erased"
        )
