#!/usr/bin/env bash
# Pin the image's jars: Maven resolves them from jars/pom.xml (profile `image`: Delta, hadoop-aws, the AWS SDK
# bundle, the JMX exporter agent), verifying each against the checksum Maven Central publishes beside it (-C: a
# mismatch fails); their SHA-256 sums go into jars.sha256, which the Dockerfile's build checks again.
# Usage: k8s/image/pin-jars.sh   (needs Maven; the versions are jars/pom.xml's)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
pom="$here/../../jars/pom.xml"
work=$(mktemp -d); trap 'rm -rf "$work"' EXIT
mvn -q -B -C --no-transfer-progress -f "$pom" -Pimage dependency:build-classpath \
    -DexcludeTransitive=true -Dmdep.outputFile="$work/classpath" -Dmdep.pathSeparator=$'\n'
: > "$work/jars.sha256"
while IFS= read -r jar; do
  [ -n "$jar" ] || continue
  (cd "$(dirname "$jar")" && sha256sum "$(basename "$jar")") >> "$work/jars.sha256"
done < <(sort "$work/classpath"; echo)
cp "$work/jars.sha256" "$here/jars.sha256"
cat "$here/jars.sha256"
