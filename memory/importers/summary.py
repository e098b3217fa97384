"""What a file import did: its figures, its bad lines, and how they are named."""

from dataclasses import dataclass, field


@dataclass
class ImportSummary:
    lines: int = 0
    blank: int = 0
    stored: int = 0
    duplicates: int = 0
    identified: int = 0
    rejected: list[tuple[str, int, str, str]] = field(default_factory=list)
    # A set: two writers may each register the same new message before either commits.
    message_keys_registered: set[str] = field(default_factory=set)
    unknown_message_keys: set[str] = field(default_factory=set)
    repeats: int = 0  # identical lines without messageId, kept as distinct events
    customers: int = 0  # in the workspace after the import

    @property
    def messages_registered(self) -> int:
        return len(self.message_keys_registered)

    def counts(self) -> dict[str, int]:
        """Return the summary's figures by name, in SUMMARY_LABELS' order."""
        return {
            "lines": self.lines,
            "blank": self.blank,
            "stored": self.stored,
            "duplicates": self.duplicates,
            "repeats": self.repeats,
            "identified": self.identified,
            "rejected": len(self.rejected),
            "messages_registered": self.messages_registered,
            "unknown_message_keys": len(self.unknown_message_keys),
            "customers": self.customers,
        }

    def unreadable(self, source: str, error: Exception) -> str:
        """Say that a file broke off mid-way, what is stored, and that a re-import is safe."""
        return (
            f"{source} could not be read to the end ({error}); the {self.stored:,} events "
            "before that are stored, and importing the file again once repaired adds only "
            "what is missing."
        )


# How the command and the import page name ImportSummary.counts().
SUMMARY_LABELS = {
    "lines": "lines read",
    "blank": "blank lines skipped",
    "stored": "events stored",
    "duplicates": "events already stored",
    "repeats": "identical lines kept apart",
    "identified": "identify calls applied",
    "rejected": "bad lines (not imported)",
    "messages_registered": "messages registered",
    "unknown_message_keys": "unknown message keys",
    "customers": "customers in the workspace",
}
