"""Population statistics: everything a customer's memory needs that depends on more than one.

Fitted once per recompute on a sample of customers (all of them in a small workspace; see
``population_fit``): the label catalogue and message similarity, the baseline prior, the label
priors, the message rates, the priming table, the scoring model and the habituation curve.
Every shard then computes its customers from their own events and this, on any worker.
"""

from __future__ import annotations

import dataclasses
import io
import json
import math
from dataclasses import dataclass, field
from functools import cached_property

import numpy as np
import polars as pl
from scipy import sparse

from memory.scoring.baseline import BaselinePrior
from memory.scoring.frames import EngineConfig
from memory.scoring.model import ScoringModel

MAGIC = b"PRIMER-POPULATION/1\n"


@dataclass
class Population:
    """Hold what every shard shares: priors, message rates, priming table and model."""

    config: EngineConfig
    horizon: float
    messages: pl.DataFrame  # message, key
    catalogue: pl.DataFrame  # label_id, label_set, label
    incidence: sparse.csr_matrix  # messages x labels, 0/1
    similarity: sparse.csr_matrix  # messages x messages
    baseline: BaselinePrior
    label_priors: pl.DataFrame
    message_rate: np.ndarray
    priming: pl.DataFrame
    pooled_baseline_rate: float
    pooled_frequency_rate_h: float
    model: ScoringModel | None = None
    habituation_curve: pl.DataFrame = field(default_factory=pl.DataFrame)
    stats: dict[str, float] = field(default_factory=dict)
    # The engagement memory's priors: the population's open rate and prior strength over
    # customers, and per label its open-rate lift ((0, 0) and empty when no send was opened).
    open_prior: tuple[float, float] = (0.0, 0.0)
    engagement_priors: pl.DataFrame = field(default_factory=pl.DataFrame)

    @property
    def n_messages(self) -> int:
        """Return the number of dense message indices the population knows."""
        return self.incidence.shape[0]

    @cached_property
    def label_matrix(self) -> sparse.csr_matrix:
        """Return messages x labels with each message's row summing to 1 (0 if unlabelled)."""
        counts = np.asarray(self.incidence.sum(axis=1)).ravel()
        scale = sparse.diags(np.where(counts > 0, 1.0 / np.maximum(counts, 1), 0.0))
        return sparse.csr_matrix(scale @ self.incidence)

    def to_bytes(self) -> bytes:
        """Serialise as a JSON header, Arrow IPC frames and raw little-endian arrays."""
        frames = {
            "messages": self.messages,
            "catalogue": self.catalogue,
            "label_priors": self.label_priors,
            "priming": self.priming,
            "habituation_curve": self.habituation_curve,
            "engagement_priors": self.engagement_priors,
        }
        model = self.model or ScoringModel(features=(), coefficients=np.zeros(1))
        arrays = {
            "message_rate": self.message_rate,
            "model_coefficients": model.coefficients,
            **_sparse_arrays("incidence", self.incidence),
            **_sparse_arrays("similarity", self.similarity),
        }
        sections = []
        for frame in frames.values():
            buffer = io.BytesIO()
            frame.write_ipc(buffer, compression="uncompressed")
            sections.append(buffer.getvalue())
        for array in arrays.values():
            sections.append(
                np.ascontiguousarray(array).astype(array.dtype.newbyteorder("<")).tobytes()
            )
        header = {
            "config": dataclasses.asdict(self.config),
            "horizon": self.horizon,
            "baseline": self.baseline.to_dict(),
            "pooled_baseline_rate": self.pooled_baseline_rate,
            "pooled_frequency_rate_h": self.pooled_frequency_rate_h,
            "open_prior": list(self.open_prior),
            "model": None
            if self.model is None
            else {
                "features": list(model.features),
                "calibration": list(model.calibration),
                "training_rows": model.training_rows,
                "calibration_rows": model.calibration_rows,
                "extra": model.extra,
                "feature_scales": list(model.feature_scales),
                "replay_levels": model.replay_levels,
            },
            "stats": self.stats,
            "frames": list(frames),
            # Lists, not dicts: sort_keys must not reorder the sections they describe.
            "arrays": [
                [name, array.dtype.newbyteorder("<").str, list(array.shape)]
                for name, array in arrays.items()
            ],
            "shapes": {"incidence": list(self.incidence.shape)},
        }
        encoded = json.dumps(header, sort_keys=True).encode()
        out = io.BytesIO()
        out.write(MAGIC)
        for section in (encoded, *sections):
            out.write(len(section).to_bytes(8, "little"))
            out.write(section)
        return out.getvalue()

    @classmethod
    def from_bytes(cls, blob: bytes) -> Population:
        """Read a population written by ``to_bytes``."""
        view = memoryview(blob)
        if bytes(view[: len(MAGIC)]) != MAGIC:
            raise ValueError("not a serialised Population (wrong magic)")
        at, sections = len(MAGIC), []
        while at < len(view):
            size = int.from_bytes(view[at : at + 8], "little")
            sections.append(bytes(view[at + 8 : at + 8 + size]))
            at += 8 + size
        header = json.loads(sections[0])
        frames = {
            name: pl.read_ipc(io.BytesIO(section))
            for name, section in zip(header["frames"], sections[1:], strict=False)
        }
        arrays = {
            name: np.frombuffer(section, dtype=np.dtype(dtype)).reshape(shape).copy()
            for (name, dtype, shape), section in zip(
                header["arrays"], sections[1 + len(frames) :], strict=True
            )
        }
        model_header = header["model"]
        model = None
        if model_header is not None:
            model = ScoringModel(
                features=tuple(model_header["features"]),
                coefficients=arrays["model_coefficients"],
                calibration=tuple(model_header["calibration"]),
                training_rows=model_header["training_rows"],
                calibration_rows=model_header["calibration_rows"],
                extra=model_header["extra"],
                # Populations stored before the scales were kept have none.
                feature_scales=tuple(model_header.get("feature_scales", ())),
                replay_levels=model_header.get("replay_levels", []),
            )
        n_messages = header["shapes"]["incidence"][0]
        return cls(
            config=EngineConfig(**header["config"]),
            horizon=header["horizon"],
            messages=frames["messages"],
            catalogue=frames["catalogue"],
            incidence=_sparse_from(arrays, "incidence", tuple(header["shapes"]["incidence"])),
            similarity=_sparse_from(arrays, "similarity", (n_messages, n_messages)),
            baseline=BaselinePrior.from_dict(header["baseline"]),
            label_priors=frames["label_priors"],
            message_rate=arrays["message_rate"],
            priming=frames["priming"],
            pooled_baseline_rate=header["pooled_baseline_rate"],
            pooled_frequency_rate_h=header["pooled_frequency_rate_h"],
            model=model,
            habituation_curve=frames["habituation_curve"],
            stats=header["stats"],
            # Populations stored before the engagement memory have none: its feature stays 0.
            open_prior=tuple(header.get("open_prior", (0.0, 0.0))),
            engagement_priors=frames.get("engagement_priors", pl.DataFrame()),
        )

    def summary(self) -> dict:
        """Return a JSON-safe digest for dashboards: model, curve, priors, priming and counts."""
        model = self.model
        model_summary = None
        if model is not None:
            model_summary = {
                "features": list(model.features),
                "coefficients": dict(
                    zip(("intercept", *model.features), model.coefficients.tolist(), strict=True)
                ),
                "calibration": {"a": model.calibration[0], "b": model.calibration[1]},
                "effects_per_sd": model.effects_per_sd(),
                "training_rows": model.training_rows,
                "calibration_rows": model.calibration_rows,
            }
        summary = {
            "horizon": self.horizon,
            "model": model_summary,
            "habituation_curve": self.habituation_curve.to_dicts(),
            "habituation": {
                "lambda_goal": self.stats.get("habituation_lambda_goal"),
                "lambda_open": self.stats.get("habituation_lambda_open"),
            },
            "label_priors": self.label_priors.drop("label_id").to_dicts(),
            "priming": self.priming.to_dicts(),
            # The span the priming lead-time histograms cover (LEAD_BINS equal bins).
            "priming_horizon_h": self.config.priming_horizon_h,
            "baseline": {
                "pooled_rate_h": self.baseline.pooled_rate_h,
                "shape": self.baseline.all_shape,
                "free_shape": self.baseline.free_shape,
                "free_ratio": self.baseline.free_ratio,
                "trait_segments": bool(self.baseline.traits),
            },
            "counts": {
                key: self.stats.get(key)
                for key in ("customers", "events", "sends", "resolved_sends")
            }
            | {"messages": self.n_messages, "labels": self.catalogue.height},
            "goal_rate_after_send": self.stats.get("goal_rate_after_send"),
            # The weeks the model learned from (an incremental run keeps the model, and these).
            "replay_levels": model.replay_levels if model is not None else [],
        }
        return _json_safe(summary)


def _sparse_arrays(name: str, matrix: sparse.csr_matrix) -> dict[str, np.ndarray]:
    """Return the CSR arrays of a matrix under prefixed names."""
    matrix = sparse.csr_matrix(matrix)
    matrix.sort_indices()
    return {
        f"{name}_indptr": matrix.indptr.astype(np.int64),
        f"{name}_indices": matrix.indices.astype(np.int64),
        f"{name}_data": matrix.data.astype(np.float64),
    }


def _sparse_from(arrays: dict[str, np.ndarray], name: str, shape: tuple) -> sparse.csr_matrix:
    """Rebuild a CSR matrix from ``_sparse_arrays``."""
    return sparse.csr_matrix(
        (arrays[f"{name}_data"], arrays[f"{name}_indices"], arrays[f"{name}_indptr"]),
        shape=shape,
    )


def _json_safe(value):
    """Replace NaN and infinities by None, recursively."""
    if isinstance(value, dict):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json_safe(v) for v in value]
    if isinstance(value, float | np.floating):
        return float(value) if math.isfinite(value) else None
    if isinstance(value, np.integer):
        return int(value)
    return value
