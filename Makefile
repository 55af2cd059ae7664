# Quick start: `make run` (sample data + the daily job on the embedded rust engine), `make test`.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
export LAKEHOUSE_ROOT ?= lake
export PYSPARK_PYTHON := $(abspath $(BIN))/python

DAYS ?= 7
ROWS ?= 2000
SEED ?= 42

.PHONY: setup jars jars-s3a run generate validate k8s-conf test test-jvm test-faults test-soak test-kill test-readme test-s3 test-cluster lint k8s-check bench clean notebooks

$(STAMP): pyproject.toml requirements.lock conf/spark/log4j2.properties conf/spark/spark-defaults.conf
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -c requirements.lock -e ".[dev]"
	# Spark's own log lines quiet by default in every run, spark-submit included: SPARK_HOME/conf is on the
	# driver's classpath before any job code runs (-v turns Spark's INFO lines back on); with the JVM settings for
	# short runs on few cores (conf/spark/spark-defaults.conf says why)
	spark_conf="$$($(BIN)/python -c 'import os, pyspark; print(os.path.dirname(pyspark.__file__))')/conf" && \
		mkdir -p "$$spark_conf" && cp conf/spark/log4j2.properties conf/spark/spark-defaults.conf "$$spark_conf/"
	# the Pushgateway (Debian's package) for the metrics test, where the machine lets setup install it
	command -v prometheus-pushgateway >/dev/null || { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null && \
		{ apt-get install -y -qq prometheus-pushgateway >/dev/null 2>&1 || \
		  { apt-get update -qq >/dev/null 2>&1 && apt-get install -y -qq prometheus-pushgateway >/dev/null 2>&1; }; }; } || \
		echo "note: prometheus-pushgateway is not installed here; the Pushgateway test will be skipped"
	touch $(STAMP)

setup: $(STAMP) ## create .venv and install the pinned dependencies

# The production engine's jars (delta-spark), fetched by Maven from jars/pom.xml (`make jars`; `make jars-s3a` adds
# hadoop-aws and the AWS SDK bundle). Once fetched, the test targets put them on Spark's classpath themselves
# (LAKEHOUSE_SPARK_JARS, unless it is set already), so the jvm engine's tests run beside the rust engine's.
MVN := mvn -q -B -C --no-transfer-progress -f jars/pom.xml
comma := ,
jar_list = $(subst $() ,$(comma),$(strip $(abspath $(wildcard $(1)/*.jar)) $(2)))
JVM_JARS := $(call jar_list,jars/lib)
S3A_JARS := $(call jar_list,jars/lib-s3a,$(if $(wildcard jars/lib-s3a/aws-sdk-bundle.path),$(shell cat jars/lib-s3a/aws-sdk-bundle.path)))
# pytest workers (pytest-xdist), each a Python with its own SparkSession. make test keeps a test file on one worker
# (a module's fixtures are built once); the kill and fault suites, one file each of long trials, hand out single
# tests (a module fixture is built once per worker). TEST_WORKERS=0 runs in one process.
TEST_WORKERS ?= 2
workers = $(if $(filter 0,$(TEST_WORKERS)),,-n $(TEST_WORKERS) --dist $(1))
TEST_ENV := LAKEHOUSE_SPARK_JARS="$${LAKEHOUSE_SPARK_JARS-$(JVM_JARS)}" LAKEHOUSE_S3A_JARS="$${LAKEHOUSE_S3A_JARS-$(S3A_JARS)}"

jars: ## Delta's JVM jars into jars/lib (needs Maven; the README's two commands do not)
	@command -v mvn >/dev/null || { echo "make jars needs Maven (mvn) on PATH; without it the embedded rust engine runs and the jvm tests are skipped" >&2; exit 2; }
	$(MVN) package
	@ls jars/lib

jars-s3a: jars ## hadoop-aws into jars/lib-s3a; the AWS SDK bundle stays in Maven's local cache
	$(MVN) -Ps3a package
	@ls jars/lib-s3a && cat jars/lib-s3a/aws-sdk-bundle.path

generate: $(STAMP) ## write sample data into $(LAKEHOUSE_ROOT)/raw if it is empty
	$(BIN)/lakehouse generate --if-empty --days $(DAYS) --rows-per-day $(ROWS) --seed $(SEED)

validate: $(STAMP)
	$(BIN)/lakehouse validate-config

run: generate ## run the daily job over every raw partition not loaded yet (all generated days the first time)
	$(BIN)/spark-submit --master "local[2]" --conf spark.ui.enabled=false \
		--driver-java-options "-Dlog4j2.configurationFile=conf/spark/log4j2.properties" \
		spark_jobs/daily_aggregation.py --pending

test: $(STAMP) k8s-conf ## the test suite (real Spark, real Delta tables)
	$(TEST_ENV) $(BIN)/pytest -q $(call workers,loadfile) -m "not kill and not readme and not s3 and not cluster and not faults"

test-jvm: $(STAMP) ## the production engine's tests only (after `make jars`): contract, twins, interop, spark-submit
	LAKEHOUSE_REQUIRE_JVM=1 $(TEST_ENV) $(BIN)/pytest -q -m "jvm and not kill and not readme and not s3 and not cluster and not faults"

test-faults: $(STAMP) ## fault injection: commands at once, kills, environment errors, missing storage, odd paths
	$(TEST_ENV) $(BIN)/pytest -q $(call workers,load) -m "faults and not soak"

test-soak: $(STAMP) ## long fault trials: a run killed at twenty moments, fifty concurrent pairs (about 45 min)
	$(TEST_ENV) $(BIN)/pytest -q -m soak

test-kill: $(STAMP) ## the job killed with SIGKILL at every fault point, then rerun: tables as if never killed
	$(TEST_ENV) $(BIN)/pytest -q $(call workers,load) -m kill

notebooks: run ## open JupyterLab on the sample lake (installs JupyterLab into .venv the first time)
	test -x $(BIN)/jupyter-lab || $(BIN)/pip install --quiet jupyterlab
	LAKEHOUSE_ROOT=$(abspath $(LAKEHOUSE_ROOT)) LAKEHOUSE_CONF_DIR=$(abspath conf) \
		$(BIN)/jupyter-lab --notebook-dir=notebooks

test-readme: $(STAMP) ## every command line of the README, run as written on a generated lake
	$(BIN)/pytest -q -m readme

test-cluster: $(STAMP) ## the job on local-cluster[2,1,1024] (two executor JVMs) writes what local[2] writes
	$(BIN)/pytest -q -m cluster

test-s3: $(STAMP) ## the lake on a real S3 API (moto on 127.0.0.1): land, run, rerun, late change, races, secrets
	$(TEST_ENV) $(BIN)/pytest -q $(call workers,loadfile) -m s3

lint: $(STAMP)
	$(BIN)/ruff check src tests spark_jobs
	$(BIN)/mypy
	$(BIN)/lint-imports

clean:
	rm -rf lake spark-warehouse metastore_db derby.log .pytest_cache

k8s-conf: $(STAMP) ## write conf/kustomization.yaml from the spec files (a new spec is one YAML file)
	$(BIN)/python tools/conf_kustomization.py conf

k8s-check: k8s-conf ## render every kustomization and validate it strictly; lint the image recipe
	$(BIN)/hadolint k8s/image/Dockerfile
	$(BIN)/pytest -q tests/test_k8s.py

bench: $(STAMP) ## performance targets (sizes: BENCH_CHECK_ROWS, BENCH_ROWS, BENCH_MEMORY_ROWS); bench/results/
	$(BIN)/python bench/run_bench.py
