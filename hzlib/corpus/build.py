"""Build a profile's corpus: plan every sample from the seed, render it (in parallel, resumable),
describe it, write the manifest, the orbits for Structure-from-Motion, provenance and the card.

Layout (see data/README.md): images/, masks/, orbits/<name>/{images/, cameras.json, mesh.ply},
rows/ (one JSON per finished sample: the resume checkpoint), manifest.csv, corpus.json, card.md.

Every sample draws from its own generator ``default_rng([seed, index, stream])``, so a sample does not
depend on the order, the number of workers, or on an interrupted earlier run. :func:`plan_sample` is
the sampling plan of one sample; :func:`render_character_set` reuses it for chapter 7's set of one
character in every class, outside the corpus.
"""
from __future__ import annotations

import json
import os
import shutil
from multiprocessing import get_context
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image
from tqdm.auto import tqdm

from .. import assets
from ..config import Profile, atomic_write_json, environment, map_files, params_hash
from . import classes as C, describe as D, glyphs as G, mesh as M, render as R
from .manifest import write_manifest
from .provenance import GENERATED, IMPORTED, CorpusError, check_imported, read_meta

STREAM_FACTORS, STREAM_GEOMETRY, STREAM_LOOK, STREAM_TEXT = 0, 1, 2, 3
ORBIT_MATERIALS = ("granite", "bronze", "marble", "sandstone", "wood", "jade")
FALLBACK_STYLES = ("strokes", "kai", "song", "hei")
CORPUS_FORMAT = 4  # bump when the layout or the generator changes, so older corpora are not taken as current


def corpus_params(profile: Profile) -> dict:
    """The parameters that determine the corpus (its fingerprint ignores chapter-only keys)."""
    keys = ("seed", "corpus_scale", "image_size", "overlap", "cue_prob", "orbit_forms", "orbit_views",
            "orbit_width", "orbit_height")
    return {k: profile.as_dict()[k] for k in keys} | {"format": CORPUS_FORMAT}


def sample_rng(seed: int, index: int, stream: int) -> np.random.Generator:
    return np.random.default_rng([seed, index, stream])


def plan_sample(profile: Profile, spec: C.ClassSpec, index: int, hanzi_dir: Path, *, sample_id: str | None = None,
                char: str | None = None, style: str | None = None) -> dict:
    """The row of sample ``index`` of class ``spec``, as the corpus plans it: the class's factors drawn
    from ``default_rng([seed, index, STREAM_FACTORS])`` (:func:`~hzlib.corpus.classes.sample_factors`
    with the profile's overlap), then a glyph style that draws the drawn character in its named form. Given ``char`` and
    ``style`` (both), those replace the drawn ones instead (:func:`render_character_set`). Keys: id
    (``sample_id``, default ``hz{index:05d}``), index, label, region, period, movement, the factors, seed."""
    if (char is None) != (style is None):
        raise ValueError("char and style: give both or neither")
    rng = sample_rng(profile.seed, index, STREAM_FACTORS)
    f = C.sample_factors(spec, profile.overlap, rng)
    if char is None:
        f["style"] = _covering_style(f["style"], f["char"], spec, profile.overlap, rng, hanzi_dir)
    else:
        f.update(char=char, style=style)
    return ({"id": sample_id or f"hz{index:05d}", "index": index, "label": spec.key, "region": spec.region,
             "period": spec.period, "movement": spec.movement} | f | {"seed": profile.seed})


def plan(profile: Profile, hanzi_dir: Path) -> list[dict]:
    """One row per sample (:func:`plan_sample`): id, label and every factor, drawn deterministically from the seed."""
    rows, index = [], 0
    for spec, n in zip(C.CLASSES, C.class_counts(profile.corpus_scale).values()):
        for _ in range(n):
            rows.append(plan_sample(profile, spec, index, hanzi_dir))
            index += 1
    return rows


def _covering_style(style, char, spec, overlap, rng, hanzi_dir) -> str:
    """Fonts do not all cover every character (Japanese fonts lack simplified forms), and some draw
    another form of it (:func:`~hzlib.corpus.glyphs.shows_named_form`: UKai draws 真 as 眞): redraw
    the style from the class distribution, then fall back to a style that shows the named form."""
    dist = C.factor_distribution(spec, "style", overlap)
    for _ in range(20):
        if G.shows_named_form(style, char, hanzi_dir):
            return style
        style = str(rng.choice(list(dist), p=list(dist.values())))
    for s in FALLBACK_STYLES:
        if G.shows_named_form(s, char, hanzi_dir):
            return s
    raise ValueError(f"no glyph style draws the character {char!r} in its named form")


def make_look(row: dict, rng: np.random.Generator) -> R.Look:
    return R.Look(
        material=row["material"], tint=tuple(float(t) for t in rng.uniform(0.92, 1.08, 3)),
        weathering=row["weathering"], glyph_paint=None if row["glyph_paint"] == "none" else row["glyph_paint"],
        setting=row["setting"], azimuth=float(rng.uniform(-75, 75)), elevation=row["sun_elevation"],
        sun_intensity=float(rng.uniform(0.8, 1.2)), warmth=row["warmth"], ambient=float(rng.uniform(0.25, 0.45)),
        fog=row["fog"], exposure=float(rng.uniform(0.9, 1.1)), noise_sigma=float(rng.uniform(0.005, 0.02)),
        seed=int(rng.integers(2**31)),
    )


def frame_camera(sculpture, azimuth: float, elevation: float, width: int, height: int,
                 rng: np.random.Generator, fov_deg: float | None = None):
    """A camera looking at the sculpture's centre from (azimuth, elevation), at a distance that frames it."""
    lo, hi = sculpture.bounds
    centre = (lo + hi) / 2
    radius = float(np.linalg.norm(hi - lo)) / 2
    fov = fov_deg if fov_deg is not None else float(rng.uniform(35, 50))
    dist = radius / np.tan(np.radians(fov) / 2) * float(rng.uniform(1.0, 1.25))
    eye = centre + dist * R.direction_from_angles(azimuth, elevation)  # azimuth 0 = in front (-y)
    eye[2] = max(eye[2], 0.1)
    return R.look_at_camera(eye, centre, fov_deg=fov, width=width, height=height), {"fov": fov, "distance": dist}


def sculpture_for(row: dict, hanzi_dir: Path):
    """Rebuild a sample's mesh exactly (meshes are regenerated on demand, not stored per image)."""
    glyph = G.load_glyph(row["char"], row["style"], hanzi_dir)
    rng = sample_rng(int(row["seed"]), int(row["index"]), STREAM_GEOMETRY)
    return M.build_sculpture(glyph, row["form"], rng)


def render_sample(row: dict, out: Path, size: int, hanzi_dir: Path) -> dict:
    """Render one sample, write its image and masks atomically, then its row (the checkpoint)."""
    sculpture, geometry = sculpture_for(row, hanzi_dir)
    rng = sample_rng(int(row["seed"]), int(row["index"]), STREAM_LOOK)
    look = make_look(row, rng)
    cam, cam_info = frame_camera(sculpture, row["camera_azimuth"], row["camera_elevation"], size, size, rng)
    res = R.Renderer(sculpture, threads=1).render(cam, look)
    sid = row["id"]
    _save_png(res.image, out / "images" / f"{sid}.png")
    _save_png((res.glyph_mask * 255).astype(np.uint8), out / "masks" / f"{sid}_glyph.png")
    extra = {"image": f"images/{sid}.png", "glyph_mask": f"masks/{sid}_glyph.png", "stroke_mask": "",
             "n_strokes": len(sculpture.glyph.strokes) if sculpture.glyph.has_strokes else 0,
             "stroke_types": "".join(sculpture.glyph.stroke_types or []),
             "glyph_fraction": float(res.glyph_mask.mean()), "object_fraction": float(res.object_mask.mean()),
             "camera_fov": cam_info["fov"], "camera_distance": cam_info["distance"],
             "camera": json.dumps({"K": cam.K.tolist(), "world_to_cam": cam.world_to_cam.tolist()}),
             "look": json.dumps(look.to_dict(), ensure_ascii=False), "geometry": json.dumps(geometry, default=float)}
    if sculpture.glyph.has_strokes:
        _save_png(np.clip(res.stroke_mask, 0, None).astype(np.uint16), out / "masks" / f"{sid}_strokes.png")
        extra["stroke_mask"] = f"masks/{sid}_strokes.png"
    record = row | extra
    atomic_write_json(out / "rows" / f"{sid}.json", record)
    return record


def _render_task(args):
    row, out, size, hanzi_dir = args
    return render_sample(row, Path(out), size, Path(hanzi_dir))


def _save_png(array: np.ndarray, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    Image.fromarray(array).save(tmp, format="PNG")
    os.replace(tmp, path)


def describe_rows(rows: list[dict], profile: Profile) -> None:
    """Three descriptions per sample (the paper's registers); one of them is the paired ``text``."""
    for row in rows:
        spec = C.BY_KEY[row["label"]]
        rng = sample_rng(profile.seed, row["index"], STREAM_TEXT)
        factors = {k: row[k] for k in ("material", "form", "style", "setting", "glyph_paint")}
        for reg in D.REGISTERS:
            row[f"text_{reg}"] = D.describe(row["char"], factors, list(spec.cues), reg, rng, cue_prob=profile.cue_prob)
        row["register"] = str(rng.choice(D.REGISTERS))
        row["text"] = row[f"text_{row['register']}"]


def render_orbit(profile: Profile, k: int, form: str, out: Path, hanzi_dir: Path) -> dict:
    """One multi-view sequence with true cameras and mesh for the SfM chapter: 真 in the
    stroke-outline style, a textured material (SfM needs texture), two rings of views."""
    name = f"orbit_{k:02d}_{form}"
    folder = Path(out) / "orbits" / name
    if (folder / "cameras.json").exists():
        return json.loads((folder / "cameras.json").read_text())["info"]
    rng = sample_rng(profile.seed, 100_000 + k, STREAM_GEOMETRY)
    glyph = G.load_glyph("真", "strokes", hanzi_dir)
    sculpture, geometry = M.build_sculpture(glyph, form, rng)
    material = ORBIT_MATERIALS[k % len(ORBIT_MATERIALS)]
    look = R.Look(material=material, setting="courtyard", weathering=0.3, seed=int(rng.integers(2**31)),
                  noise_sigma=0.004)
    renderer = R.Renderer(sculpture, threads=1)
    cameras = R.orbit_cameras(sculpture, profile.orbit_views, elevations=(12.0, 32.0), width=profile.orbit_width,
                              height=profile.orbit_height, fov_deg=45.0)
    cams = []
    for i, cam in enumerate(cameras):
        _save_png(renderer.render(cam, look).image, folder / "images" / f"{i:03d}.png")
        cams.append({"image": f"images/{i:03d}.png", "K": cam.K.tolist(), "world_to_cam": cam.world_to_cam.tolist(),
                     "width": cam.width, "height": cam.height})
    M.save_mesh(sculpture, folder / "mesh.ply")
    info = {"name": name, "form": form, "material": material, "char": "真", "style": "strokes",
            "views": len(cams), "width": profile.orbit_width, "height": profile.orbit_height, "geometry": geometry}
    atomic_write_json(folder / "cameras.json", {"info": info, "cameras": cams})
    return info


def _orbit_task(args):
    profile, k, form, out, hanzi_dir = args
    return render_orbit(profile, k, form, Path(out), Path(hanzi_dir))


def _is_built(meta: dict | None, fingerprint: str, out: Path) -> bool:
    """A finished generated corpus of this fingerprint: its corpus.json says so and its manifest is there."""
    return meta is not None and meta.get("fingerprint") == fingerprint and (out / "manifest.csv").exists()


def corpus_ready(profile: Profile, out: Path) -> bool:
    """Whether ``out`` holds a corpus that :func:`build_corpus` would read as it is (without ``force``):
    an imported one, or the profile's generated one, finished. Reading it needs none of the
    renderer's assets."""
    out = Path(out)
    meta = read_meta(out)
    return meta is not None and (meta["source"] == IMPORTED
                                 or _is_built(meta, params_hash(corpus_params(profile)), out))


def build_corpus(profile: Profile, out: Path, *, force: bool = False, hanzi_dir: Path | None = None,
                 progress: bool = True) -> Path:
    """Build (or resume, or load) the corpus of ``profile`` into ``out``; returns ``out``.

    Writes only into a corpus it generated (its ``corpus.json`` says ``"source": "generated"``, or a
    build it started, ``build.json``) or into an empty or new folder. It never writes into an
    imported corpus nor into a folder the profile's ``corpus`` key names: those are checked
    (:func:`use_existing`) and returned as they are, whatever ``force`` says. Any other folder with
    files in it is refused with :class:`CorpusError`.
    """
    out = Path(out)
    meta = read_meta(out)
    if profile.corpus or (meta is not None and meta["source"] == IMPORTED):
        return use_existing(profile, out, meta)
    if meta is None and out.is_dir() and any(out.iterdir()) and not (out / "build.json").is_file():
        raise CorpusError(
            f"{out} holds files that hz did not write (no corpus.json, no build.json), so no corpus is built into "
            f"it: import them with `hz corpus import MANIFEST IMAGES OUT` and name OUT in the profile's `corpus` "
            f"key, or move them away")
    params = corpus_params(profile)
    fingerprint = params_hash(params)
    meta_path = out / "corpus.json"
    if not force and _is_built(meta, fingerprint, out):
        return out  # complete: reading it needs none of the renderer's assets
    hanzi_dir = Path(hanzi_dir) if hanzi_dir else assets.asset_dir("hanzi-writer-data")
    if force and out.exists():
        shutil.rmtree(out)
    rows_dir = out / "rows"
    if rows_dir.exists():  # a started build: only resume it if it was started with the same parameters
        build_json = out / "build.json"
        started = json.loads(build_json.read_text()).get("fingerprint") if build_json.exists() else None
        if started != fingerprint:
            state = "a corpus" if meta_path.exists() else "a partial corpus"
            raise CorpusError(
                f"{out} holds {state} built with other parameters (fingerprint {started}, this profile's "
                f"{fingerprint}); rebuild it with `hz corpus build --profile {profile.profile} --force` "
                f"(or the parameter force=True), or delete the folder"
            )
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_json(out / "build.json", {"fingerprint": fingerprint, "params": params})

    rows = plan(profile, hanzi_dir)
    done = {p.stem: json.loads(p.read_text()) for p in rows_dir.glob("*.json")} if rows_dir.exists() else {}
    todo = [r for r in rows if r["id"] not in done]
    tasks = [(r, str(out), profile.image_size, str(hanzi_dir)) for r in todo]
    orbit_jobs = [(profile, k, form, str(out), str(hanzi_dir)) for k, form in enumerate(profile.orbit_forms)]
    bar = tqdm(total=len(rows), initial=len(rows) - len(todo), desc="rendering corpus", unit="img",
               disable=not progress)
    if profile.workers > 1 and len(tasks) + len(orbit_jobs) > 8:
        with get_context("spawn").Pool(profile.workers) as pool:
            pending = [pool.apply_async(_orbit_task, (job,)) for job in orbit_jobs]  # long jobs first
            for rec in pool.imap_unordered(_render_task, tasks, chunksize=4):
                done[rec["id"]] = rec
                bar.update()
            bar.set_description("rendering orbits")
            orbits = [p.get() for p in pending]
    else:
        for t in tasks:
            rec = _render_task(t)
            done[rec["id"]] = rec
            bar.update()
        orbits = [_orbit_task(job) for job in orbit_jobs]
    bar.close()
    records = [done[r["id"]] for r in rows]
    describe_rows(records, profile)
    df = pd.DataFrame(records)  # keeps index and seed: with them a row rebuilds its mesh (sculpture_for)
    write_manifest(df, out / "manifest.csv")
    atomic_write_json(meta_path, {"source": GENERATED, "fingerprint": fingerprint, "params": params,
                                  "profile": profile.profile, "n_images": len(df), "orbits": orbits,
                                  "classes": C.class_counts(profile.corpus_scale),
                                  "assets": {a.spec: a.integrity for a in assets.ASSETS.values()},
                                  "environment": environment()})
    return out


def use_existing(profile: Profile, root: Path, meta: dict | None = None) -> Path:
    """``root`` checked and returned, never written: an imported corpus whose files match its
    ``corpus.json`` (:func:`~hzlib.corpus.provenance.check_imported`), or a generated one made with
    this profile's corpus parameters. Raises :class:`CorpusError` saying what to do otherwise."""
    root = Path(root)
    meta = read_meta(root) if meta is None else meta
    if meta is None:
        state = "does not exist" if not root.exists() else "has no corpus.json"
        raise CorpusError(
            f"the corpus {root} that the profile {profile.profile!r} names (corpus: {profile.corpus!r}) {state}: "
            f"import one there with `hz corpus import MANIFEST IMAGES {root}`, or set `corpus: \"\"` to generate "
            f"the profile's corpus into {profile.data_root}/{profile.profile}")
    if meta["source"] == IMPORTED:
        check_imported(root, meta)
        return root
    fingerprint = params_hash(corpus_params(profile))
    if meta.get("fingerprint") != fingerprint or not (root / "manifest.csv").is_file():
        raise CorpusError(
            f"the corpus {root} that the profile {profile.profile!r} names was generated with other parameters "
            f"(fingerprint {meta.get('fingerprint')}, this profile's {fingerprint}) or is incomplete; a corpus "
            f"the profile names is never rebuilt: point `corpus` at the corpus you mean, or set it to \"\" to "
            f"generate into {profile.data_root}/{profile.profile}")
    return root


# ------------------------------------------------------------ a rendered set of one character


CHARACTER_SET_OFFSET = 900_000  # sample indices of extra renders, far beyond any corpus's rows


def render_character_set(profile: Profile, char: str, out, per_class: int = 1, style: str = "strokes",
                         hanzi_dir=None, workers: int = 1) -> pd.DataFrame:
    """Render ``per_class`` sculptures of ``char`` for each of the 10 classes, none of them in the
    corpus (so no model has trained on them), and return their rows (paths relative to ``out``): the
    set of chapter 7's stroke analysis.

    Each sample is planned exactly as the corpus plans one (:func:`plan_sample`, its class's factors
    from ``default_rng([seed, index, 0])`` with the profile's overlap), with the character and the
    glyph style set to ``char`` and ``style``, and rendered at the profile's ``image_size`` by
    :func:`render_sample` (image, glyph mask, stroke-id mask). Indices start at
    :data:`CHARACTER_SET_OFFSET`, so geometry, look and camera draws are new. A finished sample (its
    ``rows/<id>.json``) is loaded, not re-rendered, unless the parameters changed."""
    out = Path(out)
    hanzi_dir = Path(hanzi_dir) if hanzi_dir else assets.asset_dir("hanzi-writer-data")
    if not G.covers(style, char, hanzi_dir):
        raise ValueError(f"style {style!r} has no glyph for {char!r}")
    if per_class < 1:
        raise ValueError(f"per_class: must be >= 1, got {per_class}")
    params = {"char": char, "style": style, "per_class": per_class, "seed": profile.seed,
              "overlap": profile.overlap, "image_size": profile.image_size, "format": CORPUS_FORMAT}
    meta = out / "set.json"
    if meta.is_file() and json.loads(meta.read_text(encoding="utf-8")).get("params") != params:
        shutil.rmtree(out)
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_json(meta, {"params": params})
    rows = []
    for c, spec in enumerate(C.CLASSES):
        for j in range(per_class):
            index = CHARACTER_SET_OFFSET + c * per_class + j
            rows.append(plan_sample(profile, spec, index, hanzi_dir, char=char, style=style,
                                    sample_id=f"u{ord(char):04x}_{index - CHARACTER_SET_OFFSET:03d}"))
    done = {p.stem: json.loads(p.read_text(encoding="utf-8")) for p in (out / "rows").glob("*.json")}
    tasks = [(r, str(out), profile.image_size, str(hanzi_dir)) for r in rows if r["id"] not in done]
    recs = map_files(_render_task, tasks, workers=workers, chunksize=1, start="spawn")
    done.update({r["id"]: r for r in recs})
    return pd.DataFrame([done[r["id"]] for r in rows])
