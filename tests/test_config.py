import json
from pathlib import Path

import numpy as np
import pytest
import yaml

from hzlib import config
from hzlib.config import Profile, load_profile


@pytest.mark.parametrize("name", ["smoke", "default", "gpu"])
def test_every_profile_loads_and_has_every_key(name):
    prof = load_profile(name)
    raw = yaml.safe_load(open(config.PROFILE_DIR / f"{name}.yml"))
    assert set(raw) == set(Profile().as_dict()), "a profile must set every key (papermill -f injects them all)"
    assert prof.profile == name


def test_unknown_key_is_named(tmp_path):
    p = tmp_path / "x.yml"
    p.write_text("profile: x\nimage_sise: 3\n")
    with pytest.raises(ValueError, match=r"image_sise"):
        load_profile(p)


def test_bad_value_names_the_file_and_parameter(tmp_path):
    p = tmp_path / "bad.yml"
    p.write_text("overlap: 1.5\n")
    with pytest.raises(ValueError, match=r"bad\.yml.*overlap=1\.5"):
        load_profile(p)


def test_missing_profile_lists_available():
    with pytest.raises(FileNotFoundError, match="smoke"):
        load_profile("nonexistent")


def test_from_namespace_round_trip():
    prof = load_profile("smoke")
    ns = prof.as_dict() | {"unrelated": 1}
    assert Profile.from_namespace(ns) == prof
    with pytest.raises(ValueError, match="seed"):
        Profile.from_namespace({k: v for k, v in ns.items() if k != "seed"})


def test_params_hash_is_order_independent_and_sensitive():
    a = {"x": 1, "y": [1, 2]}
    assert config.params_hash(a) == config.params_hash({"y": [1, 2], "x": 1})
    assert config.params_hash(a) != config.params_hash({"x": 2, "y": [1, 2]})


def test_seed_everything_repeats():
    import torch

    r1 = config.seed_everything(7).random(3), np.random.rand(), torch.rand(2)
    r2 = config.seed_everything(7).random(3), np.random.rand(), torch.rand(2)
    np.testing.assert_array_equal(r1[0], r2[0])
    assert r1[1] == r2[1]
    assert torch.equal(r1[2], r2[2])


def test_atomic_write_leaves_old_file_on_failure(tmp_path, monkeypatch):
    target = tmp_path / "a.json"
    config.atomic_write_json(target, {"v": 1})

    def boom(*a, **k):
        raise OSError("disk full")

    monkeypatch.setattr(config.os, "replace", boom)
    with pytest.raises(OSError):
        config.atomic_write_json(target, {"v": 2})
    assert json.loads(target.read_text()) == {"v": 1}
    assert [p.name for p in tmp_path.iterdir()] == ["a.json"]


def test_environment_records_versions():
    env = config.environment()
    assert env["packages"]["numpy"] == np.__version__
    assert env["cpu_count"] >= 1


def test_dataclass_defaults_are_the_default_profile():
    assert Profile() == load_profile("default")


def test_clip_keys_are_checked(tmp_path):
    p = tmp_path / "clip.yml"
    p.write_text("clip_geometry: huge\n")
    with pytest.raises(ValueError, match=r"clip\.yml.*clip_geometry='huge' is not one of .*tiny"):
        load_profile(p)
    p.write_text("clip_batch: 1\n")
    with pytest.raises(ValueError, match=r"clip_batch=1"):
        load_profile(p)
    p.write_text("clip_input: hsv\n")
    with pytest.raises(ValueError, match=r"clip_input='hsv' must be one of \('luma', 'rgb', 'channels', 'grey'\)"):
        load_profile(p)
    p.write_text("clip_shift: -1\n")
    with pytest.raises(ValueError, match=r"clip_shift=-1"):
        load_profile(p)


def test_map_files_keeps_the_order_of_the_jobs_in_processes():
    jobs = list(range(50))
    assert config.map_files(abs, [-j for j in jobs], workers=2) == jobs
    assert config.map_files(abs, [-3, 2], workers=1) == [3, 2]
    assert config.map_files(abs, [], workers=2) == []


def test_project_root_is_found_from_the_notebooks_folder(tmp_path):
    (tmp_path / "notebooks").mkdir()
    (tmp_path / "_toc.yml").write_text("root: intro\n")
    assert config.project_root(tmp_path / "notebooks") == tmp_path.resolve()
    assert config.project_root(tmp_path) == tmp_path.resolve()
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (tmp_path / "_toc.yml").unlink()  # no study above: the folder itself
    assert config.project_root(elsewhere) == elsewhere.resolve()


def test_profile_folders_resolve_against_the_project_root(tmp_path, monkeypatch):
    (tmp_path / "notebooks").mkdir()
    (tmp_path / "_toc.yml").write_text("root: intro\n")
    monkeypatch.chdir(tmp_path / "notebooks")  # where Jupyter starts a notebook's kernel
    prof = load_profile("smoke")
    assert prof.data_dir() == tmp_path.resolve() / "data" / "smoke"
    assert prof.artifacts_dir("clip") == tmp_path.resolve() / "artifacts" / "smoke" / "clip"
    assert prof.data_dir("base") == Path("base") / "data" / "smoke"
