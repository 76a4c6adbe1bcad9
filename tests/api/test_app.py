"""The server's listening socket: responses are not held back by Nagle's algorithm."""

from __future__ import annotations

import socket
import sys

import pytest

from api.app import listening_socket


@pytest.mark.skipif(sys.platform != "linux", reason="Linux copies TCP_NODELAY on accept")
def test_connections_accepted_by_the_server_send_small_writes_at_once() -> None:
    with listening_socket("127.0.0.1", 0) as server:
        client = socket.create_connection(server.getsockname())
        accepted, _ = server.accept()
        with client, accepted:
            assert server.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) != 0
            # What a worker process gets: without it, a response written as headers then
            # body waits 40 ms for the client's delayed ACK.
            assert accepted.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) != 0


def test_the_listening_socket_is_inherited_by_the_worker_processes() -> None:
    with listening_socket("127.0.0.1", 0) as server:
        assert server.get_inheritable()
        assert server.proto == socket.IPPROTO_TCP
