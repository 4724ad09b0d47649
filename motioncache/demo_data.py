"""Procedural "moving shapes" text-to-video data: seeded scenes, a renderer, captions and a held-out split.

A scene is resolution- and length-agnostic: positions, sizes and the total displacement over the clip are
fractions of the frame, so the same scene can be rendered at any size and frame count (the object always
covers the same path from the first to the last frame).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, replace

import numpy as np

# Saturated object colours, far (RGB distance >= 108) from each other and (>= 120) from every background.
OBJECT_COLORS = {
    "red": (215, 25, 25),
    "green": (40, 190, 60),
    "blue": (40, 90, 240),
    "yellow": (240, 230, 40),
    "purple": (200, 60, 220),
    "orange": (250, 130, 0),
    "cyan": (40, 210, 220),
}
# Low-saturation backgrounds; textures only shift their brightness a little (see TEXTURE_AMPLITUDE).
BACKGROUND_COLORS = {
    "grey": (120, 120, 120),
    "black": (20, 20, 20),
    "navy": (20, 30, 80),
    "beige": (215, 200, 165),
    "white": (235, 235, 235),
}
SHAPES = ("circle", "square", "triangle")
DIRECTIONS = {
    "left": (-1, 0), "right": (1, 0), "up": (0, -1), "down": (0, 1),
    "up-left": (-1, -1), "up-right": (1, -1), "down-left": (-1, 1), "down-right": (1, 1),
}
OPPOSITE = {d: next(k for k, v in DIRECTIONS.items() if v == (-x, -y)) for d, (x, y) in DIRECTIONS.items()}
MOTIONS = (*DIRECTIONS, "still")
TEXTURES = ("none", "stripes", "checker", "blobs", "gradient")
VOCABULARY = sorted({"a", "small", "and", "moves", "stays", "still", "over", "background",
                     *OBJECT_COLORS, *SHAPES, *MOTIONS, *BACKGROUND_COLORS})

MAIN_SIZE = (12 / 128, 15 / 128)     # half-extent, fraction of min(H, W): 3-4 latent pixels across
SECOND_SIZE = (4 / 128, 5.5 / 128)   # always clearly smaller than the main object
TEXTURE_AMPLITUDE = (8.0, 16.0)      # brightness offset; stays well below the evaluator's thresholds
SECOND_OBJECT_PROB = 0.25
HELDOUT_PERCENT = 15
SPLIT_SALT = "0"  # chosen so every (color, shape), (color, motion) and (shape, motion) pair is trained
SUPERSAMPLE = 4                      # anti-aliased edges look more like real (VAE-decoded) video


@dataclass(frozen=True)
class PathStyle:
    """Per-axis displacement over the clip (fractions of the frame), how near the edge a moving object's
    centre may come, as a multiple of its half-extent (None: the whole shape stays in view), and the main
    object's size range."""
    axis_shift: tuple[float, float]
    diag_shift: tuple[float, float]
    edge_margin: float | None
    main_size: tuple[float, float] = MAIN_SIZE


PATH_STYLES = {
    # Long enough that no pixel is covered for half of the clip (the evaluator's temporal median is pure
    # background), short enough to stay in view. But then the start gives the direction away: every
    # right-mover starts in the left fifth, every left-mover in the right fifth (docs/demo.md).
    "long": PathStyle((0.55, 0.72), (0.50, 0.62), None),
    # Starts decoupled from the direction: every start in the middle half of the frame occurs with every
    # direction; up to a quarter of a moving object may leave the frame. Still longer than an object is wide
    # (the evaluator's two-ends background).
    "short": PathStyle((0.30, 0.40), (0.26, 0.34), 0.5),
    # A larger main object (4-5 latent pixels, 2-2.6 tokens across: its shape is more than sub-token detail) on
    # long paths shortened so it stays in view (docs/demo.md).
    "large": PathStyle((0.50, 0.64), (0.45, 0.56), None, (17 / 128, 21 / 128)),
}
SHIPPED_PATHS = "large"  # the style the shipped demo model is trained on, so also what `evaluate` judges it on


@dataclass(frozen=True)
class SceneObject:
    shape: str
    color: str
    motion: str
    size: float                      # half-extent, fraction of min(H, W)
    start: tuple[float, float]       # centre (x, y) at the first frame, fractions of (W, H)
    shift: tuple[float, float]       # total (dx, dy) from first to last frame, fractions of (W, H)


@dataclass(frozen=True)
class Scene:
    objects: tuple[SceneObject, ...]  # objects[0] is the main (larger) object, drawn on top
    background: str
    texture: str
    region: tuple[float, float, float, float]  # textured rectangle (x0, y0, x1, y1), fractions
    amplitude: float
    period: float
    angle: float                     # degrees, stripes/gradient orientation
    texture_seed: int

    @property
    def main(self) -> SceneObject:
        return self.objects[0]


def split_of(color: str, shape: str, motion: str) -> str:
    """Fixed hash of the main object's combination: ~15% of combinations are held out of training."""
    h = int(hashlib.sha256(f"{SPLIT_SALT}|{color}|{shape}|{motion}".encode()).hexdigest()[:8], 16)
    return "heldout" if h % 100 < HELDOUT_PERCENT else "train"


COMBOS = [(c, s, m) for c in OBJECT_COLORS for s in SHAPES for m in MOTIONS]
SPLIT_COMBOS = {sp: [k for k in COMBOS if split_of(*k) == sp] for sp in ("train", "heldout")}


def _sample_object(rng, combo, size_range, paths: str = "long") -> SceneObject:
    color, shape, motion = combo
    style = PATH_STYLES[paths]
    size = float(rng.uniform(*size_range))
    ux, uy = DIRECTIONS.get(motion, (0, 0))
    mag = float(rng.uniform(*(style.diag_shift if ux and uy else style.axis_shift)))
    shift = (ux * mag, uy * mag)
    # The whole shape stays in view, except along a moving axis where the style lets it touch the edge.
    margins = [size * style.edge_margin if d and style.edge_margin is not None else size + 0.01 for d in shift]
    start = tuple(float(rng.uniform(max(m, m - d), min(1 - m, 1 - m - d))) for d, m in zip(shift, margins))
    return SceneObject(shape, color, motion, size, start, shift)


def _path(obj: SceneObject, n: int = 17) -> np.ndarray:
    t = np.linspace(0, 1, n)[:, None]
    return np.asarray(obj.start) + t * np.asarray(obj.shift)


def _sample_second(rng, main: SceneObject, paths: str) -> SceneObject | None:
    """Smaller object from a training combination whose swept path never touches the main one's."""
    want_still = rng.random() < 0.5
    cands = [k for k in SPLIT_COMBOS["train"] if k[0] != main.color and (k[2] == "still") == want_still]
    for _ in range(100):
        obj = _sample_object(rng, cands[rng.integers(len(cands))], SECOND_SIZE, paths)
        gap = np.linalg.norm(_path(main)[:, None] - _path(obj)[None], axis=-1).min()
        if gap > (main.size + obj.size) * np.sqrt(2) + 0.03:
            return obj
    return None


def sample_scene(rng: np.random.Generator, split: str = "train", paths: str = "long") -> Scene:
    combos = SPLIT_COMBOS[split]
    main = _sample_object(rng, combos[rng.integers(len(combos))], PATH_STYLES[paths].main_size, paths)
    second = _sample_second(rng, main, paths) if rng.random() < SECOND_OBJECT_PROB else None
    texture = TEXTURES[0] if rng.random() < 0.2 else TEXTURES[rng.integers(1, len(TEXTURES))]
    # Textured part covers at most ~55% of the frame, so the dominant colour stays the flat base colour.
    w = float(rng.uniform(0.35, 0.8))
    h = min(float(rng.uniform(0.35, 0.8)), 0.55 / w)
    x0, y0 = float(rng.uniform(0, 1 - w)), float(rng.uniform(0, 1 - h))
    return Scene(
        objects=(main,) if second is None else (main, second),
        background=list(BACKGROUND_COLORS)[rng.integers(len(BACKGROUND_COLORS))],
        texture=texture,
        region=(x0, y0, x0 + w, y0 + h),
        amplitude=float(rng.uniform(*TEXTURE_AMPLITUDE)),
        period=float(rng.uniform(0.05, 0.12)),
        angle=float(rng.choice([0.0, 45.0, 90.0, 135.0])),
        texture_seed=int(rng.integers(2**31)),
    )


def _texture(scene: Scene, u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Pattern in [-1, 1], roughly zero-mean so the base colour stays the median background colour."""
    a = np.deg2rad(scene.angle)
    p = scene.period
    x0, y0, x1, y1 = scene.region
    if scene.texture == "stripes":
        return np.sign(np.sin(2 * np.pi * (u * np.cos(a) + v * np.sin(a)) / p))
    if scene.texture == "checker":
        return np.sign(np.sin(np.pi * u / p) * np.sin(np.pi * v / p))
    if scene.texture == "gradient":
        proj = (u - (x0 + x1) / 2) * np.cos(a) + (v - (y0 + y1) / 2) * np.sin(a)
        return proj / max((abs(x1 - x0) * abs(np.cos(a)) + abs(y1 - y0) * abs(np.sin(a))) / 2, 1e-6)
    if scene.texture == "blobs":
        trng = np.random.default_rng(scene.texture_seed)
        pat = np.zeros_like(u)
        for i in range(6):
            cx, cy = trng.uniform(x0, x1), trng.uniform(y0, y1)
            sig = trng.uniform(0.04, 0.12)
            pat += (-1) ** i * np.exp(-((u - cx) ** 2 + (v - cy) ** 2) / (2 * sig**2))
        return pat / max(np.abs(pat).max(), 1e-6)
    return np.zeros_like(u)


def _background(scene: Scene, height: int, width: int) -> np.ndarray:
    img = np.empty((height, width, 3), np.float32)
    img[:] = BACKGROUND_COLORS[scene.background]
    if scene.texture == "none":
        return img
    v, u = np.mgrid[0:height, 0:width].astype(np.float32)
    u, v = (u + 0.5) / width, (v + 0.5) / height
    x0, y0, x1, y1 = scene.region
    inside = (u >= x0) & (u < x1) & (v >= y0) & (v < y1)
    img += (scene.amplitude * np.clip(_texture(scene, u, v), -1, 1) * inside)[..., None]
    return img


def _coverage(shape: str, cx: float, cy: float, s: float, height: int, width: int):
    """Anti-aliased coverage of one shape, computed only on its bounding box."""
    x0, x1 = max(int(np.floor(cx - s - 1)), 0), min(int(np.ceil(cx + s + 1)), width)
    y0, y1 = max(int(np.floor(cy - s - 1)), 0), min(int(np.ceil(cy + s + 1)), height)
    if x1 <= x0 or y1 <= y0:
        return None
    off = (np.arange(SUPERSAMPLE) + 0.5) / SUPERSAMPLE
    X = (np.arange(x0, x1)[:, None] + off).ravel()[None, :] - cx
    Y = (np.arange(y0, y1)[:, None] + off).ravel()[:, None] - cy
    if shape == "circle":
        inside = X**2 + Y**2 <= s**2
    elif shape == "square":
        inside = (np.abs(X) <= s) & (np.abs(Y) <= s)
    else:  # upward triangle, base 2s and height 2s (fills half its bounding box)
        inside = (Y <= s) & (np.abs(X) <= (Y + s) / 2)
    cov = inside.reshape(y1 - y0, SUPERSAMPLE, x1 - x0, SUPERSAMPLE).mean(axis=(1, 3))
    return (slice(y0, y1), slice(x0, x1)), cov[..., None]


def render(scene: Scene, num_frames: int, height: int = 128, width: int = 128) -> np.ndarray:
    """uint8 [F, H, W, 3] RGB; the background is identical in every frame."""
    bg = _background(scene, height, width)
    out = np.empty((num_frames, height, width, 3), np.uint8)
    for f in range(num_frames):
        t = f / (num_frames - 1) if num_frames > 1 else 0.0
        img = bg.copy()
        for obj in reversed(scene.objects):  # main object last, i.e. on top
            cx = (obj.start[0] + t * obj.shift[0]) * width
            cy = (obj.start[1] + t * obj.shift[1]) * height
            hit = _coverage(obj.shape, cx, cy, obj.size * min(height, width), height, width)
            if hit is not None:
                box, cov = hit
                img[box] = img[box] * (1 - cov) + np.asarray(OBJECT_COLORS[obj.color], np.float32) * cov
        out[f] = np.clip(np.rint(img), 0, 255)
    return out


def object_mask(scene: Scene, video: np.ndarray, threshold: float = 24.0) -> np.ndarray:
    """bool [F, H, W]: pixels where an object covers the scene's static background."""
    bg = _background(scene, video.shape[1], video.shape[2])
    return np.abs(video.astype(np.float32) - np.clip(np.rint(bg), 0, 255)).max(axis=-1) > threshold


def _phrase(obj: SceneObject) -> str:
    return f"{obj.color} {obj.shape} " + ("stays still" if obj.motion == "still" else f"moves {obj.motion}")


def caption(scene: Scene) -> str:
    text = "a " + _phrase(scene.main)
    for obj in scene.objects[1:]:
        text += " and a small " + _phrase(obj)
    return text + f" over a {scene.background} background"


# What a caption says about the main object and the background, as class indices (caption_labels): the demo
# trainer teaches its text encoder to carry each of them in every token's state (demo_train_transformer.py).
ATTRIBUTES = {"colour": tuple(OBJECT_COLORS), "shape": SHAPES, "motion": MOTIONS,
              "background": tuple(BACKGROUND_COLORS)}


def caption_labels(text: str) -> tuple[int, int, int, int]:
    """(colour, shape, motion, background) indices into ATTRIBUTES of a caption written by `caption`."""
    w = text.split()
    motion = w[4] if w[3] == "moves" else "still"
    values = (w[1], w[2], motion, w[-2])
    return tuple(ATTRIBUTES[k].index(v) for k, v in zip(ATTRIBUTES, values))


def make_example(seed: int, num_frames: int = 33, height: int = 128, width: int = 128,
                 split: str = "train", paths: str = "long") -> tuple[np.ndarray, str, Scene]:
    scene = sample_scene(np.random.default_rng(seed), split, paths)
    return render(scene, num_frames, height, width), caption(scene), scene


def free_start(obj: SceneObject, share: float, rng: np.random.Generator) -> SceneObject:
    """The same object and direction, its path cut to `share`, its start anywhere in the frame (it may leave
    the frame): where it starts then says nothing about where it goes, only the caption's motion word does."""
    m = obj.size + 0.01
    start = tuple(float(v) for v in rng.uniform(m, 1 - m, size=2))
    return replace(obj, start=start, shift=tuple(share * d for d in obj.shift))


def word_scene(rng: np.random.Generator, paths: str = "long", path_share: float = 0.5) -> Scene:
    """A "word" scene (docs/demo.md): one moving object (never still) on a flat background, free start."""
    while True:
        scene = sample_scene(rng, "train", paths)
        if scene.main.motion != "still":
            return replace(scene, objects=(free_start(scene.main, path_share, rng),), texture="none")


def heldout_captions(n: int = 50, seed: int = 12345, paths: str = "long") -> list[tuple[str, Scene]]:
    """n (caption, scene) pairs whose main (color, shape, motion) never occurs in training."""
    rng = np.random.default_rng(seed)
    scenes = [sample_scene(rng, "heldout", paths) for _ in range(n)]
    return [(caption(s), s) for s in scenes]
