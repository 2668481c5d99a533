"""A fast MQTT 3.1.1 QoS 1 publisher for load tests and benchmarks.

paho-mqtt publishes a few thousand QoS 1 messages a second on this machine (one Python
call, lock and wake-up per message); to measure a connector at 10k+ messages/s, the load
must come from something cheaper.  This writes PUBLISH packets straight to the socket in
batches, keeps up to ``window`` of them unacknowledged, and counts the PUBACKs: a message
is published once mosquitto acknowledged it (and so owes it to every QoS 1 subscriber).
"""

from __future__ import annotations

import socket
import struct
import time
from collections.abc import Callable

__all__ = ["publish_qos1"]


def _remaining_length(n: int) -> bytes:
    out = bytearray()
    while True:
        n, digit = divmod(n, 128)
        out.append(digit | (0x80 if n else 0))
        if not n:
            return bytes(out)


def _packet(first: int, body: bytes) -> bytes:
    return bytes([first]) + _remaining_length(len(body)) + body


def _string(s: bytes) -> bytes:
    return struct.pack(">H", len(s)) + s


def _connect(client_id: str) -> bytes:
    body = _string(b"MQTT") + bytes([4, 0x02]) + struct.pack(">H", 60) + _string(client_id.encode())
    return _packet(0x10, body)


def _recv_exact(sock: socket.socket, n: int) -> bytes:
    data = b""
    while len(data) < n:
        chunk = sock.recv(n - len(data))
        if not chunk:
            raise ConnectionError("the MQTT broker closed the connection")
        data += chunk
    return data


def publish_qos1(
    host: str,
    port: int,
    count: int,
    topic: Callable[[int], str],
    payload: Callable[[int], bytes],
    *,
    client_id: str = "haeryu-bench-publisher",
    window: int = 2_000,
    rate: float | None = None,
) -> float:
    """Publish ``count`` QoS 1 messages; return once all are acknowledged (seconds taken).

    ``topic(i)`` and ``payload(i)`` build message ``i`` (called when it is sent, so a
    payload may carry its send time).  ``rate`` (messages/s) paces the sending; without
    it the publisher sends as fast as mosquitto acknowledges.
    """
    sock = socket.create_connection((host, port), timeout=30)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    try:
        sock.sendall(_connect(client_id))
        connack = _recv_exact(sock, 4)
        if connack[0] != 0x20 or connack[3] != 0:
            raise ConnectionError(f"MQTT CONNECT refused: {connack!r}")
        start = time.monotonic()
        sent = acked = 0
        pending = b""
        while acked < count:
            room = min(window - (sent - acked), count - sent)
            if rate is not None:
                due = int((time.monotonic() - start) * rate) + 1
                room = min(room, max(0, due - sent))
            if room > 0:
                parts = []
                for i in range(sent, sent + room):
                    pid = i % 65_535 + 1
                    body = _string(topic(i).encode()) + struct.pack(">H", pid) + payload(i)
                    parts.append(_packet(0x32, body))
                sock.sendall(b"".join(parts))
                sent += room
            if sent - acked == 0:
                time.sleep(0.0005)  # paced and caught up: wait for the next message's turn
                continue
            sock.settimeout(30 if rate is None or sent == count else 0.001)
            try:
                data = pending + sock.recv(65_536)
            except TimeoutError:
                continue
            if len(data) == len(pending):
                raise ConnectionError("the MQTT broker closed the connection")
            whole = len(data) // 4 * 4
            for off in range(0, whole, 4):
                if data[off] != 0x40:
                    raise ConnectionError(f"expected PUBACK, got packet type {data[off] >> 4}")
            acked += whole // 4
            pending = data[whole:]
        sock.sendall(b"\xe0\x00")  # DISCONNECT
        return time.monotonic() - start
    finally:
        sock.close()
