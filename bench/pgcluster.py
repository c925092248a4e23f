"""A throwaway PostgreSQL cluster: ``initdb`` + ``pg_ctl`` in a temporary directory.

Used by the tests (tests/conftest.py keeps one cluster per session; tests/pg.py re-exports this module)
and by ``python -m bot bench --backend postgres``. It lives in bench/ because bench/ is an installed
package and tests/ is not: the benchmark must work from an installed copy too.

``postgres_server()`` starts one cluster and gives fresh databases: ``server.new_database()`` returns the
URL of an empty database, ``server.new_database(migrated=True)`` one cloned from a template already
migrated to the newest schema (~30 ms, instead of running every migration per test). Each URL is a plain
``postgresql://postgres@127.0.0.1:PORT/NAME`` that any process can open (DATABASE_URL of a bot
subprocess, ``storage.backends.open_database``).

For the tests the server runs with ``fsync=off`` (a test database is thrown away, never recovered after a
crash); ``postgres_server(durable=True)`` — the benchmark's — keeps PostgreSQL's defaults (fsync,
synchronous_commit, full_page_writes on; shared_buffers 128MB), so its commits cost what a deployment's do.
As root, ``initdb`` refuses to run, so the cluster belongs to the unprivileged user ``nobody``
(``runuser``). ``TEST_POSTGRES_URL`` (a superuser URL of a server you run) skips starting one.
"""

from __future__ import annotations

import asyncio
import atexit
import glob
import itertools
import os
import shutil
import socket
import subprocess
import tempfile
import threading
import time
from pathlib import Path

_BIN_DIRS = sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=lambda p: int(p.split("/")[-2]) if p.split("/")[-2].isdigit() else 0, reverse=True)
_names = itertools.count(1)


class PostgresUnavailable(RuntimeError):
    """No PostgreSQL server could be started (binaries missing, initdb or pg_ctl failed)."""


def _binary(name: str) -> str:
    for directory in _BIN_DIRS:
        candidate = Path(directory) / name
        if candidate.exists():
            return str(candidate)
    found = shutil.which(name)
    if found:
        return found
    raise PostgresUnavailable(f"{name} not found (apt-get install -y postgresql, or set TEST_POSTGRES_URL)")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _run_sync(coro):
    """Run a coroutine to completion from sync code, even inside a running event loop (own thread)."""
    result: dict = {}

    def target() -> None:
        try:
            result["value"] = asyncio.run(coro)
        except BaseException as exc:  # noqa: BLE001 - re-raised in the caller's thread
            result["error"] = exc

    thread = threading.Thread(target=target)
    thread.start()
    thread.join()
    if "error" in result:
        raise result["error"]
    return result.get("value")


class PostgresServer:
    """One cluster; ``new_database()`` → the URL of a fresh database on it."""

    def __init__(self, admin_url: str, *, directory: Path | None = None, pg_ctl: list[str] | None = None):
        self.admin_url = admin_url  # a superuser on the maintenance database 'postgres'
        self.directory = directory
        self._pg_ctl = pg_ctl
        self._template: str | None = None
        self._lock = threading.Lock()

    def url(self, database: str) -> str:
        return self.admin_url.rsplit("/", 1)[0] + "/" + database

    def new_database(self, *, migrated: bool = False) -> str:
        """The URL of a new, empty database (migrated: a clone of the migrated template)."""
        name = f"t{os.getpid()}_{next(_names)}"
        template = self._migrated_template() if migrated else "template0"
        _run_sync(self._admin(f'CREATE DATABASE "{name}" TEMPLATE "{template}"'))
        return self.url(name)

    async def new_database_async(self, *, migrated: bool = False) -> str:
        """As new_database, from async code without blocking the loop for the template's first build."""
        name = f"t{os.getpid()}_{next(_names)}"
        template = await asyncio.to_thread(self._migrated_template) if migrated else "template0"
        await self._admin(f'CREATE DATABASE "{name}" TEMPLATE "{template}"')
        return self.url(name)

    def drop_database(self, url: str) -> None:
        name = url.rsplit("/", 1)[1].split("?", 1)[0]
        _run_sync(self._admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))

    async def drop_database_async(self, url: str) -> None:
        name = url.rsplit("/", 1)[1].split("?", 1)[0]
        await self._admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    async def _admin(self, sql: str) -> None:
        import asyncpg

        conn = await asyncpg.connect(self.admin_url)
        try:
            await conn.execute(sql)
        finally:
            await conn.close()

    def _migrated_template(self) -> str:
        with self._lock:
            if self._template is None:
                name = f"template_{os.getpid()}"
                _run_sync(self._admin(f'CREATE DATABASE "{name}" TEMPLATE template0'))

                async def migrate() -> None:
                    from storage.postgres import PostgresDatabase

                    db = await PostgresDatabase(self.url(name)).open()
                    await db.close()

                _run_sync(migrate())
                self._template = name
            return self._template

    def stop(self) -> None:
        if self._pg_ctl is None or self.directory is None:
            return
        subprocess.run(self._pg_ctl + ["-D", str(self.directory / "data"), "-m", "immediate", "stop"],
                       capture_output=True, timeout=60)
        shutil.rmtree(self.directory, ignore_errors=True)
        self._pg_ctl = None


def _as_postgres_user() -> list[str]:
    """The command prefix that runs the server's binaries: as 'nobody' when we are root."""
    if os.geteuid() != 0:
        return []
    runuser = shutil.which("runuser")
    if runuser:
        return [runuser, "-u", "nobody", "--"]
    setpriv = shutil.which("setpriv")
    if setpriv:
        return [setpriv, "--reuid=nobody", "--regid=nogroup", "--clear-groups", "--"]
    raise PostgresUnavailable("running as root and neither runuser nor setpriv is there to drop to 'nobody'")


def postgres_server(*, durable: bool = False) -> PostgresServer:
    """Start a throwaway cluster (or use TEST_POSTGRES_URL); stopped at exit, or by ``stop()``.
    ``durable``: PostgreSQL's own durability settings instead of the tests' fsync=off."""
    external = os.environ.get("TEST_POSTGRES_URL")
    if external and not durable:
        return PostgresServer(external)
    prefix = _as_postgres_user()
    initdb, pg_ctl = _binary("initdb"), _binary("pg_ctl")
    directory = Path(tempfile.mkdtemp(prefix="pgtest-", dir="/tmp"))
    if prefix:
        shutil.chown(directory, user="nobody")
    data = directory / "data"
    init = subprocess.run(
        prefix + [initdb, "-D", str(data), "-U", "postgres", "--auth=trust", "--encoding=UTF8", "--locale=C.UTF-8", "-N"],
        capture_output=True, text=True, timeout=120,
    )
    if init.returncode != 0:
        shutil.rmtree(directory, ignore_errors=True)
        raise PostgresUnavailable(f"initdb failed: {init.stderr.strip()[-500:]}")
    last_error = ""
    for _ in range(5):  # another process may take the free port between choosing and binding it
        port = _free_port()
        options = f"-p {port} -k {directory} -c listen_addresses=127.0.0.1 -c max_connections=200"
        options += " -c shared_buffers=128MB" if durable else \
            " -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c shared_buffers=32MB"
        start = subprocess.run(
            prefix + [pg_ctl, "-D", str(data), "-l", str(directory / "server.log"), "-w", "-t", "60", "-o", options, "start"],
            capture_output=True, text=True, timeout=120,
        )
        if start.returncode == 0:
            server = PostgresServer(f"postgresql://postgres@127.0.0.1:{port}/postgres", directory=directory,
                                    pg_ctl=prefix + [pg_ctl])
            atexit.register(server.stop)
            _wait_ready(server)
            return server
        log = directory / "server.log"
        last_error = (log.read_text(errors="replace")[-500:] if log.exists() else "") or start.stderr[-500:]
    shutil.rmtree(directory, ignore_errors=True)
    raise PostgresUnavailable(f"pg_ctl start failed: {last_error.strip()}")


def _wait_ready(server: PostgresServer, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            _run_sync(server._admin("SELECT 1"))
            return
        except Exception as exc:  # noqa: BLE001 - retried until the deadline
            if time.monotonic() > deadline:
                server.stop()
                raise PostgresUnavailable(f"the server did not answer: {exc}") from exc
            time.sleep(0.1)
