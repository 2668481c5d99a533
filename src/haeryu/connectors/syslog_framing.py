"""Syslog over TCP: RFC 6587 framing, without sockets.

A TCP sender frames each message one of two ways, and may mix them on one connection:

- octet counting (RFC 6587 3.4.1): ``MSG-LEN SP SYSLOG-MSG``, e.g. ``11 <13>hello``;
- non-transparent framing (3.4.2): the message ends with LF (CRLF and NUL accepted too).

A frame that starts with a digit is octet counted; any other is read up to the trailer.
:class:`FrameDecoder` takes bytes as they arrive and returns the frames complete so far;
a frame longer than ``max_size`` comes back as a :class:`BadFrame` holding its first
``max_size`` bytes, the rest of it is skipped, and the stream goes on with the next frame.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["BadFrame", "Frame", "FrameDecoder"]

_TRAILERS = (b"\n", b"\x00")
_MAX_DIGITS = 10


@dataclass(frozen=True)
class Frame:
    """One complete syslog message, without its framing."""

    data: bytes


@dataclass(frozen=True)
class BadFrame:
    """Bytes that could not be framed as a message, with the reason."""

    data: bytes
    reason: str


class FrameDecoder:
    """Incremental RFC 6587 decoder for one TCP connection (see the module docstring)."""

    def __init__(self, max_size: int = 64 * 1024) -> None:
        self.max_size = max_size
        self._buf = bytearray()
        self._skip = 0  # bytes still to drop from an octet-counted frame over the limit
        self._skipping_to_trailer = False  # dropping the rest of a too-long LF frame

    def feed(self, data: bytes) -> list[Frame | BadFrame]:
        """Take ``data`` from the socket; return the frames it completed, in order."""
        self._buf += data
        out: list[Frame | BadFrame] = []
        while self._step(out):
            pass
        return out

    def close(self) -> list[Frame | BadFrame]:
        """The connection ended: what is left is a last frame with no trailer, or bad."""
        out: list[Frame | BadFrame] = []
        rest = bytes(self._buf)
        self._buf.clear()
        if self._skip or self._skipping_to_trailer:
            return out
        if rest.strip(b"\r\n\x00 "):
            if rest[:1].isdigit() and b" " in rest[: _MAX_DIGITS + 1]:
                out.append(BadFrame(rest, "connection closed inside an octet-counted frame"))
            else:
                out.append(Frame(rest.rstrip(b"\r")))
        return out

    def _step(self, out: list[Frame | BadFrame]) -> bool:
        buf = self._buf
        if self._skip:
            n = min(self._skip, len(buf))
            del buf[:n]
            self._skip -= n
            return bool(buf) and not self._skip
        if self._skipping_to_trailer:
            end = _find_trailer(buf)
            if end < 0:
                buf.clear()
                return False
            del buf[: end + 1]
            self._skipping_to_trailer = False
            return True
        # Blank lines and stray trailers between frames carry nothing.
        while buf[:1] in (b"\n", b"\r", b"\x00"):
            del buf[:1]
        if not buf:
            return False
        if buf[:1].isdigit():
            return self._octet_counted(out)
        return self._non_transparent(out)

    def _octet_counted(self, out: list[Frame | BadFrame]) -> bool:
        buf = self._buf
        space = buf.find(b" ", 0, _MAX_DIGITS + 1)
        if space < 0:
            if len(buf) <= _MAX_DIGITS and buf.isdigit():
                return False  # the length is still arriving
            # Digits but no length field: a non-transparent frame that starts with digits.
            return self._non_transparent(out)
        digits = bytes(buf[:space])
        if not digits.isdigit() or digits.startswith(b"0"):
            return self._non_transparent(out)
        length = int(digits)
        start = space + 1
        if length > self.max_size:
            head = bytes(buf[start : start + self.max_size])
            if len(buf) - start < self.max_size:
                return False  # wait for the head, so the dead letter shows it
            out.append(
                BadFrame(head, f"frame of {length} bytes exceeds the limit of {self.max_size}")
            )
            taken = min(len(buf) - start, length)
            del buf[: start + taken]
            self._skip = length - taken
            return bool(buf) and not self._skip
        if len(buf) - start < length:
            return False
        out.append(Frame(bytes(buf[start : start + length])))
        del buf[: start + length]
        return True

    def _non_transparent(self, out: list[Frame | BadFrame]) -> bool:
        buf = self._buf
        end = _find_trailer(buf, self.max_size + 2)
        if end < 0:
            if len(buf) > self.max_size + 1:
                out.append(
                    BadFrame(
                        bytes(buf[: self.max_size]),
                        f"line longer than the limit of {self.max_size} bytes",
                    )
                )
                del buf[: self.max_size]
                self._skipping_to_trailer = True
                return True
            return False
        frame = bytes(buf[:end])
        del buf[: end + 1]
        frame = frame.rstrip(b"\r")
        if len(frame) > self.max_size:
            out.append(
                BadFrame(
                    frame[: self.max_size], f"line longer than the limit of {self.max_size} bytes"
                )
            )
        else:
            out.append(Frame(frame))
        return True


def _find_trailer(buf: bytearray, limit: int | None = None) -> int:
    stop = len(buf) if limit is None else min(len(buf), limit)
    found = [i for i in (buf.find(t, 0, stop) for t in _TRAILERS) if i >= 0]
    return min(found) if found else -1
