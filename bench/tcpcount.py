"""A loopback TCP relay that counts the bytes each way: how much a client really moves."""
from __future__ import annotations

import socket
import threading


class CountingRelay:
    def __init__(self, upstream_port: int, host: str = "127.0.0.1"):
        self.upstream = (host, upstream_port)
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind((host, 0))
        self.sock.listen(64)
        self.port = self.sock.getsockname()[1]
        self.to_server = 0
        self.to_client = 0
        self._lock = threading.Lock()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.sock.accept()
            except OSError:
                return
            server = socket.create_connection(self.upstream)
            threading.Thread(target=self._pipe, args=(client, server, "to_server"), daemon=True).start()
            threading.Thread(target=self._pipe, args=(server, client, "to_client"), daemon=True).start()

    def _pipe(self, src: socket.socket, dst: socket.socket, counter: str) -> None:
        try:
            while data := src.recv(65536):
                dst.sendall(data)
                with self._lock:
                    setattr(self, counter, getattr(self, counter) + len(data))
        except OSError:
            pass
        finally:
            for s in (src, dst):
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    def total(self) -> int:
        with self._lock:
            return self.to_server + self.to_client

    def close(self) -> None:
        self.sock.close()
