"""End to end: every stage through real DVC on a tiny generated dataset, then the
experiment rules: a train param reruns train/predict/evaluate only; a features param
reruns featurize."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from conftest import TINY_PARAMS

ROOT = Path(__file__).resolve().parents[1]


def _run(cmd: list[str], cwd: Path) -> str:
    env = dict(os.environ)
    env["PATH"] = str(Path(sys.executable).parent) + os.pathsep + env["PATH"]
    env.update(
        GIT_AUTHOR_NAME="t",
        GIT_AUTHOR_EMAIL="t@t",
        GIT_COMMITTER_NAME="t",
        GIT_COMMITTER_EMAIL="t@t",
        DVC_NO_ANALYTICS="1",
    )
    res = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True)
    out = res.stdout + res.stderr
    assert res.returncode == 0, f"{' '.join(cmd)} failed:\n{out[-4000:]}"
    return out


@pytest.fixture(scope="module")
def project(tmp_path_factory) -> Path:
    proj = tmp_path_factory.mktemp("proj")
    for name in ("dvc.yaml", "stages", "src"):
        src = ROOT / name
        (shutil.copytree if src.is_dir() else shutil.copy)(src, proj / name)
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    for section, values in TINY_PARAMS.items():
        params[section].update(values)
    (proj / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    _run(["git", "init", "-q"], proj)
    _run([sys.executable, "-m", "dvc", "init", "-q"], proj)
    _run(["git", "add", "-A"], proj)
    _run(["git", "commit", "-qm", "init"], proj)
    _run([sys.executable, "-m", "dvc", "repro"], proj)
    return proj


def test_all_stages_write_their_outputs(project: Path):
    index = (project / "data/index/train.csv").read_text()
    assert "repaired" in index or "dropped" in index  # the broken demo rows were cleaned
    report = json.loads((project / "data/index/label_report.json").read_text())
    assert report["train"]["problems"] and report["test_unseen_series"]
    h5 = list((project / "data/features/train").glob("*.h5"))
    assert len(h5) == 9
    assert (project / "models/best.pt").stat().st_size > 0
    preds = json.loads((project / "predictions/test_predictions.json").read_text())
    assert len(preds) == 5
    for v in preds.values():
        assert v is None or (len(v) == 2 and 0 <= v[0] < v[1])
    metrics = json.loads((project / "metrics/eval.json").read_text())
    for group in ("overall", "seen", "unseen"):
        assert {
            "mean_iou",
            "iou_ge_0.5",
            "within_1s",
            "within_2s",
            "mae_start_s",
            "presence_acc",
        } <= set(metrics[group])
    assert metrics["seen"]["n"] == 3 and metrics["unseen"]["n"] == 2
    assert "baseline_median_interval" in metrics
    assert json.loads((project / "metrics/train.json").read_text())["epochs_run"] >= 1
    assert (project / "metrics/eval_episodes.csv").read_text().count("\n") == 6


def test_train_param_experiment_does_not_refeaturize(project: Path):
    out = _run([sys.executable, "-m", "dvc", "exp", "run", "-S", "train.lr=0.0003"], project)
    assert "Running stage 'train'" in out
    assert "Running stage 'featurize'" not in out and "Running stage 'prepare'" not in out
    assert "Running stage 'predict'" in out or "didn't change" in out


def test_features_param_change_reruns_featurize(project: Path):
    original = (project / "params.yaml").read_text()
    params = yaml.safe_load(original)
    params["features"]["fps"] = 1.0
    (project / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    status = _run([sys.executable, "-m", "dvc", "status", "featurize"], project)
    (project / "params.yaml").write_text(original)  # the later tests use the tiny config
    assert status.startswith("featurize") and "modified" in status and "features" in status


def test_detect_cli_on_new_episodes(project: Path, tmp_path: Path):
    """Train on the tiny set (fixture), detect on its test episodes (an unseen series among
    them), and read every export back with an independent reader."""
    import re

    import av

    exe = str(Path(sys.executable).parent / "introdetect")
    season = tmp_path / "season"
    shutil.copytree(project / "data/demo/test", season)
    args = [
        exe,
        "detect",
        str(season),
        "--model",
        str(project / "models/best.pt"),
        "--out",
        str(tmp_path / "out"),
        "--format",
        "json,edl,chapters,csv",
    ]
    out = _run(args, project)
    assert "results:" in out
    preds = json.loads((tmp_path / "out/predictions.json").read_text())
    conf = json.loads((tmp_path / "out/presence.json").read_text())
    assert len(preds) == 5 and set(conf) == set(preds)
    for eid, iv in preds.items():
        edl = season / f"{eid}.edl"
        assert edl.exists() == (iv is not None)
        if iv is not None:
            m = re.match(r"^(\d+\.\d+)\t(\d+\.\d+)\t3\t## introdetect$", edl.read_text().strip())
            assert m and (float(m[1]), float(m[2])) == tuple(iv)
        with av.open(str(tmp_path / f"out/chapters/{eid}.ffmeta"), format="ffmetadata") as c:
            titles = [ch["metadata"]["title"] for ch in c.chapters()]
        assert ("Opening" in titles) == (iv is not None)
    html = (tmp_path / "out/report.html").read_text()
    assert html.count("<img") == 5 and len(list((tmp_path / "out/timelines").glob("*.png"))) == 5
    again = _run(args + ["--no-report"], project)  # the feature cache is reused, same answers
    assert "5 reused" in again
    assert json.loads((tmp_path / "out/predictions.json").read_text()) == preds
    unsup = _run(
        [
            exe,
            "detect",
            str(season),
            "--unsupervised",
            "--no-report",
            "--out",
            str(tmp_path / "unsup"),
        ],
        project,
    )
    assert "results:" in unsup
    assert len(json.loads((tmp_path / "unsup/predictions.json").read_text())) == 5


def _detect(project: Path, out: Path, *extra: str) -> dict:
    exe = str(Path(sys.executable).parent / "introdetect")
    args = [exe, "detect", "data/demo/test", "--model", "models/best.pt", "--out", str(out)]
    _run(args + ["--no-report", *extra], project)
    return json.loads((out / "predictions.json").read_text())


def _with_params(project: Path, change: dict[str, dict]) -> str:
    """Write ``change`` into the project's params.yaml and repro; returns what dvc said."""
    params = yaml.safe_load((project / "params.yaml").read_text())
    for section, values in change.items():
        params[section].update(values)
    (project / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    return _run([sys.executable, "-m", "dvc", "repro"], project)


def _preds(project: Path, name: str = "test_predictions") -> dict:
    return json.loads((project / f"predictions/{name}.json").read_text())


def test_detect_gives_exactly_the_predict_stage_answers(project: Path, tmp_path: Path):
    """One path: `introdetect detect` on the test folder (its own feature cache) and the
    predict stage give the same answers, and a predict.threshold change reaches both.

    With ``predict.repeat_bounds`` and ``predict.repetition_first`` (the defaults) the
    model's answers are combined with the model-free ones, which depend on the episodes
    compared: the stage compares whole seasons (training episodes too), detect the folder
    it is given. So the exact comparison runs with both off; with them on, each answer is
    the model-free one (its source says so) or lies inside the model's own answer."""
    combined, free = _preds(project), _preds(project, "test_predictions_unsupervised")
    sources = {eid: row["source"] for eid, row in _preds(project, "test_presence").items()}
    via_detect = _detect(project, tmp_path / "n")
    detect_sources = {
        eid: row["source"]
        for eid, row in json.loads((tmp_path / "n/presence.json").read_text()).items()
    }
    original = (project / "params.yaml").read_text()
    cache = ["--cache", str(tmp_path / "a/features")]
    try:
        out = _with_params(
            project, {"predict": {"repeat_bounds": False, "repetition_first": False}}
        )
        assert "Running stage 'predict'" in out and "Running stage 'train'" not in out
        stage = _preds(project)
        assert _detect(project, tmp_path / "a") == stage
        assert json.loads((tmp_path / "a/presence.json").read_text()) == _preds(
            project, "test_presence"
        )
        out = _with_params(project, {"predict": {"threshold": 0.97}})
        assert "Running stage 'predict'" in out and "Running stage 'train'" not in out
        stage_high, side_high = _preds(project), _preds(project, "test_presence")
        assert _detect(project, tmp_path / "b", *cache) == stage_high
        assert json.loads((tmp_path / "b/presence.json").read_text()) == side_high
        _with_params(
            project, {"predict": {"threshold": yaml.safe_load(original)["predict"]["threshold"]}}
        )
        # the same change given on the command line instead of in params.yaml
        cli = _detect(project, tmp_path / "c", *cache, "--threshold", "0.97")
        assert cli == stage_high
    finally:
        (project / "params.yaml").write_text(original)
        _run([sys.executable, "-m", "dvc", "repro"], project)
    assert _preds(project) == combined
    assert set(combined) == set(via_detect) == set(stage)

    def inside_the_model(eid: str, iv: list[float] | None) -> bool:
        if stage[eid] is None:
            return iv is None
        return iv is not None and stage[eid][0] <= iv[0] < iv[1] <= stage[eid][1]

    for eid, iv in combined.items():  # the repeat's answer where it has one
        doubted = " other episodes" in sources[eid]  # the model's "no intro" stood against it
        if free[eid] is not None and not doubted:
            assert iv == free[eid], eid
        else:
            assert inside_the_model(eid, iv), (eid, iv, sources[eid])
    for eid, iv in via_detect.items():
        if ", model " not in detect_sources[eid]:  # not the model-free answer: the model's
            assert inside_the_model(eid, iv), (eid, iv, stage[eid], detect_sources[eid])


def test_editing_a_stage_module_reruns_only_that_stage(project: Path):
    module = project / "src/introdetect/pipeline/evaluate.py"
    original = module.read_text()
    try:
        module.write_text(original + "\n# an edit\n")
        status = _run([sys.executable, "-m", "dvc", "status"], project)
    finally:
        module.write_text(original)
    changed = {line[:-1] for line in status.splitlines() if line and not line[0].isspace()}
    assert changed == {"evaluate"}, status


def test_repetition_switch_reuses_features(project: Path):
    out = _run([sys.executable, "-m", "dvc", "exp", "run", "-S", "model.repetition=true"], project)
    assert "Running stage 'train'" in out and "Running stage 'featurize'" not in out
    assert "Running stage 'repetition'" not in out
    preds = json.loads((project / "predictions/test_predictions.json").read_text())
    assert len(preds) == 5
    unsup = json.loads((project / "predictions/test_predictions_unsupervised.json").read_text())
    assert set(unsup) == set(preds)
