from django.apps import AppConfig


class MemoryConfig(AppConfig):
    name = "memory"
    verbose_name = "Memory"

    def ready(self):
        from memory.receivers import decisions_match_after_recompute
        from memory.signals import memory_recomputed

        # The debounced recompute follows new events, so sends are matched soon after arriving
        # (and in-process, without a beat, as in the demo).
        memory_recomputed.connect(decisions_match_after_recompute, dispatch_uid="decisions-match")
