"""A 2-D map of message texts: near texts land near each other, near-duplicates share a cluster.

The texts' character 3-5-gram TF-IDF vectors (the habituation engine's similarity, see
``habituation.tfidf_similarity``) projected on their first two singular directions; clusters are
the connected groups of texts at least ``threshold`` similar to one another.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy import sparse
from scipy.sparse.csgraph import connected_components
from sklearn.decomposition import TruncatedSVD
from sklearn.feature_extraction.text import TfidfVectorizer


def similarity_map(texts: Sequence[str], threshold: float) -> tuple[np.ndarray, np.ndarray]:
    """Return (xy, cluster): 2-D coordinates per text and a cluster number per text.

    Texts with no near-duplicate get a cluster of their own; cluster numbers are ordered by
    first appearance.
    """
    n = len(texts)
    if n == 0:
        return np.zeros((0, 2)), np.zeros(0, dtype=int)
    lowered = [text.lower() for text in texts]
    if not any(text.strip() for text in lowered):
        return np.zeros((n, 2)), np.arange(n)
    vectors = TfidfVectorizer(analyzer="char_wb", ngram_range=(3, 5), sublinear_tf=True)
    matrix = vectors.fit_transform(lowered)
    if n >= 3 and matrix.shape[1] >= 3:
        xy = TruncatedSVD(n_components=2, random_state=0).fit_transform(matrix)
    else:
        xy = np.zeros((n, 2))
        xy[:, 0] = np.arange(n)
    similarity = sparse.csr_matrix(matrix @ matrix.T)
    similarity.data[similarity.data < threshold] = 0
    similarity.eliminate_zeros()
    _, labels = connected_components(similarity, directed=False)
    # Renumber in order of first appearance, so the same catalogue draws the same colours.
    _, first = np.unique(labels, return_index=True)
    order = {label: rank for rank, label in enumerate(labels[np.sort(first)])}
    return np.asarray(xy, dtype=float), np.array([order[label] for label in labels])
