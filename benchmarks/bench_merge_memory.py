"""Peak memory and time of the merge over a Kaggle-sized test set: streaming vs concat-then-write.

Builds, in a temporary folder, a test manifest of 100,064 Kaggle-style names
(1280x1918 photos) and 16 RLE shards holding it as contiguous blocks (the
workflow's layout; ``--order shuffled`` spreads every shard over the whole
manifest instead), written as ``carmask.stages.encode`` writes them (zstd, 1024-row
row groups). Every mask is a car-like silhouette of ``--runs`` row runs
(a few hundred), unique per image so the shards do not compress to nothing.

Each merge runs as its own process, as Snakemake runs the rule's script:
``carmask.stages.submission.merge_shards``; the same with every slice checked
and written row by row (``rle.validate`` and the ``csv`` module, its path for
what it cannot check as a whole), and, as the baseline, the merge as it
was (all shards concatenated into one DataFrame, ``validate_submission``,
reordered with ``.loc``, ``to_csv``). Peak RSS is the child's
``ru_maxrss`` (``os.wait4``); the floor is a process that only imports the
same modules. The three CSVs are checked byte-identical.

Target: peak memory bounded by a shard (not growing with the test set):
well under the baseline, whose peak grows with the whole set.
"""

from __future__ import annotations

import argparse
import filecmp
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _common import OtherLoad, header

HEIGHT, WIDTH = 1280, 1918

BUILD = f"""
import sys
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
from carmask.stages.encode import RLE_ROW_GROUP, RLE_SCHEMA
from carmask.files import write_parquet

folder, rows, n_shards, runs, order = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), sys.argv[5]
H, W = {HEIGHT}, {WIDTH}
rng = np.random.default_rng(0)
cars = rng.integers(0, 2**48, (rows + 15) // 16)
names = [f"{{car:012x}}_{{view:02d}}.jpg" for car in cars for view in range(1, 17)][:rows]
write_parquet(pd.DataFrame({{"img": names, "height": H, "width": W}}), f"{{folder}}/manifest.parquet")

def silhouette(seed):
    # one run per row over `runs` rows: an ellipse-ish car body, wobbling edges
    r = np.random.default_rng(seed)
    top = int(r.integers(200, H - runs - 10))
    t = np.linspace(-1, 1, runs)
    half = (0.35 + 0.1 * r.random()) * W * np.sqrt(1 - 0.9 * t**2) + r.integers(-3, 4, runs)
    centre = W / 2 + r.integers(-60, 60)
    c0 = np.clip(centre - half, 0, W - 2).astype(np.int64)
    c1 = np.clip(centre + half, c0 + 1, W).astype(np.int64)
    starts = (top + np.arange(runs)) * W + c0 + 1
    return " ".join(f"{{s}} {{n}}" for s, n in zip(starts.tolist(), (c1 - c0).tolist()))

bodies = [silhouette(i) for i in range(64)]
# a unique one-pixel run before the body (first rows of the photo) keeps every mask distinct
codes = lambda idx: [f"{{i + 1}} 1 {{bodies[i % 64]}}" for i in idx]
positions = np.arange(rows) if order == "blocks" else rng.permutation(rows)
for k, part in enumerate(np.array_split(positions, n_shards)):
    with pq.ParquetWriter(f"{{folder}}/shard-{{k:02d}}.parquet", RLE_SCHEMA, compression="zstd") as writer:
        for a in range(0, len(part), RLE_ROW_GROUP):
            idx = part[a : a + RLE_ROW_GROUP].tolist()
            writer.write_table(pa.table([[names[i] for i in idx], codes(idx)], schema=RLE_SCHEMA))
"""

MERGE = """
import sys
from carmask.stages.submission import merge_shards
merge_shards(sys.argv[3:], sys.argv[1], sys.argv[2])
"""

ROW_BY_ROW = """
import sys
from carmask.masks import rle_columns
from carmask.stages.submission import merge_shards
rle_columns.all_valid = lambda codes, pixels: False  # every slice through rle.validate and csv
merge_shards(sys.argv[3:], sys.argv[1], sys.argv[2])
"""

BASELINE = """
import sys
import pandas as pd
from carmask import files
from carmask.stages.submission import validate_submission
manifest, out, shards = sys.argv[1], sys.argv[2], sys.argv[3:]
expected = pd.read_parquet(manifest, columns=["img", "height", "width"])
sub = pd.concat([pd.read_parquet(p) for p in shards], ignore_index=True)
validate_submission(sub, expected, source=f"merged shards for {out}")
sub = sub.set_index("img").loc[expected["img"]].reset_index()
with files.atomic_path(out) as tmp:
    sub.to_csv(tmp, index=False)
"""

FLOOR = """
import numpy, pandas, pyarrow, pyarrow.parquet
import carmask.files, carmask.stages.submission
"""


def child(code: str, args: list[str]) -> tuple[float, float]:
    """(peak RSS in MB, wall seconds) of ``python -c code args`` as its own process."""
    start = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-c", code, *args])
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode:
        raise SystemExit(f"child failed ({proc.returncode}): {code.strip().splitlines()[-1]}")
    return usage.ru_maxrss / 1024, wall  # Linux reports KiB


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--rows", type=int, default=100_064)
    parser.add_argument("--shards", type=int, default=16)
    parser.add_argument("--runs", type=int, default=300, help="row runs per mask")
    parser.add_argument("--order", choices=["blocks", "shuffled"], default="blocks")
    args = parser.parse_args()
    header("merge: peak memory, streaming vs concat-then-write")
    with tempfile.TemporaryDirectory(prefix="bench-merge-") as tmp:
        folder = Path(tmp)
        _, build_s = child(BUILD, [tmp, str(args.rows), str(args.shards), str(args.runs), args.order])
        shards = sorted(str(p) for p in folder.glob("shard-*.parquet"))
        shard_mb = sum(Path(p).stat().st_size for p in shards) / 2**20
        print(f"{args.rows} masks of {args.runs} runs in {args.shards} shards ({args.order}), "
              f"{shard_mb:.0f} MB of parquet, built in {build_s:.0f} s")
        manifest = str(folder / "manifest.parquet")
        with OtherLoad() as load:
            floor_mb, floor_s = child(FLOOR, [])
            new_mb, new_s = child(MERGE, [manifest, str(folder / "new.csv"), *shards])
            rows_mb, rows_s = child(ROW_BY_ROW, [manifest, str(folder / "rows.csv"), *shards])
            old_mb, old_s = child(BASELINE, [manifest, str(folder / "old.csv"), *shards])
        csv_mb = (folder / "new.csv").stat().st_size / 2**20
        same = filecmp.cmp(folder / "new.csv", folder / "old.csv", shallow=False)
        same = same and filecmp.cmp(folder / "new.csv", folder / "rows.csv", shallow=False)
    print(f"CSV: {csv_mb:.0f} MB, byte-identical to the baseline's and the row-by-row merge's: {same}")
    print(f"floor (imports only):          peak {floor_mb:7.0f} MB, {floor_s:5.1f} s")
    for label, mb, secs in (("merge_shards (streaming):     ", new_mb, new_s),
                            ("the same, checked row by row: ", rows_mb, rows_s),
                            ("baseline (concat, then write):", old_mb, old_s)):
        print(f"{label} peak {mb:7.0f} MB ({mb - floor_mb:6.0f} above floor), {secs:5.1f} s")
    print(f"baseline / streaming: peak {old_mb / new_mb:.1f}x, above floor "
          f"{(old_mb - floor_mb) / max(new_mb - floor_mb, 1):.1f}x, time {old_s / new_s:.2f}x; "
          f"row by row / streaming: time {rows_s / new_s:.2f}x")
    print(load.line())
    if not same:
        raise SystemExit("the CSVs differ")


if __name__ == "__main__":
    main()
