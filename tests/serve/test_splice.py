"""The byte relay of proxied WebSockets: frame accounting from headers alone (checked against
frames a real WebSocket library builds, fed in every split), and real clients through it."""

from __future__ import annotations

import ssl
from pathlib import Path

import pytest
from websockets.exceptions import ConnectionClosed
from websockets.frames import Frame, Opcode
from websockets.sync.client import connect

from devcert.serve.splice import FrameCounter
from tests.helpers import UNIT, RawUpstream, make_server, ws_answer, ws_upstream


def frames(messages: list[bytes], *, mask: bool, fragment: int | None = None) -> bytes:
    """The bytes of ``messages`` as the websockets library frames them (client frames masked)."""
    out = b""
    for message in messages:
        parts = [message] if fragment is None else [message[i:i + fragment] for i in range(0, len(message), fragment)] or [b""]
        for index, part in enumerate(parts):
            opcode = Opcode.BINARY if index == 0 else Opcode.CONT
            out += Frame(opcode, part, fin=index == len(parts) - 1).serialize(mask=mask)
    return out


@pytest.mark.parametrize("mask", [True, False])
@pytest.mark.parametrize("split", [1, 3, 7, 1000, 10 ** 9])
def test_frame_counter_follows_frames_in_any_split(mask: bool, split: int) -> None:
    sizes = [0, 1, 125, 126, 65535, 65536, 70000]
    data = frames([b"x" * n for n in sizes], mask=mask) + frames([b"y" * 300], mask=mask, fragment=100)
    counter = FrameCounter(max_size=70000)
    for i in range(0, len(data), split):
        assert counter.feed(data[i:i + split]) == -1
    assert counter.between_frames and counter.message == 0


@pytest.mark.parametrize("fragment", [None, 100])
def test_frame_counter_finds_the_frame_over_the_limit(fragment: int | None) -> None:
    ok = frames([b"a" * 1000], mask=True)
    big = frames([b"b" * 1001], mask=True, fragment=fragment)
    counter = FrameCounter(max_size=1000)
    at = counter.feed(ok + big)
    # refused at the header of the frame that crosses the limit
    if fragment is None:
        assert at == len(ok)
    else:  # ten 100-byte fragments (6-byte masked headers) pass, the eleventh (1 byte) makes 1001
        assert at == len(ok) + 10 * (6 + 100), at


def test_large_messages_and_a_burst_pass_through_the_proxy(caroot: Path) -> None:
    def echo(ws) -> None:
        for message in ws:
            ws.send(message)

    with ws_upstream(echo) as port:
        server, ca_file = make_server(caroot, proxy=f"ws://127.0.0.1:{port}")
        with server.run_in_thread():
            with connect(f"wss://localhost:{server.port}/", ssl=ssl.create_default_context(cafile=str(ca_file)),
                         max_size=None, open_timeout=30 * UNIT) as ws:
                # the client offered permessage-deflate; the relay does not pass offers on
                assert ws.response.headers.get("Sec-WebSocket-Extensions") is None
                big = bytes(range(256)) * 4000  # 1,024,000 bytes: within the 1 MiB default
                ws.send(big)
                assert ws.recv(timeout=30 * UNIT) == big
                for i in range(500):
                    ws.send(f"m{i}")
                assert [ws.recv(timeout=30 * UNIT) for _ in range(500)] == [f"m{i}" for i in range(500)]


def test_an_upstream_that_drops_the_connection_is_reported_to_the_client_as_1001(caroot: Path) -> None:
    # the raw upstream answers the handshake, reads once, then closes without a close frame
    with RawUpstream(ws_answer) as up:
        server, ca_file = make_server(caroot, proxy=f"ws://127.0.0.1:{up.port}")
        with server.run_in_thread():
            with connect(f"wss://localhost:{server.port}/", ssl=ssl.create_default_context(cafile=str(ca_file)),
                         open_timeout=30 * UNIT) as ws:
                ws.send("anything")  # the upstream's one read; then it hangs up
                with pytest.raises(ConnectionClosed) as info:
                    ws.recv(timeout=10 * UNIT)
                assert info.value.rcvd is not None, info.value
                assert (info.value.rcvd.code, info.value.rcvd.reason) == (1001, "the upstream connection was lost")
