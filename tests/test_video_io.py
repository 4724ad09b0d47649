"""Real encode/decode tests for motioncache.video_io (no mocks; small frames keep it fast)."""

import io
import struct

import av
import numpy as np
import pytest
from PIL import Image

from motioncache.video_io import (
    FragmentedMp4Writer,
    decode_video,
    read_image,
    read_video,
    split_boxes,
    write_mp4,
)


def smooth_frames(n, h=48, w=64):
    """Smooth gradients moving over time: compressible, so lossy error stays small and meaningful."""
    t = np.arange(n)[:, None, None]
    y = np.arange(h)[None, :, None]
    x = np.arange(w)[None, None, :]
    shape = (n, h, w)
    chans = [128 + 100 * np.sin(x / 10 + t / 3), 128 + 100 * np.cos(y / 8 - t / 4), 128 + 60 * np.sin((x + y) / 15)]
    return np.stack([np.broadcast_to(c, shape) for c in chans], -1).round().astype(np.uint8)


def mae(a, b):
    return np.abs(a.astype(np.int16) - b.astype(np.int16)).mean()


@pytest.mark.parametrize("h,w", [(48, 64), (34, 50)])  # multiple of 16, and merely even
def test_write_mp4_round_trip(tmp_path, h, w):
    frames = smooth_frames(7, h, w)
    path = tmp_path / "out.mp4"
    write_mp4(frames, path, fps=16)
    out = decode_video(path)
    assert out.shape == frames.shape and out.dtype == np.uint8
    assert mae(out, frames) < 8
    assert decode_video(path.read_bytes()).shape == frames.shape  # bytes input too


def test_write_mp4_rejects_bad_input(tmp_path):
    with pytest.raises(ValueError):
        write_mp4(np.zeros((2, 33, 64, 3), np.uint8), tmp_path / "odd.mp4", fps=16)
    with pytest.raises(ValueError):
        write_mp4(np.zeros((2, 32, 64, 3), np.float32), tmp_path / "float.mp4", fps=16)


def test_fragmented_writer_streams_playable_chunks():
    frames = smooth_frames(9)
    bounds = [(0, 1), (1, 5), (5, 9)]  # causal-VAE-like: 1 frame, then 4 per chunk
    writer = FragmentedMp4Writer(64, 48, fps=16)
    assert writer.init_segment is None and writer.mime_type is None

    inits, frags = [], []
    for a, b in bounds:
        init, frag = writer.encode_chunk(frames[a:b])
        inits.append(init)
        frags.append(frag)

    assert all(i == inits[0] for i in inits) and writer.init_segment == inits[0]
    assert [t for t, _ in split_boxes(inits[0])] == ["ftyp", "moov"]
    for frag in frags:
        assert [t for t, _ in split_boxes(frag)] == ["moof", "mdat"]
    assert writer.next_pts == 9 and writer.chunks_written == 3
    assert writer.mime_type.startswith('video/mp4; codecs="avc1.')

    # Fragment sequence numbers (mfhd) count up across the separately opened muxers.
    seqs = [struct.unpack_from(">I", f, f.index(b"mfhd") + 8)[0] for f in frags]
    assert seqs == [1, 2, 3]

    # Init + all fragments: every frame, close to the input.
    full = inits[0] + b"".join(frags)
    out = decode_video(full)
    assert out.shape == frames.shape
    assert mae(out, frames) < 8

    # Every prefix is playable: init + first k fragments decodes to exactly the first chunks.
    for k, (_, b) in enumerate(bounds, start=1):
        prefix = decode_video(inits[0] + b"".join(frags[:k]))
        assert prefix.shape[0] == b
        assert mae(prefix, frames[:b]) < 8

    # Timestamps continue across chunks: one frame period apart, each chunk starts on a keyframe.
    with av.open(io.BytesIO(full)) as c:
        packets = [p for p in c.demux(video=0) if p.pts is not None]
    pts = [p.pts for p in packets]
    step = pts[1] - pts[0]
    assert step > 0 and pts == [i * step for i in range(9)]
    assert [p.dts for p in packets] == pts  # no B-frames: decode order == display order
    assert [i for i, p in enumerate(packets) if p.is_keyframe] == [0, 1, 5]


def test_fragmented_writer_rejects_wrong_size():
    writer = FragmentedMp4Writer(64, 48, fps=16)
    with pytest.raises(ValueError, match="expected 64x48"):
        writer.encode_chunk(smooth_frames(2, 32, 64))


def test_split_boxes():
    def box(t, payload):
        return struct.pack(">I4s", 8 + len(payload), t) + payload

    large = struct.pack(">I4sQ", 1, b"mdat", 16 + 5) + b"12345"  # 64-bit largesize
    normal = box(b"ftyp", b"isom")
    to_end = struct.pack(">I4s", 0, b"free") + b"xyz"  # size 0: runs to the end
    data = normal + large + to_end
    assert split_boxes(data) == [("ftyp", normal), ("mdat", large), ("free", to_end)]
    assert split_boxes(b"") == []
    with pytest.raises(ValueError):
        split_boxes(normal[:-1])  # box claims more bytes than present
    with pytest.raises(ValueError):
        split_boxes(normal + b"\x00\x00")  # trailing partial header


def test_read_image_center_crop_and_resize(tmp_path):
    # 120x40: red | green | blue thirds. A centred square crop sees only green.
    arr = np.zeros((40, 120, 3), np.uint8)
    arr[:, :40, 0] = arr[:, 40:80, 1] = arr[:, 80:, 2] = 255
    png, jpg = tmp_path / "a.png", tmp_path / "a.jpg"
    Image.fromarray(arr).convert("RGBA").save(png)  # alpha must be dropped
    Image.fromarray(arr).save(jpg, quality=95)

    for path in (png, jpg):
        out = read_image(path, 32, 32)
        assert out.shape == (32, 32, 3) and out.dtype == np.uint8
        assert out[..., 1].mean() > 200 and out[..., 0].mean() < 40 and out[..., 2].mean() < 40

    # Wider target keeps more of the width; grayscale input comes back as RGB.
    assert read_image(png, 96, 48)[:, 0, 0].mean() > 200  # left edge reaches the red third
    Image.fromarray(arr[..., 1]).save(tmp_path / "g.png")
    assert read_image(tmp_path / "g.png", 16, 24).shape == (24, 16, 3)


def test_read_video(tmp_path):
    frames = smooth_frames(6, 48, 64)
    path = tmp_path / "v.mp4"
    write_mp4(frames, path, fps=16)
    out = read_video(path, 32, 32)
    assert out.shape == (6, 32, 32, 3) and out.dtype == np.uint8
    # Same crop/resize as images: compare with the center 48x48 of the source, downscaled.
    ref = np.asarray(Image.fromarray(frames[0, :, 8:56]).resize((32, 32), Image.LANCZOS))
    assert mae(out[0], ref) < 10
    assert read_video(path, 32, 16, max_frames=3).shape == (3, 16, 32, 3)


def test_clear_errors(tmp_path):
    missing = tmp_path / "nope.mp4"
    for fn in (decode_video, lambda p: read_video(p, 32, 32), lambda p: read_image(p, 32, 32)):
        with pytest.raises(ValueError, match="nope.mp4") as e:
            fn(missing)
        assert "\n" not in str(e.value)

    junk = tmp_path / "notes.txt"
    junk.write_text("definitely not a video\n" * 50)
    for fn in (decode_video, lambda p: read_video(p, 32, 32), lambda p: read_image(p, 32, 32)):
        with pytest.raises(ValueError, match="notes.txt") as e:
            fn(junk)
        assert "\n" not in str(e.value)

    with pytest.raises(ValueError, match="<bytes>"):
        decode_video(b"\x00" * 100)
