"""Prediction settings against a baseline, in the same run: images/s and full-size Dice of a trained model.

Takes a finished real-photo run (``--run``: the workflow directory where
``config/real-80.yaml`` ran, and ``--configfile``: its config files), its
trained model and its validation photos, and predicts them through ``carmask.network.inference`` with each
setting below, one after the other in this process with the same threads:

- the baseline: float32, ``batch_size`` 8, flip TTA;
- each lever alone (batch 32; bf16; BatchNorm folded into the
  convolutions) and together (the default: ``precision: auto``, which is
  bf16 on a CPU with bf16 units, batch 32, folded);
- the default without flip TTA.

Each is encoded at full size (bilinear upsampling, threshold 0.5) and scored
against the true GIF masks: the same Dice the evaluate rule reports. Also
printed: how many full-size pixels the masks of a setting differ in from
the baseline's. Images/s count decode, model and the parquet write, after a
warm-up batch, best of ``--repeat`` passes; the machine's other load is
printed beside each.
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd

from _common import OtherLoad, default_model, finished_run, header, quiet_tensorflow, wait_for_idle

quiet_tensorflow()

from carmask.files import write_parquet  # noqa: E402
from carmask.masks import rle  # noqa: E402
from carmask.masks.dice import dice  # noqa: E402
from carmask.masks.images import load_mask  # noqa: E402
from carmask.network import inference, runtime  # noqa: E402
from carmask.network.spec import Architecture, Prediction  # noqa: E402
from carmask.planning import settings  # noqa: E402
from carmask.stages.encode import encode_shard  # noqa: E402

SETTINGS = [  # label, precision, batch, tta, fold
    ("baseline: float32, batch 8, flip", "float32", 8, "flip", False),
    ("float32, batch 32, flip", "float32", 32, "flip", False),
    ("bf16, batch 8, flip", "mixed_bfloat16", 8, "flip", False),
    ("auto, batch 32, flip", "auto", 32, "flip", False),
    ("float32, batch 32, flip, folded", "float32", 32, "flip", True),
    ("default: auto, batch 32, flip, folded", "auto", 32, "flip", True),
    ("default, no TTA", "auto", 32, "none", True),
]


def one_setting(model_path: Path, arch: Architecture, val: pd.DataFrame, precision: str, batch: int, tta: str, fold: bool,
                tmp: Path, repeat: int):
    """(images/s, share of other load, full-size masks by image) for one setting."""
    resolved = settings.resolve_precision(precision)
    how = Prediction(batch_size=batch, tta=tta, precision=resolved, fold=fold)
    models = inference.load_for_inference(str(model_path), arch, how)
    rates, other = [], []
    out = tmp / f"{resolved}-{batch}-{tta}.parquet"
    for _ in range(repeat):
        with OtherLoad() as load:
            rates.append(inference.write_probabilities(models, val, out, arch, how))
        other.append(load.share)
    best = int(np.argmax(rates))
    encode_shard([str(out)], [1.0], str(tmp / "items.parquet"), str(tmp / "rle.parquet"), 0.5)
    codes = pd.read_parquet(tmp / "rle.parquet")
    masks = {img: rle.decode(code, (h, w)) for img, code, h, w in
             zip(codes["img"], codes["rle_mask"], val["height"], val["width"])}
    return rates[best], other[best], resolved, masks


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", type=Path, required=True, help="a finished workflow directory")
    parser.add_argument("--configfile", nargs="+", default=["config.yaml", "config/real-80.yaml"], help="its config files")
    parser.add_argument("--threads", type=int, default=2, help="TensorFlow threads (the predict rule's)")
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--limit", type=int, default=0, help="validation photos used (0: all)")
    args = parser.parse_args()

    header("predict paths: old and new settings on a trained model, same run")
    if not (args.run / "results" / "split" / "val.parquet").is_file():
        print(f"skipped: no finished run at {args.run} (run config/real-80.yaml there, or pass --run)")
        return
    runtime.configure(args.threads)
    config, val = finished_run(args.run, args.configfile)
    model, block = default_model(config)
    arch = Architecture.from_config(block)
    model_path = args.run / "results" / "models" / model / "model.keras"
    trained = json.loads((model_path.parent / "training.json").read_text())["input_size"]
    if trained != list(arch.size):
        raise SystemExit(f"{model_path} was trained at {trained}, but {args.configfile} say "
                         f"{arch.input_height}x{arch.input_width}: pass the config files that run used")
    if args.limit:
        val = val.iloc[: args.limit]
    truth = {img: load_mask(path) for img, path in zip(val["img"], val["mask_path"])}
    print(f"model {model_path} ({arch.input_height}x{arch.input_width}); {len(val)} validation photos of "
          f"{val['car'].nunique()} cars; TF threads {args.threads}; CPU bf16 units: {settings.cpu_has_bf16()}")
    wait_for_idle()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        write_parquet(val, tmp / "items.parquet")
        base_masks = None
        base_rate = None
        for label, precision, batch, tta, fold in SETTINGS:
            rate, other, resolved, masks = one_setting(model_path, arch, val, precision, batch, tta, fold, tmp, args.repeat)
            base_masks = base_masks or masks
            base_rate = base_rate or rate
            scores = [dice(masks[img], truth[img]) for img in val["img"]]
            changed = sum(int((masks[img] != base_masks[img]).sum()) for img in val["img"]) / len(val)
            rows.append((label, resolved, rate, rate / base_rate, float(np.mean(scores)), changed, other))
    print(f"{'setting':<32} {'policy':<15} {'images/s':>9} {'x baseline':>11} {'val Dice':>9} {'px changed/img':>15} {'other load':>11}")
    for label, resolved, rate, ratio, score, changed, other in rows:
        print(f"{label:<32} {resolved:<15} {rate:>9.1f} {ratio:>10.2f}x {score:>9.5f} {changed:>15.0f} {other:>10.0%}")


if __name__ == "__main__":
    main()
