"""The conda environment files pin what pyproject.toml pins, and every rule uses one."""

import re
import tomllib
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]


def pyproject_deps(extra: str = "cpu") -> dict[str, str]:
    """pyproject's dependencies plus one extra's (the conda env is the CPU build)."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    deps = project["dependencies"] + project["optional-dependencies"][extra]
    return dict(re.match(r"([A-Za-z0-9_.\-\[\]]+)(.*)", d).groups() for d in deps)


def env_pip_deps(path: Path) -> dict[str, str]:
    env = yaml.safe_load(path.read_text())
    pip = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict) and "pip" in d)
    return dict(re.match(r"([A-Za-z0-9_.\-\[\]]+)(.*)", d).groups() for d in pip)


def test_env_files_are_valid_and_match_pyproject():
    envs = sorted((ROOT / "envs").glob("*.yaml"))
    assert envs
    want = pyproject_deps()
    for path in envs:
        env = yaml.safe_load(path.read_text())
        assert env["channels"] and "dependencies" in env, path
        assert any(str(d).startswith("python=") for d in env["dependencies"]), path
        assert env_pip_deps(path) == want, f"{path.name} pins differ from pyproject.toml"


def test_every_rule_has_conda_log_and_resources():
    for smk in (ROOT / "workflow" / "rules").glob("*.smk"):
        text = smk.read_text()
        for block in re.split(r"^(?=(?:rule|checkpoint) )", text, flags=re.M)[1:]:
            name = block.split(":")[0]
            for directive in ("output:", "log:", "threads:", "resources:", "conda:"):
                assert directive in block, f"{smk.name}: {name} has no {directive}"
            # Only sources have nothing to read: the demo generator, and the
            # photo listing (its folder is tracked by a digest parameter).
            assert "input:" in block or name in ("rule demo_data", "rule list_photos"), f"{smk.name}: {name} has no input:"
            env = re.search(r'conda:\s*\n\s*"([^"]+)"', block).group(1)
            assert (smk.parent / env).resolve().is_file(), f"{name}: {env} does not exist"


def test_the_gpu_extra_is_the_cpu_build_s_tensorflow_with_cuda():
    # `make run TF=gpu` swaps one TensorFlow for the other: same version range.
    cpu, gpu = pyproject_deps("cpu"), pyproject_deps("gpu")
    assert cpu.pop("tensorflow-cpu") == gpu.pop("tensorflow[and-cuda]")
    assert cpu == gpu
    makefile = (ROOT / "Makefile").read_text()
    assert "echo cpu" in makefile and ".[test,$(TF)]" in makefile  # cpu unless a venv chose gpu
