"""Deployment files: the Helm chart renders to manifests valid against Kubernetes' schemas, the compose file's
`scaled` profile puts three replicas behind Traefik with PostgreSQL, Redis and healthchecks."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.scale.helm import Chart
from tests.support.peers import missing_peer
from tests.support.servers import ROOT

try:
    import kubernetes_validate
    from yamllint import config as yamllint_config, linter
except ImportError:  # the dev extras bring both
    missing_peer("kubernetes-validate or yamllint missing: pip install -e '.[dev]' (scripts/setup)")

CHART = ROOT / "deploy" / "helm" / "toolhub"
KUBERNETES = "1.37.0"
_LINT = yamllint_config.YamlLintConfig(
    "{extends: default, rules: {line-length: {max: 140}, document-start: disable, truthy: {check-keys: false}, "
    "comments: {min-spaces-from-content: 1}}}"
)


def by_kind(documents: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {doc["kind"]: doc for doc in documents}


_FIXED = {"autoscaling": {"enabled": False}, "podDisruptionBudget": {"enabled": False}, "workers": 2}


@pytest.mark.parametrize("overrides", [{}, _FIXED])
def test_the_chart_renders_manifests_that_kubernetes_schemas_accept(overrides: dict[str, Any]) -> None:
    documents = Chart(CHART).documents(overrides)
    for doc in documents:
        kubernetes_validate.validate(doc, KUBERNETES, strict=True)  # raises on any schema violation
    kinds = sorted(doc["kind"] for doc in documents)
    if overrides:
        assert kinds == ["ConfigMap", "Deployment", "Service"]
        assert by_kind(documents)["Deployment"]["spec"]["replicas"] == 3
    else:
        assert kinds == ["ConfigMap", "Deployment", "HorizontalPodAutoscaler", "PodDisruptionBudget", "Service"]


def test_the_deployment_probes_health_and_takes_its_secrets_by_reference() -> None:
    documents = by_kind(Chart(CHART).documents())
    pod = documents["Deployment"]["spec"]["template"]["spec"]
    [container] = pod["containers"]
    assert container["readinessProbe"]["httpGet"]["path"] == "/health/readiness"
    assert container["livenessProbe"]["httpGet"]["path"] == "/health/liveliness"
    assert container["envFrom"] == [{"secretRef": {"name": "toolhub"}}]
    assert "--workers" in container["args"]
    config = yaml.safe_load(documents["ConfigMap"]["data"]["config.yaml"])
    assert pod["terminationGracePeriodSeconds"] > config["general_settings"]["shutdown_grace_seconds"]
    assert "sessionAffinity" not in documents["Service"]["spec"]
    hpa, pdb = documents["HorizontalPodAutoscaler"]["spec"], documents["PodDisruptionBudget"]["spec"]
    assert hpa["scaleTargetRef"]["name"] == documents["Deployment"]["metadata"]["name"]
    assert pdb["selector"]["matchLabels"] == documents["Deployment"]["spec"]["selector"]["matchLabels"]


def test_the_configmap_holds_a_config_that_toolhub_accepts(tmp_path: Path) -> None:
    config = by_kind(Chart(CHART).documents())["ConfigMap"]["data"]["config.yaml"]
    path = tmp_path / "config.yaml"
    path.write_text(config)
    checked = subprocess.run([sys.executable, "-m", "hub", "check-config", str(path)], capture_output=True, timeout=120,
                             env={"PATH": "/usr/bin:/bin"}, cwd=ROOT)  # fmt: skip
    assert checked.returncode == 0, checked.stderr.decode()
    assert b"redis" not in checked.stderr.lower()


def test_compose_scaled_profile_runs_three_replicas_behind_traefik_with_healthchecks() -> None:
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    services = compose["services"]
    scaled = {name for name, service in services.items() if "scaled" in service.get("profiles", [])}
    assert scaled == {"redis", "toolhub-replica", "traefik"}
    replica = services["toolhub-replica"]
    assert replica["deploy"]["replicas"] == 3
    assert {name: cond["condition"] for name, cond in replica["depends_on"].items()} == {
        "postgres": "service_healthy", "redis": "service_healthy", "postgres_db": "service_started"}  # fmt: skip
    assert "/health/readiness" in " ".join(replica["healthcheck"]["test"])
    labels = replica["labels"]
    assert labels["traefik.http.services.toolhub.loadbalancer.healthcheck.path"] == "/health/readiness"
    assert not [key for key in labels if "sticky" in key]
    assert services["traefik"]["depends_on"] == {"toolhub-replica": {"condition": "service_healthy"}}
    for name in ("postgres", "redis", "toolhub-replica", "traefik"):
        assert services[name]["healthcheck"]["test"], name
    mounted = replica["volumes"][0].split(":")[0]
    assert (ROOT / mounted).is_file()


def test_the_scaled_compose_config_is_valid_with_its_variables_set(tmp_path: Path) -> None:
    env = {"PATH": "/usr/bin:/bin", "TOOLHUB_MASTER_KEY": "sk-x", "DATABASE_URL": "postgresql://a@db/toolhub",
           "REDIS_URL": "redis://redis:6379/0", "TOOLHUB_PUBLIC_HOST": "hub.example.com"}  # fmt: skip
    checked = subprocess.run([sys.executable, "-m", "hub", "check-config", "deploy/compose/config.scaled.yaml"],
                             capture_output=True, timeout=120, env=env, cwd=ROOT)  # fmt: skip
    assert checked.returncode == 0, checked.stderr.decode()
    assert b"serve: would refuse" not in checked.stdout


@pytest.mark.parametrize("path", ["docker-compose.yml", "deploy/compose/config.scaled.yaml",
                                  "deploy/helm/toolhub/values.yaml", "deploy/helm/toolhub/Chart.yaml"])  # fmt: skip
def test_yaml_files_pass_yamllint(path: str) -> None:
    problems = list(linter.run((ROOT / path).read_text(), _LINT))
    assert [f"{p.line}:{p.column} {p.message}" for p in problems] == []


def test_the_image_runs_under_an_init_that_reaps_orphans() -> None:
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert 'ENTRYPOINT ["/usr/bin/tini", "--"]' in dockerfile and "apt-get install" in dockerfile
    command = next(line for line in dockerfile.splitlines() if line.startswith("CMD "))
    assert '"toolhub", "serve"' in command
