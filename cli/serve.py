"""``songmix serve``: scheduled runs and the Prefect UI from one command.

Starts a local Prefect server unless ``PREFECT_API_URL`` points at one, creates the process
work pool, deploys every deployment of ``prefect.yaml`` and starts a worker; Ctrl-C stops
the worker, then the server. The same steps by hand are in README "Running on a schedule".
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

from songmix.cli.options import add_db_argument, db_path

NAME = "serve"
HELP = "serve the scheduled deployments: Prefect server, work pool, deployments and a worker"

WORK_POOL = "songmix"
HEALTH_TIMEOUT_S = 120.0
DEPLOY_TIMEOUT_S = 300.0
STOP_TIMEOUT_S = 15.0


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--port", type=int, default=4200,
                        help="port of the local Prefect server it starts (default 4200)")
    parser.add_argument("--project", type=Path, default=None,
                        help="folder holding prefect.yaml and flows/ (default: the songmix checkout)")
    parser.add_argument("--deployment", action="append", default=None, metavar="NAME",
                        help="deploy only this deployment of prefect.yaml (repeatable; default all)")
    add_db_argument(parser)
    parser.add_argument("--data-dir", type=Path, default=None,
                        help="audio cache (default $SONGMIX_DATA_DIR or ~/.cache/songmix)")
    parser.add_argument("--out", type=Path, default=None,
                        help="folder for plots (default $SONGMIX_OUT_DIR or ./songmix-out)")


def project_dir(given: Path | None) -> Path:
    """The folder with ``prefect.yaml`` and the flow files its entrypoints name.

    Raises
    ------
    FileNotFoundError
        There is no ``prefect.yaml`` there (e.g. songmix was installed from a wheel).
    """
    import songmix.flows

    folder = (given or Path(songmix.flows.__file__).resolve().parent.parent).resolve()
    if not (folder / "prefect.yaml").is_file():
        raise FileNotFoundError(f"no prefect.yaml in {folder}; pass --project with the songmix "
                                "checkout (the folder holding prefect.yaml and flows/)")
    return folder


def deployment_environment(
    project: Path, *, db: Path, data_dir: Path, out_dir: Path, api_url: str
) -> dict[str, str]:
    """The environment ``prefect deploy`` and the worker run with.

    ``prefect.yaml`` takes the working directory (``$PWD``) and the songmix paths from the
    environment of ``prefect deploy``, so they are made absolute here.
    """
    environment = dict(os.environ)
    # The CLI quiets Prefect's console for `songmix run`; the worker should show its runs.
    environment.pop("PREFECT_LOGGING_HANDLERS_CONSOLE_LEVEL", None)
    return environment | {
        "PWD": str(project), "PREFECT_API_URL": api_url,
        "SONGMIX_DB": str(db.resolve()), "SONGMIX_DATA_DIR": str(data_dir.resolve()),
        "SONGMIX_OUT_DIR": str(out_dir.resolve()),
    }


def wait_healthy(api_url: str, *, timeout_s: float, server: subprocess.Popen | None = None) -> float:
    """Seconds until ``<api_url>/health`` answers.

    Raises
    ------
    RuntimeError
        The server exited, or did not answer within ``timeout_s``.
    """
    started = time.monotonic()
    while True:
        try:
            with urllib.request.urlopen(f"{api_url}/health", timeout=2) as answer:
                if answer.status == 200:
                    return time.monotonic() - started
        except (urllib.error.URLError, OSError):
            pass
        if server is not None and server.poll() is not None:
            raise RuntimeError(f"the Prefect server exited with status {server.returncode}; "
                               "is the port already in use? (try --port)")
        if time.monotonic() - started > timeout_s:
            raise RuntimeError(f"no Prefect API answered at {api_url} within {timeout_s:.0f} s")
        time.sleep(0.5)


def ensure_work_pool(name: str) -> bool:
    """Create the process work pool ``name`` unless it exists; True if it was created."""
    from prefect import get_client
    from prefect.client.schemas.actions import WorkPoolCreate
    from prefect.exceptions import ObjectNotFound

    with get_client(sync_client=True) as client:
        try:
            client.read_work_pool(name)
            return False
        except ObjectNotFound:
            client.create_work_pool(WorkPoolCreate(name=name, type="process"))
            return True


def _prefect(*arguments: str) -> list[str]:
    return [sys.executable, "-m", "prefect", *arguments]


def _stop(process: subprocess.Popen) -> None:
    """SIGTERM (the Prefect server and worker shut down gracefully on it), then SIGKILL."""
    if process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(STOP_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def _say(line: str) -> None:
    # Flushed at once: a service manager or a test reads these lines through a pipe.
    print(line, flush=True)


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def main(args: argparse.Namespace) -> int:
    from prefect.settings import PREFECT_API_URL

    from songmix.flows.settings import default_data_dir, default_out_dir

    started = time.monotonic()
    project = project_dir(args.project)
    configured_api = PREFECT_API_URL.value()
    api_url = configured_api or f"http://127.0.0.1:{args.port}/api"
    environment = deployment_environment(
        project, db=db_path(args), data_dir=args.data_dir or default_data_dir(),
        out_dir=args.out or default_out_dir(), api_url=api_url)
    children: list[subprocess.Popen] = []
    # SIGTERM (a service manager stopping us) cleans up like Ctrl-C does.
    signal.signal(signal.SIGTERM, _interrupt)
    try:
        if configured_api is None:
            log_path = Path(environment["SONGMIX_DATA_DIR"]) / "prefect-server.log"
            log_path.parent.mkdir(parents=True, exist_ok=True)
            _say(f"songmix: starting a Prefect server on port {args.port} (log: {log_path})")
            with log_path.open("ab") as log:
                # Own session: Ctrl-C reaches only us, and we stop the children in order.
                children.append(subprocess.Popen(
                    _prefect("server", "start", "--host", "127.0.0.1", "--port", str(args.port)),
                    env=environment, stdout=log, stderr=subprocess.STDOUT, start_new_session=True))
        waited = wait_healthy(api_url, timeout_s=HEALTH_TIMEOUT_S,
                              server=children[0] if children else None)
        _say(f"songmix: Prefect API healthy at {api_url} after {waited:.1f} s")
        os.environ["PREFECT_API_URL"] = api_url
        if ensure_work_pool(WORK_POOL):
            _say(f"songmix: created the process work pool {WORK_POOL!r}")
        chosen = [f"--name={name}" for name in args.deployment or ()] or ["--all"]
        subprocess.run(_prefect("--no-prompt", "deploy", *chosen), cwd=project, env=environment,
                       check=True, capture_output=True, text=True, timeout=DEPLOY_TIMEOUT_S)
        _say(f"songmix: deployed {project / 'prefect.yaml'} (warehouse {environment['SONGMIX_DB']})")
        children.append(subprocess.Popen(_prefect("worker", "start", "--pool", WORK_POOL),
                                         cwd=project, env=environment, start_new_session=True))
        ui_url = api_url.removesuffix("/api")
        _say(f"songmix: ready after {time.monotonic() - started:.1f} s — UI at {ui_url}\n"
              f"  run the demo now: prefect deployment run 'songmix-pipeline/demo-weekly'\n"
              "  stop everything: Ctrl-C")
        while all(child.poll() is None for child in children):
            time.sleep(1)
        exited = next(child for child in children if child.poll() is not None)
        print(f"songmix: {' '.join(exited.args[3:5])} exited with status {exited.returncode}; "
              "stopping", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        _say("songmix: stopping the worker and the server")
        return 0
    except subprocess.CalledProcessError as error:
        print(f"{error.stdout}{error.stderr}\nsongmix: `prefect deploy` failed (status "
              f"{error.returncode}), see above", file=sys.stderr)
        return 1
    except (RuntimeError, subprocess.TimeoutExpired) as error:
        print(f"songmix: error: {error}", file=sys.stderr)
        return 1
    finally:
        for child in reversed(children):
            _stop(child)
