import dataclasses
import json
from pathlib import Path

import nbformat
import numpy as np
import pytest
import torch
import yaml

from hzlib import config
from hzlib.config import Profile, ProfileError, load_profile
from hzlib.corpus.build import corpus_params


@pytest.mark.parametrize("name", ["smoke", "default", "gpu"])
def test_every_profile_loads_and_has_every_key(name):
    prof = load_profile(name, check_device=False)  # gpu asks for CUDA: its device is checked below
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


def test_map_files_keeps_the_order_of_the_jobs_in_processes():
    jobs = list(range(50))
    assert config.map_files(abs, [-j for j in jobs], workers=2) == jobs
    assert config.map_files(abs, [-3, 2], workers=1) == [3, 2]
    assert config.map_files(abs, [], workers=2) == []


def test_map_files_in_spawned_processes_one_job_at_a_time_keeps_the_order():
    jobs = list(range(5))
    assert config.map_files(abs, [-j for j in jobs], workers=2, chunksize=1, start="spawn") == jobs


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


WRONG_TYPES = [
    ("clip_batch: '64'", r"clip_batch='64' must be an integer, not str"),
    ("clip_lr: 2e-3", r"clip_lr='2e-3' must be a number, not str"),  # YAML 1.1 reads 2e-3 as a string
    ("corpus_scale: .nan", r"corpus_scale=nan must be a finite number"),
    ("force: 'yes'", r"force='yes' must be true or false"),
    ("orbit_forms: relief", r"orbit_forms='relief' must be a list of strings"),
    ("seed: 1.5", r"seed=1\.5 must be an integer"),
    ("corpus: 3", r"corpus=3 must be a string"),
]
OUT_OF_RANGE = [
    ("corpus_scale: -1", r"corpus_scale=-1\.0 must be positive"),
    ("clip_batch: 0", r"clip_batch=0 out of range: must be at least 2"),
    ("eval_folds: 1", r"eval_folds=1 out of range: must be at least 2"),
    ("workers: 0", r"workers=0 out of range: must be at least 1"),
    ("seed: -3", r"seed=-3 must be >= 0"),
    ("clip_lr: 0.0", r"clip_lr=0\.0 out of range: must be positive"),
    ("profile: ../x", r"profile='\.\./x' must be a folder name"),
    ("device: tpu", r"device='tpu' must be auto, cpu or cuda"),
]
CLIP_KEYS = [
    ("clip_geometry: huge", r"clip_geometry='huge' is not one of .*tiny"),
    ("clip_batch: 1", r"clip_batch=1"),
    ("clip_input: hsv", r"clip_input='hsv' must be one of \('luma', 'rgb', 'channels', 'grey'\)"),
    ("clip_negatives: hard", r"clip_negatives='hard' must be batch or other_class"),
    ("clip_shift: -1", r"clip_shift=-1"),
]


@pytest.mark.parametrize("line, message", WRONG_TYPES + OUT_OF_RANGE + CLIP_KEYS)
def test_a_wrong_type_or_an_out_of_range_value_names_the_file_and_key(tmp_path, line, message):
    p = tmp_path / "typed.yml"
    p.write_text(line + "\n")
    with pytest.raises(ProfileError, match=r"typed\.yml: " + message):
        load_profile(p)


def test_cuda_without_a_cuda_device_stops(tmp_path, monkeypatch):
    p = tmp_path / "cuda.yml"
    p.write_text("device: cuda\n")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(ProfileError, match=r"cuda\.yml: device='cuda' but this machine has no CUDA device"):
        load_profile(p)
    with pytest.raises(ProfileError, match="device='cuda'"):
        Profile.from_namespace(Profile().as_dict() | {"device": "cuda"})
    assert load_profile(p, check_device=False).device == "cuda"
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert load_profile("gpu").device == "cuda"
    assert load_profile(p.parent / "cuda.yml").device == "cuda"


def test_every_construction_is_checked():
    prof = load_profile("smoke")
    with pytest.raises(ProfileError, match="clip_batch=0"):
        dataclasses.replace(prof, clip_batch=0)
    with pytest.raises(ProfileError, match="image_size='96'"):
        Profile(image_size="96")


def test_an_int_where_a_float_is_due_is_the_same_profile_and_corpus():
    one = Profile.from_dict({"corpus_scale": 1, "overlap": 0})
    assert one.corpus_scale == 1.0 and isinstance(one.corpus_scale, float) and isinstance(one.overlap, float)
    assert config.params_hash(corpus_params(one)) == config.params_hash(corpus_params(Profile(overlap=0.0)))
    assert Profile.from_dict({"orbit_forms": ["relief"]}).orbit_forms == ("relief",)


def test_papermill_parameters_are_checked():
    """papermill only warns about a parameter the notebook lacks; its injected cell (first line
    ``# Parameters``, kept in IPython's ``In``) is read so that the key is refused by name."""
    ns = Profile().as_dict()
    own = "# Parameters (papermill injects a profile's values after this cell)\nscratch = 1\n"
    injected = '# Parameters\nprofile = "smoke"\nclip_bach = 3\n'
    assert Profile.from_namespace(ns | {"In": ["", own], "scratch": 1}) == Profile()
    with pytest.raises(ProfileError, match=r"unknown parameter\(s\) \['clip_bach'\] given to papermill"):
        Profile.from_namespace(ns | {"In": ["", own, injected], "clip_bach": 3})
    with pytest.raises(ProfileError, match="corpus_scale=-1"):
        Profile.from_namespace(ns | {"corpus_scale": -1})


def test_the_corpus_key_names_the_corpus_folder(tmp_path):
    assert Profile(profile="p").data_dir(tmp_path) == tmp_path / "data" / "p"
    assert Profile(corpus="data/mine").data_dir(tmp_path) == tmp_path / "data" / "mine"
    assert Profile(corpus=str(tmp_path / "abs")).data_dir("elsewhere") == tmp_path / "abs"


def _parameters_notebook(path: Path) -> Path:
    """A notebook shaped like a chapter: imports, the default parameters, the profile."""
    params = "\n".join(f"{k} = {v!r}" for k, v in Profile().as_dict().items())
    cells = [nbformat.v4.new_code_cell("from hzlib.config import Profile"),
             nbformat.v4.new_code_cell("# Parameters\n" + params, metadata={"tags": ["parameters"]}),
             nbformat.v4.new_code_cell("prof = Profile.from_namespace(globals())\nprint('ran', prof.profile)")]
    nb = nbformat.v4.new_notebook(cells=cells)
    nb.metadata["kernelspec"] = {"display_name": "Python (hzlib)", "language": "python", "name": "hzlib"}
    nbformat.write(nb, path)
    return path


@pytest.mark.slow
@pytest.mark.parametrize("params, message", [
    ({"clip_batch": 0}, "clip_batch=0 out of range"),
    ({"corpus_scale": -1}, "corpus_scale=-1.0 must be positive"),
    ({"clip_bach": 64}, "unknown parameter(s) ['clip_bach'] given to papermill"),
    ({"image_size": "big"}, "image_size='big' must be an integer"),
])
def test_papermill_stops_at_the_profile_cell_naming_the_key(tmp_path, params, message):
    import papermill as pm

    nb = _parameters_notebook(tmp_path / "chapter.ipynb")
    with pytest.raises(pm.PapermillExecutionError) as err:
        pm.execute_notebook(str(nb), str(tmp_path / "out.ipynb"), parameters=params, kernel_name="hzlib",
                            progress_bar=False, cwd=str(tmp_path))
    assert err.value.ename == "ProfileError" and message in err.value.evalue
    assert err.value.exec_count == 4  # imports, parameters, injected parameters, then the profile cell
