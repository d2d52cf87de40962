"""The workflow stays lint-clean and snakefmt-formatted, and plans every stage."""

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


def run(*cmd: str) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=300)


def test_snakemake_lint_is_clean():
    proc = run(str(BIN / "snakemake"), "--lint")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "Congratulations, your workflow is in a good condition!" in proc.stdout + proc.stderr


def test_snakefmt_check():
    proc = run(str(BIN / "snakefmt"), "--check", "Snakefile", "workflow/rules")
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_dry_run_plans_every_stage_and_all_four_models():
    proc = run(
        str(BIN / "snakemake"), "-n", "results/submission.csv",
        "--config", "models_to_run=[mobilenetv2_pix2pix,mobilenetv2_pix2pix_tuned,vgg19_pix2pix,unet]", "submission_model=best",
    )
    text = proc.stdout + proc.stderr
    assert proc.returncode == 0, text
    stats = dict(line.split() for line in text.split("Job stats:")[1].split("\n\n")[0].splitlines()[3:] if line.strip())
    assert stats["demo_data"] == stats["manifest"] == stats["split"] == "1"
    assert stats["train"] == "4" and stats["evaluate"] == "4"
    assert stats["choose_model"] == "1"  # 'best' waits for the validation Dice of all four
    # 4 models x 1 validation shard; test shards are planned once the checkpoint has chosen
    assert stats["predict"] == "4" and stats["encode"] == "4"
