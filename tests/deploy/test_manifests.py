"""The Kubernetes manifests and the Compose stack hang together with the code: settings that
exist and validate, probe paths the worker serves, ports, labels and replicas."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

import yaml
from pydantic import SecretStr

from streams.settings import Settings

DEPLOY = Path(__file__).parents[2] / "deploy"
K8S = DEPLOY / "kubernetes"


def load(name: str) -> dict[str, Any]:
    document: dict[str, Any] = yaml.safe_load((K8S / name).read_text())
    return document


def settings_from(env: dict[str, str]) -> Settings:
    assert all(key.startswith("ABUSEMON_") for key in env)
    fields = {key.removeprefix("ABUSEMON_").lower(): value for key, value in env.items()}
    assert set(fields) <= set(Settings.model_fields), set(fields) - set(Settings.model_fields)
    return Settings(**fields)  # type: ignore[arg-type]


def test_kustomization_lists_every_manifest() -> None:
    listed = set(load("kustomization.yaml")["resources"])
    assert listed == {p.name for p in K8S.glob("*.yaml")} - {"kustomization.yaml"}


def test_the_deployment_matches_the_settings_and_the_worker() -> None:
    settings = settings_from(load("configmap.yaml")["data"])
    deployment = load("deployment.yaml")
    spec = deployment["spec"]
    labels = spec["template"]["metadata"]["labels"]
    assert spec["selector"]["matchLabels"] == labels
    assert 1 <= spec["replicas"] <= settings.input_partitions  # more would sit idle
    [container] = spec["template"]["spec"]["containers"]
    [port] = container["ports"]
    assert port["containerPort"] == settings.metrics_port
    annotations = spec["template"]["metadata"]["annotations"]
    assert annotations["prometheus.io/port"] == str(settings.metrics_port)
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert container["resources"]["limits"]["memory"]
    assert spec["template"]["spec"]["securityContext"]["runAsNonRoot"] is True
    for other in ("service.yaml", "poddisruptionbudget.yaml", "podmonitor.yaml"):
        selector = load(other)["spec"]["selector"]
        assert selector.get("matchLabels", selector) == labels, other
    assert load("service.yaml")["spec"]["ports"][0]["port"] == settings.metrics_port


def test_metrics_listen_on_the_pod_and_only_prometheus_reaches_them() -> None:
    # The default is loopback, so a pod must ask for every interface, explicitly.
    assert Settings.model_fields["metrics_host"].default == "127.0.0.1"
    settings = settings_from(load("configmap.yaml")["data"])
    assert settings.metrics_host == "0.0.0.0"
    pod_labels = load("deployment.yaml")["spec"]["template"]["metadata"]["labels"]
    policy = load("networkpolicy.yaml")
    assert policy["kind"] == "NetworkPolicy"
    spec = policy["spec"]
    assert spec["podSelector"]["matchLabels"] == pod_labels
    assert spec["policyTypes"] == ["Ingress"]
    [rule] = spec["ingress"]  # one way in, and nothing else
    [port] = rule["ports"]
    [container] = load("deployment.yaml")["spec"]["template"]["spec"]["containers"]
    [metrics_port] = container["ports"]
    assert port["port"] in (metrics_port["name"], settings.metrics_port)
    [peer] = rule["from"]  # Prometheus' pods in its namespace, not every pod of a namespace
    assert peer["podSelector"]["matchLabels"] == {"app.kubernetes.io/name": "prometheus"}
    assert set(peer) == {"namespaceSelector", "podSelector"}


def test_secrets_come_from_a_secret_and_never_the_configmap() -> None:
    secret_variables = {
        f"ABUSEMON_{name.upper()}"
        for name, field in Settings.model_fields.items()
        if field.annotation is SecretStr
    }
    assert not secret_variables & set(load("configmap.yaml")["data"])
    [container] = load("deployment.yaml")["spec"]["template"]["spec"]["containers"]
    from_secrets = {
        entry["name"]: entry["valueFrom"]["secretKeyRef"]
        for entry in container["env"]
        if "secretKeyRef" in entry.get("valueFrom", {})
    }
    assert "ABUSEMON_KAFKA_SASL_PASSWORD" in from_secrets
    assert set(from_secrets) <= {f"ABUSEMON_{name.upper()}" for name in Settings.model_fields}
    assert all(ref["optional"] is True for ref in from_secrets.values())  # starts without them
    assert {entry["name"] for entry in container["env"]} <= set(from_secrets)  # no inline values


def test_the_compose_stack_configures_real_settings() -> None:
    stack = yaml.safe_load((DEPLOY / "docker-compose.yml").read_text())
    for service in stack["services"].values():
        env = service.get("environment", {})
        if any(key.startswith("ABUSEMON_") for key in env):
            settings_from({k: str(v) for k, v in env.items() if k.startswith("ABUSEMON_")})
    # Prometheus scrapes the workers over the stack's network: not on loopback.
    assert stack["services"]["worker"]["environment"]["ABUSEMON_METRICS_HOST"] == "0.0.0.0"
    assert {
        "kafka",
        "topics",
        "worker",
        "simulator",
        "prometheus",
        "alertmanager",
        "grafana",
    } <= set(stack["services"])


def test_compose_accepts_the_stack() -> None:
    tool = shutil.which("docker-compose")
    assert tool, "docker-compose is needed (Debian package; .ci/run and check.sh install it)"
    result = subprocess.run(
        [tool, "-f", str(DEPLOY / "docker-compose.yml"), "config", "-q"],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr
