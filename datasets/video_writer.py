"""Writing videos with PyAV: frame by frame (`VideoWriter`) or all at once (`write_video`).

The codec follows the extension (.avi MPEG-4 Part 2, .mp4/.mkv H.264, .webm VP9); the file
appears under its final name only when complete (temporary name, then rename).
"""

from __future__ import annotations

import os
from fractions import Fraction
from pathlib import Path
from types import TracebackType

import numpy as np

CODECS = {".avi": "mpeg4", ".mp4": "libx264", ".mkv": "libx264", ".webm": "libvpx-vp9"}


class VideoWriter:
    """`with VideoWriter(path, fps) as writer: writer.write(frame)` for uint8 RGB (H, W, 3).

    fps may be a Fraction (30000/1001 stays exact) or a number. Frames of odd height or
    width are padded to even ones (one repeated row or column), as 4:2:0 codecs need.
    """

    def __init__(self, path: str | Path, fps: float | Fraction, codec: str | None = None) -> None:
        self.path = Path(path)
        self.codec = codec or CODECS.get(self.path.suffix.lower())
        if self.codec is None:
            raise ValueError(
                f"{self.path}: no default codec for {self.path.suffix!r}; "
                f"pass codec= or use one of {sorted(CODECS)}"
            )
        self.rate = fps if isinstance(fps, Fraction) else Fraction(fps).limit_denominator(1001)
        self._tmp = self.path.with_name(f".{self.path.stem}.tmp{os.getpid()}{self.path.suffix}")
        self._container = None
        self._stream = None
        self.frames = 0

    def __enter__(self) -> VideoWriter:
        import av

        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._container = av.open(str(self._tmp), "w")
        return self

    def write(self, frame: np.ndarray) -> None:
        import av

        if frame.ndim != 3 or frame.shape[-1] != 3 or frame.dtype != np.uint8:
            raise ValueError(f"a frame must be uint8 (H, W, 3), got {frame.dtype} {frame.shape}")
        # 4:2:0 chroma needs even sizes: an odd row or column is padded by repeating the last
        height, width = frame.shape[0] + frame.shape[0] % 2, frame.shape[1] + frame.shape[1] % 2
        if (height, width) != frame.shape[:2]:
            frame = np.pad(
                frame,
                ((0, height - frame.shape[0]), (0, width - frame.shape[1]), (0, 0)),
                mode="edge",
            )
        if self._stream is None:
            self._stream = self._container.add_stream(self.codec, rate=self.rate)
            self._stream.height, self._stream.width = height, width
            self._stream.pix_fmt = "yuv420p"
            if self.codec == "libx264":
                self._stream.options = {"crf": "16", "preset": "veryfast"}
            elif self.codec == "libvpx-vp9":  # constant quality, the fastest encoder setting
                self._stream.options = {"crf": "20", "b": "0", "deadline": "realtime"}
            else:
                self._stream.bit_rate = 4_000_000
        packets = self._stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24"))
        self._container.mux(packets)
        self.frames += 1

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        try:
            if kind is None and self._stream is not None:
                self._container.mux(self._stream.encode())
            self._container.close()
            if kind is None:
                if self._stream is None:
                    raise ValueError(f"{self.path}: no frames were written")
                os.replace(self._tmp, self.path)
        finally:
            self._tmp.unlink(missing_ok=True)


def write_video(
    path: str | Path, frames: np.ndarray, fps: float = 25, codec: str | None = None
) -> None:
    """Encode uint8 RGB frames (T, H, W, 3) to `path`, atomically."""
    if frames.ndim != 4 or frames.shape[-1] != 3 or frames.dtype != np.uint8:
        raise ValueError(f"frames must be uint8 (T, H, W, 3), got {frames.dtype} {frames.shape}")
    with VideoWriter(path, fps, codec) as writer:
        for frame in frames:
            writer.write(frame)
