"""The production engine's jars have one source: jars/pom.xml. The Python package, the image recipe, the pinned
checksums and the jars Maven fetched here must all agree with it."""

from __future__ import annotations

import hashlib
import os
import re
import tomllib
import xml.etree.ElementTree as ET
from pathlib import Path

from tests.conftest import REPO, require_jars

POM = REPO / "jars" / "pom.xml"
SUMS = REPO / "k8s" / "image" / "jars.sha256"
DOCKERFILE = REPO / "k8s" / "image" / "Dockerfile"
NS = {"m": "http://maven.apache.org/POM/4.0.0"}


def pom_properties() -> dict[str, str]:
    root = ET.parse(POM).getroot()
    return {child.tag.split("}", 1)[1]: (child.text or "").strip() for child in root.find("m:properties", NS)}


def expected_jars() -> dict[str, str]:
    """Jar file name -> its path below a Maven repository, for every jar of the image."""
    p = pom_properties()
    d, h, sdk, jmx = p["delta.version"], p["hadoop.version"], p["aws.sdk.version"], p["jmx.exporter.version"]
    return {
        f"delta-spark_2.13-{d}.jar": f"io/delta/delta-spark_2.13/{d}",
        f"delta-storage-{d}.jar": f"io/delta/delta-storage/{d}",
        f"hadoop-aws-{h}.jar": f"org/apache/hadoop/hadoop-aws/{h}",
        f"bundle-{sdk}.jar": f"software/amazon/awssdk/bundle/{sdk}",
        f"jmx_prometheus_javaagent-{jmx}.jar": f"io/prometheus/jmx/jmx_prometheus_javaagent/{jmx}",
    }


def pinned() -> dict[str, str]:
    out = {}
    for line in SUMS.read_text().splitlines():
        digest, name = line.split()
        out[name] = digest
    return out


def test_the_descriptor_matches_the_python_packages():
    """Delta's jars at pyproject.toml's delta-spark version; hadoop-aws at the Hadoop that pyspark ships."""
    deps = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["dependencies"]
    delta = next(d for d in deps if d.startswith("delta-spark=="))
    assert pom_properties()["delta.version"] == delta.split("==", 1)[1]
    import pyspark

    shipped = os.listdir(Path(pyspark.__file__).parent / "jars")
    hadoop = [re.fullmatch(r"hadoop-client-api-(.+)\.jar", j) for j in shipped]
    assert [m.group(1) for m in hadoop if m] == [pom_properties()["hadoop.version"]]


def test_the_pinned_sums_are_real_and_name_the_descriptors_jars():
    sums = pinned()
    assert set(sums) == set(expected_jars())
    assert all(re.fullmatch(r"[0-9a-f]{64}", d) and d != "0" * 64 for d in sums.values()), sums


def test_the_image_takes_its_jars_from_the_descriptor_and_checks_the_sums():
    text = DOCKERFILE.read_text()
    assert "COPY jars/pom.xml k8s/image/jars.sha256" in text
    assert "-Pimage dependency:copy-dependencies" in text and "sha256sum --strict --check" in text
    assert "curl" not in text and "repo1.maven.org" not in text  # no download address of its own
    # no version of a jar is written in the recipe: they are the descriptor's
    for version in {v for k, v in pom_properties().items() if k.endswith("version")} - {"4.0.1"}:
        assert not re.search(rf"(delta|hadoop|aws|sdk|jmx)\S*[-=:]{re.escape(version)}\b", text, re.I), version
    # the JMX agent lands where the manifests point
    agent = "/opt/lakehouse/jars/jmx_prometheus_javaagent.jar"
    assert agent in text
    for manifest in ("base/daily.yaml", "base/maintenance.yaml", "../k8s/backfill/backfill.yaml"):
        assert f"jmxExporterJar: {agent}" in (REPO / "k8s" / manifest).read_text()
    # the build context carries the descriptor but not the fetched jars
    ignored = (REPO / ".dockerignore").read_text().split()
    assert "jars/lib" in ignored and "jars" not in ignored


def _fetched(name: str, folder: str) -> list[Path]:
    repository = Path(os.environ.get("MAVEN_REPOSITORY", Path.home() / ".m2" / "repository"))
    candidates = [repository / folder / name, REPO / "jars" / "lib" / name, REPO / "jars" / "lib-s3a" / name]
    return [p for p in candidates if p.is_file()]


def test_the_jars_maven_fetched_here_have_the_pinned_sums():
    """Every jar Maven has fetched on this machine (its local repository, jars/lib, jars/lib-s3a) has the pinned
    SHA-256. Delta's jars must be there where the jvm engine is required (CI runs `make jars` first)."""
    sums, checked = pinned(), []
    for name, folder in expected_jars().items():
        for path in _fetched(name, folder):
            assert hashlib.sha256(path.read_bytes()).hexdigest() == sums[name], path
            checked.append(name)
    if not any(n.startswith("delta-spark") for n in checked):
        require_jars("Delta's jars have not been fetched here (`make jars`)")
