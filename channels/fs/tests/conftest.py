"""Real servers on loopback for the fs channel tests: FTP (pyftpdlib) and SFTP (asyncssh), each in a thread."""
from __future__ import annotations

import asyncio
import threading
from pathlib import Path
from typing import Any, Iterator

import attrs
import pytest

from esomp_fs import plugin

PASSWORD = "s3cret-Pa55word"


@attrs.define
class Server:
    root: Path
    port: int
    user: str = "esomp"
    password: str = PASSWORD
    extra: dict[str, Any] = attrs.field(factory=dict)


@pytest.fixture
def password() -> str:
    """The test servers' password: tests assert it never shows up in errors or reports."""
    return PASSWORD


@pytest.fixture
def pm(esomp_pm_factory):
    return esomp_pm_factory(plugin)


@pytest.fixture
def site_with(esomp_site_factory, pm):
    """``site_with(name=table, ...)``: a site whose [channels] holds the given tables."""
    def make(**channels: dict[str, Any]):
        return esomp_site_factory(pm, channels=channels)
    return make


def _ftp_handler(root: Path, drops: list[int]):
    from pyftpdlib.authorizers import DummyAuthorizer
    from pyftpdlib.handlers import DTPHandler, FTPHandler

    class DroppingDTP(DTPHandler):
        """Closes the control connection in the middle of the first ``len(drops)`` uploads."""

        def handle_read(self):
            super().handle_read()
            if self.receive and drops and drops[0] == 0 and self.tot_bytes_received > 0:
                drops[0] = self.tot_bytes_received
                self.cmd_channel.close()

        handle_read_event = handle_read  # pyftpdlib calls this alias

    authorizer = DummyAuthorizer()
    authorizer.add_user("esomp", PASSWORD, str(root), perm="elradfmwMT")
    return type("Handler", (FTPHandler,), {"authorizer": authorizer, "dtp_handler": DroppingDTP,
                                            "banner": "esomp test ftpd", "timeout": 30,
                                            "auth_failed_timeout": 0.05})


@pytest.fixture
def ftp_server(tmp_path_factory, require_server) -> Iterator[Server]:
    """pyftpdlib on 127.0.0.1 (ephemeral port). Set ``server.extra['drops']`` to [0] to drop the next upload."""
    from pyftpdlib.servers import FTPServer

    root = tmp_path_factory.mktemp("ftp-root")
    drops: list[int] = []
    server = FTPServer(("127.0.0.1", 0), _ftp_handler(root, drops))
    port = server.socket.getsockname()[1]
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            server.serve_forever(timeout=0.05, blocking=False, handle_exit=False)

    thread = threading.Thread(target=serve, name="ftpd", daemon=True)
    thread.start()
    require_server("test FTP server", "127.0.0.1", port)
    try:
        yield Server(root, port, extra={"drops": drops})
    finally:
        stop.set()
        thread.join(10)
        server.close_all()


@pytest.fixture
def sftp_server(tmp_path_factory, require_server) -> Iterator[Server]:
    """asyncssh's SFTP server on 127.0.0.1 with a throwaway host key, chrooted to a temp directory.
    Password auth for ``esomp``; public-key auth for the key in ``server.extra['client_key']``."""
    import asyncssh

    root = tmp_path_factory.mktemp("sftp-root")
    host_key = asyncssh.generate_private_key("ssh-ed25519")
    client_key = asyncssh.generate_private_key("ssh-ed25519")

    class SSHServer(asyncssh.SSHServer):
        def begin_auth(self, username: str) -> bool:
            return True

        def password_auth_supported(self) -> bool:
            return True

        def validate_password(self, username: str, password: str) -> bool:
            return username == "esomp" and password == PASSWORD

        def public_key_auth_supported(self) -> bool:
            return True

        def validate_public_key(self, username: str, key: Any) -> bool:
            return username == "esomp" and key.public_data == client_key.public_data

    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, name="sftpd", daemon=True)
    thread.start()

    async def start():
        return await asyncssh.create_server(
            SSHServer, "127.0.0.1", 0, server_host_keys=[host_key],
            sftp_factory=lambda chan: asyncssh.SFTPServer(chan, chroot=str(root).encode()))

    server = asyncio.run_coroutine_threadsafe(start(), loop).result(30)
    port = server.sockets[0].getsockname()[1]
    require_server("test SFTP server", "127.0.0.1", port)
    try:
        yield Server(root, port, extra={"host_key": host_key, "client_key": client_key})
    finally:
        async def stop() -> None:  # asyncio objects are closed on their own loop's thread
            server.close()
            await server.wait_closed()

        asyncio.run_coroutine_threadsafe(stop(), loop).result(30)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
        loop.close()
