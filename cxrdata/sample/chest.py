"""Deterministic synthetic chest radiographs (uint8, MIMIC-CXR-JPG display convention) and their anatomy.

Air (lungs, trachea) is dark, bone and soft tissue are bright, the background outside the body is
dark. The picture is drawn as a smooth "density" map at a small working size (at most
``WORK_SIDE`` px), which keeps full-size images cheap: only the upscale and the film noise run at
the final size. Anatomy lives in ``chest_regions.yaml`` as boxes in a chest frame fitted into the
image; the same boxes drive the drawing and :func:`anatomy_boxes`, so a named region always frames
what is drawn there. Findings are drawn inside their canonical box by :mod:`cxrdata.sample.lesions`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache
from importlib import resources

import cv2
import numpy as np

from cxrdata.boxes import Box
from cxrdata.sample import lesions
from cxrdata.yamlfiles import load_yaml

WORK_SIDE = 640  # longest side of the working canvas; larger images are upscaled from it
Finding = tuple[str, Box]  # (pathology, canonical box of the original image)


@cache
def _geometry() -> dict:
    return load_yaml(resources.files("cxrdata.sample").joinpath("chest_regions.yaml").read_text())


def region_names() -> tuple[str, ...]:
    """The 29 Chest ImaGenome anatomical regions (rgrg order), then the 7 extra silver names."""
    data = _geometry()
    return (*data["regions"], *data["extra_regions"])


def frame_regions(cardiomegaly: bool = False) -> dict[str, Box]:
    """Region name -> box in chest-frame coordinates (see ``chest_regions.yaml``)."""
    data = _geometry()
    boxes = {**data["regions"], **data["extra_regions"]}
    if cardiomegaly:
        boxes.update(data["cardiomegaly"])
    return {name: tuple(float(v) for v in box) for name, box in boxes.items()}  # type: ignore[misc]


@dataclass(frozen=True)
class ChestLayout:
    """Where the chest frame sits in a ``width`` x ``height`` image, as a canonical box."""

    width: int
    height: int
    frame: Box

    @classmethod
    def fit(cls, width: int, height: int) -> ChestLayout:
        """The largest frame of the configured aspect that fits; centred across, a little high."""
        spec = _geometry()["frame"]
        frame_h = min(spec["max_height"] * height, spec["max_width"] * width / spec["aspect"])
        frame_w = spec["aspect"] * frame_h
        left = (width - frame_w) / 2
        top = (height - frame_h) * spec["top_share"]
        frame = (left / width, top / height, (left + frame_w) / width, (top + frame_h) / height)
        return cls(width, height, frame)

    def to_image(self, box: Sequence[float]) -> Box:
        """Chest-frame box -> canonical box of the image (may overshoot [0, 1] slightly)."""
        fx0, fy0, fx1, fy1 = self.frame
        fw, fh = fx1 - fx0, fy1 - fy0
        return (fx0 + box[0] * fw, fy0 + box[1] * fh, fx0 + box[2] * fw, fy0 + box[3] * fh)


def anatomy_boxes(width: int, height: int, cardiomegaly: bool = False) -> dict[str, Box]:
    """ImaGenome bbox_name -> canonical box (clipped to [0, 1]) for a frontal image of this size."""
    layout = ChestLayout.fit(width, height)
    out = {}
    for name, box in frame_regions(cardiomegaly).items():
        x0, y0, x1, y1 = layout.to_image(box)
        out[name] = (max(x0, 0.0), max(y0, 0.0), min(x1, 1.0), min(y1, 1.0))
    return out


@dataclass(frozen=True)
class Canvas:
    """The working grid: frame coordinates ``u`` (1 x w) and ``v`` (h x 1) of every pixel centre."""

    width: int
    height: int
    frame_px: Box
    u: np.ndarray
    v: np.ndarray

    @classmethod
    def of(cls, layout: ChestLayout, max_side: int = WORK_SIDE) -> Canvas:
        scale = min(1.0, max_side / max(layout.width, layout.height))
        w, h = max(16, round(layout.width * scale)), max(16, round(layout.height * scale))
        fx0, fy0, fx1, fy1 = layout.frame
        frame_px = (fx0 * w, fy0 * h, fx1 * w, fy1 * h)
        u = (np.arange(w, dtype=np.float32) + 0.5 - frame_px[0]) / (frame_px[2] - frame_px[0])
        v = (np.arange(h, dtype=np.float32) + 0.5 - frame_px[1]) / (frame_px[3] - frame_px[1])
        return cls(w, h, frame_px, u[None, :], v[:, None])

    @property
    def side(self) -> float:
        """Frame width in working pixels (the unit of line widths)."""
        return self.frame_px[2] - self.frame_px[0]

    def points(self, us: np.ndarray, vs: np.ndarray) -> np.ndarray:
        """Frame coordinates -> cv2 polyline points with 4 bits of sub-pixel precision."""
        fx0, fy0, fx1, fy1 = self.frame_px
        xy = np.stack([fx0 + us * (fx1 - fx0), fy0 + vs * (fy1 - fy0)], axis=-1)
        return np.round(xy * 16).astype(np.int32).reshape(-1, 1, 2)

    def polyline(self, layer: np.ndarray, us: np.ndarray, vs: np.ndarray, width: float, value: float) -> None:
        """Draw an anti-aliased polyline of ``width`` (fraction of the frame width) into ``layer``."""
        thickness = max(1, round(width * self.side))
        cv2.polylines(layer, [self.points(us, vs)], False, value, thickness, cv2.LINE_AA, 4)

    def zeros(self) -> np.ndarray:
        return np.zeros((self.height, self.width), np.float32)


def _smooth(x: np.ndarray) -> np.ndarray:
    x = np.clip(x, 0.0, 1.0)
    return x * x * (3 - 2 * x)


def _ellipse(c: Canvas, box: Sequence[float], power: float = 0.4) -> np.ndarray:
    """A filled ellipse inscribed in a frame box, dense in the middle and soft at the rim."""
    x0, y0, x1, y1 = box
    r2 = ((c.u - (x0 + x1) / 2) / ((x1 - x0) / 2)) ** 2 + ((c.v - (y0 + y1) / 2) / ((y1 - y0) / 2)) ** 2
    return np.clip(1.0 - r2, 0.0, 1.0) ** power


def _heart(c: Canvas, box: Box) -> np.ndarray:
    """The heart: an ellipse hanging from the mediastinum, cut at its box (and below by the domes)."""
    x0, y0, x1, y1 = box
    cy, ry = y1 - 0.42 * (y1 - y0), 0.62 * (y1 - y0)
    r2 = ((c.u - (x0 + x1) / 2) / ((x1 - x0) / 2)) ** 2 + ((c.v - cy) / ry) ** 2
    return (np.clip(1.0 - r2, 0.0, 1.0) ** 0.3 * ((c.v > y0) & (c.v < y1))).astype(np.float32)


def _dome(c: Canvas, box: Box) -> np.ndarray:
    """The v of a hemidiaphragm at every u (1 x w): peak mid-box, down to the box bottom at its ends."""
    x0, y0, x1, y1 = box
    return y0 + (y1 - y0) * np.clip(((c.u - (x0 + x1) / 2) / ((x1 - x0) / 2)) ** 2, 0, 1)


def _lung(c: Canvas, lung: Box, dome: Box, lateral_left: bool) -> np.ndarray:
    """A lung field: rounded apex, straight walls, a diaphragm dome below; sharp costophrenic angle."""
    x0, y0, x1, y1 = lung
    lat, med = (x0, x1) if lateral_left else (x1, x0)
    apex = lat + 0.6 * (med - lat)
    t = (c.v - y0) / (y1 - y0)
    grow = np.sqrt(np.clip(1 - (1 - np.clip(t / 0.3, 0, 1)) ** 2, 0, 1))
    lat_edge = apex + (lat - apex) * grow * (0.86 + 0.14 * np.clip(t, 0, 1))
    med_edge = apex + (med - apex) * np.clip(1.3 * grow, 0, 1)
    inside = ((c.u - lat_edge) * (c.u - med_edge) <= 0) & (t >= 0) & (c.v <= _dome(c, dome))
    return inside.astype(np.float32)


def _body(c: Canvas) -> tuple[np.ndarray, np.ndarray]:
    """Neck, shoulders and trunk: (mask, thickness), thickest in the midline."""
    half = np.interp(c.v, [-1.0, 0.0, 0.03, 0.12, 0.35, 0.7, 0.95, 2.0],
                     [0.12, 0.12, 0.3, 0.47, 0.5, 0.51, 0.48, 0.44])
    off = np.abs(c.u - 0.5)
    mask = np.clip((half - off) / 0.02, 0.0, 1.0).astype(np.float32)
    thickness = np.sqrt(np.clip(1.0 - (off / half) ** 2, 0.0, 1.0)).astype(np.float32)
    return mask, thickness


def _mediastinum(c: Canvas, r: dict[str, Box]) -> np.ndarray:
    """The midline column from the neck to the heart, with the SVC and aortic knob borders."""
    svc, arch = r["svc"], r["aortic arch"]
    left = np.interp(c.v, [0.0, 0.1, svc[1], svc[3], 0.5, 0.8], [0.44, 0.43, svc[0], svc[0], 0.39, 0.39])
    right = np.interp(c.v, [0.0, 0.1, arch[1], (arch[1] + arch[3]) / 2, arch[3], 0.45, 0.8],
                      [0.56, 0.57, 0.58, arch[2], 0.59, 0.6, 0.6])
    heart = r["cardiac silhouette"]
    return ((c.u > left) & (c.u < right) & (c.v < (heart[1] + heart[3]) / 2)).astype(np.float32)


def _spine(c: Canvas, box: Box) -> np.ndarray:
    """Vertebral column: brighter in the middle, with faint disc spaces."""
    x0, _, x1, _ = box
    across = np.clip(1 - ((c.u - (x0 + x1) / 2) / ((x1 - x0) / 2)) ** 2, 0, 1)
    discs = 0.85 + 0.15 * np.cos(2 * np.pi * c.v / 0.062)
    return (across * discs).astype(np.float32)


def _bones(c: Canvas, r: dict[str, Box], rng: np.random.Generator) -> np.ndarray:
    """Clavicles and ribs as blurred anti-aliased curves."""
    layer = c.zeros()
    s = np.linspace(0.0, 1.0, 16)
    for side in ("right", "left"):
        x0, y0, x1, y1 = r[f"{side} clavicle"]
        medial, lateral = (x1, x0) if side == "right" else (x0, x1)
        us = medial + (lateral - medial) * s
        vs = y0 + (y1 - y0) * (0.78 - 0.6 * s + 0.12 * np.sin(np.pi * s))
        c.polyline(layer, us, vs, 0.3 * (y1 - y0), 0.22)
        sign = -1.0 if side == "right" else 1.0
        phase = rng.uniform(-0.01, 0.01)
        for i in range(9):
            start = 0.09 + 0.07 * i + phase
            us = 0.5 + sign * (0.04 + 0.43 * s)  # posterior ribs: up from the spine, then down laterally
            vs = start - 0.04 * s + 0.16 * s**2.2
            c.polyline(layer, us, vs, 0.02, 0.075)
            if i < 6:  # anterior ribs, fainter, run down towards the midline
                ua = 0.5 + sign * (0.45 - 0.28 * s)
                va = start + 0.1 + 0.1 * s
                c.polyline(layer, ua, va, 0.016, 0.05)
    return cv2.GaussianBlur(layer, (0, 0), max(0.6, c.side / 500))


def _vessels(c: Canvas, r: dict[str, Box], rng: np.random.Generator) -> np.ndarray:
    """Lung markings: tapering, gently curved vessels radiating from each hilum, with side branches."""
    layer = c.zeros()
    for side, base in (("right", np.pi), ("left", 0.0)):
        hx0, hy0, hx1, hy1 = r[f"{side} hilar structures"]
        cu, cv = (hx0 + hx1) / 2, (hy0 + hy1) / 2
        for angle in base + rng.uniform(-1.4, 1.4, 18):
            length = rng.uniform(0.1, 0.3)
            a = angle + rng.uniform(-0.5, 0.5) * np.linspace(0.0, 1.0, 9)
            us = cu + np.concatenate([[0.0], np.cumsum(np.cos(a[1:]))]) * length / 8
            vs = cv + np.concatenate([[0.0], np.cumsum(np.sin(a[1:]))]) * length / 8
            for k, width in ((0, 0.006), (3, 0.004), (6, 0.0025)):
                c.polyline(layer, us[k : k + 4], vs[k : k + 4], width, 0.05 - 0.01 * k / 3)
            k = int(rng.integers(2, 6))
            branch = a[k] + rng.choice([-0.7, 0.7])
            step = np.arange(5) * length / 12
            c.polyline(layer, us[k] + np.cos(branch) * step, vs[k] + np.sin(branch) * step, 0.0025, 0.035)
    return cv2.GaussianBlur(layer, (0, 0), max(0.6, c.side / 600))


def _texture(c: Canvas, rng: np.random.Generator, cells: int = 7) -> np.ndarray:
    """Smooth random field in about [-1, 1] (low-frequency unevenness)."""
    grid = rng.uniform(-1.0, 1.0, (cells, cells)).astype(np.float32)
    return cv2.resize(grid, (c.width, c.height), interpolation=cv2.INTER_CUBIC)


def _display(density: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Density -> display value in [0, 1]: film-like saturation, a random exposure per image."""
    gain = rng.uniform(0.6, 1.0)
    shown = (1.0 - np.exp(-gain * np.clip(density, 0.0, None))) / (1.0 - np.exp(-gain * 1.25))
    return np.clip(0.02 + 0.96 * shown, 0.0, 1.0).astype(np.float32)


def _finish(shown: np.ndarray, width: int, height: int, rng: np.random.Generator) -> np.ndarray:
    """Upscale to the final size, add mild film grain (triangular, sd ~1.6 grey levels), quantise."""
    if shown.shape != (height, width):
        shown = cv2.resize(shown, (width, height), interpolation=cv2.INTER_CUBIC)
    grain = np.frombuffer(rng.bytes(width * height), np.uint8).reshape(height, width)
    noise = (grain & 15).astype(np.float32) + (grain >> 4).astype(np.float32) - 15.0
    return cv2.addWeighted(shown.astype(np.float32), 255.0, noise, 0.25, 0.0, dtype=cv2.CV_8U)


def render_chest(
    width: int,
    height: int,
    rng: np.random.Generator,
    findings: Sequence[Finding] = (),
    cardiomegaly: bool = False,
) -> np.ndarray:
    """A frontal (PA/AP) chest radiograph, ``height`` x ``width`` uint8, with findings in their boxes.

    ``findings``: (pathology, canonical box) pairs; each is drawn inside its box only. A Cardiomegaly
    finding (or ``cardiomegaly=True``) enlarges the heart to ``anatomy_boxes(..., cardiomegaly=True)``.
    """
    cardiomegaly = cardiomegaly or any(name == "Cardiomegaly" for name, _ in findings)
    layout = ChestLayout.fit(width, height)
    c = Canvas.of(layout)
    r = frame_regions(cardiomegaly)
    body, thickness = _body(c)
    lungs = np.maximum(
        _lung(c, r["right lung"], r["right hemidiaphragm"], lateral_left=True),
        _lung(c, r["left lung"], r["left hemidiaphragm"], lateral_left=False),
    )
    domes = np.where(c.u < 0.5, _dome(c, r["right hemidiaphragm"]), _dome(c, r["left hemidiaphragm"]))
    heart = _heart(c, r["cardiac silhouette"]) * (c.v < domes)
    mediastinum = cv2.GaussianBlur(_mediastinum(c, r), (0, 0), max(1.0, c.side / 120))
    hila = _ellipse(c, r["right hilar structures"], 1.0) + _ellipse(c, r["left hilar structures"], 1.0)
    trachea = _ellipse(c, r["trachea"], 0.5) * (c.v < r["carina"][3]) * (np.abs(c.u - 0.5) < 0.02)
    below_domes = (c.v > domes) * body
    bubble = _ellipse(c, (0.62, 0.8, 0.74, 0.85), 0.5) if rng.random() < 0.7 else 0.0
    shade = 1.0 - 0.25 * np.clip((c.v - 0.1) / 0.7, 0, 1)  # less aerated towards the bases
    density = (
        body * (0.4 + 0.2 * thickness)
        - 0.36 * lungs * shade * (1 - 0.6 * heart) * (1 - 0.5 * mediastinum)
        + 0.2 * mediastinum + 0.22 * heart + 0.1 * hila
        + 0.14 * _spine(c, r["spine"]) * body * (1 - 0.5 * heart)
        - 0.2 * trachea + 0.06 * below_domes - 0.15 * bubble
        + 0.03 * _texture(c, rng) * body
    )
    density = cv2.GaussianBlur(density.astype(np.float32), (0, 0), max(0.7, c.side / 260))
    lung_soft = cv2.GaussianBlur(lungs, (0, 0), max(0.7, c.side / 260))
    # Findings draw from their own stream, so the same rng gives the same anatomy with or without them.
    delta, suppress = lesions.draw(c, findings, lung_soft, np.random.default_rng(int(rng.integers(2**62))))
    ribs = _bones(c, r, rng) * body * (0.4 + 0.6 * lung_soft) * (1 - 0.7 * mediastinum)
    density += ribs + _vessels(c, r, rng) * lung_soft * (1 - suppress) + delta
    return _finish(_display(density, rng), width, height, rng)


def render_lateral(width: int, height: int, rng: np.random.Generator) -> np.ndarray:
    """A lateral chest radiograph (patient facing image left): overlapping lungs, heart, spine, sternum."""
    c = Canvas.of(ChestLayout.fit(width, height))
    body = np.clip((1 - ((c.u - 0.5) / 0.52) ** 2 - ((c.v - 0.55) / 0.7) ** 2) / 0.05, 0, 1)
    arms = _ellipse(c, (0.12, -0.15, 0.8, 0.22), 0.6)
    dome_front = 0.7 + 0.12 * ((c.u - 0.5) / 0.35) ** 2
    dome_back = dome_front + 0.05
    lungs = _ellipse(c, (0.2, 0.07, 0.84, 0.86), 0.3) * (c.v < dome_back)
    lungs = lungs * np.where(c.v > dome_front, 0.5, 1.0)
    heart = _ellipse(c, (0.17, 0.46, 0.5, 0.78), 0.5)
    column = c.zeros()
    for k in range(17):  # vertebral bodies, posterior
        top = 0.04 + 0.067 * k
        corners = c.points(np.array([0.73, 0.86]), np.array([top, top + 0.054])) // 16
        cv2.rectangle(column, tuple(corners[0, 0]), tuple(corners[1, 0]), 1.0, -1)
    column = cv2.GaussianBlur(column, (0, 0), max(1.0, c.side / 150))
    bones = c.zeros()
    c.polyline(bones, np.array([0.13, 0.16, 0.19]), np.array([0.16, 0.36, 0.58]), 0.025, 0.1)  # sternum
    airway = c.zeros()
    c.polyline(airway, np.array([0.45, 0.49, 0.53]), np.array([-0.05, 0.15, 0.36]), 0.05, 1.0)
    airway = cv2.GaussianBlur(airway, (0, 0), max(1.0, c.side / 150))
    density = (
        body * 0.55 + 0.25 * arms * body - 0.4 * lungs * (1 - 0.7 * heart) + 0.26 * heart
        + 0.2 * column * body + bones - 0.12 * airway * body + 0.03 * _texture(c, rng) * body
    )
    density = cv2.GaussianBlur(density.astype(np.float32), (0, 0), max(0.7, c.side / 220))
    return _finish(_display(density, rng), width, height, rng)
