"""The renderer's TCP framing, without I/O: bytes in, frames out.

voxelsim's ``RendererClient`` writes each message as ``[u32 little-endian length][payload]``
(the payload is bincode; this module never looks inside it). ``FrameParser`` is fed whatever
``recv()`` returned and hands back the complete payloads; a length over the limit, an empty
frame or a stream that ends inside a frame raises ``FrameError`` saying what came.
"""

from __future__ import annotations

import struct

HEADER = struct.Struct("<I")
DEFAULT_MAX_FRAME_BYTES = 64 * 1024 * 1024


class FrameError(ValueError):
    """The sender broke the framing; the connection carrying it must be closed."""


def encode_frame(payload: bytes) -> bytes:
    """One frame as the renderer expects it on the wire (also the binary WebSocket form)."""
    return HEADER.pack(len(payload)) + payload


class FrameParser:
    """Incremental parser of ``[u32 LE length][payload]`` frames.

    Callers: ``feed(data)`` for every chunk received, ``eof()`` when the peer closed.
    After a ``FrameError`` the parser is dead: every later call raises the same error.
    """

    def __init__(self, max_frame_bytes: int = DEFAULT_MAX_FRAME_BYTES):
        if max_frame_bytes < 1:
            raise ValueError(f"max_frame_bytes: expects a positive integer, actual: {max_frame_bytes!r}")
        self.max_frame_bytes = max_frame_bytes
        self._buffer = bytearray()
        self._error: FrameError | None = None

    @property
    def buffered(self) -> int:
        """Bytes received that do not yet make a whole frame."""
        return len(self._buffer)

    def feed(self, data: bytes) -> list[bytes]:
        """Add ``data``; return every frame it completes, oldest first."""
        if self._error is not None:
            raise self._error
        buffer = self._buffer
        buffer += data
        frames = []
        start = 0
        end = len(buffer)
        view = memoryview(buffer)       # slicing a view copies once (a bytearray slice copies twice)
        while end - start >= HEADER.size:
            (length,) = HEADER.unpack_from(buffer, start)
            if length == 0 or length > self.max_frame_bytes:
                self._error = FrameError(
                    "empty frame (length 0)" if length == 0
                    else f"frame of {length} bytes exceeds limit of {self.max_frame_bytes}"
                )
                raise self._error
            if end - start - HEADER.size < length:
                break
            start += HEADER.size
            frames.append(bytes(view[start:start + length]))
            start += length
        view.release()
        if start:
            del buffer[:start]
        return frames

    def eof(self) -> None:
        """The peer closed; raise if it stopped inside a frame."""
        if self._error is not None:
            raise self._error
        if self._buffer:
            have = len(self._buffer)
            if have < HEADER.size:
                message = f"stream ended inside a frame header: got {have} of {HEADER.size} bytes"
            else:
                (length,) = HEADER.unpack_from(self._buffer, 0)
                message = (f"stream ended inside a frame: got {have - HEADER.size} "
                           f"of {length} payload bytes")
            self._error = FrameError(message)
            raise self._error
