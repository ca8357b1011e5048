"""The deployment examples parse, and say what the image and the sidecar expect: probes on the health
server's paths, DSNs from the Secret, the ConfigMap mounted where SCHEDULER_CONFIG points, compose services.
The schedule files they ship load without errors."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import yaml

from scheduler.config import Severity, lint, load_config
from scheduler.runtime.settings import Settings

REPO = Path(__file__).resolve().parents[2]
DEPLOY = REPO / "deploy"
CONFIG_DIR = "/etc/scheduler/schedules"
DSN_KEYS = {"APP_DATABASE_URL", "QUEUE_DATABASE_URL"}


def _docs(name: str) -> list[dict[str, Any]]:
    with (DEPLOY / name).open(encoding="utf-8") as f:
        docs = [d for d in yaml.safe_load_all(f) if d is not None]
    assert docs, name
    return docs


def _kinds() -> dict[str, dict[str, Any]]:
    docs = _docs("kubernetes.yaml")
    kinds = {d["kind"]: d for d in docs}
    assert len(kinds) == len(docs), "one document per kind"
    return kinds


def _container() -> dict[str, Any]:
    containers = _kinds()["Deployment"]["spec"]["template"]["spec"]["containers"]
    assert len(containers) == 1
    container: dict[str, Any] = containers[0]
    return container


def _env(container: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {e["name"]: e for e in container["env"]}


def test_every_manifest_parses() -> None:
    for path in sorted(DEPLOY.glob("*.yaml")):
        assert _docs(path.name)
    assert {"kubernetes.yaml", "docker-compose.yaml"} <= {p.name for p in DEPLOY.glob("*.yaml")}


def test_deployment_runs_three_replicas_with_probes_on_the_health_paths() -> None:
    deployment = _kinds()["Deployment"]
    assert deployment["apiVersion"] == "apps/v1"
    spec = deployment["spec"]
    assert spec["replicas"] == 3
    assert spec["selector"]["matchLabels"].items() <= spec["template"]["metadata"]["labels"].items()
    container = _container()
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    for probe in ("readinessProbe", "livenessProbe"):
        port = container[probe]["httpGet"]["port"]
        assert ports.get(port, port) == int(_env(container)["SCHEDULER_HEALTH_PORT"]["value"])
    assert set(container["resources"]["requests"]) == {"cpu", "memory"}
    assert "memory" in container["resources"]["limits"]
    security = spec["template"]["spec"]["securityContext"]
    assert security["runAsNonRoot"] is True
    assert security["runAsUser"] != 0
    grace = Settings.model_fields["grace_period"].get_default().total_seconds()
    assert spec["template"]["spec"]["terminationGracePeriodSeconds"] > grace


def test_dsns_come_from_the_secret_and_settings_are_real_ones() -> None:
    kinds = _kinds()
    secret = kinds["Secret"]
    env = _env(_container())
    for key in DSN_KEYS:
        ref = env[key]["valueFrom"]["secretKeyRef"]
        assert ref == {"name": secret["metadata"]["name"], "key": key}
        assert key in secret["stringData"]
    known = {f"SCHEDULER_{name.upper()}" for name in Settings.model_fields}
    scheduler_vars = {name for name in env if name.startswith("SCHEDULER_")}
    assert scheduler_vars, "SCHEDULER_* settings"
    assert scheduler_vars <= known, scheduler_vars - known


def test_configmap_is_mounted_where_scheduler_config_points() -> None:
    kinds = _kinds()
    container = _container()
    config_dir = _env(container)["SCHEDULER_CONFIG"]["value"]
    assert config_dir == CONFIG_DIR
    mounts = {m["name"]: m for m in container["volumeMounts"]}
    volumes = {v["name"]: v for v in kinds["Deployment"]["spec"]["template"]["spec"]["volumes"]}
    (name,) = [n for n, m in mounts.items() if m["mountPath"] == config_dir]
    assert mounts[name]["readOnly"] is True
    assert volumes[name]["configMap"]["name"] == kinds["ConfigMap"]["metadata"]["name"]


def test_configmap_schedule_files_load(tmp_path: Path) -> None:
    for name, text in _kinds()["ConfigMap"]["data"].items():
        assert name.endswith(".yaml")
        (tmp_path / name).write_text(text, encoding="utf-8")
    loaded = load_config([tmp_path])
    assert loaded.config.schedules
    assert not [f for f in lint(loaded) if f.severity is Severity.ERROR]


def test_compose_has_postgres_scheduler_and_a_pgboss_worker() -> None:
    (compose,) = _docs("docker-compose.yaml")
    services = compose["services"]
    assert {"postgres", "scheduler", "worker"} <= set(services)
    scheduler = services["scheduler"]
    assert scheduler["build"]["context"] == ".."
    assert (DEPLOY / scheduler["build"]["context"] / scheduler["build"]["dockerfile"]).is_file()
    env = scheduler["environment"]
    assert env["SCHEDULER_CONFIG"] == CONFIG_DIR
    assert set(env) >= DSN_KEYS
    mounts = [v.split(":") for v in scheduler["volumes"]]
    (source,) = [src for src, dst, *_ in mounts if dst == CONFIG_DIR]
    assert (DEPLOY / source).is_dir()
    assert {"postgres", "worker"} <= set(scheduler["depends_on"])
    assert scheduler["ports"] == [f"{env['SCHEDULER_HEALTH_PORT']}:{env['SCHEDULER_HEALTH_PORT']}"]

    worker = services["worker"]
    worker_dir = DEPLOY / worker["build"]
    assert (worker_dir / "worker.mjs").is_file()
    assert (worker_dir / "Dockerfile").is_file()
    package = json.loads((worker_dir / "package.json").read_text(encoding="utf-8"))
    assert package["dependencies"]["pg-boss"] == "12.38.0"  # the version the backend writes for
    lock = json.loads((worker_dir / "package-lock.json").read_text(encoding="utf-8"))
    assert lock["packages"]["node_modules/pg-boss"]["version"] == "12.38.0"
    # The worker works (and creates) the queues the demo schedules write to, with the same policy.
    loaded = load_config([DEPLOY / source])
    declared = {(q.name, q.policy) for q in loaded.config.queues.values()}
    worked = {tuple(pair.split(":")) for pair in worker["environment"]["WORKER_QUEUES"].split(",")}
    assert declared == worked
    assert not [f for f in lint(loaded) if f.severity is Severity.ERROR]


def test_dockerfile_matches_the_runtime() -> None:
    text = (REPO / "Dockerfile").read_text(encoding="utf-8")
    assert re.search(r"^FROM python:3\.11-slim", text, re.M)
    assert re.search(r"^USER (?!0\b|root\b)\S+", text, re.M)
    assert "pip install --no-deps -r /tmp/requirements.lock" in text
    assert "pip install --no-deps ." in text
    assert f"SCHEDULER_CONFIG={CONFIG_DIR}" in text
    assert "SCHEDULER_HEALTH_PORT=8080" in text
    assert Settings.model_fields["health_port"].default == 8080
    healthcheck = re.search(r"^HEALTHCHECK.*(?:\n\s+.*)*", text, re.M)
    assert healthcheck is not None
    assert "/healthz" in healthcheck.group(0)
    assert 'ENTRYPOINT ["scheduler", "run"]' in text


def test_requirements_lock_pins_every_runtime_dependency() -> None:
    import tomllib

    project = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    pins: dict[str, str] = {}
    for line in (REPO / "requirements.lock").read_text(encoding="utf-8").splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            name, sep, version = line.partition("==")
            assert sep, f"not an exact pin: {line}"
            assert version, f"not an exact pin: {line}"
            pins[re.sub(r"[-_.]+", "-", name).lower()] = version
    for dep in project["dependencies"]:
        name = re.sub(r"[-_.]+", "-", re.split(r"[\[<>=!~ ]", dep, maxsplit=1)[0]).lower()
        assert name in pins, f"{dep} is not pinned in requirements.lock"
