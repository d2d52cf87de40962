"""What a predict job spends before its batches run at speed, phase by phase, in a fresh process.

Every predict job is a fresh Python process (a Snakemake job): it imports
TensorFlow, loads the trained model, rebuilds it where it predicts in
another precision than it trained in, folds its BatchNorms, then traces the
network on its first batch, and once more on its last, shorter batch. This
times each phase in a new process, as a job pays it, for the config's
submission model or ``--model`` (saved in its training precision, random
weights: time does not depend on them), with ``--configfile`` layers on
config.yaml (``config/real-80.yaml studies/real-80-test-set.yaml`` for its
192x288 U-Net as the whole-test-set run predicts), one thread, and the
config's ``inference`` precision, batch size and TTA. Baseline in the same
run: a fresh process importing what an encode job imports (no TensorFlow).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

from _common import ROOT, add_model_argument, default_model, header, load_config, quiet_tensorflow, wait_for_idle

quiet_tensorflow()

from carmask.network.spec import Architecture, Prediction  # noqa: E402
from carmask.planning import settings  # noqa: E402

PREDICT_JOB = """
import json, sys, time
start = time.perf_counter()
marks = {}
def mark(phase):
    marks[phase] = time.perf_counter() - start
import tensorflow, numpy as np
from carmask.network import runtime
from carmask.network.inference import load_for_inference, predict_views, view_averager
from carmask.network.spec import TTA_SCALE, Architecture, Prediction
mark("import TensorFlow and the package")
runtime.configure(1)
args = json.loads(sys.argv[1])
arch = Architecture.from_config(args["block"])
how = Prediction(batch_size=args["batch"], tta=args["tta"], precision=args["precision"])
infer = view_averager(load_for_inference(args["model"], arch, how), arch.size, how)
mark("load the model (rebuilt where the precision differs), fold")
sizes = [arch.size] + ([arch.scaled(TTA_SCALE).size] if how.views[1] else [])
photos = [np.zeros((how.batch_size, *size, arch.channels), np.uint8) for size in sizes]
predict_views(infer, photos, arch.output_activation)
mark("first batch (tracing)")
predict_views(infer, photos, arch.output_activation)
mark("a batch at speed")
predict_views(infer, [p[: args["last"]] for p in photos], arch.output_activation)
mark("a shorter last batch (tracing again)")
print(json.dumps(marks))
"""

ENCODE_JOB = """
import json, time
start = time.perf_counter()
from carmask.stages.encode import encode_job
print(json.dumps({"import the encode stage": time.perf_counter() - start}))
"""


def fresh_process(code: str, *args: str) -> dict[str, float]:
    """The phase marks (seconds from the child's first line) printed by ``code`` run in a new interpreter."""
    out = subprocess.run([sys.executable, "-c", code, *args], cwd=ROOT, capture_output=True, text=True)
    if out.returncode:
        raise SystemExit(f"the fresh process failed:\n{out.stderr}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    from carmask.network.architectures import build_model

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_model_argument(parser)
    parser.add_argument("--configfile", nargs="*", default=[], help="config layers on config.yaml (from the repository root)")
    parser.add_argument("--repeat", type=int, default=3, help="fresh processes of each kind; the median is shown")
    args = parser.parse_args()
    cfg = load_config(args.configfile)
    name, block = default_model(cfg, args.model)
    block = dict(block, encoder_weights="none")
    arch = Architecture.from_config(block)
    inference = cfg["inference"]
    precision = settings.resolve_precision(inference["precision"])
    batch = settings.resolve_batch_size(inference["batch_size"], precision, arch.size)
    how = Prediction(batch_size=batch, tta=inference["tta"], precision=precision)
    last = max(1, batch // 2)
    header("a predict job's start-up, in fresh processes (one thread)")
    print(f"model: {name} at {arch.size[0]}x{arch.size[1]}x{arch.channels}, trained in {arch.precision}; "
          f"predicts in {precision}, batch {batch}, tta {how.tta}")
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "model.keras"
        build_model(arch).save(path)
        job = json.dumps({"block": block, "batch": batch, "tta": how.tta, "precision": precision, "last": last, "model": str(path)})
        wait_for_idle()
        runs = [fresh_process(PREDICT_JOB, job) for _ in range(args.repeat)]
        base = sorted(fresh_process(ENCODE_JOB)["import the encode stage"] for _ in range(args.repeat))[args.repeat // 2]
    previous = 0.0
    for phase in runs[0]:
        at = sorted(r[phase] for r in runs)[args.repeat // 2]
        print(f"{phase:60s} {at - previous:6.2f} s  (at {at:5.2f} s)")
        previous = at
    photos = 2 * batch + last
    steady = sorted(r["a batch at speed"] - r["first batch (tracing)"] for r in runs)[args.repeat // 2]
    overhead = previous - steady * photos / batch
    print(f"start-up beyond the {photos} photos' time at speed: {overhead:.2f} s "
          f"(a batch at speed: {steady:.2f} s)")
    print(f"baseline: an encode job's imports, {base:.2f} s; start-up / baseline: {overhead / base:.1f}x")


if __name__ == "__main__":
    main()
