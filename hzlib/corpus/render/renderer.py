"""The renderer: one `Sculpture` seen by one `Camera` under one `Look`, ray cast on the CPU.

`Renderer` builds an open3d `RaycastingScene` (Embree) once per sculpture: the sculpture's triangles
and a large ground quad (z = 0); walls are analytic (`scene.wall_hits`). `Renderer.render` is a
chain of named steps:

1. `_cast_primary`: one ray per pixel through its centre (`PrimaryRays`: what each ray hits first).
2. `_gather`: the hits on the sculpture (`_gather_object`: interpolated normals, glyph lookup,
   ambient occlusion, material, bump, glyph paint), the ground (`_gather_ground`) and the wall
   (`_gather_wall`), each kind into one typed `shading.SurfaceHits`.
3. `_shade`, per `SurfaceHits`, in linear RGB: the sun with ray-cast hard shadows
   (`_sun_visibility`), the terms of `shading` (wrapped Lambert, hemisphere ambient times the
   ambient occlusion, fill light, translucency, normalised Blinn-Phong with Schlick Fresnel),
   ray-traced mirror reflections for glossy surfaces (`_add_reflections`, with cheap `_secondary`
   shading: metals, glazes, jade, the museum's polished floor), then haze and fog.
4. `_composite`: the background where nothing was hit, a neon glyph's bloom, `film.finish`; and
   `_rendered` adds the masks and depth (`Rendered`).

Ambient occlusion (`_ao`, `_ao_pixels`) uses a fixed, position-seeded set of directions, the same
at a point in every view; by default it is traced for one checkerboard colour of the pixels and for
pixels at edges or where the occlusion changes quickly, the other pixels taking the mean of their
neighbours. Occlusion rays are first tested up to the occlusion radius and only the blocked ones
cast.

Masks (`Rendered`): the glyph mask is exact per ray: the hit point lies in `sculpture.glyph_box`
and the glyph raster is nonzero at its (u, v) (dilated by 2 texels on faces that do not face
+-y, so the glyph's side walls count).

Same inputs and seed give bitwise identical pixels.
"""
from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np

from ..types import Camera, Sculpture
from .cameras import _camera_rays_t, _sculpture_frame
from .film import _bloom, finish
from .geometry import _NB4, _ao_dirs, _corner_normals, _dilate_ids, _dilated_at, _frame
from .look import Look
from .materials import _neon_light, paint_glyph, surface_at
from .maths import F32, _dot, _mix, _normalize
from .noise import _fade, _fbm, _noise_at
from .scene import _SETTINGS, Setting, _background, _ground, _wall_albedo, wall_coords, wall_hits
from .shading import Lights, SurfaceHits, ambient_reflection, attenuate, diffuse, reflectance, specular, translucency


@dataclass
class Rendered:
    """One rendered view: the image, its masks and depth."""

    image: np.ndarray  # (H, W, 3) uint8, sRGB
    glyph_mask: np.ndarray  # (H, W) bool: the ray hits the glyph solid
    stroke_mask: np.ndarray  # (H, W) int16: stroke id (>= 1), -1 glyph with unknown stroke, 0 none
    object_mask: np.ndarray  # (H, W) bool: the ray hits the sculpture
    depth: np.ndarray  # (H, W) float32, metres along the ray; inf where nothing (ground incl.) is hit


@dataclass
class PrimaryRays:
    """The camera's rays, one per pixel (flat indices, row-major), and what each hits first."""

    width: int
    height: int
    o: np.ndarray  # (3,) float32 camera centre
    d: np.ndarray  # (3, N) unit directions
    fpx: np.float32  # pixel footprint at unit distance (1 / focal length in pixels)
    t: np.ndarray  # (N,) distance to the first triangle (sculpture or ground); inf: none
    prim: np.ndarray  # (N,) the triangle hit
    uvs: np.ndarray  # (N, 2) barycentric coordinates in it
    ngeo: np.ndarray  # (N, 3) its normal
    obj: np.ndarray  # (N,) bool: the ray hits the sculpture first
    gnd: np.ndarray  # ... the ground
    wall: np.ndarray  # ... the wall
    bg: np.ndarray  # ... nothing
    t_wall: np.ndarray | None  # (N,) distance to the wall (where `wall`)
    wall_radius: float

    def along(self, idx: np.ndarray, t: np.ndarray):
        """(t (n,), directions (3, n), points (3, n)) of rays `idx` at distances t[idx]."""
        tt = t.take(idx)
        dd = self.d.take(idx, axis=1)
        p = dd * tt
        p += self.o[:, None]
        return tt, dd, p


class Renderer:
    """Renders one sculpture from many cameras; builds the Embree scene once.

    `threads`: Embree threads for ray casting (0 = all cores; use 1 in a process pool).
    `ao_samples`: ambient-occlusion rays per visible point near the sculpture (0 = off); the
    directions are a function of the 3D point, so occlusion agrees between views.
    `ao_checkerboard`: trace the occlusion rays for half of the pixels only (a checkerboard) and
    fill in the others from their neighbours on the same surface (about half the cost).
    """

    AO_FILL_SPREAD = 0.1  # checkerboard AO: neighbours differing more than this → trace the pixel

    def __init__(self, sculpture: Sculpture, *, threads: int = 0, ao_samples: int = 6,
                 ao_checkerboard: bool = True):
        import open3d as o3d  # here, not at the top: slow to import, and only rendering needs it

        self._o3d = o3d
        self.sculpture = sculpture
        self.threads = int(threads)
        self.ao_samples = int(ao_samples)
        self.ao_checkerboard = bool(ao_checkerboard)
        self.timings: dict | None = None  # set to {} to collect per-section times
        self._t_last = 0.0
        V = np.ascontiguousarray(sculpture.vertices, dtype=F32)
        Fc = np.ascontiguousarray(sculpture.triangles, dtype=np.uint32)
        self.centre, self.radius = _sculpture_frame(sculpture)
        lo, hi = sculpture.bounds
        self.lo, self.hi = np.asarray(lo, F32), np.asarray(hi, F32)
        self.size = float(np.max(hi - lo))
        scene = o3d.t.geometry.RaycastingScene(nthreads=self.threads) if _scene_takes_threads(o3d) \
            else o3d.t.geometry.RaycastingScene()
        self.obj_id = scene.add_triangles(o3d.core.Tensor(V), o3d.core.Tensor(Fc))
        L = float(max(200.0, 50.0 * self.radius))
        gv = np.array([[-L, -L, 0], [L, -L, 0], [L, L, 0], [-L, L, 0]], F32)
        gf = np.array([[0, 1, 2], [0, 2, 3]], np.uint32)
        self.ground_id = scene.add_triangles(o3d.core.Tensor(gv), o3d.core.Tensor(gf))
        self.scene = scene
        # per-corner shading normals, component-major: (corner, xyz, triangle)
        self.cnormals_t = np.ascontiguousarray(_corner_normals(V, sculpture.triangles).transpose(1, 2, 0))
        # glyph lookup
        self.gbox = np.asarray(sculpture.glyph_box, dtype=np.float64)
        ras = np.asarray(sculpture.glyph_raster)
        if ras.ndim != 2 or ras.size == 0:
            ras = np.zeros((1, 1), np.int16)
        self.raster = ras.astype(np.int16)
        self._raster_dil = None  # the raster dilated by 2 texels (looked up per texel when rendering)
        ext = self.gbox[1::2] - self.gbox[0::2]
        self.geps = float(1e-3 * np.linalg.norm(ext) + 1e-5)

    @property
    def cnormals(self) -> np.ndarray:
        """Per (triangle, corner) shading normals (M, 3, 3)."""
        return self.cnormals_t.transpose(2, 0, 1)

    @property
    def raster_dil(self) -> np.ndarray:
        if self._raster_dil is None:
            self._raster_dil = _dilate_ids(self.raster, 2)
        return self._raster_dil

    def _tick(self, name):
        """Section timer: with `self.timings` a dict, accumulates seconds per section name."""
        if self.timings is None:
            return
        now = time.perf_counter()
        if name is not None:
            self.timings[name] = self.timings.get(name, 0.0) + now - self._t_last
        self._t_last = now

    # -- ray casting helpers -----------------------------------------------------------------
    @staticmethod
    def _rays(o: np.ndarray, d: np.ndarray) -> np.ndarray:
        """(N, 6) float32 rays from origins o (3,) or (3, N) and directions d (3, N)."""
        rays = np.empty((d.shape[1], 6), F32)
        rays[:, :3] = o.T if np.ndim(o) == 2 else o
        rays[:, 3:] = d.T
        return rays

    def _cast_rays(self, rays: np.ndarray):
        return self.scene.cast_rays(self._o3d.core.Tensor.from_numpy(rays), nthreads=self.threads)

    def _cast(self, o: np.ndarray, d: np.ndarray):
        return self._cast_rays(self._rays(o, d))

    def _occluded(self, o: np.ndarray, d: np.ndarray) -> np.ndarray:
        rays = self._rays(o, d)
        occ = self.scene.test_occlusions(self._o3d.core.Tensor.from_numpy(rays), nthreads=self.threads)
        return occ.numpy().astype(bool)

    def _wall_hits(self, st: Setting, o: np.ndarray, d: np.ndarray, tmax: np.ndarray):
        """`scene.wall_hits` around this sculpture."""
        return wall_hits(st, self.centre, self.radius, o, d, tmax)

    # -- per point: material, glyph, ambient occlusion ---------------------------------------
    def albedo(self, points, normals, look: Look, *, footprint=None, cavity=None) -> np.ndarray:
        """Diffuse albedo (N, 3), linear RGB, of the sculpture's material at world points.

        A function of the 3D point (and normal, cavity) only: the same in every view. `footprint`
        (metres per pixel, (N,)) fades unresolvable detail as in `render`; `cavity` (N,) is the
        ambient-occlusion openness (1 = open, the default).
        """
        p = np.ascontiguousarray(np.asarray(points, dtype=F32).reshape(-1, 3).T)
        n = _normalize(np.ascontiguousarray(np.asarray(normals, dtype=F32).reshape(-1, 3).T))
        cav = np.ones(p.shape[1], F32) if cavity is None else np.asarray(cavity, F32)
        foot = None if footprint is None else np.asarray(footprint, F32)
        return np.ascontiguousarray(surface_at(look, p, n, foot, cav)[0].kd.T)

    def _glyph_lookup(self, p: np.ndarray, ng: np.ndarray) -> np.ndarray:
        """Stroke value (N,) int16 of the glyph raster at hit points p (3, N) (0 = not the glyph)."""
        x0, x1, y0, y1, z0, z1 = self.gbox
        e = self.geps
        px, py, pz = p
        inside = ((px >= x0 - e) & (px <= x1 + e) & (py >= y0 - e) & (py <= y1 + e)
                  & (pz >= z0 - e) & (pz <= z1 + e))
        out = np.zeros(p.shape[1], np.int16)
        ii = np.flatnonzero(inside)
        if len(ii) == 0:
            return out
        Rr = self.raster.shape[0]
        Rc = self.raster.shape[1]
        u = (px[ii].astype(np.float64) - x0) / max(x1 - x0, 1e-12)
        v = (pz[ii].astype(np.float64) - z0) / max(z1 - z0, 1e-12)
        col = np.clip(np.floor(u * Rc), 0, Rc - 1).astype(np.int64)
        row = np.clip(np.floor((1.0 - v) * Rr), 0, Rr - 1).astype(np.int64)
        val = self.raster[row, col]
        side = np.flatnonzero(np.abs(ng[1, ii]) < 0.5)  # faces not facing +-y: the dilated raster
        if len(side):
            val[side] = _dilated_at(self.raster, row[side], col[side], 2)
        out[ii] = val
        return out

    def _ao(self, p, ng, ns=None):
        """Ambient occlusion (N,) in [0, 1] (1 = open) at points p (3, N) with geometric normals ng
        (3, N), with a position-seeded direction set."""
        k = self.ao_samples
        N = p.shape[1]
        if k <= 0 or N == 0:
            return np.ones(N, F32)
        r_ao = F32(np.clip(0.12 * self.size, 0.03, 0.5))
        t1, t2 = _frame(ng)
        ang = _noise_at(p, 1.0 / 0.004, ch=0)
        ang *= F32(4.0)
        ca, sa = np.cos(ang), np.sin(ang)
        B = np.empty((3, 3, N), F32)  # the tangent frame rotated by the position's angle, and ng
        np.multiply(ca, t1, out=B[0])
        B[0] += sa * t2
        np.multiply(ca, t2, out=B[1])
        B[1] -= sa * t1
        B[2] = ng
        o = p + ng * F32(1e-4 + 2e-5 * self.size)
        r0 = np.empty((N, 6), F32)
        r0[:, :3] = o.T
        rays = np.tile(r0, (k, 1)).reshape(k, N, 6)  # origins repeated (a strided broadcast is slow)
        Dj = np.empty((3, N), F32)
        for j, (a, b, c) in enumerate(_ao_dirs(k)):
            np.multiply(B[0], a, out=Dj)
            Dj += B[1] * b
            Dj += B[2] * c
            rays[j, :, 3:] = Dj.T
        rays = rays.reshape(-1, 6)
        # most rays meet nothing within r_ao (no occlusion): find the others with a cheap
        # occlusion test limited to r_ao, and cast only those for their distance
        near = np.flatnonzero(self.scene.test_occlusions(
            self._o3d.core.Tensor.from_numpy(rays), tfar=float(r_ao), nthreads=self.threads).numpy())
        occ = np.zeros(k * N, F32)
        if len(near):
            t = self._cast_rays(np.ascontiguousarray(rays.take(near, axis=0)))["t_hit"].numpy()
            o = np.minimum(t, r_ao)
            o *= F32(-1.0 / r_ao)
            o += F32(1.0)
            o *= o
            occ[near] = o
        return F32(1.0) - occ.reshape(k, N).sum(axis=0) * F32(1.0 / k)

    def _ao_pixels(self, pix, p, ng, foot, W, H):
        """Ambient occlusion (N,) at the surface points p (3, N) seen through pixels `pix` (N,
        increasing flat indices into the W x H image): with `ao_checkerboard`, only the pixels of
        one checkerboard colour are ray-traced, and a pixel of the other colour takes the mean of
        its traced 4-neighbours on the same surface (the same facet orientation and plane; a
        pixel without such a neighbour is traced too). Halves the rays at the cost of a slight
        blur of the occlusion."""
        N = len(pix)
        if not self.ao_checkerboard or self.ao_samples <= 0 or N < 16:
            return self._ao(p, ng)
        y = pix // W
        x = pix - y * W
        b = np.flatnonzero((x + y) & 1)  # the other colour: filled from neighbours when possible
        slot = np.full(W * H, -1, np.int32)  # pixel → its index in pix
        slot[pix] = np.arange(N, dtype=np.int32)
        # the 4-neighbours (4, len(b)) of those pixels, and whether each is on the same surface
        xx = x.take(b) + _NB4[0]
        yy = y.take(b) + _NB4[1]
        inside = (xx >= 0) & (xx < W) & (yy >= 0) & (yy < H)
        j = slot.take(np.where(inside, yy * W + xx, 0))
        ok = inside & (j >= 0)
        np.maximum(j, 0, out=j)
        jf = j.ravel()
        pb, nb = p.take(b, axis=1)[:, None], ng.take(b, axis=1)[:, None]
        dn = _dot(nb, ng.take(jf, axis=1).reshape(3, 4, -1))
        pj = p.take(jf, axis=1).reshape(3, 4, -1)
        pj -= pb
        dp = _dot(nb, pj)
        ok &= (dn > F32(0.9)) & (np.abs(dp) < F32(1e-4 * self.size))  # same facet orientation and plane
        cnt = ok.sum(axis=0)
        a = np.ones(N, bool)
        a[b] = False
        ai = np.flatnonzero(a)
        cav = np.empty(N, F32)
        cav[ai] = self._ao(p.take(ai, axis=1), ng.take(ai, axis=1))
        v = cav.take(j)
        acc = np.where(ok, v, F32(0)).sum(axis=0)
        lo = np.where(ok, v, F32(np.inf)).min(axis=0)
        hi = np.where(ok, v, F32(-np.inf)).max(axis=0)
        # traced as well: fewer than two neighbours on the same surface (an edge or corner), or
        # neighbours that disagree (the occlusion changes quickly there)
        redo = (cnt < 2) | (hi - lo > F32(self.AO_FILL_SPREAD))
        fill = np.flatnonzero(~redo)
        cav[b.take(fill)] = acc.take(fill) / cnt.take(fill).astype(F32)
        ri = b.take(np.flatnonzero(redo))
        if len(ri):
            cav[ri] = self._ao(p.take(ri, axis=1), ng.take(ri, axis=1))
        return cav

    # -- one view: cast, gather, shade, composite ----------------------------------------------
    def render(self, camera: Camera, look: Look, *, shadows: bool = True) -> Rendered:
        """One view of the sculpture: cast a ray per pixel; gather the hits on the sculpture, the
        ground and the wall, each kind into one `SurfaceHits` with its material; shade them; then
        composite the background, a neon glyph's glow and the film (tone curve, lens, sensor)."""
        st = _SETTINGS[look.setting]
        self._tick(None)
        rays = self._cast_primary(camera, st)
        lights = Lights.of(look, st)
        hits = self._gather(rays, st, look)
        hdr = np.empty((3, rays.width * rays.height), F32)
        for h in hits:
            hdr[:, h.idx] = self._shade(h, lights, st, look, shadows)
            self._tick("shade")
        image = self._composite(hdr, rays, hits, lights, st, look, camera)
        return self._rendered(image, rays, hits)

    def _cast_primary(self, camera: Camera, st: Setting) -> PrimaryRays:
        """The camera's rays and what each hits first: the sculpture, the ground, the wall or nothing."""
        o, d = _camera_rays_t(camera)  # d: (3, N)
        o32 = o.astype(F32)
        ans = self._cast(o32, d)
        t = ans["t_hit"].numpy()
        gid = ans["geometry_ids"].numpy()
        obj = gid == self.obj_id
        gnd = gid == self.ground_id
        wall, tw, Rw = self._wall_hits(st, o32, d, np.where(obj, F32(0), t))
        gnd &= ~wall
        rays = PrimaryRays(
            width=camera.width, height=camera.height, o=o32, d=d, fpx=F32(1.0 / float(camera.K[0, 0])), t=t,
            prim=ans["primitive_ids"].numpy(), uvs=ans["primitive_uvs"].numpy(),
            ngeo=ans["primitive_normals"].numpy(), obj=obj, gnd=gnd, wall=wall, bg=~(obj | gnd | wall),
            t_wall=tw, wall_radius=Rw)
        self._tick("cast")
        return rays

    def _gather(self, rays: PrimaryRays, st: Setting, look: Look) -> list[SurfaceHits]:
        """The hits on the sculpture, the ground and the wall (the kinds that were hit)."""
        hits = (self._gather_object(rays, look), self._gather_ground(rays, st, look), self._gather_wall(rays, st))
        return [h for h in hits if h is not None]

    def _gather_object(self, rays: PrimaryRays, look: Look) -> SurfaceHits | None:
        """The sculpture's hits: normals, glyph, ambient occlusion, material, bump and glyph paint."""
        idx = np.flatnonzero(rays.obj)
        if not len(idx):
            return None
        tt, dd, p = rays.along(idx, rays.t)
        ng = np.ascontiguousarray(rays.ngeo.take(idx, axis=0).T)
        sgn = np.where(_dot(ng, dd) > 0, F32(-1), F32(1))
        ng *= sgn
        ns = self._shading_normals(rays.prim.take(idx), rays.uvs.take(idx, axis=0), sgn)
        gv = self._glyph_lookup(p, ng)
        foot = tt * rays.fpx / np.maximum(np.abs(_dot(dd, ng)), F32(0.25))
        self._tick("object")
        cav = self._ao_pixels(idx, p, ng, foot, rays.width, rays.height)
        self._tick("ao")
        s, pt = surface_at(look, p, ns, foot, cav)
        ns = self._bump(ns, pt, s.bump, s.bump_scale, foot)
        gi = np.flatnonzero(gv)
        emit = None
        if look.glyph_paint is not None and len(gi) and paint_glyph(s, look, pt, foot, gi, self.size):
            emit = idx.take(gi)
        hits = SurfaceHits("object", idx, tt, dd, p, ng, ns, s.kd, s.f0, s.gloss, s.wrap, s.translucency, cav,
                           glyph=gv, emit=emit)
        self._tick("material")
        return hits

    def _shading_normals(self, prim: np.ndarray, uv: np.ndarray, sgn: np.ndarray) -> np.ndarray:
        """Shading normals (3, n) inside triangles `prim` at barycentric `uv` (n, 2), times `sgn`."""
        cn = self.cnormals_t.take(prim, axis=2)
        bu, bv = uv[:, 0], uv[:, 1]
        ns = cn[0] * (F32(1.0) - bu - bv)
        ns += cn[1] * bu
        ns += cn[2] * bv
        ns = _normalize(ns)
        ns *= sgn
        return ns

    def _gather_ground(self, rays: PrimaryRays, st: Setting, look: Look) -> SurfaceHits | None:
        """The ground's hits (z = 0): its texture, occlusion near the sculpture, bump."""
        idx = np.flatnonzero(rays.gnd)
        if not len(idx):
            return None
        tt, dd, p = rays.along(idx, rays.t)
        p[2] = 0.0
        ng = np.zeros((3, len(idx)), F32)
        ng[2] = 1.0
        foot = tt * rays.fpx / np.maximum(np.abs(dd[2]), F32(0.25))
        kd, f0, gloss, bump, bscale = _ground(st.ground, p, foot, look)
        # ambient occlusion only near the sculpture
        cav = np.ones(len(idx), F32)
        m = F32(self.size * 0.15)
        near = np.flatnonzero((p[0] > self.lo[0] - m) & (p[0] < self.hi[0] + m)
                              & (p[1] > self.lo[1] - m) & (p[1] < self.hi[1] + m))
        self._tick("ground")
        if len(near):
            cav[near] = self._ao_pixels(idx.take(near), p.take(near, axis=1), ng[:, :len(near)],
                                        foot.take(near), rays.width, rays.height)
        self._tick("ao")
        ns = self._bump(ng, p, bump, bscale, foot, octaves=1)
        hits = SurfaceHits("ground", idx, tt, dd, p, ng, ns, kd, f0, gloss, 0.0, 0.0, cav)
        self._tick("ground")
        return hits

    def _gather_wall(self, rays: PrimaryRays, st: Setting) -> SurfaceHits | None:
        """The wall's hits: its texture and bump (no occlusion)."""
        idx = np.flatnonzero(rays.wall)
        if not len(idx):
            return None
        tt, dd, p = rays.along(idx, rays.t_wall)
        ng = np.zeros((3, len(idx)), F32)
        ng[0], ng[1], ang = wall_coords(p, self.centre, rays.wall_radius)
        foot = tt * rays.fpx / np.maximum(np.abs(_dot(dd, ng)), F32(0.25))
        kd = _wall_albedo(st.wall, ang, p[2], p, foot, st.wall_height)
        ns = self._bump(ng, p, 0.15, 0.01, foot, octaves=1)
        hits = SurfaceHits("wall", idx, tt, dd, p, ng, ns, kd, 0.03, 0.1, 0.0, 0.0, None)
        self._tick("wall")
        return hits

    def _shade(self, h: SurfaceHits, L: Lights, st: Setting, look: Look, shadows: bool) -> np.ndarray:
        """Radiance (3, n) from the hits towards the camera: the sun (shadowed), sky, fill light,
        translucency, highlight, reflections, then haze and fog."""
        v = -h.d
        ndl = _dot(h.ns, L.sun)
        ngl = _dot(h.ng, L.sun)
        lit = self._sun_visibility(h, ndl, ngl, L, shadows)
        ndl_c = np.clip(ndl, F32(0), F32(1))
        rad = diffuse(h, ndl, ndl_c, lit, L)
        if h.translucency > 0:
            rad += translucency(h, v, ndl, lit, L)
        one_f0 = F32(1.0) - h.f0
        rad += specular(h, v, ndl_c, lit, one_f0, L)
        ndv, fr, sharp = reflectance(h, v, one_f0, st.floor_gloss)
        rad += ambient_reflection(h, fr, sharp, L)
        self._add_reflections(rad, h, ndv, fr, sharp, L, st, look)
        attenuate(rad, h.t, L)
        return rad

    def _sun_visibility(self, h: SurfaceHits, ndl, ngl, L: Lights, shadows: bool) -> np.ndarray:
        """1 where the sun reaches the hits, 0 in shadow (shadow rays from the geometric normal's
        side, only where the sun's light can matter) or facing away from the sun: (n,)."""
        lit = np.ones(len(h.idx), F32)
        if shadows and h.kind != "wall":
            # where the sun's light can matter: diffuse (wrapped) and specular need ndl > -wrap,
            # translucency any ndl > -0.3
            lo = F32(-0.3) if h.translucency > 0 else np.maximum(-np.asarray(h.wrap, F32), F32(-0.3))
            fi = np.flatnonzero((ndl > lo) & (ngl > -0.05))
            if len(fi):
                orig = h.p.take(fi, axis=1)
                orig += h.ng.take(fi, axis=1) * F32(2e-4 + 1e-5 * self.size)
                orig += L.sun_c * F32(1e-4)
                self._tick("shade")
                occ = self._occluded(orig, np.broadcast_to(L.sun_c, orig.shape))
                lit[fi[occ]] = 0.0
                self._tick("shadows")
        lit[ngl <= -0.05] = 0.0
        return lit

    def _add_reflections(self, rad, h: SurfaceHits, ndv, fr, sharp, L: Lights, st: Setting, look: Look) -> None:
        """Ray-traced mirror reflections, added to `rad` (3, n) where the reflection is sharp and
        strong enough to show (Fresnel `fr`, sharpness `sharp`, n . v `ndv`)."""
        frmax = fr.max(axis=0) if np.ndim(fr) == 2 else fr
        want = np.flatnonzero(sharp * frmax > 0.01)
        if not len(want):
            return
        nsw = h.ns.take(want, axis=1)
        rdir = F32(2.0) * ndv.take(want) * nsw
        rdir += h.d.take(want, axis=1)
        rdir = _normalize(rdir)
        if h.kind == "ground":
            np.maximum(rdir[2], F32(0.01), out=rdir[2])
        ro = h.p.take(want, axis=1)
        ro += h.ng.take(want, axis=1) * F32(3e-4 + 1e-5 * self.size)
        self._tick("shade")
        rc = self._secondary(ro, rdir, st, look, L)
        self._tick("reflections")
        wgt = np.broadcast_to(sharp, (len(h.idx),)).take(want)
        if h.cavity is not None:
            wgt = wgt * h.cavity.take(want)
        frw = fr.take(want, axis=1) if np.ndim(fr) == 2 else fr.take(want)
        rad[:, want] += frw * wgt * rc

    def _composite(self, hdr, rays: PrimaryRays, hits: list[SurfaceHits], L: Lights, st: Setting, look: Look,
                   camera: Camera) -> np.ndarray:
        """The background where the rays hit nothing, a neon glyph's glow, then the film: the
        radiance hdr (3, H * W) becomes the (H, W, 3) uint8 image."""
        if np.any(rays.bg):
            ib = np.flatnonzero(rays.bg)
            col = _background(st, rays.d.take(ib, axis=1), L.sun, L.sun_col, look)
            if look.fog > 0:
                col = _mix(col, L.haze_col, F32(min(1.0, look.fog)) * F32(0.6))
            hdr[:, ib] = col
        self._tick("background")
        for h in hits:
            if h.emit is not None:
                hdr += _bloom(h.emit, _neon_light(look), rays.height, rays.width)
        img = finish(hdr.reshape(3, rays.height, rays.width), look, camera)
        self._tick("finish")
        return img

    @staticmethod
    def _rendered(image: np.ndarray, rays: PrimaryRays, hits: list[SurfaceHits]) -> Rendered:
        """The image with its masks and depth."""
        H, W = rays.height, rays.width
        glyph_val = np.zeros(W * H, np.int16)
        depth = np.full(W * H, np.inf, F32)
        for h in hits:
            depth[h.idx] = h.t
            if h.glyph is not None:
                glyph_val[h.idx] = h.glyph
        gv2 = glyph_val.reshape(H, W)
        return Rendered(
            image=image,
            glyph_mask=gv2 != 0,
            stroke_mask=gv2.astype(np.int16),
            object_mask=rays.obj.reshape(H, W),
            depth=depth.reshape(H, W),
        )

    def _bump(self, n, p, amp, scale, foot, octaves=2):
        """Normals n (3, N) perturbed by noise of period `scale` at points p (3, N), where the
        pixel footprint resolves it."""
        if amp <= 0:
            return n
        sel = np.flatnonzero(_fade(scale * 4, foot))
        if len(sel) == 0:
            return n
        if len(sel) < 0.9 * len(foot):
            out = n.copy()
            out[:, sel] = self._bump(n.take(sel, axis=1), p.take(sel, axis=1), amp, scale, foot.take(sel), octaves)
            return out
        g = _fbm(p, scale * 4, octaves, foot, rot=11, gain=0.55, ch=(0, 1, 2))
        g -= _dot(g, n) * n
        g *= F32(amp)
        g += n
        return _normalize(g)

    def _secondary(self, o, dirs, st: Setting, look: Look, L: Lights):
        """Cheap radiance (3, N) along reflected rays o + t dirs (3, N): flat-lit sculpture
        (material's coarse albedo), ground (coarse texture, lit by sun and sky), wall, or
        background."""
        sun, sun_col, sky_l, gnd_l = L.sun, L.sun_col, L.sky, L.ground
        ans = self._cast(o, dirs)
        t = ans["t_hit"].numpy()
        gid = ans["geometry_ids"].numpy()
        out = np.empty((3, dirs.shape[1]), F32)
        obj = gid == self.obj_id
        gnd = gid == self.ground_id
        wall, tw, Rw = self._wall_hits(st, o, dirs, np.where(obj, F32(0), t))
        gnd &= ~wall
        bg = ~(obj | gnd | wall)
        big = lambda n: np.full(n, F32(0.05))  # noqa: E731 large footprint → coarse octaves only
        if np.any(obj):
            i = np.flatnonzero(obj)
            di = dirs.take(i, axis=1)
            p = o.take(i, axis=1) + di * t.take(i)
            n = np.ascontiguousarray(ans["primitive_normals"].numpy().take(i, axis=0).T)
            n *= np.where(_dot(n, di) > 0, F32(-1), F32(1))
            s, _ = surface_at(look, p, n, big(len(i)), np.ones(len(i), F32), secondary=True)
            light = np.clip(_dot(n, sun), F32(0), F32(1)) * sun_col + _mix(gnd_l, sky_l, F32(0.5) + F32(0.5) * n[2])
            out[:, i] = (s.kd + s.f0 * F32(0.5)) * light
        if np.any(gnd):
            i = np.flatnonzero(gnd)
            p = o.take(i, axis=1) + dirs.take(i, axis=1) * t.take(i)
            p[2] = 0
            kd, *_ = _ground(st.ground, p, big(len(i)), look)
            out[:, i] = kd * (F32(max(sun[2], 0)) * sun_col + sky_l)
        if np.any(wall):
            i = np.flatnonzero(wall)
            p = o.take(i, axis=1) + dirs.take(i, axis=1) * tw.take(i)
            nx, ny, ang = wall_coords(p, self.centre, Rw)
            kd = _wall_albedo(st.wall, ang, p[2], p, big(len(i)), st.wall_height)
            out[:, i] = kd * (np.clip(nx * sun[0] + ny * sun[1], F32(0), F32(1)) * sun_col + sky_l)
        if np.any(bg):
            i = np.flatnonzero(bg)
            out[:, i] = _background(st, dirs.take(i, axis=1), sun, sun_col, look)
        return out


def _scene_takes_threads(o3d) -> bool:
    try:
        doc = o3d.t.geometry.RaycastingScene.__init__.__doc__ or ""
    except Exception:  # pragma: no cover
        return False
    return "nthreads" in doc


def render(sculpture: Sculpture, camera: Camera, look: Look, *, shadows: bool = True) -> Rendered:
    """Render one view (builds a `Renderer`; reuse one to render many views of a sculpture)."""
    return Renderer(sculpture).render(camera, look, shadows=shadows)
