"""CI has no Docker engine, so this check does what the Dockerfile does, step for step, in a clean
virtual environment: copy what the image copies, run the same install script, set the image's
environment, start its ENTRYPOINT + CMD against the Wildberries emulator, ask its HEALTHCHECK
command, read /metrics, stop it with SIGTERM. The steps are read from the Dockerfile itself, so
the two cannot drift apart.
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import httpx
import pytest

from connectors.testing.serving import served
from connectors.wildberries.emulator import EmulatorConfig, create_app

ROOT = Path(__file__).resolve().parents[2]
SENTINEL = "SENTINEL-TOKEN-container-5d1e0c"
pytestmark = pytest.mark.slow


def dockerfile() -> list[tuple[str, str, str]]:
    """(stage, instruction, arguments) for every instruction, continuation lines joined."""
    out, stage, pending = [], "", ""
    for raw in (ROOT / "Dockerfile").read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        pending += line.removesuffix("\\").strip() + " "
        if line.endswith("\\"):
            continue
        instruction, _, args = pending.strip().partition(" ")
        pending = ""
        if instruction.upper() == "FROM":
            stage = args.split(" AS ")[-1] if " AS " in args else "runtime"
        out.append((stage, instruction.upper(), args.strip()))
    return out


def env_of(args: str) -> dict[str, str]:
    """ENV k=v k2=v2 (the form the Dockerfile uses)."""
    return dict(part.split("=", 1) for part in shlex.split(args))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_the_dockerfile_has_what_sellers_rely_on():
    steps = dockerfile()
    runtime = [(i, a) for s, i, a in steps if s == "runtime"]
    assert ("USER", "loyalsync") in runtime, "runs as a non-root user"
    assert ("ENTRYPOINT", '["loyalsync"]') in runtime and ("CMD", '["run"]') in runtime
    assert ("VOLUME", '["/data"]') in runtime
    health = next(a for i, a in runtime if i == "HEALTHCHECK")
    assert health.endswith('CMD ["loyalsync", "health"]')
    env = {k: v for i, a in runtime if i == "ENV" for k, v in env_of(a).items()}
    assert env["LOYALSYNC_CONFIG"] == "/config/loyalsync.toml"
    assert env["LOYALSYNC_DATABASE_URL"] == "sqlite:////data/loyalsync.db"
    assert [a for s, i, a in steps if s == "build" and i == "RUN"] == [
        "loyalsync-install deps /opt/loyalsync /src", "loyalsync-install app /opt/loyalsync /src"]


def test_the_image_steps_in_a_clean_venv_give_a_daemon_that_runs_is_healthy_and_stops(tmp_path: Path):
    steps = dockerfile()
    src, prefix, data, config = tmp_path / "src", tmp_path / "opt", tmp_path / "data", tmp_path / "config"
    # COPY in the build stage, in order; then RUN with the install script as the image has it.
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LOYALSYNC_", "VIRTUAL_ENV"))}
    env["PYTHON"] = sys.executable  # the image's `python`; a venv made from it uses the base interpreter
    # No .pyc compiling: it is most of the install's CPU and changes nothing this test checks.
    env["PIP_NO_COMPILE"] = "1"
    installer = ROOT / "container" / "install.sh"
    for stage, instruction, args in steps:
        if stage != "build":
            continue
        if instruction == "COPY":
            *sources, dest = shlex.split(args)
            if dest.startswith("/usr/local/bin/"):
                continue  # the install script itself: run from the checkout below
            for source in sources:
                origin = ROOT / source
                # WORKDIR /src: "./" keeps the name, "./sync" is the path itself
                target = src / (Path(dest) / Path(source).name if dest.endswith("/") else Path(dest))
                if origin.is_dir():
                    shutil.copytree(origin, target, ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
                else:
                    target.parent.mkdir(parents=True, exist_ok=True)
                    shutil.copy(origin, target)
        elif instruction == "RUN":
            step = args.split()[1]
            done = subprocess.run(["sh", str(installer), step, str(prefix), str(src)], env=env,
                                  capture_output=True, text=True, timeout=600)
            assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]

    runtime_env = {k: v for s, i, a in steps if s == "runtime" and i == "ENV" for k, v in env_of(a).items()}
    port = free_port()
    with served(create_app(EmulatorConfig(seed=5, orders=300, reviews=50, rate_limits=False))) as url:
        shutil.copytree(ROOT / "config", config)  # the image's COPY config /config; then the seller's account
        (config / "marketplaces" / "wildberries.toml").write_text(textwrap.dedent(f"""\
            [[accounts]]
            name = "main"
            token_env = "LOYALSYNC_WB_MAIN_TOKEN"
            [accounts.base_urls]
            marketplace = "{url}"
            statistics = "{url}"
            feedbacks = "{url}"
            [accounts.rate_limits.statistics]
            requests = 100
            period_seconds = 1
            burst = 100
            """), encoding="utf-8")
        data.mkdir()
        run_env = {**env, **runtime_env, "PATH": f"{prefix / 'bin'}:{env.get('PATH', '')}",
                   "LOYALSYNC_CONFIG": str(config / "loyalsync.toml"),
                   "LOYALSYNC_DATABASE_URL": f"sqlite:///{data / 'loyalsync.db'}",
                   "LOYALSYNC_SERVICE_PORT": str(port), "LOYALSYNC_WB_MAIN_TOKEN": SENTINEL}
        entry = json.loads(next(a for s, i, a in steps if s == "runtime" and i == "ENTRYPOINT"))
        cmd = json.loads(next(a for s, i, a in steps if s == "runtime" and i == "CMD"))
        health = json.loads(next(a for s, i, a in steps if s == "runtime" and i == "HEALTHCHECK").split("CMD", 1)[1])
        log_path = tmp_path / "daemon.log"
        with log_path.open("wb") as log:
            daemon = subprocess.Popen(entry + cmd, cwd=data, env=run_env, stdout=log, stderr=subprocess.STDOUT)
        try:
            deadline, healthy = time.monotonic() + 60, None
            while time.monotonic() < deadline:
                healthy = subprocess.run(health, env=run_env, cwd=data, capture_output=True, text=True, timeout=30)
                if healthy.returncode == 0:
                    break
                assert daemon.poll() is None, log_path.read_text()
                time.sleep(0.5)
            assert healthy is not None and healthy.returncode == 0, healthy.stderr
            deadline, synced = time.monotonic() + 60, 0.0
            while time.monotonic() < deadline and synced <= 0:
                text = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=5).text
                synced = sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
                             if line.startswith("loyalsync_records_synced_total{"))
                time.sleep(0.5)
            assert synced > 0, text
        finally:
            daemon.send_signal(signal.SIGTERM)
            code = daemon.wait(timeout=20)
        output = log_path.read_text()
    assert code == 0, output
    lines = [ln for ln in output.splitlines() if ln.strip()]
    assert lines and all(json.loads(ln)["level"] for ln in lines), "JSON logs, as the image sets"
    assert SENTINEL not in output
    assert (data / "loyalsync.db").exists(), "the store lives in the /data volume (WORKDIR)"
