"""Synergie as a territory runs it, stood up on 127.0.0.1 from the service definitions it ships.

The commands are read from ``deploy/systemd/*.service`` and the settings from
``deploy/env/*.env``, so that the operations guide cannot drift from what is tested. The only
substitutions are the ones a test cannot avoid: the install folder (``/opt/synergie``) becomes
this checkout and its ``.venv/bin`` the running interpreter's, systemd's ``%i``/``%H`` are
expanded, ``--port`` of the portal gets a free port, and the settings that name hosts, ports,
databases and secrets get the test's own values (each of which must be in the shipped file).
"""

from __future__ import annotations

import base64
import os
import secrets
import shlex
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, TypeVar

import httpx
import psutil
import pytest
import sqlalchemy as sa
from sqlalchemy.engine import make_url

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
INSTALL_DIR = "/opt/synergie"
VENV_BIN = f"{INSTALL_DIR}/.venv/bin"
FINAL_STATES = ("COMPLETED", "FAILED", "CRASHED", "CANCELLED")

T = TypeVar("T")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for(
    check: Callable[[], T | None],
    *,
    timeout: float,
    what: str,
    process: subprocess.Popen[bytes] | None = None,
    every: float = 0.5,
) -> T:
    """Call ``check`` until it returns something truthy; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise AssertionError(f"{what}: process exited with {process.returncode}")
        try:
            result = check()
        except httpx.HTTPError:
            result = None
        if result:
            return result
        time.sleep(every)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")


def say(request: pytest.FixtureRequest, line: str) -> None:
    """Print a line on the terminal, even under -q and output capture (durations, for the record)."""
    reporter = request.config.pluginmanager.get_plugin("terminalreporter")
    capture = request.config.pluginmanager.get_plugin("capturemanager")
    if reporter is None or capture is None:
        return
    with capture.global_and_fixture_disabled():
        reporter.write_line(f"\n{line}")


# Service definitions


@dataclass(frozen=True)
class Unit:
    """What a systemd unit runs: its ExecStart command lines, environment and working directory."""

    path: Path
    commands: list[list[str]]
    environment: dict[str, str]
    environment_files: list[str]
    working_directory: str


def read_unit(name: str) -> Unit:
    """Parse ``deploy/systemd/NAME`` (the few keys Synergie's units use)."""
    path = DEPLOY / "systemd" / name
    commands: list[list[str]] = []
    environment: dict[str, str] = {}
    files: list[str] = []
    working_directory = ""
    for line in path.read_text(encoding="utf-8").splitlines():
        key, sep, value = line.partition("=")
        if not sep or line.startswith("#"):
            continue
        if key == "ExecStart":
            commands.append(shlex.split(value))
        elif key == "Environment":
            name_, _, val = value.partition("=")
            environment[name_] = val
        elif key == "EnvironmentFile":
            files.append(value)
        elif key == "WorkingDirectory":
            working_directory = value
    assert commands, f"{path} has no ExecStart"
    return Unit(path, commands, environment, files, working_directory)


def read_env_file(name: str) -> dict[str, str]:
    """Parse ``deploy/env/NAME`` (KEY=value lines, # comments), as systemd's EnvironmentFile."""
    values: dict[str, str] = {}
    for line in (DEPLOY / "env" / name).read_text(encoding="utf-8").splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            key, _, value = line.partition("=")
            values[key] = value
    return values


def _localise(word: str, instance: str) -> str:
    word = word.replace(VENV_BIN, str(Path(sys.executable).parent))
    word = word.replace(INSTALL_DIR, str(ROOT))
    return word.replace("%i", instance).replace("%H", socket.gethostname())


def unit_commands(unit: Unit, *, instance: str = "") -> list[list[str]]:
    """The unit's command lines as they run on this checkout."""
    return [[_localise(word, instance) for word in command] for command in unit.commands]


def unit_environment(unit: Unit, settings: dict[str, dict[str, str]]) -> dict[str, str]:
    """The environment systemd would give the unit: its EnvironmentFile(s) with the test's values."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_", "SYNERGIE_"))}
    for file in unit.environment_files:
        name = Path(file).name
        shipped = read_env_file(name)
        env.update(shipped)
        env.update(settings[name])
    env.update({k: _localise(v, "") for k, v in unit.environment.items()})
    return env


# Processes


@dataclass
class Service:
    """A process started from a unit, with its log."""

    name: str
    process: subprocess.Popen[bytes]
    log_path: Path
    _log: IO[bytes] = field(repr=False)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def kill_with_children(self) -> None:
        """SIGKILL the process and every process it started (a flow run runs in its own session)."""
        try:
            parent = psutil.Process(self.process.pid)
            family = [*parent.children(recursive=True), parent]
        except psutil.NoSuchProcess:
            family = []
        for member in family:
            with suppress(psutil.NoSuchProcess):
                member.send_signal(signal.SIGKILL)
        self.process.wait(timeout=10)

    def stop(self) -> None:
        """SIGTERM, as systemctl stop does, then SIGKILL what is left of the family."""
        try:
            family = psutil.Process(self.process.pid).children(recursive=True)
        except psutil.NoSuchProcess:
            family = []
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        for member in family:
            with suppress(psutil.NoSuchProcess):
                member.kill()
        self._log.close()


def start_service(
    unit: Unit, env: dict[str, str], logs: Path, *, instance: str = "", port: int | None = None
) -> Service:
    """Start the unit's (one) ExecStart command, as systemd would, from its working directory."""
    [command] = unit_commands(unit, instance=instance)
    if port is not None:  # the one argument a test must change: the port, to run beside others
        command[command.index("--port") + 1] = str(port)
    name = unit.path.stem.replace("@", f"@{instance}")
    log_path = logs / f"{name}.log"
    log = log_path.open("ab")  # a restarted worker appends to its log, as journald would
    process = subprocess.Popen(
        command, env=env, cwd=_localise(unit.working_directory, instance),
        stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
    )  # fmt: skip
    return Service(name, process, log_path, log)


def run_oneshot(unit: Unit, env: dict[str, str], logs: Path) -> None:
    """Run each ExecStart line of a oneshot unit in turn; fail on the first that fails."""
    with (logs / f"{unit.path.stem}.log").open("ab") as log:
        for command in unit_commands(unit):
            result = subprocess.run(
                command, env=env, cwd=_localise(unit.working_directory, ""),
                stdout=log, stderr=subprocess.STDOUT, timeout=300,
            )  # fmt: skip
            assert result.returncode == 0, (
                f"{shlex.join(command)} failed: {(logs / f'{unit.path.stem}.log').read_text()[-3000:]}"
            )


@contextmanager
def postgres_database(server_url: str, *, driver: str) -> Iterator[str]:
    """A brand-new database on the test PostgreSQL server, dropped afterwards; its URL with ``driver``."""
    admin = sa.create_engine(server_url, isolation_level="AUTOCOMMIT")
    name = f"synergie_stack_{uuid.uuid4().hex[:12]}"
    with admin.connect() as connection:
        connection.execute(sa.text(f'CREATE DATABASE "{name}"'))
    try:
        url = make_url(server_url).set(drivername=driver, database=name)
        yield url.render_as_string(hide_password=False)
    finally:
        with admin.connect() as connection:
            connection.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


# The stack


@dataclass
class Stack:
    """A Prefect server on PostgreSQL, two workers, the deployments, the CRM and the portal."""

    api: str
    auth_string: str
    crm_url: str
    portal_url: str
    settings: dict[str, dict[str, str]]
    logs: Path
    workers: dict[str, Service]
    services: list[Service]
    timings: dict[str, float] = field(default_factory=dict)

    def client(self, *, authenticated: bool = True) -> httpx.Client:
        """An HTTP client of the server's REST API, as the UI is (with the auth string unless told)."""
        headers = {}
        if authenticated:
            token = base64.b64encode(self.auth_string.encode()).decode()
            headers["Authorization"] = f"Basic {token}"
        return httpx.Client(base_url=self.api, headers=headers, timeout=30)

    def restart_worker(self, name: str) -> None:
        """Start worker ``name`` again from its unit, as systemd's Restart=on-failure does."""
        unit = read_unit("synergie-worker@.service")
        self.workers[name] = start_service(
            unit, unit_environment(unit, self.settings), self.logs, instance=name
        )
        self.services.append(self.workers[name])

    def wait_workers_idle(self, timeout: float = 30) -> None:
        """Wait, at most ``timeout`` s, until no worker has a flow run's process left.

        A run the API already shows Completed may still be shutting its process down, and
        until it exits it holds its worker's one slot (``--limit 1``).
        """
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            busy = False
            for worker in self.workers.values():
                with suppress(psutil.NoSuchProcess):
                    busy = busy or bool(psutil.Process(worker.process.pid).children(recursive=True))
            if not busy:
                return
            time.sleep(0.2)

    def worker_running(self, run_id: str) -> str:
        """The name of the worker whose log says it took flow run ``run_id``, or ''."""
        for name, worker in self.workers.items():
            if f"submitting flow run '{run_id}'" in worker.log():
                return name
        return ""


def stack_settings(
    *, api_port: int, prefect_db: str, crm_db: str, tmp: Path, smtp: tuple[str, int],
) -> dict[str, dict[str, str]]:  # fmt: skip
    """The test's values for the shipped env files (and the few test-only settings beside them)."""
    auth = f"admin:{secrets.token_urlsafe(16)}"
    server = {
        "PREFECT_API_DATABASE_CONNECTION_URL": prefect_db,
        "PREFECT_SERVER_API_HOST": "127.0.0.1",
        "PREFECT_SERVER_API_PORT": str(api_port),
        "PREFECT_SERVER_API_AUTH_STRING": auth,
        "PREFECT_SERVER_UI_API_URL": f"http://127.0.0.1:{api_port}/api",  # no proxy in the test
        "PREFECT_HOME": str(tmp / "prefect-server"),
    }
    synergie = {
        "PREFECT_API_URL": f"http://127.0.0.1:{api_port}/api",
        "PREFECT_API_AUTH_STRING": auth,
        "SYNERGIE_DATABASE_URL": crm_db,
        "SYNERGIE_DATA_DIR": str(tmp / "data"),
        "SYNERGIE_SECRET_KEY": secrets.token_urlsafe(48),
        "SYNERGIE_SMTP_HOST": smtp[0],
        "SYNERGIE_SMTP_PORT": str(smtp[1]),
        "SYNERGIE_SMTP_SECURITY": "none",
        "SYNERGIE_SMTP_USER": "",  # the test server asks for no login
        "SYNERGIE_SMS_BACKEND": "file",
        # Prefect's minimum, and the automation's shortest window: a killed run is Crashed within ~75 s.
        "PREFECT_FLOWS_HEARTBEAT_FREQUENCY": "30",
        "SYNERGIE_ZOMBIE_AFTER_SECONDS": "75",
    }
    for name, values in (("prefect-server.env", server), ("synergie.env", synergie)):
        missing = set(values) - set(read_env_file(name))
        assert not missing, f"deploy/env/{name} lacks {sorted(missing)}: the guide would drift"
    # Test-only, beside the shipped settings: a short outbox lease (a killed batch is taken
    # over within seconds), workers that poll every 2 s instead of 10, a home per process.
    synergie |= {
        "SYNERGIE_SEND_LEASE_SECONDS": "6",
        "PREFECT_WORKER_QUERY_SECONDS": "2",
        "PREFECT_HOME": str(tmp / "prefect-client"),
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
    }
    return {"prefect-server.env": server, "synergie.env": synergie}


@contextmanager
def synergie_stack(postgres_url: str, tmp: Path, smtp: tuple[str, int]) -> Iterator[Stack]:
    """Stand the whole thing up from deploy/; tear it down afterwards."""
    logs = tmp / "logs"
    logs.mkdir(parents=True)
    began = time.monotonic()
    timings: dict[str, float] = {}
    services: list[Service] = []
    with ExitStack() as stack:
        prefect_db = stack.enter_context(
            postgres_database(postgres_url, driver="postgresql+asyncpg")
        )
        crm_db = stack.enter_context(postgres_database(postgres_url, driver="postgresql+psycopg"))
        api_port, portal_port = free_port(), free_port()
        settings = stack_settings(api_port=api_port, prefect_db=prefect_db,
                                 crm_db=crm_db, tmp=tmp, smtp=smtp)  # fmt: skip
        stack.callback(lambda: _stop_all(services))

        server_unit = read_unit("synergie-prefect-server.service")
        server = start_service(server_unit, unit_environment(server_unit, settings), logs)
        services.append(server)
        api = settings["synergie.env"]["PREFECT_API_URL"]
        wait_for(lambda: httpx.get(f"{api}/health", timeout=2).status_code == 200,
                 timeout=180, what="the Prefect server", process=server.process)  # fmt: skip
        timings["server healthy"] = time.monotonic() - began

        upgrade = read_unit("synergie-upgrade.service")
        run_oneshot(upgrade, unit_environment(upgrade, settings), logs)
        timings["migrated and deployed"] = time.monotonic() - began

        portal_unit = read_unit("synergie-portal.service")
        portal = start_service(
            portal_unit, unit_environment(portal_unit, settings), logs, port=portal_port
        )
        services.append(portal)
        worker_unit = read_unit("synergie-worker@.service")
        workers = {}
        for name in ("1", "2"):
            workers[name] = start_service(
                worker_unit, unit_environment(worker_unit, settings), logs, instance=name
            )
            services.append(workers[name])
        # Links in messages keep the shipped public HTTPS address (the reverse proxy's);
        # the test reaches the portal where the proxy would, on 127.0.0.1.
        portal_url = f"http://127.0.0.1:{portal_port}"
        wait_for(lambda: httpx.get(f"{portal_url}/sante", timeout=2).status_code == 200,
                 timeout=60, what="the portal", process=portal.process)  # fmt: skip
        auth = settings["synergie.env"]["PREFECT_API_AUTH_STRING"]
        result = Stack(api=api, auth_string=auth, crm_url=crm_db, portal_url=portal_url,
                       settings=settings, logs=logs, workers=workers, services=services,
                       timings=timings)  # fmt: skip
        with result.client() as client:
            wait_for(lambda: len(call(client, "POST", "/workers/filter", json={}, pool="synergie")) >= 2,
                     timeout=60, what="two workers polling the pool")  # fmt: skip
        timings["workers polling"] = time.monotonic() - began
        yield result


def _stop_all(services: list[Service]) -> None:
    for service in reversed(services):
        service.stop()


def call(client: httpx.Client, method: str, url: str, *, pool: str = "", **kwargs: Any) -> Any:
    """One API call; ``pool`` prefixes the URL with that work pool's path."""
    if pool:
        url = f"/work_pools/{pool}{url}"
    response = client.request(method, url, **kwargs)
    assert response.is_success, f"{method} {url}: {response.status_code} {response.text[:500]}"
    return response.json() if response.content else None


def start_run(
    client: httpx.Client, deployment: str, params: dict[str, Any], **fields: Any
) -> dict[str, Any]:
    """Create a run of ``flow/deployment`` with these flow parameters, as the UI's Run form does."""
    found = call(client, "GET", f"/deployments/name/{deployment}")
    return call(  # type: ignore[no-any-return]
        client, "POST", f"/deployments/{found['id']}/create_flow_run",
        json={"parameters": {"params": params}, **fields},
    )  # fmt: skip


def wait_final(client: httpx.Client, run_id: str, *, timeout: float = 120) -> dict[str, Any]:
    """Wait for the run to reach a final state; return the run."""
    return wait_for(
        lambda: (run := call(client, "GET", f"/flow_runs/{run_id}"))["state_type"] in FINAL_STATES
        and run,
        timeout=timeout, what=f"flow run {run_id} to end", every=1,
    )  # fmt: skip


def artifacts_of(client: httpx.Client, run_id: str) -> dict[str, dict[str, Any]]:
    """The run's artifacts by key (latest of each), as the UI's Artifacts tab shows them."""
    found = call(client, "POST", "/artifacts/filter",
                 json={"artifacts": {"flow_run_id": {"any_": [run_id]}}})  # fmt: skip
    return {a["key"]: a for a in found if a["key"]}
