"""Procedural demo data generator and evaluator (numpy only)."""

import dataclasses

import numpy as np
import pytest

from motioncache import demo_data as dd
from motioncache import evaluate as ev

N_PER_SPLIT = 32  # 64 scenes in all, rendered once per module


def _blur(v: np.ndarray, kernel=(1.0, 2.0, 1.0)) -> np.ndarray:
    """Separable blur over height and width with a symmetric 1-D kernel (normalized here)."""
    k = np.asarray(kernel, np.float32) / np.sum(kernel)
    r = len(k) // 2
    out = v.astype(np.float32)
    for ax in (1, 2):
        pad = [(0, 0)] * out.ndim
        pad[ax] = (r, r)
        p = np.pad(out, pad, mode="edge")
        n = out.shape[ax]
        out = sum(w * p.take(range(i, i + n), ax) for i, w in enumerate(k))
    return out


def _gaussian(sigma: float) -> np.ndarray:
    x = np.arange(-3 * int(np.ceil(sigma)), 3 * int(np.ceil(sigma)) + 1)
    return np.exp(-0.5 * (x / sigma) ** 2)


def _perturb(v: np.ndarray, rng) -> np.ndarray:
    return np.clip(_blur(v) + rng.normal(0, 8, v.shape), 0, 255).astype(np.uint8)


@pytest.fixture(scope="module")
def ground_truth():
    scenes = [dd.sample_scene(np.random.default_rng(100 + i), "train") for i in range(N_PER_SPLIT)]
    scenes += [s for _, s in dd.heldout_captions(N_PER_SPLIT, seed=7)]
    return [(dd.render(s, 33), s) for s in scenes]


@pytest.mark.parametrize("paths", ["short", "large"])
def test_evaluator_on_other_path_styles(paths):
    """short: objects cover the middle of the path for most of the clip, so the temporal median alone keeps
    them; large: objects wider than a third of the path."""
    scenes = [dd.sample_scene(np.random.default_rng(300 + i), paths=paths) for i in range(N_PER_SPLIT)]
    res = ev.evaluate((dd.render(s, 33), s) for s in scenes)
    print(paths, ev.format_report(res))
    assert res["color_acc"] >= 0.95 and res["shape_acc"] >= 0.90 and res["direction_acc"] >= 0.95
    sizes = [s.main.size * 128 / 8 for s in scenes]  # half-extent in latent pixels
    assert (2.1 <= min(sizes) and max(sizes) <= 2.7) if paths == "large" else max(sizes) <= 1.9


def test_deterministic():
    f1, c1, s1 = dd.make_example(42)
    f2, c2, s2 = dd.make_example(42)
    assert np.array_equal(f1, f2) and c1 == c2 and s1 == s2
    f3, c3, _ = dd.make_example(43)
    assert not np.array_equal(f1, f3) or c1 != c3


def test_shapes_and_dtype():
    frames, cap, _ = dd.make_example(0)
    assert frames.shape == (33, 128, 128, 3) and frames.dtype == np.uint8
    frames, _, _ = dd.make_example(0, num_frames=9, height=64, width=96)
    assert frames.shape == (9, 64, 96, 3) and frames.dtype == np.uint8
    assert isinstance(cap, str) and cap.startswith("a ")


def test_captions_use_vocabulary():
    vocab = set(dd.VOCABULARY)
    seconds = 0
    for seed in range(300):
        scene = dd.sample_scene(np.random.default_rng(seed))
        words = dd.caption(scene).split()
        assert set(words) <= vocab
        assert ("small" in words) == (len(scene.objects) == 2)
        seconds += len(scene.objects) == 2
    assert 30 < seconds < 120  # roughly a quarter of scenes have a second object


def test_caption_labels_name_the_main_object_and_the_background():
    for seed in range(200):
        scene = dd.sample_scene(np.random.default_rng(seed))
        labels = dd.caption_labels(dd.caption(scene))
        named = [dd.ATTRIBUTES[k][i] for k, i in zip(dd.ATTRIBUTES, labels)]
        assert named == [scene.main.color, scene.main.shape, scene.main.motion, scene.background]


def test_heldout_split():
    train, held = set(dd.SPLIT_COMBOS["train"]), set(dd.SPLIT_COMBOS["heldout"])
    assert not train & held and train | held == set(dd.COMBOS)
    assert 0.08 < len(held) / len(dd.COMBOS) < 0.25
    for a, b in [(0, 1), (0, 2), (1, 2)]:  # every attribute pair (hence every value) is trained
        assert {(k[a], k[b]) for k in train} == {(k[a], k[b]) for k in dd.COMBOS}
    for seed in range(300):  # held-out combinations never appear in training, not even as second object
        scene = dd.sample_scene(np.random.default_rng(seed), "train")
        assert all((o.color, o.shape, o.motion) in train for o in scene.objects)
    pairs = dd.heldout_captions(50)
    assert len(pairs) == 50 and pairs == dd.heldout_captions(50)
    for cap, scene in pairs:
        assert (scene.main.color, scene.main.shape, scene.main.motion) in held
        assert cap == dd.caption(scene)


@pytest.mark.parametrize("paths", ["long", "short", "large"])
def test_background_static_and_objects_in_view(paths):
    margin = dd.PATH_STYLES[paths].edge_margin
    for seed in range(20):
        frames, _, scene = dd.make_example(seed, num_frames=17, paths=paths)
        bg = dd.render(dataclasses.replace(scene, objects=()), 1)[0]
        yy, xx = np.mgrid[0:128, 0:128] + 0.5
        for f, frame in enumerate(frames):
            t = f / 16
            near = np.zeros((128, 128), bool)
            for o in scene.objects:
                cx, cy = (np.asarray(o.start) + t * np.asarray(o.shift)) * 128
                r = o.size * 128
                for c, d in ((cx, o.shift[0]), (cy, o.shift[1])):
                    m = r * margin if d and margin is not None else r  # "short": a quarter may leave
                    assert m - 1e-6 <= c <= 128 - m + 1e-6
                near |= (np.abs(xx - cx) <= r + 1) & (np.abs(yy - cy) <= r + 1)
            assert np.array_equal(frame[~near], bg[~near])


def test_short_paths_start_anywhere_whatever_the_direction():
    def starts(paths, motion):
        mains = (dd.sample_scene(np.random.default_rng(seed), paths=paths).main for seed in range(3000))
        return np.asarray([m.start[0] for m in mains if m.motion == motion])

    near = lambda xs, x: (np.abs(xs - x) < 0.05).sum()  # noqa: E731
    for x in (0.4, 0.5, 0.6):  # the middle of the frame is a start for both directions ...
        assert near(starts("short", "left"), x) >= 10 and near(starts("short", "right"), x) >= 10
    assert near(starts("long", "left"), 0.5) == near(starts("long", "right"), 0.5) == 0  # ... not with long paths
    for o in (dd.sample_scene(np.random.default_rng(seed), paths="short").main for seed in range(300)):
        if o.motion != "still":  # the object ends away from where it started: the evaluator's two ends differ
            assert np.hypot(*o.shift) > 2 * o.size


def test_evaluator_on_ground_truth(ground_truth):
    res = ev.evaluate(ground_truth)
    print("clean", ev.format_report(res))
    assert res["n"] == 2 * N_PER_SPLIT
    assert res["color_acc"] >= 0.95 and res["shape_acc"] >= 0.90 and res["direction_acc"] >= 0.95
    assert res["flicker"] < 0.5
    assert sum(sum(row.values()) for row in res["confusion"]["shape"].values()) == res["n"]


def test_evaluator_on_perturbed_ground_truth(ground_truth):
    rng = np.random.default_rng(0)
    noisy = [(_perturb(v, rng), s) for v, s in ground_truth]
    res = ev.evaluate(noisy)
    print("perturbed", ev.format_report(res))
    assert res["color_acc"] >= 0.95 and res["shape_acc"] >= 0.90 and res["direction_acc"] >= 0.95
    assert 5 < res["flicker"] < 15  # gaussian noise sigma 8 shows up as flicker of ~9


def test_evaluator_reads_shapes_with_rounded_corners(ground_truth):
    """A blur of sigma 3 px rounds corners as the demo VAE does (a triangle fills ~0.68 of its box instead of 0.5,
    a square ~0.95): shape is still read, because a triangle keeps most of its area below its box's middle."""
    rounded = [(np.clip(_blur(v, _gaussian(3.0)), 0, 255).astype(np.uint8), s) for v, s in ground_truth]
    res = ev.evaluate(rounded)
    print("rounded", ev.format_report(res))
    assert res["shape_acc"] >= 0.95 and res["direction_acc"] >= 0.95  # (colour: small objects blend at the edges)


def test_compare_agreement(ground_truth):
    videos = [v for v, _ in ground_truth[:8]]
    res = ev.compare(videos, videos)
    assert res["color_acc"] == res["shape_acc"] == res["direction_acc"] == 1.0
    assert res["flicker"] == res["flicker_ref"]
    flipped = ev.compare(videos, [v[:, :, ::-1] for v in videos])  # mirrored: left/right swap
    assert flipped["direction_acc"] < 1.0 and flipped["color_acc"] == 1.0
