#!/usr/bin/env bash
# Pin the image's jars: download each one once (on a machine that reaches Maven Central), check it against the
# SHA-1 that Maven Central publishes beside it, and write its SHA-256 into jars.sha256 for the Dockerfile.
# Usage: k8s/image/pin-jars.sh   (versions are read from the Dockerfile's ARG lines)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
arg() { sed -n "s/^ARG $1=//p" "$here/Dockerfile"; }
maven=$(arg MAVEN); delta=$(arg DELTA_VERSION); hadoop=$(arg HADOOP_AWS_VERSION)
sdk=$(arg AWS_SDK_VERSION); jmx=$(arg JMX_EXPORTER_VERSION)
work=$(mktemp -d); trap 'rm -rf "$work"' EXIT
paths=(
  "io/delta/delta-spark_2.13/$delta/delta-spark_2.13-$delta.jar"
  "io/delta/delta-storage/$delta/delta-storage-$delta.jar"
  "org/apache/hadoop/hadoop-aws/$hadoop/hadoop-aws-$hadoop.jar"
  "software/amazon/awssdk/bundle/$sdk/bundle-$sdk.jar"
  "io/prometheus/jmx/jmx_prometheus_javaagent/$jmx/jmx_prometheus_javaagent-$jmx.jar"
)
: > "$work/jars.sha256"
for p in "${paths[@]}"; do
  name=$(basename "$p")
  curl -fsSL -o "$work/$name" "$maven/$p"
  want_sha1=$(curl -fsSL "$maven/$p.sha1" | cut -c1-40)
  got_sha1=$(sha1sum "$work/$name" | cut -c1-40)
  [ "$want_sha1" = "$got_sha1" ] || { echo "SHA-1 mismatch for $name" >&2; exit 1; }
  (cd "$work" && sha256sum "$name") >> "$work/jars.sha256"
done
cp "$work/jars.sha256" "$here/jars.sha256"
cat "$here/jars.sha256"
