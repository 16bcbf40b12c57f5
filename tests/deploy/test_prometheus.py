"""The Prometheus rules: valid, unit-tested with promtool, about metrics that exist, and every
alert linked to a runbook that exists and names real settings."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import yaml
from prometheus_client import CollectorRegistry

from streams.metrics import Metrics
from streams.settings import Settings
from streams.supervisor import Supervisor

ROOT = Path(__file__).parents[2]
RULES = ROOT / "deploy" / "prometheus" / "rules.yml"
RUNBOOKS = ROOT / "docs" / "runbooks"


def promtool(*args: str) -> subprocess.CompletedProcess[str]:
    tool = shutil.which("promtool")
    assert tool, "promtool is needed (Debian package prometheus; .ci/run and check.sh install it)"
    return subprocess.run([tool, *args], capture_output=True, text=True, cwd=Path(__file__).parent)


def test_rules_and_the_deployed_configuration_are_valid() -> None:
    result = promtool("check", "rules", str(RULES))
    assert result.returncode == 0, result.stdout + result.stderr
    result = promtool("check", "config", str(RULES.parent / "prometheus.yml"))
    assert result.returncode == 0, result.stdout + result.stderr  # and finds rules.yml


def test_rules_pass_their_unit_tests() -> None:
    result = promtool("test", "rules", "rules_test.yml")
    assert result.returncode == 0, result.stdout + result.stderr


def rules() -> list[dict[str, object]]:
    return [
        rule for group in yaml.safe_load(RULES.read_text())["groups"] for rule in group["rules"]
    ]


def test_every_alert_has_a_runbook_and_every_runbook_is_listed() -> None:
    alerts = [rule for rule in rules() if "alert" in rule]
    assert len(alerts) >= 6
    index = (RUNBOOKS / "README.md").read_text()
    for rule in alerts:
        annotations = rule["annotations"]
        assert isinstance(annotations, dict)
        page = ROOT / annotations["runbook_url"]
        assert page.is_file(), rule["alert"]
        assert page.read_text().startswith(f"# {rule['alert']}\n")
        assert f"]({page.name})" in index
    for page in RUNBOOKS.glob("*.md"):
        assert page.name == "README.md" or f"]({page.name})" in index, page.name


def test_rules_and_runbooks_name_only_real_metrics_and_settings(tmp_path: Path) -> None:
    exported = set()
    supervisor = Supervisor(["true"], 1, {}, str(tmp_path))  # its own two metrics
    for metric in [*vars(Metrics(CollectorRegistry())).values(), *vars(supervisor).values()]:
        name = getattr(metric, "_name", None)
        if name:
            exported |= {name, f"{name}_total", f"{name}_bucket", f"{name}_count", f"{name}_sum"}
    text = RULES.read_text() + "".join(p.read_text() for p in RUNBOOKS.glob("*.md"))
    named = set(re.findall(r"\babusemon_[a-z_]+", text))
    assert named and named <= exported, named - exported
    settings = {f"ABUSEMON_{field.upper()}" for field in Settings.model_fields}
    mentioned = set(re.findall(r"ABUSEMON_[A-Z_]+", text))
    assert mentioned <= settings, mentioned - settings
