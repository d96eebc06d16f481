"""The renderer: one `Sculpture` seen by one `Camera` under one `Look`, ray cast on the CPU.

`Renderer` builds an open3d `RaycastingScene` (Embree) once per sculpture: the sculpture's triangles
and a large ground quad (z = 0); walls are analytic (`scene.wall_hits`). `Renderer.render` casts one
ray per pixel and shades the hits (linear RGB): Lambert (wrapped for jade and marble) + normalised
Blinn-Phong with Schlick Fresnel, a sun with ray-cast hard shadows, a sky/ground hemisphere ambient
with ray-cast ambient occlusion (a fixed, position-seeded set of directions: the same at a point in
every view; by default traced for one checkerboard colour of the pixels and for pixels at edges or
where the occlusion changes quickly, the other pixels taking the mean of their neighbours), a fill
light, ray-traced mirror reflections for glossy surfaces (metals, glazes, jade, the museum's
polished floor), distance haze and fog; then `film.finish` makes the 8-bit image.

Masks (`Rendered`): the glyph mask is exact per ray: the hit point lies in `sculpture.glyph_box`
and the glyph raster is nonzero at its (u, v) (dilated by 2 texels on faces that do not face
+-y, so the glyph's side walls count).

Same inputs and seed give bitwise identical pixels. Occlusion rays are first tested up to the
occlusion radius and only the blocked ones cast.
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass

import numpy as np

from ..types import Camera, Sculpture
from .cameras import _camera_rays_t, _sculpture_frame, direction_from_angles
from .film import _bloom, finish
from .geometry import _NB4, _ao_dirs, _corner_normals, _dilate_ids, _dilated_at, _frame
from .look import Look
from .materials import _PAINT, _neon_light, _ochre_dots, surface_at
from .maths import F32, _col, _dot, _lin, _mix, _normalize, _smoothstep
from .noise import _fade, _fbm, _noise_at
from .scene import _SETTINGS, Setting, _background, _ground, _sun_colour, _wall_albedo, wall_hits


@dataclass
class Rendered:
    image: np.ndarray  # (H, W, 3) uint8, sRGB
    glyph_mask: np.ndarray  # (H, W) bool: the ray hits the glyph solid
    stroke_mask: np.ndarray  # (H, W) int16: stroke id (>= 1), -1 glyph with unknown stroke, 0 none
    object_mask: np.ndarray  # (H, W) bool: the ray hits the sculpture
    depth: np.ndarray  # (H, W) float32, metres along the ray; inf where nothing (ground incl.) is hit


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
        import open3d as o3d

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

    # -- shading -------------------------------------------------------------------------------
    def _surface(self, look, p, n, foot, cav, secondary=False):
        """Material at world points p (3, N): (Surface, texture-space points (3, N))."""
        return surface_at(look, p, n, foot, cav, secondary)

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
        return np.ascontiguousarray(self._surface(look, p, n, foot, cav)[0].kd.T)

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

    def render(self, camera: Camera, look: Look, *, shadows: bool = True) -> Rendered:
        st = _SETTINGS[look.setting]
        W, H = camera.width, camera.height
        N = W * H
        tm = self._tick
        tm(None)
        o, d = _camera_rays_t(camera)  # d: (3, N)
        o32 = o.astype(F32)
        ans = self._cast(o32, d)
        t = ans["t_hit"].numpy()
        gid = ans["geometry_ids"].numpy()
        prim = ans["primitive_ids"].numpy()
        uvs = ans["primitive_uvs"].numpy()
        ngeo = ans["primitive_normals"].numpy()

        obj = gid == self.obj_id
        gnd = gid == self.ground_id
        wall, tw, Rw = self._wall_hits(st, o32, d, np.where(obj, F32(0), t))
        gnd &= ~wall
        bg = ~(obj | gnd | wall)
        tm("cast")

        # pixel footprint (metres per pixel at unit distance)
        fpx = F32(1.0 / float(camera.K[0, 0]))

        sun = direction_from_angles(look.azimuth, look.elevation).astype(F32)
        sun_c = sun[:, None]
        sun_col = _col(_sun_colour(look.warmth) * F32(look.sun_intensity) * F32(1.05))
        if st.sun_scale != 1.0:
            sun_col = sun_col * F32(st.sun_scale)
        fill_dir = direction_from_angles(look.azimuth + 180.0, 25.0).astype(F32)
        fill_col = _col(_sun_colour(-0.3) * F32(0.12) * F32(look.ambient / 0.35))
        sky_l = _col(st.sky_light) * F32(look.ambient)
        gnd_l = _col(st.ground_light) * F32(look.ambient)
        hazecol = _col(st.horizon)
        sig = F32(st.haze) + F32(0.1 * look.fog)

        hdr = np.empty((3, N), F32)
        depth = np.full(N, np.inf, F32)
        hitm = obj | gnd
        depth[hitm] = t[hitm]
        if np.any(wall):
            depth[wall] = tw[wall]

        # ---------- primary surfaces: gather points, normals, materials ----------------------
        idx_o = np.flatnonzero(obj)
        idx_g = np.flatnonzero(gnd)
        idx_w = np.flatnonzero(wall)
        glyph_val = np.zeros(N, np.int16)

        parts = []  # (kind, idx, t, d, p, ng, ns, kd, f0, gloss, wrap, translucency, cavity)
        emit = None  # pixels of a glyph that gives off light (neon)
        if len(idx_o):
            tt = t.take(idx_o)
            dd = d.take(idx_o, axis=1)
            p = dd * tt
            p += o32[:, None]
            ng = np.ascontiguousarray(ngeo.take(idx_o, axis=0).T)
            sgn = np.where(_dot(ng, dd) > 0, F32(-1), F32(1))
            ng *= sgn
            cn = self.cnormals_t.take(prim.take(idx_o), axis=2)
            uv = uvs.take(idx_o, axis=0)
            bu, bv = uv[:, 0], uv[:, 1]
            ns = cn[0] * (F32(1.0) - bu - bv)
            ns += cn[1] * bu
            ns += cn[2] * bv
            ns = _normalize(ns)
            ns *= sgn
            gv = self._glyph_lookup(p, ng)
            glyph_val[idx_o] = gv
            foot = tt * fpx / np.maximum(np.abs(_dot(dd, ng)), F32(0.25))
            tm("object")
            cav = self._ao_pixels(idx_o, p, ng, foot, W, H)
            tm("ao")
            s, pt = self._surface(look, p, ns, foot, cav)
            ns = self._bump(ns, pt, s.bump, s.bump_scale, foot)
            gi = np.flatnonzero(gv)
            if look.glyph_paint is not None and len(gi):
                col, f0, gloss, metal = _PAINT[look.glyph_paint]
                wear = _smoothstep(0.3, 1.2, _fbm(pt.take(gi, axis=1), 0.02, 2, foot.take(gi), rot=9, ch=0)
                                   + F32(look.weathering) * 1.2 - 0.6)
                wear = wear * F32(min(1.0, look.weathering * 2))
                kdp = col * (F32(1) - F32(0.8) * F32(metal))
                s.kd[:, gi] = _mix(kdp, s.kd[:, gi], wear)
                s.f0[:, gi] = _mix(col if metal else F32(f0), s.f0[:, gi], wear)
                s.gloss[gi] = F32(gloss) * (1 - wear) + s.gloss[gi] * wear
                s.wrap[gi] = 0.0
                if look.glyph_paint == "neon":
                    emit = idx_o.take(gi)
                elif look.glyph_paint == "ochre":
                    dots, white = _ochre_dots(pt, self.size / 45.0)
                    dot_col = np.where(white, _lin(0.86, 0.82, 0.72), _lin(0.85, 0.62, 0.22))
                    s.kd = _mix(s.kd, dot_col, dots)
            parts.append(("object", idx_o, tt, dd, p, ng, ns, s.kd, s.f0, s.gloss, s.wrap, s.translucency, cav))
            tm("material")
        if len(idx_g):
            tt = t.take(idx_g)
            dd = d.take(idx_g, axis=1)
            p = dd * tt
            p += o32[:, None]
            p[2] = 0.0
            ng = np.zeros((3, len(idx_g)), F32)
            ng[2] = 1.0
            foot = tt * fpx / np.maximum(np.abs(dd[2]), F32(0.25))
            kd, f0, gloss, bump, bscale = _ground(st.ground, p, foot, look)
            # ambient occlusion only near the sculpture
            cav = np.ones(len(idx_g), F32)
            m = F32(self.size * 0.15)
            near = np.flatnonzero((p[0] > self.lo[0] - m) & (p[0] < self.hi[0] + m)
                                  & (p[1] > self.lo[1] - m) & (p[1] < self.hi[1] + m))
            tm("ground")
            if len(near):
                cav[near] = self._ao_pixels(idx_g.take(near), p.take(near, axis=1), ng[:, :len(near)],
                                            foot.take(near), W, H)
            tm("ao")
            ns = self._bump(ng, p, bump, bscale, foot, octaves=1)
            parts.append(("ground", idx_g, tt, dd, p, ng, ns, kd, f0, gloss, 0.0, 0.0, cav))
            tm("ground")
        if len(idx_w):
            tt = tw.take(idx_w)
            dd = d.take(idx_w, axis=1)
            p = dd * tt
            p += o32[:, None]
            c = self.centre[:2].astype(F32)
            ng = np.zeros((3, len(idx_w)), F32)
            ng[0] = (c[0] - p[0]) / F32(Rw)
            ng[1] = (c[1] - p[1]) / F32(Rw)
            ang = np.arctan2(p[1] - c[1], p[0] - c[0]) * F32(Rw)
            foot = tt * fpx / np.maximum(np.abs(_dot(dd, ng)), F32(0.25))
            kd = _wall_albedo(st.wall, ang, p[2], p, foot, st.wall_height)
            ns = self._bump(ng, p, 0.15, 0.01, foot, octaves=1)
            parts.append(("wall", idx_w, tt, dd, p, ng, ns, kd, 0.03, 0.1, 0.0, 0.0, None))
            tm("wall")

        env_avg = sky_l * F32(0.6) + gnd_l * F32(0.4)
        for (kind, idx, tt, dd, p, ng, ns, kd, f0, gloss, wrap, tl, cav) in parts:
            n = len(idx)
            v = -dd
            ndl = _dot(ns, sun)
            ngl = _dot(ng, sun)
            # shadows: from the geometric normal side, only where the sun can be facing
            lit = np.ones(n, F32)
            if shadows and kind != "wall":
                # where the sun's light can matter: diffuse (wrapped) and specular need ndl > -wrap,
                # translucency any ndl > -0.3
                lo = F32(-0.3) if tl > 0 else np.maximum(-np.asarray(wrap, F32), F32(-0.3))
                fi = np.flatnonzero((ndl > lo) & (ngl > -0.05))
                if len(fi):
                    orig = p.take(fi, axis=1)
                    orig += ng.take(fi, axis=1) * F32(2e-4 + 1e-5 * self.size)
                    orig += sun_c * F32(1e-4)
                    tm("shade")
                    occ = self._occluded(orig, np.broadcast_to(sun_c, orig.shape))
                    lit[fi[occ]] = 0.0
                    tm("shadows")
            lit[ngl <= -0.05] = 0.0
            ndl_c = np.clip(ndl, F32(0), F32(1))
            if np.ndim(wrap) == 0 and wrap == 0:
                diff = ndl_c * lit
            else:
                diff = np.clip((ndl + wrap) / (F32(1.0) + wrap), F32(0), F32(1)) * lit
            light = diff * sun_col
            hemi = _mix(gnd_l, sky_l, F32(0.5) + F32(0.5) * ns[2])
            if cav is not None:
                hemi *= cav
            light += hemi
            light += np.clip(_dot(ns, fill_dir), F32(0), F32(1)) * fill_col
            rad = kd * light
            if tl > 0:  # translucency: light leaking through, softened
                back = np.clip(-ndl, F32(0), F32(1)) * F32(0.5) + F32(0.5)
                rim = F32(0.6) + F32(0.8) * (F32(1.0) - np.clip(_dot(ns, v), F32(0), F32(1)))
                glow = (F32(tl) * back * rim * (F32(0.4) + F32(0.6) * lit)) * sun_col
                glow += F32(tl) * F32(0.5) * (sky_l + gnd_l)
                rad += kd * kd * glow
            # specular (normalised Blinn-Phong, Schlick Fresnel)
            h = _normalize(sun_c + v)
            ndh = np.clip(_dot(ns, h), F32(0), F32(1))
            vdh = np.clip(_dot(v, h), F32(0), F32(1))
            shin = np.exp((F32(2.0) + F32(10.0) * np.asarray(gloss, F32)) * F32(math.log(2.0)))
            x = F32(1.0) - vdh
            x5 = x * x
            x5 *= x5
            x5 *= x
            one_f0 = F32(1.0) - f0
            with np.errstate(divide="ignore"):  # ndh ** shin as exp(shin log ndh): numpy's float32
                lg = np.log(ndh)  # power with an array exponent is ~50x slower
            lg *= shin
            spec = ((shin + F32(8.0)) * F32(1.0 / 8.0)) * np.exp(lg, out=lg) * ndl_c * lit
            rad += ((f0 + one_f0 * x5) * spec) * sun_col
            # reflections
            ndv = np.clip(_dot(ns, v), F32(0), F32(1))
            y = F32(1.0) - ndv
            y5 = y * y
            y5 *= y5
            y5 *= y
            y5 *= np.asarray(gloss, F32) * np.asarray(gloss, F32)
            fr = f0 + one_f0 * y5
            if kind == "ground":
                sharp = F32(st.floor_gloss)
            else:
                sharp = _smoothstep(0.45, 0.9, gloss)
            amb = F32(1.0) - sharp
            if cav is not None:
                amb = amb * cav
            rad += (fr * amb) * env_avg
            frmax = fr.max(axis=0) if np.ndim(fr) == 2 else fr
            want = np.flatnonzero(sharp * frmax > 0.01)
            if len(want):
                nsw = ns.take(want, axis=1)
                rdir = F32(2.0) * ndv.take(want) * nsw
                rdir += dd.take(want, axis=1)
                rdir = _normalize(rdir)
                if kind == "ground":
                    np.maximum(rdir[2], F32(0.01), out=rdir[2])
                ro = p.take(want, axis=1)
                ro += ng.take(want, axis=1) * F32(3e-4 + 1e-5 * self.size)
                tm("shade")
                rc = self._secondary(ro, rdir, st, look, sun, sun_col, sky_l, gnd_l)
                tm("reflections")
                wgt = np.broadcast_to(sharp, (n,)).take(want)
                if cav is not None:
                    wgt = wgt * cav.take(want)
                frw = fr.take(want, axis=1) if np.ndim(fr) == 2 else fr.take(want)
                rad[:, want] += frw * wgt * rc
            # haze and fog
            att = np.exp(-sig * tt)
            rad *= att
            rad += hazecol * (F32(1.0) - att)
            hdr[:, idx] = rad
            tm("shade")

        if np.any(bg):
            ib = np.flatnonzero(bg)
            col = _background(st, d.take(ib, axis=1), sun, sun_col, look)
            if look.fog > 0:
                col = _mix(col, hazecol, F32(min(1.0, look.fog)) * F32(0.6))
            hdr[:, ib] = col
        tm("background")
        if emit is not None:
            hdr += _bloom(emit, _neon_light(look), H, W)

        img = self._finish(hdr.reshape(3, H, W), look, camera)
        tm("finish")
        obj2 = obj.reshape(H, W)
        gv2 = glyph_val.reshape(H, W)
        return Rendered(
            image=img,
            glyph_mask=gv2 != 0,
            stroke_mask=gv2.astype(np.int16),
            object_mask=obj2,
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

    def _secondary(self, o, dirs, st, look, sun, sun_col, sky_l, gnd_l):
        """Cheap radiance (3, N) along reflected rays o + t dirs (3, N): flat-lit sculpture
        (material's coarse albedo), ground (coarse texture, lit by sun and sky), wall, or
        background."""
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
            s, _ = self._surface(look, p, n, big(len(i)), np.ones(len(i), F32), secondary=True)
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
            c = self.centre[:2].astype(F32)
            nx = (c[0] - p[0]) / F32(Rw)
            ny = (c[1] - p[1]) / F32(Rw)
            ang = np.arctan2(p[1] - c[1], p[0] - c[0]) * F32(Rw)
            kd = _wall_albedo(st.wall, ang, p[2], p, big(len(i)), st.wall_height)
            out[:, i] = kd * (np.clip(nx * sun[0] + ny * sun[1], F32(0), F32(1)) * sun_col + sky_l)
        if np.any(bg):
            i = np.flatnonzero(bg)
            out[:, i] = _background(st, dirs.take(i, axis=1), sun, sun_col, look)
        return out

    def _finish(self, hdr: np.ndarray, look: Look, camera: Camera) -> np.ndarray:
        """`film.finish`."""
        return finish(hdr, look, camera)


def _scene_takes_threads(o3d) -> bool:
    try:
        doc = o3d.t.geometry.RaycastingScene.__init__.__doc__ or ""
    except Exception:  # pragma: no cover
        return False
    return "nthreads" in doc


def render(sculpture: Sculpture, camera: Camera, look: Look, *, shadows: bool = True) -> Rendered:
    """Render one view (builds a `Renderer`; reuse one to render many views of a sculpture)."""
    return Renderer(sculpture).render(camera, look, shadows=shadows)
