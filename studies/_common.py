"""Shared setup for the one-off studies: the benchmarks' helpers, and reading a finished run.

The machine, load and workflow helpers are those of ``benchmarks/_common.py``
(loaded from its file, so the two folders keep one copy of them); what only
the studies need is here. Neither folder imports from ``tests/``.
"""

from __future__ import annotations

import csv
import importlib.util
from collections import defaultdict
from pathlib import Path

_path = Path(__file__).resolve().parents[1] / "benchmarks" / "_common.py"
_spec = importlib.util.spec_from_file_location("carmask_benchmarks_common", _path)
_benchmarks = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_benchmarks)

ROOT = _benchmarks.ROOT
OtherLoad = _benchmarks.OtherLoad
copy_workflow = _benchmarks.copy_workflow
default_model = _benchmarks.default_model
header = _benchmarks.header
quiet_tensorflow = _benchmarks.quiet_tensorflow
wait_for_idle = _benchmarks.wait_for_idle


def finished_run(run: Path, configfiles: list[str]):
    """(config, validation rows) of a finished workflow directory ``run`` run with ``configfiles``.

    The config files are layered as ``--configfile`` does and checked against
    the schema; the validation rows' photo and mask paths are made absolute
    (the manifest's are relative to the run's directory).
    """
    import pandas as pd
    import yaml
    from snakemake.utils import update_config, validate

    config: dict = {}
    for name in configfiles:
        update_config(config, yaml.safe_load((run / name).read_text()))
    validate(config, str(ROOT / "workflow" / "schemas" / "config.schema.yaml"))
    val = pd.read_parquet(run / "results" / "split" / "val.parquet")
    for column in ("image_path", "mask_path"):
        val[column] = [str(run / p) for p in val[column]]
    return config, val


def job_benchmarks(work: Path) -> dict[str, list[dict]]:
    """Every job's benchmark row (seconds, max RSS in MB), by rule."""
    by_rule: dict[str, list[dict]] = defaultdict(list)
    root = work / "logs" / "benchmarks"
    for tsv in sorted(root.rglob("*.tsv")):
        rel = tsv.relative_to(root)
        rule = {"manifest/train.tsv": "manifest_train", "manifest/test.tsv": "manifest_test"}.get(str(rel), rel.parts[0].removesuffix(".tsv"))
        with open(tsv) as f:
            row = next(csv.DictReader(f, delimiter="\t"))
        rss = row.get("max_rss", "NA")  # NA: the job ended before the first memory sample
        by_rule[rule].append({"path": str(rel), "s": float(row["s"]), "max_rss_mb": float(rss) if rss not in ("", "NA") else 0.0})
    return by_rule
