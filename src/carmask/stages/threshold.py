"""``inference.threshold`` as the number the encode and evaluate stages cut at.

Kept apart from :mod:`carmask.stages.threshold_search` (which imports the ensemble and
prediction readers): the encode and evaluate rules' code digests include
what their scripts import, and choosing a threshold is not their code.
"""

from __future__ import annotations

import json
from pathlib import Path


def resolve(setting: float | str, tuned_json: str | Path | None) -> float:
    """The setting itself, or for ``auto`` the threshold that ``tune_threshold`` wrote to ``tuned_json``."""
    if setting != "auto":
        return float(setting)
    if tuned_json is None:
        raise ValueError("inference.threshold is auto but no tuned threshold file was given")
    return float(json.loads(Path(tuned_json).read_text())["threshold"])
