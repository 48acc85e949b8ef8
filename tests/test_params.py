from pathlib import Path

import pytest

from introdetect.params import Params, ParamsError, load_params, params_from_dict

ROOT = Path(__file__).resolve().parents[1]


def test_repo_params_load_and_match_defaults():
    p = load_params(ROOT / "params.yaml")
    assert p.features.fps == 2.0 and p.features.window_s == 600.0
    assert p.train.batch_size == 4 and p.model.hidden == 128


def test_empty_gives_defaults():
    assert params_from_dict({}) == Params()


@pytest.mark.parametrize(
    "raw, needle",
    [
        ({"train": {"lrr": 0.1}}, "train.lrr"),
        ({"trian": {}}, "trian"),
        ({"features": {"fps": "fast"}}, "features.fps"),
        ({"features": {"fps": 0}}, "0 < fps"),
        ({"features": {"fps": -2}}, "features.fps"),
        ({"predict": {"threshold": 1.5}}, "predict.threshold"),
        ({"train": {"epochs": 2.5}}, "train.epochs"),
        ({"train": {"augment": "yes"}}, "train.augment"),
        ({"data": {"label_policy": "fix"}}, "repair|swap|drop"),
        ({"features": {"window_s": 10.0}}, "shorter than the longest intro"),
        ({"predict": {"min_len_s": 40.0}}, "min_len_s"),
        ({"model": {"evidence_groups": ["known", "music"]}}, "model.evidence_groups"),
        ({"model": {"evidence_groups": []}}, "model.evidence_groups"),
    ],
)
def test_bad_params_name_the_key(raw, needle):
    with pytest.raises(ParamsError, match=None) as e:
        params_from_dict(raw)
    assert needle in str(e.value)


def test_file_errors_name_the_file(tmp_path):
    bad = tmp_path / "p.yaml"
    bad.write_text("train: [1, 2\n")
    with pytest.raises(ParamsError, match="p.yaml"):
        load_params(bad)
    with pytest.raises(ParamsError, match="not found"):
        load_params(tmp_path / "missing.yaml")


def test_ints_accepted_for_floats():
    assert params_from_dict({"features": {"fps": 1}}).features.fps == 1.0


def test_evidence_group_names_are_the_evidence_modules():
    from introdetect.evidence import EVIDENCE_CHANNELS, EVIDENCE_GROUPS
    from introdetect.params import EVIDENCE_GROUP_NAMES

    assert tuple(EVIDENCE_GROUPS) == EVIDENCE_GROUP_NAMES
    assert sorted(n for g in EVIDENCE_GROUPS.values() for n in g) == sorted(EVIDENCE_CHANNELS)
