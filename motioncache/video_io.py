"""Video/image I/O: MP4 writing, streaming fragmented MP4 (fMP4) encoding, decoding and loading.

Frames are numpy uint8 arrays [F, H, W, 3] (RGB) everywhere. No torch here on purpose: the
server and tests can use this module without loading the model stack.
"""

from __future__ import annotations

import io
import os
import struct
from fractions import Fraction
from typing import BinaryIO, Union

import av
import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

Source = Union[bytes, bytearray, memoryview, str, os.PathLike, BinaryIO]

# Init-segment boxes; everything after them (moof, mdat, and any sidx/styp) is the fragment.
_INIT_BOXES = {"ftyp", "moov"}
_FMP4_MOVFLAGS = "frag_keyframe+empty_moov+default_base_moof+frag_discont+skip_trailer"
# FFmpeg's tty/bintext demuxers "decode" any text file as ANSI art; that is never a real video.
_TEXT_ART_CODECS = {"ansi", "bintext", "xbin", "idf"}


def _check_frames(frames: np.ndarray, width: int | None = None, height: int | None = None) -> np.ndarray:
    frames = np.asarray(frames)
    if frames.ndim != 4 or frames.shape[-1] != 3 or frames.dtype != np.uint8:
        raise ValueError(f"frames must be uint8 [F, H, W, 3], got {frames.dtype} {frames.shape}")
    if frames.shape[0] == 0:
        raise ValueError("frames is empty")
    h, w = frames.shape[1:3]
    if (width is not None and w != width) or (height is not None and h != height):
        raise ValueError(f"frames are {w}x{h}, expected {width}x{height}")
    if w % 2 or h % 2:  # yuv420p subsamples chroma by 2 in both directions
        raise ValueError(f"width and height must be even for yuv420p, got {w}x{h}")
    return frames


def _time_base(fps) -> Fraction:
    # limit_denominator keeps float rates like 23.976 to a sane timescale.
    return 1 / Fraction(fps).limit_denominator(1001)


def _add_video_stream(container, codec: str, width: int, height: int, fps, gop_size: int | None = None):
    rate = Fraction(fps).limit_denominator(1001)
    stream = container.add_stream(codec, rate=rate)
    stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
    stream.time_base = _time_base(fps)
    stream.codec_context.time_base = _time_base(fps)
    opts = {}
    if codec == "libx264":
        opts = {"crf": "18", "preset": "veryfast"}
    if gop_size is not None:
        stream.codec_context.gop_size = gop_size
    stream.options = opts
    return stream


def _encode(stream, container, frames: np.ndarray, first_pts: int) -> None:
    for i, arr in enumerate(frames):
        frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(arr), format="rgb24")
        frame.pts = first_pts + i
        frame.time_base = stream.codec_context.time_base
        container.mux(stream.encode(frame))
    container.mux(stream.encode())  # flush delayed frames


def write_mp4(frames: np.ndarray, path: str | os.PathLike, fps) -> None:
    """Write frames as a regular H.264 MP4 (libx264, yuv420p, crf 18, veryfast, faststart)."""
    frames = _check_frames(frames)
    _, h, w, _ = frames.shape
    with av.open(os.fspath(path), "w", format="mp4", options={"movflags": "+faststart"}) as container:
        stream = _add_video_stream(container, "libx264", w, h, fps)
        _encode(stream, container, frames, 0)


def split_boxes(data: bytes) -> list[tuple[str, bytes]]:
    """Split MP4 bytes into top-level boxes [(type, box_bytes_including_header)]."""
    data = bytes(data)
    boxes, pos = [], 0
    while pos < len(data):
        if len(data) - pos < 8:
            raise ValueError(f"truncated MP4 box header at offset {pos}")
        size, kind = struct.unpack_from(">I4s", data, pos)
        header = 8
        if size == 1:  # 64-bit largesize follows the type
            if len(data) - pos < 16:
                raise ValueError(f"truncated MP4 largesize header at offset {pos}")
            (size,) = struct.unpack_from(">Q", data, pos + 8)
            header = 16
        elif size == 0:  # box extends to the end of the data
            size = len(data) - pos
        if size < header or pos + size > len(data):
            raise ValueError(f"invalid MP4 box {kind!r} of size {size} at offset {pos}")
        boxes.append((kind.decode("latin-1"), data[pos : pos + size]))
        pos += size
    return boxes


class FragmentedMp4Writer:
    """Streaming encoder: each `encode_chunk` returns a self-contained fMP4 fragment.

    A single long-lived muxer only emits a fragment when the *next* keyframe arrives, so a chunk
    would be delayed by one chunk. Instead every chunk gets a fresh encoder + muxer with identical
    settings (so ftyp+moov is byte-identical), continuing pts, and its own fragment sequence number.
    `init_segment + fragment_1 + ... + fragment_k` is a valid, playable fMP4 for every k.
    """

    def __init__(self, width: int, height: int, fps, codec: str = "libx264", gop_size: int = 250):
        if width % 2 or height % 2:
            raise ValueError(f"width and height must be even for yuv420p, got {width}x{height}")
        self.width, self.height, self.fps, self.codec = width, height, fps, codec
        self.gop_size = gop_size  # constant: it is part of the codec config that lands in moov
        self.next_pts = 0  # in units of 1/fps, continues across chunks
        self.chunks_written = 0
        self._init: bytes | None = None

    @property
    def init_segment(self) -> bytes | None:
        return self._init

    @property
    def mime_type(self) -> str | None:
        """MSE-style type, e.g. 'video/mp4; codecs="avc1.64001e"' (H.264 only; None before init)."""
        if self._init is None:
            return None
        i = self._init.find(b"avcC")
        if i < 0:
            return 'video/mp4'
        profile, compat, level = self._init[i + 5 : i + 8]
        return f'video/mp4; codecs="avc1.{profile:02x}{compat:02x}{level:02x}"'

    def encode_chunk(self, frames: np.ndarray) -> tuple[bytes, bytes]:
        """Encode frames [F, H, W, 3]; return (init_segment, fragment)."""
        frames = _check_frames(frames, self.width, self.height)
        buf = io.BytesIO()
        options = {
            "movflags": _FMP4_MOVFLAGS,
            "fragment_index": str(self.chunks_written + 1),
            "avoid_negative_ts": "disabled",  # keep our continuing timestamps as they are
            "use_editlist": "0",  # an edit list would differ per chunk and break the shared init
        }
        with av.open(buf, "w", format="mp4", options=options) as container:
            stream = _add_video_stream(container, self.codec, self.width, self.height, self.fps, self.gop_size)
            # No B-frames: with them each fresh encoder starts at a dts before the previous
            # fragment's end; also lowers latency. scenecut=0 keeps keyframes at chunk starts only.
            stream.codec_context.max_b_frames = 0
            if self.codec == "libx264":
                stream.options = {**stream.options, "x264-params": "scenecut=0"}
            _encode(stream, container, frames, self.next_pts)

        boxes = split_boxes(buf.getvalue())
        init = b"".join(b for t, b in boxes if t in _INIT_BOXES)
        fragment = b"".join(b for t, b in boxes if t not in _INIT_BOXES)
        if self._init is None:
            self._init = init
        elif init != self._init:  # would make the stream undecodable past this chunk
            raise RuntimeError("fMP4 init segment changed between chunks")
        self.next_pts += len(frames)
        self.chunks_written += 1
        return init, fragment


def _open(src: Source):
    """av.open with a clear one-line ValueError instead of a PyAV traceback."""
    if isinstance(src, (bytes, bytearray, memoryview)):
        name, target = "<bytes>", io.BytesIO(bytes(src))
    elif isinstance(src, (str, os.PathLike)):
        name = target = os.fspath(src)
        if not os.path.isfile(name):
            raise ValueError(f"video file not found: {name}")
    else:
        name, target = getattr(src, "name", "<stream>"), src
    try:
        container = av.open(target, "r")
    except (av.FFmpegError, OSError) as e:
        raise ValueError(f"cannot open video {name}: {e}") from None
    video = container.streams.video
    if not video or video[0].codec_context.name in _TEXT_ART_CODECS:
        container.close()
        raise ValueError(f"no video stream in {name} (not a video file?)")
    return name, container


def _iter_frames(src: Source, max_frames: int | None = None):
    name, container = _open(src)
    n = 0
    with container:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        try:
            for frame in container.decode(stream):
                if max_frames is not None and n >= max_frames:
                    break
                yield frame
                n += 1
        except av.FFmpegError as e:
            raise ValueError(f"cannot decode video {name}: {e}") from None
    if n == 0:
        raise ValueError(f"no decodable frames in {name}")


def decode_video(data_or_path: Source) -> np.ndarray:
    """Decode every frame of an MP4 (bytes, path or file object) to [F, H, W, 3] uint8."""
    return np.stack([f.to_ndarray(format="rgb24") for f in _iter_frames(data_or_path)])


def _fit(img: Image.Image, width: int, height: int) -> np.ndarray:
    # Center crop to the target aspect ratio, then LANCZOS resize: no distortion, no borders.
    return np.asarray(ImageOps.fit(img.convert("RGB"), (width, height), Image.LANCZOS), dtype=np.uint8)


def read_image(src: "str | os.PathLike | bytes", width: int, height: int) -> np.ndarray:
    """Load a PNG/JPEG (path or bytes) as RGB [H, W, 3] uint8, center-cropped and resized to width x height."""
    if isinstance(src, (bytes, bytearray, memoryview)):
        name, target = "<bytes>", io.BytesIO(bytes(src))
    else:
        name = target = os.fspath(src)
        if not os.path.isfile(name):
            raise ValueError(f"image file not found: {name}")
    try:
        with Image.open(target) as img:
            img = ImageOps.exif_transpose(img)  # honour camera orientation
            return _fit(img, width, height)
    except (UnidentifiedImageError, OSError) as e:
        raise ValueError(f"cannot read image {name}: {e}") from None


def read_video(path: Source, width: int, height: int, max_frames: int | None = None) -> np.ndarray:
    """Decode a video (path or bytes) to [F, H, W, 3] uint8, each frame center-cropped and resized to width x height."""
    return np.stack([_fit(f.to_image(), width, height) for f in _iter_frames(path, max_frames)])
