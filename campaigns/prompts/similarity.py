"""How close a drafted text is to the workspace's messages: the habituation risk of sending it.

Uses the memory engine's own similarity (memory.scoring.habituation.tfidf_similarity: cosine of
character 3-5-gram TF-IDF vectors), so a draft's score means what the engine's loads mean.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from memory.scoring.habituation import tfidf_similarity

# Risk words for the highest similarity to an existing message.
RISK_WORDS = ((0.35, "low"), (0.6, "medium"))
RISK_HIGH = "high"


@dataclass(frozen=True)
class Closest:
    similarity: float
    message_key: str
    risk: str


def risk_word(similarity: float) -> str:
    for upper, word in RISK_WORDS:
        if similarity < upper:
            return word
    return RISK_HIGH


def closest_messages(drafts: list[str], existing: list[tuple[str, str]]) -> list[Closest]:
    """Return, for each draft, its most similar existing message (key, text) and the score."""
    if not existing:
        return [Closest(0.0, "", risk_word(0.0)) for _ in drafts]
    texts = list(drafts) + [text for _, text in existing]
    matrix = tfidf_similarity(texts).tocsr()[: len(drafts), len(drafts) :].toarray()
    results = []
    for row in matrix:
        best = int(np.argmax(row))
        score = float(np.clip(row[best], 0.0, 1.0))
        results.append(Closest(round(score, 3), existing[best][0], risk_word(score)))
    return results
