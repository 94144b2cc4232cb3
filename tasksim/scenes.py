"""Procedural indoor scenes with analytic Taskonomy-style labels (mini-Taskonomy renderer).

Each scene is a box room (floor, four walls, ceiling) holding 3-8 objects (spheres, boxes
rotated about the vertical axis, vertical cylinders) resting on the floor, seen by a pinhole
camera inside the room and lit by one point light (Lambertian with ambient term and hard
shadows). Every surface carries a procedural texture (plain, checker, stripes or waves) that
changes its albedo only. Rendering is numpy ray casting, vectorised over the pixels of an image.

Scene ``i`` of a set with seed ``s`` is drawn from ``numpy.random.SeedSequence([s, i])``, so the
same scene comes out at every resolution and in every call (``render_rgb`` and ``render_batch``
give identical images). The noise of the denoising input comes from a separate stream.

World frame: y up, the room spans ``[-W/2, W/2] x [0, H] x [-D/2, D/2]``. Camera frame: x right,
y up, z forward (the optical axis); a pixel ray has camera direction ``((u-c)/f, -(v-c)/f, 1)``.
Normals are unit vectors in the camera frame pointing *towards* the camera, i.e.
``dot(normal, ray direction) < 0`` for every pixel.

Labels (canonical Taskonomy names, float32 unless said otherwise; S = image side):

=================  ===================  ==================================================
key                shape                content
=================  ===================  ==================================================
rgb                uint8 [S,S,3]        rendered image (also the target of autoencoding,
                                        denoising and colorization)
input_noisy        uint8 [S,S,3]        rgb + Gaussian noise (sigma 0.1): denoising input
input_gray         uint8 [S,S,3]        luminance replicated: colorization input
autoencoding       uint8 [S,S,3]        = rgb
denoising          uint8 [S,S,3]        = rgb (clean target of the noisy input)
colorization       uint8 [S,S,3]        = rgb (colour target of the gray input)
edge_texture       [S,S]                Sobel magnitude of the albedo luminance
edge_occlusion     [S,S]                1 where a 4-neighbour on another primitive is more
                                        than ``OCCLUSION_JUMP`` (relative) nearer/farther
keypoints2d        [S,S]                sqrt of the Harris response (positive part) of the
                                        image luminance
keypoints3d        [S,S]                sqrt of the Harris response (positive part) of the
                                        normal map
                                        (corners where the geometry bends two ways)
depth_zbuffer      [S,S]                z of the hit point in the camera frame (metres)
depth_euclidean    [S,S]                distance camera -> hit point (metres)
normal             [S,S,3]              unit surface normal, camera frame
reshading          [S,S]                max(0, n . l) with a headlight (light at camera)
curvature          [S,S,2]              analytic principal curvatures (k1 >= k2, 1/m)
segment_unsup2d    int16 [S,S]          appearance regions: primitive x texture phase
segment_unsup25d   int16 [S,S]          geometric regions: planar faces / curved surfaces,
                                        split at depth discontinuities by primitive
segment_semantic   uint8 [S,S]          SEMANTIC_CLASSES index
class_object       int64 []             OBJECT_CLASSES index of the object class with most
                                        pixels in the central S/4 x S/4 window, the view's
                                        focus (0 = only room surfaces there)
room_layout        [8]                  pitch, roll, sin 4yaw, cos 4yaw, camera height,
                                        ceiling clearance, room width, room depth
=================  ===================  ==================================================
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from scipy import ndimage

from tasksim.io import content_sha256

SEMANTIC_CLASSES: tuple[str, ...] = ("floor", "wall", "ceiling", "sphere", "box", "cylinder")
OBJECT_CLASSES: tuple[str, ...] = ("none", "sphere", "box", "cylinder")
TEXTURES: tuple[str, ...] = ("plain", "checker", "stripes", "waves")
#: Labels (task names) produced by :func:`render_scene`.
LABEL_TASKS: tuple[str, ...] = (
    "autoencoding", "denoising", "colorization", "edge_texture", "edge_occlusion", "keypoints2d",
    "keypoints3d", "depth_zbuffer", "depth_euclidean", "normal", "reshading", "curvature",
    "segment_unsup2d", "segment_unsup25d", "segment_semantic", "class_object", "room_layout",
)
#: Tasks whose target is the clean rendered image (their inputs differ).
RGB_TARGETS: tuple[str, ...] = ("autoencoding", "denoising", "colorization")
#: Relative depth jump between neighbouring pixels on different primitives that marks an
#: occlusion edge.
OCCLUSION_JUMP = 0.05
NOISE_SIGMA = 0.1
AMBIENT = 0.25
FOV_DEG = 65.0
_EPS = 1e-6

_SEM_ID = {name: i for i, name in enumerate(SEMANTIC_CLASSES)}


@dataclass
class Surface:
    """Albedo texture of one surface: two colours mixed by a pattern of given scale and angle."""

    kind: str
    c1: np.ndarray
    c2: np.ndarray
    scale: float
    angle: float


@dataclass
class Primitive:
    """One object: ``kind`` in sphere / box / cylinder, its centre, size and yaw."""

    kind: str
    center: np.ndarray  # world (x, y, z)
    size: np.ndarray  # sphere (r,), box half extents (hx, hy, hz), cylinder (r, half height)
    yaw: float
    surface: Surface


@dataclass
class Scene:
    """Everything needed to render a scene at any resolution."""

    room: np.ndarray  # (W, H, D)
    cam_pos: np.ndarray
    cam_rot: np.ndarray  # 3x3, columns = camera x, y, z axes in world coordinates
    pitch: float
    roll: float
    yaw: float
    light: np.ndarray
    room_surfaces: list[Surface]  # floor, ceiling, then walls -x, +x, -z, +z
    objects: list[Primitive] = field(default_factory=list)


# --------------------------------------------------------------------------- scene sampling
def _surface(rng: np.random.Generator) -> Surface:
    """Random texture: hue-distinct colours in [0.1, 0.95]."""
    kind = TEXTURES[rng.integers(len(TEXTURES))]
    c1 = rng.uniform(0.15, 0.95, 3)
    c2 = np.clip(c1 * rng.uniform(0.3, 0.7) + rng.uniform(0.0, 0.3, 3), 0.05, 1.0)
    return Surface(kind, c1, c2, float(rng.uniform(0.15, 0.5)), float(rng.uniform(0, np.pi)))


def _rotation(yaw: float, pitch: float, roll: float) -> np.ndarray:
    """Camera-to-world rotation: yaw about world y, then pitch about camera x, then roll about z."""
    cy, sy = np.cos(yaw), np.sin(yaw)
    cp, sp = np.cos(pitch), np.sin(pitch)
    cr, sr = np.cos(roll), np.sin(roll)
    ry = np.array([[cy, 0, sy], [0, 1, 0], [-sy, 0, cy]])
    rx = np.array([[1, 0, 0], [0, cp, -sp], [0, sp, cp]])
    rz = np.array([[cr, -sr, 0], [sr, cr, 0], [0, 0, 1]])
    return ry @ rx @ rz


def sample_scene(rng: np.random.Generator) -> Scene:
    """Draw a random room, 3-8 non-overlapping objects on the floor, a camera and a light."""
    w, h, d = rng.uniform(4.0, 8.0), rng.uniform(2.5, 3.5), rng.uniform(4.0, 8.0)
    room = np.array([w, h, d])
    surfaces = [_surface(rng) for _ in range(6)]
    cam = np.array([rng.uniform(-w / 2 + 0.6, w / 2 - 0.6), rng.uniform(1.0, 1.9),
                    rng.uniform(-d / 2 + 0.6, d / 2 - 0.6)])
    objects: list[Primitive] = []
    n_obj = int(rng.integers(3, 9))
    for _ in range(60):
        if len(objects) == n_obj:
            break
        kind = ("sphere", "box", "cylinder")[rng.integers(3)]
        if kind == "sphere":
            r = rng.uniform(0.25, 0.7)
            size, radius, height = np.array([r]), r, 2 * r
        elif kind == "box":
            size = rng.uniform([0.2, 0.2, 0.2], [0.7, 0.8, 0.7])
            radius, height = float(np.hypot(size[0], size[2])), 2 * size[1]
        else:
            r, hh = rng.uniform(0.15, 0.5), rng.uniform(0.2, 0.9)
            size, radius, height = np.array([r, hh]), r, 2 * hh
        x = rng.uniform(-w / 2 + radius + 0.05, w / 2 - radius - 0.05)
        z = rng.uniform(-d / 2 + radius + 0.05, d / 2 - radius - 0.05)
        if np.hypot(x - cam[0], z - cam[2]) < radius + 0.5:
            continue  # keep the camera outside (and clear) of every object
        if any(np.hypot(x - o.center[0], z - o.center[2]) < radius + _radius(o) + 0.05 for o in objects):
            continue
        center = np.array([x, height / 2, z])
        objects.append(Primitive(kind, center, size, float(rng.uniform(0, np.pi)), _surface(rng)))
    # look towards an object (or the room centre) with jitter
    target = objects[rng.integers(len(objects))].center if objects else np.zeros(3)
    yaw = float(np.arctan2(target[0] - cam[0], target[2] - cam[2]) + rng.normal(0, 0.35))
    horiz = np.hypot(target[0] - cam[0], target[2] - cam[2])
    pitch = float(np.clip(np.arctan2(target[1] - cam[1], horiz) + rng.normal(0, 0.1), -0.6, 0.4))
    roll = float(rng.normal(0, 0.06))
    light = np.array([rng.uniform(-w / 2 + 0.3, w / 2 - 0.3), h - rng.uniform(0.1, 0.5),
                      rng.uniform(-d / 2 + 0.3, d / 2 - 0.3)])
    # pitch > 0 looks up: rotate camera forward (0,0,1) up means negative rotation about x
    rot = _rotation(yaw, -pitch, roll)
    return Scene(room, cam, rot, pitch, roll, yaw, light, surfaces, objects)


def _radius(o: Primitive) -> float:
    """Footprint radius of an object on the floor."""
    if o.kind == "box":
        return float(np.hypot(o.size[0], o.size[2]))
    return float(o.size[0])


def scene_rng(seed: int, index: int) -> np.random.Generator:
    """Generator of scene ``index`` in the set of ``seed`` (independent of resolution)."""
    return np.random.default_rng(np.random.SeedSequence([int(seed), int(index)]))


# --------------------------------------------------------------------------- ray casting
def camera_rays(size: int, fov_deg: float = FOV_DEG) -> tuple[np.ndarray, np.ndarray]:
    """Unit ray directions in the camera frame [S*S, 3] and cos(angle to the optical axis) [S*S]."""
    f = 0.5 * size / np.tan(np.deg2rad(fov_deg) / 2)
    c = (size - 1) / 2
    v, u = np.mgrid[0:size, 0:size].astype(np.float64)
    dirs = np.stack([(u - c) / f, -(v - c) / f, np.ones_like(u)], -1).reshape(-1, 3)
    norm = np.linalg.norm(dirs, axis=1)
    return dirs / norm[:, None], 1.0 / norm


def _hit_room(o: np.ndarray, d: np.ndarray, room: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Exit distance of rays from inside the room box and the face index (0 floor, 1 ceiling,
    2 -x wall, 3 +x wall, 4 -z wall, 5 +z wall)."""
    lo = np.array([-room[0] / 2, 0.0, -room[2] / 2])
    hi = np.array([room[0] / 2, room[1], room[2] / 2])
    with np.errstate(divide="ignore", invalid="ignore"):
        t = np.where(d > 0, (hi - o) / d, (lo - o) / d)
    t = np.where(np.abs(d) < 1e-12, np.inf, t)
    axis = np.argmin(t, axis=1)
    tmin = t[np.arange(len(d)), axis]
    positive = d[np.arange(len(d)), axis] > 0
    face = np.select([axis == 1, axis == 0, axis == 2], [np.where(positive, 1, 0),
                     np.where(positive, 3, 2), np.where(positive, 5, 4)])
    return tmin, face


def _to_local(p: np.ndarray, obj: Primitive) -> tuple[np.ndarray, np.ndarray]:
    """Rotation (world -> object frame, yaw about y) matrix and the point in the object frame."""
    c, s = np.cos(obj.yaw), np.sin(obj.yaw)
    rot = np.array([[c, 0, -s], [0, 1, 0], [s, 0, c]])  # world -> local
    return rot, (p - obj.center) @ rot.T


def _hit_object(o: np.ndarray, d: np.ndarray, obj: Primitive) -> np.ndarray:
    """Nearest positive hit distance of rays (origins ``o`` [3] or [P,3], dirs ``d`` [P,3])
    with one object; ``inf`` where missed."""
    rot, lo = _to_local(o, obj)
    ld = d @ rot.T
    lo = np.broadcast_to(lo, ld.shape)
    inf = np.full(len(d), np.inf)
    with np.errstate(divide="ignore", invalid="ignore"):
        if obj.kind == "sphere":
            b = np.einsum("ij,ij->i", lo, ld)
            cc = np.einsum("ij,ij->i", lo, lo) - obj.size[0] ** 2
            disc = b * b - cc
            t = -b - np.sqrt(np.maximum(disc, 0))
            return np.where((disc > 0) & (t > _EPS), t, inf)
        if obj.kind == "box":
            t1 = (-obj.size - lo) / ld
            t2 = (obj.size - lo) / ld
            tn = np.nanmax(np.minimum(t1, t2), axis=1)
            tf = np.nanmin(np.maximum(t1, t2), axis=1)
            return np.where((tf >= tn) & (tn > _EPS), tn, inf)
        r, hh = obj.size
        a = ld[:, 0] ** 2 + ld[:, 2] ** 2
        b = lo[:, 0] * ld[:, 0] + lo[:, 2] * ld[:, 2]
        cc = lo[:, 0] ** 2 + lo[:, 2] ** 2 - r * r
        disc = b * b - a * cc
        ts = (-b - np.sqrt(np.maximum(disc, 0))) / a
        ys = lo[:, 1] + ts * ld[:, 1]
        side = np.where((disc > 0) & (a > 1e-12) & (ts > _EPS) & (np.abs(ys) <= hh), ts, inf)
        best = side
        for cap in (hh, -hh):
            tc = (cap - lo[:, 1]) / ld[:, 1]
            xc, zc = lo[:, 0] + tc * ld[:, 0], lo[:, 2] + tc * ld[:, 2]
            ok = (tc > _EPS) & (xc * xc + zc * zc <= r * r)
            best = np.minimum(best, np.where(ok, tc, inf))
        return best


def _object_geometry(p: np.ndarray, obj: Primitive) -> tuple[np.ndarray, np.ndarray, np.ndarray,
                                                              np.ndarray]:
    """World normals [P,3], texture coordinates [P,2], principal curvatures [P,2] and a
    geometric face index [P] (box faces 0-5, cylinder side 0 / caps 1-2, sphere 0)."""
    rot, lp = _to_local(p, obj)
    n = len(p)
    curv = np.zeros((n, 2))
    face = np.zeros(n, dtype=np.int64)
    if obj.kind == "sphere":
        ln = lp / obj.size[0]
        uv = np.stack([np.arctan2(ln[:, 2], ln[:, 0]) * obj.size[0],
                       np.arcsin(np.clip(ln[:, 1], -1, 1)) * obj.size[0]], 1)
        curv[:] = 1.0 / obj.size[0]
    elif obj.kind == "box":
        rel = np.abs(lp) / obj.size
        axis = np.argmax(rel, axis=1)
        sign = np.sign(lp[np.arange(n), axis])
        ln = np.zeros((n, 3))
        ln[np.arange(n), axis] = sign
        other = np.array([[1, 2], [0, 2], [0, 1]])[axis]
        uv = np.stack([lp[np.arange(n), other[:, 0]], lp[np.arange(n), other[:, 1]]], 1)
        face = axis * 2 + (sign > 0)
    else:
        r, hh = obj.size
        on_cap = np.abs(np.abs(lp[:, 1]) - hh) < 1e-6 * max(1.0, hh)
        radial = lp * np.array([1.0, 0.0, 1.0])
        radial /= np.maximum(np.linalg.norm(radial, axis=1, keepdims=True), 1e-12)
        ln = np.where(on_cap[:, None], np.array([0.0, 1.0, 0.0]) * np.sign(lp[:, 1:2]), radial)
        uv = np.where(on_cap[:, None], lp[:, [0, 2]],
                      np.stack([np.arctan2(lp[:, 2], lp[:, 0]) * r, lp[:, 1]], 1))
        curv[:, 0] = np.where(on_cap, 0.0, 1.0 / r)
        face = np.where(on_cap, np.where(lp[:, 1] > 0, 1, 2), 0)
    return ln @ rot, uv, curv, face


_ROOM_NORMALS = np.array([[0, 1, 0], [0, -1, 0], [1, 0, 0], [-1, 0, 0], [0, 0, 1], [0, 0, -1]],
                         dtype=np.float64)
_ROOM_UV_AXES = np.array([[0, 2], [0, 2], [2, 1], [2, 1], [0, 1], [0, 1]])


def _pattern(surface: Surface, uv: np.ndarray) -> np.ndarray:
    """Texture pattern value in [0, 1] at texture coordinates ``uv`` (metres)."""
    c, s = np.cos(surface.angle), np.sin(surface.angle)
    a = (uv[:, 0] * c + uv[:, 1] * s) / surface.scale
    b = (-uv[:, 0] * s + uv[:, 1] * c) / surface.scale
    if surface.kind == "plain":
        return np.zeros(len(uv))
    if surface.kind == "checker":
        return ((np.floor(a) + np.floor(b)) % 2).astype(np.float64)
    if surface.kind == "stripes":
        return (np.floor(a) % 2).astype(np.float64)
    return (np.sin(np.pi * a) * np.sin(np.pi * b) > 0.2).astype(np.float64)  # waves (blobs)


def _occluded(p: np.ndarray, light: np.ndarray, objects: Sequence[Primitive],
              skip: np.ndarray) -> np.ndarray:
    """True where the segment from ``p`` [P,3] to the light is blocked by an object."""
    to_light = light - p
    dist = np.linalg.norm(to_light, axis=1)
    d = to_light / dist[:, None]
    blocked = np.zeros(len(p), dtype=bool)
    for k, obj in enumerate(objects):
        m = skip != k
        if not m.any():
            continue
        t = _hit_object(p[m] + 1e-4 * d[m], d[m], obj)
        blocked[np.flatnonzero(m)[t < dist[m]]] = True
    return blocked


@dataclass
class _Raster:
    """Per-pixel intermediate results of casting the camera rays of one scene."""

    t: np.ndarray  # euclidean distance [P]
    prim: np.ndarray  # -1..-6 room faces (-(face+1)), 0.. object index
    p: np.ndarray  # hit points [P,3]
    n: np.ndarray  # world normals [P,3]
    albedo: np.ndarray  # [P,3]
    phase: np.ndarray  # texture pattern value [P]
    curv: np.ndarray  # [P,2]
    face: np.ndarray  # geometric face id within the primitive [P]
    rgb: np.ndarray  # linear shaded colour in [0,1] [P,3]


def _cast(scene: Scene, size: int, dirs_cam: np.ndarray, shadows: bool = True) -> _Raster:
    """Cast one ray per pixel: nearest surface, its geometry, albedo and Lambertian shading."""
    d = dirs_cam @ scene.cam_rot.T
    o = scene.cam_pos
    t, face_room = _hit_room(o, d, scene.room)
    prim = -(face_room + 1)
    for k, obj in enumerate(scene.objects):
        tk = _hit_object(o, d, obj)
        closer = tk < t
        t = np.where(closer, tk, t)
        prim = np.where(closer, k, prim)
    p = o + t[:, None] * d
    npx = len(d)
    n = np.zeros((npx, 3))
    albedo = np.zeros((npx, 3))
    phase = np.zeros(npx)
    curv = np.zeros((npx, 2))
    face = np.zeros(npx, dtype=np.int64)
    for f in range(6):
        m = prim == -(f + 1)
        if not m.any():
            continue
        n[m] = _ROOM_NORMALS[f]
        uv = p[m][:, _ROOM_UV_AXES[f]]
        ph = _pattern(scene.room_surfaces[f], uv)
        s = scene.room_surfaces[f]
        phase[m] = ph
        albedo[m] = s.c1 * (1 - ph[:, None]) + s.c2 * ph[:, None]
    for k, obj in enumerate(scene.objects):
        m = prim == k
        if not m.any():
            continue
        nk, uv, ck, fk = _object_geometry(p[m], obj)
        ph = _pattern(obj.surface, uv)
        n[m], curv[m], face[m], phase[m] = nk, ck, fk, ph
        albedo[m] = obj.surface.c1 * (1 - ph[:, None]) + obj.surface.c2 * ph[:, None]
    to_light = scene.light - p
    dist = np.linalg.norm(to_light, axis=1)
    lam = np.maximum(np.einsum("ij,ij->i", n, to_light) / dist, 0.0)
    if shadows and scene.objects:
        lam = np.where(_occluded(p, scene.light, scene.objects, prim), 0.0, lam)
    atten = 1.0 / (1.0 + (dist / 4.0) ** 2)
    shade = AMBIENT + (1 - AMBIENT) * 1.6 * lam * atten
    rgb = np.clip(albedo * shade[:, None], 0.0, 1.0)
    return _Raster(t, prim, p, n, albedo, phase, curv, face, rgb)


def _to_uint8(x: np.ndarray) -> np.ndarray:
    """[0,1] float -> uint8 with gamma 2.2 applied (display encoding)."""
    return np.round(np.clip(x, 0, 1) ** (1 / 2.2) * 255).astype(np.uint8)


# --------------------------------------------------------------------------- labels
def _harris(channels: np.ndarray, sigma: float, k: float = 0.05) -> np.ndarray:
    """Square root of the positive part of the Harris corner response of an image [S,S,C]
    (gradient-squared units, so that the label is less heavy-tailed)."""
    gx = ndimage.sobel(channels, axis=1, mode="nearest")
    gy = ndimage.sobel(channels, axis=0, mode="nearest")
    sig = (sigma, sigma, 0)
    sxx = ndimage.gaussian_filter(gx * gx, sig).sum(-1)
    syy = ndimage.gaussian_filter(gy * gy, sig).sum(-1)
    sxy = ndimage.gaussian_filter(gx * gy, sig).sum(-1)
    r = sxx * syy - sxy * sxy - k * (sxx + syy) ** 2
    return np.sqrt(np.maximum(r, 0.0))


def occlusion_edges(depth: np.ndarray, prim: np.ndarray, jump: float = OCCLUSION_JUMP) -> np.ndarray:
    """1 where a 4-neighbour lies on another primitive and its depth differs by more than
    ``jump`` relative to the nearer of the two; ``depth`` and ``prim`` are [S,S]."""
    edge = np.zeros(depth.shape, dtype=bool)
    for axis in (0, 1):
        a = np.take(depth, np.arange(depth.shape[axis] - 1), axis=axis)
        b = np.take(depth, np.arange(1, depth.shape[axis]), axis=axis)
        pa = np.take(prim, np.arange(prim.shape[axis] - 1), axis=axis)
        pb = np.take(prim, np.arange(1, prim.shape[axis]), axis=axis)
        e = (pa != pb) & (np.abs(a - b) > jump * np.minimum(a, b))
        if axis == 0:
            edge[:-1] |= e
            edge[1:] |= e
        else:
            edge[:, :-1] |= e
            edge[:, 1:] |= e
    return edge.astype(np.float32)


def _relabel(keys: np.ndarray) -> np.ndarray:
    """Consecutive ids 0..K-1 for the distinct values of ``keys`` (ordered by first occurrence)."""
    _, first, inv = np.unique(keys.ravel(), return_index=True, return_inverse=True)
    order = np.argsort(np.argsort(first))
    return order[inv].reshape(keys.shape).astype(np.int16)


def centre_window(image: np.ndarray) -> np.ndarray:
    """The central S/4 x S/4 window of an S x S (x ...) array: where the camera looks.

    class_object is read here, like the object-centred ImageNet labels that Taskonomy distilled
    its object classes from. Over the whole image ("the class with most pixels") the label was
    not learnable from 2000 64 x 64 scenes: its own encoder beat a random one on 51 % of test
    images, versus 62-64 % for this window."""
    s = image.shape[0]
    lo = (s - s // 4) // 2
    return image[lo:lo + s // 4, lo:lo + s // 4]


def _labels(scene: Scene, r: _Raster, size: int, cos_axis: np.ndarray,
            dirs_cam: np.ndarray, noise_rng: np.random.Generator) -> dict[str, np.ndarray]:
    """All per-image labels from the raster of one scene."""
    s = size
    rgb = _to_uint8(r.rgb).reshape(s, s, 3)
    depth_e = r.t.reshape(s, s).astype(np.float32)
    depth_z = (r.t * cos_axis).reshape(s, s).astype(np.float32)
    n_cam = r.n @ scene.cam_rot  # world -> camera
    flip = np.einsum("ij,ij->i", n_cam, dirs_cam) > 0
    n_cam[flip] *= -1
    normal = n_cam.reshape(s, s, 3).astype(np.float32)
    reshade = np.maximum(-np.einsum("ij,ij->i", n_cam, dirs_cam), 0).reshape(s, s)
    prim = r.prim.reshape(s, s)
    scale = s / 64.0
    alb_lum = (r.albedo @ np.array([0.299, 0.587, 0.114])).reshape(s, s)
    edge_tex = np.hypot(ndimage.sobel(alb_lum, 0, mode="nearest"),
                        ndimage.sobel(alb_lum, 1, mode="nearest")) / 4.0
    lum = (rgb.astype(np.float64) / 255.0) @ np.array([0.299, 0.587, 0.114])
    kp2 = _harris(lum[..., None], 1.0 * scale)
    kp3 = _harris(normal.astype(np.float64), 1.0 * scale)
    sem = np.where(r.prim < 0, np.where(r.prim == -1, 0, np.where(r.prim == -2, 2, 1)), 0)
    kinds = np.array([_SEM_ID[o.kind] for o in scene.objects] or [0])
    sem = np.where(r.prim >= 0, kinds[np.maximum(r.prim, 0)], sem).reshape(s, s).astype(np.uint8)
    counts = np.bincount(centre_window(sem).ravel(), minlength=len(SEMANTIC_CLASSES))[3:]
    cls = int(np.argmax(counts) + 1) if counts.max() > 0 else 0
    seg2d = _relabel((r.prim.reshape(s, s).astype(np.int64) + 8) * 2 + r.phase.reshape(s, s).astype(np.int64))
    seg25 = _relabel((r.prim.reshape(s, s).astype(np.int64) + 8) * 8 + r.face.reshape(s, s))
    w, h, d = scene.room
    layout = np.array([scene.pitch, scene.roll, np.sin(4 * scene.yaw), np.cos(4 * scene.yaw),
                       scene.cam_pos[1], h - scene.cam_pos[1], w, d], dtype=np.float32)
    noisy = np.clip(rgb / 255.0 + noise_rng.normal(0, NOISE_SIGMA, rgb.shape), 0, 1)
    gray = np.repeat(np.round(rgb @ np.array([0.299, 0.587, 0.114])).astype(np.uint8)[..., None], 3, -1)
    return {
        "rgb": rgb,
        "input_noisy": np.round(noisy * 255).astype(np.uint8),
        "input_gray": gray,
        "autoencoding": rgb,
        "denoising": rgb,
        "colorization": rgb,
        "edge_texture": edge_tex.astype(np.float32),
        "edge_occlusion": occlusion_edges(depth_e, prim),
        "keypoints2d": kp2.astype(np.float32),
        "keypoints3d": kp3.astype(np.float32),
        "depth_zbuffer": depth_z,
        "depth_euclidean": depth_e,
        "normal": normal,
        "reshading": reshade.astype(np.float32),
        "curvature": r.curv.reshape(s, s, 2).astype(np.float32),
        "segment_unsup2d": seg2d,
        "segment_unsup25d": seg25,
        "segment_semantic": sem,
        "class_object": np.int64(cls),
        "room_layout": layout,
    }


# --------------------------------------------------------------------------- public API
def render_scene(rng: np.random.Generator | int, size: int = 64, index: int = 0,
                 labels: bool = True) -> dict[str, np.ndarray]:
    """Render one scene: ``rng`` is a Generator or a seed (then scene ``index`` of that seed).

    Returns ``{"rgb": uint8 [S,S,3]}`` plus, when ``labels``, every key of the module docstring.
    """
    if not isinstance(rng, np.random.Generator):
        rng = scene_rng(int(rng), index)
    scene = sample_scene(rng)
    noise_rng = np.random.default_rng(rng.integers(2**63))
    dirs, cos_axis = camera_rays(size)
    raster = _cast(scene, size, dirs)
    if not labels:
        return {"rgb": _to_uint8(raster.rgb).reshape(size, size, 3)}
    return _labels(scene, raster, size, cos_axis, dirs, noise_rng)


def scene_ids(n: int, start: int = 0) -> list[str]:
    """Identifiers ``scene_000123`` of scenes ``start .. start+n-1``."""
    return [f"scene_{i:06d}" for i in range(start, start + n)]


def render_batch(n: int, size: int = 64, seed: int = 0, start: int = 0) -> dict[str, np.ndarray]:
    """Render scenes ``start .. start+n-1`` of ``seed`` with labels, stacked on a first axis."""
    out: dict[str, list[np.ndarray]] = {}
    for i in range(start, start + n):
        for k, v in render_scene(seed, size, index=i).items():
            if k not in RGB_TARGETS:
                out.setdefault(k, []).append(v)
    stacked = {k: np.stack(v) for k, v in out.items()}
    for k in RGB_TARGETS:  # the clean image is their target: one shared array, not three copies
        stacked[k] = stacked["rgb"]
    return stacked


def render_rgb(n: int, size: int = 256, seed: int = 0, start: int = 0) -> np.ndarray:
    """Images only (labels skipped) of the same scenes as :func:`render_batch`: uint8 [n,S,S,3]."""
    return np.stack([render_scene(seed, size, index=i, labels=False)["rgb"]
                     for i in range(start, start + n)])


def write_scenes_h5(path: str | os.PathLike[str], data: dict[str, np.ndarray], seed: int,
                    start: int = 0) -> Path:
    """Write a rendered set (from :func:`render_batch`) to HDF5, atomically and byte-reproducibly.

    Layout: ``/images`` uint8 [N,S,S,3] (chunks one image, gzip), ``/ids``, ``/inputs/{noisy,gray}``,
    ``/labels/{task}``; attrs ``source = generated:seed=<seed>``, ``content_sha256``,
    ``resolution``, ``n_images``, ``start``.
    """
    from tasksim.io import atomic_path, open_h5, str_dataset

    images = data["rgb"]
    n, s = images.shape[0], images.shape[1]
    ids = scene_ids(n, start)
    with atomic_path(path, suffix=".h5") as tmp:
        with open_h5(tmp, "w") as f:
            f.create_dataset("images", data=images, chunks=(1, s, s, 3), compression="gzip")
            str_dataset(f, "ids", ids)
            for key in ("noisy", "gray"):
                if f"input_{key}" in data:
                    f.create_dataset(f"inputs/{key}", data=data[f"input_{key}"],
                                     chunks=(1, s, s, 3), compression="gzip")
            for task in LABEL_TASKS:
                if task not in data:
                    continue
                if task in RGB_TARGETS and data[task] is images:
                    f[f"labels/{task}"] = f["images"]  # hard link: same dataset, stored once
                    continue
                arr = data[task]
                chunks = (1,) + arr.shape[1:] if arr.ndim > 1 else None
                f.create_dataset(f"labels/{task}", data=arr, chunks=chunks,
                                 compression="gzip" if arr.ndim > 1 else None)
            f.attrs["source"] = f"generated:seed={seed}"
            f.attrs["content_sha256"] = content_sha256(ids, images)
            f.attrs["resolution"] = s
            f.attrs["n_images"] = n
            f.attrs["start"] = start
    return Path(path)


def render_split(path: str | os.PathLike[str], n: int, size: int = 64, seed: int = 0,
                 start: int = 0) -> Path:
    """Render scenes ``start .. start+n-1`` of ``seed`` with labels and write them to ``path``."""
    return write_scenes_h5(path, render_batch(n, size, seed, start), seed, start)


def read_scenes_h5(path: str | os.PathLike[str]) -> dict[str, np.ndarray]:
    """Read a file written by :func:`write_scenes_h5` back into the :func:`render_batch` form."""
    from tasksim.io import open_h5

    with open_h5(path) as f:
        out = {"rgb": f["images"][()]}
        for key in f.get("inputs", {}):
            out[f"input_{key}"] = f["inputs"][key][()]
        for key in f["labels"]:
            out[key] = f["labels"][key][()]
    return out
