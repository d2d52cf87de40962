"""Learning curve on the 80 real cars: validation Dice against training cars, same budget.

Is the recipe short of data or of compute? Each point trains the default
model of ``config/real-80.yaml`` on the first N of its training cars
(``split.train_cars``: smaller sets nest in larger ones, and all points
validate on the same cars) for the same number of optimisation steps:
``epochs`` and ``patience`` are scaled by (all training cars) / N, so 13 cars
see each photo five times as often as 68 cars do, in the same time. With
``inference.refine: learned`` the refiner's ``epochs`` are scaled the same
way, so it also sees the same number of crops at every point. Each
point is a real ``snakemake`` run of the whole workflow in its own directory
under ``--out`` (rerunning the script reuses finished points), scored at full
size by the evaluate rule. Prints a table (Dice, per-car minimum, resolution
ceiling, epochs run, training minutes) and draws it with ``--figure``.

    python studies/learning_curve.py --cars 13 34 68 --figure docs/images/learning-curve.png

``--full-run DIR`` takes a finished run of ``config/real-80.yaml`` (all
training cars, as documented) as the point for all cars instead of training
it again.

Needs ../shared/data/carvana-80 (skips with the reason without it); about
30 minutes of training per point on a 2-core CPU.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

import yaml

from _common import ROOT, copy_workflow, header, job_benchmarks

from carmask.stages.split import car_score  # noqa: E402

DATA = ROOT.parent / "shared" / "data" / "carvana-80"


def base_config() -> dict:
    from snakemake.utils import update_config

    config = yaml.safe_load((ROOT / "config.yaml").read_text())
    update_config(config, yaml.safe_load((ROOT / "config" / "real-80.yaml").read_text()))
    return config


def training_cars(config: dict) -> int:
    """How many cars the full split trains on (those not validating)."""
    cars = {p.name[:12] for p in (DATA / "train").glob("*.jpg")}
    split = config["split"]
    return sum(car_score(car, int(split["seed"])) >= float(split["val_fraction"]) for car in cars)


def point_overlay(config: dict, n_cars: int, all_cars: int) -> dict:
    """The config layer of one point: N cars, epochs and patience scaled to the same steps.

    The learned refiner trains on crops of the training photos, so its epochs
    are scaled too: fewer cars, more passes, the same crops in all.
    """
    model = config["submission_model"]
    block = config["models"][model]
    scale = all_cars / n_cars
    overlay = {
        "data_dir": str(DATA),
        "split": {"train_cars": n_cars},
        "models": {model: {"epochs": round(int(block["epochs"]) * scale), "patience": round(int(block["patience"]) * scale)}},
    }
    if config["inference"]["refine"] == "learned":
        overlay["refiner"] = {"epochs": round(int(config["refiner"]["epochs"]) * scale)}
    return overlay


def run_point(out: Path, overlay: dict, cores: int) -> Path:
    """The whole workflow in ``out`` with the overlay; returns ``out``."""
    copy_workflow(out)
    (out / "point.yaml").write_text(yaml.safe_dump(overlay))
    snakemake = str(Path(sys.executable).with_name("snakemake"))
    cmd = [snakemake, "--cores", str(cores), "--configfile", "config.yaml", "config/real-80.yaml", "point.yaml"]
    with open(out / "snakemake.out", "w") as log:
        subprocess.run(cmd, cwd=out, stdout=log, stderr=subprocess.STDOUT, check=True)
    return out


def point_result(out: Path, model: str) -> dict:
    metrics = json.loads((out / "results" / "metrics" / f"{model}.json").read_text())
    training = json.loads((out / "results" / "models" / model / "training.json").read_text())
    jobs = job_benchmarks(out)  # the train and train_refiner jobs' wall time, data loading and cropping included
    train_seconds = sum(job["s"] for rule in ("train", "train_refiner") for job in jobs.get(rule, []))
    return {
        "dice": metrics["dice_mean"],
        "worst_car": min(metrics["dice_per_car"].values()),
        "ceiling": metrics["resolution_ceiling"],
        "epochs": training["epochs_run"],
        "train_min": train_seconds / 60,
    }


def draw(results: dict[int, dict], path: Path) -> None:
    import matplotlib
    import matplotlib.ticker

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    cars = sorted(results)
    fig, ax = plt.subplots(figsize=(6, 4))
    ax.plot(cars, [results[n]["dice"] for n in cars], "o-", label="validation Dice (mean)")
    ax.plot(cars, [results[n]["worst_car"] for n in cars], "s--", label="worst validation car")
    ax.plot(cars, [results[n]["ceiling"] for n in cars], ":", color="grey", label="resolution ceiling")
    ax.set_xscale("log")
    ax.set_xticks(cars, [str(n) for n in cars])
    ax.xaxis.set_minor_locator(matplotlib.ticker.NullLocator())
    ax.set_xlabel("training cars (same number of training steps)")
    ax.set_ylabel("Dice at full size")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=90)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cars", type=int, nargs="+", default=[13, 34, 68], help="training cars per point")
    parser.add_argument("--out", type=Path, default=ROOT / "results" / "learning-curve", help="one workflow directory per point")
    parser.add_argument("--cores", type=int, default=2)
    parser.add_argument("--figure", type=Path, help="draw the curve into this PNG")
    parser.add_argument("--full-run", type=Path, help="a finished run of config/real-80.yaml: the point for all cars")
    args = parser.parse_args()

    header("learning curve on the 80 real cars")
    if not (DATA / "train_masks").is_dir():
        print(f"skipped: {DATA} not found (the 80 real cars of ../shared)")
        return
    config = base_config()
    model = config["submission_model"]
    all_cars = training_cars(config)
    print(f"model {model}; {all_cars} training cars in the full split; budget: "
          f"{config['models'][model]['epochs']} epochs of {all_cars} cars")
    results = {}
    if args.full_run:
        if all_cars in args.cars:
            raise SystemExit(f"--full-run is the {all_cars}-car point; leave {all_cars} out of --cars")
        results[all_cars] = point_result(args.full_run, model)
    for n in sorted(args.cars):
        overlay = point_overlay(config, n, all_cars)
        refiner = f", refiner {overlay['refiner']['epochs']} epochs" if "refiner" in overlay else ""
        print(f"{n} cars: {overlay['models'][model]['epochs']} epochs, patience {overlay['models'][model]['patience']}{refiner} ...", flush=True)
        results[n] = point_result(run_point(args.out / f"cars-{n}", overlay, args.cores), model)
    print(f"{'cars':>5} {'val Dice':>9} {'worst car':>10} {'ceiling':>8} {'epochs':>7} {'train min':>10}")
    for n, r in sorted(results.items()):
        print(f"{n:>5} {r['dice']:>9.4f} {r['worst_car']:>10.4f} {r['ceiling']:>8.4f} {r['epochs']:>7} {r['train_min']:>10.1f}")
    if args.figure:
        draw(results, args.figure)
        print(f"figure: {args.figure}")


if __name__ == "__main__":
    main()
