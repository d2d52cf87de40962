"""Ensemble, tuned threshold and test-time augmentation on real photos: full-size Dice against prediction cost.

Takes a finished real-photo run with one or more trained models (``--run``:
the workflow directory, ``--configfile``: the config files it ran with, e.g.
``config.yaml config/real-80.yaml config/real-80-ensemble.yaml``) and its
validation photos. For every model and every ``inference.tta`` mode it
predicts those photos through ``carmask.network.inference`` (one after another in this
process, same threads, the config's precision and batch size) and times it;
then it scores at full size against the true GIF masks, every model and, with
two or more, the ensemble of them (the config's ``ensemble`` weights, or equal), with:

- Dice at threshold 0.5;
- Dice at the threshold ``inference.threshold: auto`` picks (the best of the
  grid on all validation cars: in-sample, so a little flattering);
- Dice with the threshold picked on one half of the cars and scored on the
  other (2-fold by car): what tuning is worth on cars it has not seen.

Images/s count decode, model(s) and the parquet write after a warm-up batch;
an ensemble's is its models' time per photo summed. The machine's other load
is printed beside each.
"""

from __future__ import annotations

import argparse
import json
import tempfile
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from _common import OtherLoad, finished_run, header, quiet_tensorflow, wait_for_idle

quiet_tensorflow()

from carmask.masks.images import load_mask  # noqa: E402
from carmask.masks.probability_maps import read_members  # noqa: E402
from carmask.masks.upsample import mean_probabilities  # noqa: E402
from carmask.network import inference, runtime  # noqa: E402
from carmask.network.spec import TTA_MODES, Architecture, Prediction  # noqa: E402
from carmask.planning.settings import normalise_weights, resolve_batch_size, resolve_precision  # noqa: E402
from carmask.stages.threshold_search import GRID, choose, dice_counts, dice_curve  # noqa: E402


def curves(pred_paths: Sequence[Path], weights: Sequence[float], val: pd.DataFrame) -> np.ndarray:
    """Per validation photo (rows, in ``val`` order), Dice at every threshold of the grid."""
    rows = val.set_index("img")
    out = {}
    for img, maps in read_members([str(p) for p in pred_paths]):
        row = rows.loc[img]
        values = mean_probabilities(maps, weights, (int(row["height"]), int(row["width"])))
        out[img] = dice_curve(*dice_counts(values, load_mask(row["mask_path"]), GRID))
    return np.stack([out[img] for img in val["img"]])


def scores(dice: np.ndarray, cars: np.ndarray) -> dict:
    """Dice at 0.5, tuned in-sample, tuned 2-fold by car; the tuned threshold; the worst car at 0.5."""
    mean = dice.mean(axis=0)
    half = GRID.index(0.5)
    tuned = choose(GRID, mean.tolist())
    names = sorted(set(cars))
    fold = np.array([names.index(c) % 2 for c in cars])
    crossed = np.empty(len(cars))
    for f in (0, 1):
        chosen = choose(GRID, dice[fold != f].mean(axis=0).tolist())
        crossed[fold == f] = dice[fold == f, GRID.index(chosen)]
    per_car = pd.Series(dice[:, half]).groupby(cars).mean()
    return {"dice_05": float(mean[half]), "threshold": tuned, "dice_tuned": float(mean[GRID.index(tuned)]),
            "dice_2fold": float(crossed.mean()), "worst_car_05": float(per_car.min())}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", type=Path, required=True,
                        help="a finished workflow directory (with two or more models, the ensemble is scored too)")
    parser.add_argument("--configfile", nargs="+", required=True, help="its config files, in --configfile order")
    parser.add_argument("--tta", nargs="+", default=list(TTA_MODES), choices=list(TTA_MODES))
    parser.add_argument("--threads", type=int, default=2, help="TensorFlow threads")
    parser.add_argument("--limit", type=int, default=0, help="validation photos used (0: all)")
    parser.add_argument("--json", type=Path, help="also write the table here")
    args = parser.parse_args()

    header("ensemble, tuned threshold and TTA on real photos")
    config, val = finished_run(args.run, args.configfile)
    models = config["models_to_run"]
    members = config["ensemble"]["models"] or models
    weights = normalise_weights(config["ensemble"]["weights"] if config["ensemble"]["models"] else None, len(members))
    if args.limit:
        val = val.iloc[: args.limit]
    runtime.configure(args.threads)
    precision = resolve_precision(config["inference"]["precision"])
    batch = min(  # one batch size for every model: the largest input's
        resolve_batch_size(config["inference"]["batch_size"], precision, Architecture.from_config(config["models"][m]).size)
        for m in models
    )
    cars = val["car"].to_numpy()
    print(f"run {args.run}: models {models}; ensemble {dict(zip(members, weights))}; {len(val)} validation photos of "
          f"{len(set(cars))} cars; {precision}, batch {batch}, TF threads {args.threads}")
    wait_for_idle()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        files: dict[tuple[str, str], Path] = {}
        rates: dict[tuple[str, str], tuple[float, float]] = {}
        for tta in args.tta:
            how = Prediction(batch_size=batch, tta=tta, precision=precision)
            for model in models:
                arch = Architecture.from_config(config["models"][model])
                path = args.run / "results" / "models" / model / "model.keras"
                files[model, tta] = Path(tmp) / f"{model}-{tta}.parquet"
                loaded = inference.load_for_inference(str(path), arch, how)
                with OtherLoad() as load:
                    rate = inference.write_probabilities(loaded, val, files[model, tta], arch, how)
                rates[model, tta] = (rate, load.share)
                print(f"  predicted {model}, tta {tta}: {rate:.1f} images/s", flush=True)
        for tta in args.tta:
            entries = [(m, [m], [1.0]) for m in models] + ([("ensemble", members, weights)] if len(models) > 1 else [])
            for name, used, w in entries:
                result = scores(curves([files[m, tta] for m in used], w, val), cars)
                result["images_per_s"] = 1.0 / sum(1.0 / rates[m, tta][0] for m in used)
                result["other_load"] = max(rates[m, tta][1] for m in used)
                rows.append({"entry": name, "tta": tta, **result})
                print(f"  scored {name}, tta {tta}", flush=True)
    print(f"{'entry':<28} {'tta':<11} {'images/s':>9} {'Dice@0.5':>9} {'worst car':>10} {'tuned t':>8} "
          f"{'Dice tuned':>11} {'2-fold':>8} {'other load':>11}")
    for r in rows:
        print(f"{r['entry']:<28} {r['tta']:<11} {r['images_per_s']:>9.1f} {r['dice_05']:>9.5f} {r['worst_car_05']:>10.5f} "
              f"{r['threshold']:>8.2f} {r['dice_tuned']:>11.5f} {r['dice_2fold']:>8.5f} {r['other_load']:>10.0%}")
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
