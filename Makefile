# clickstream — the two commands a newcomer needs are `make run` and `make test`.
# Everything else here is what those call, plus `make bench` and `make fuzz`.

SHELL := bash
.ONESHELL:
.SHELLFLAGS := -euo pipefail -c

# cargo honours CARGO_TARGET_DIR (CI keeps it outside the clone as a cache); scripts need it too.
TARGET_DIR := $(or $(CARGO_TARGET_DIR),$(CURDIR)/target)

.PHONY: run up test test-rust test-dbt test-e2e test-up test-dashboard test-deploy test-sdk test-clients bench soak crash fuzz python-env fmt lint

## run: build and start the pipeline locally on the embedded default (no cloud account)
run:
	bash scripts/run-local.sh

## up: the local twin, kept running: collector, demo storefront (http://127.0.0.1:8060), a live
## simulator, the hourly flow every minute and the nightly one at 02:30 UTC (as Kestra runs them
## in production), and the dashboard (http://127.0.0.1:8050), refreshing itself. Ctrl-C stops it;
## the state in .clickstream/ is kept, and `make up` again continues from it.
up:
	bash scripts/up.sh

## test: every test suite — Rust (Pub/Sub, GCS and BigQuery emulators, DuckDB), dbt (DuckDB +
## BigQuery emulator), the whole local chain against the simulator's truth, the dashboard
## (API + Chromium), deployment checks (Terraform, checkov, Kestra, Docker), SDK (Chromium),
## independent clients (analytics-node, a generated OpenAPI client, schemathesis)
test: test-rust test-dbt test-e2e test-up test-dashboard test-deploy test-sdk test-clients

test-rust: python-env
	cargo test --workspace --all-targets

python-env:
	bash scripts/python-env.sh

test-dbt: python-env
	.venv/bin/python -m pytest tests/dbt -q -p no:cacheprovider

test-e2e: python-env
	cargo build --workspace --bins
	.venv/bin/python -m pytest tests/e2e -q -p no:cacheprovider

## test-up: `make up` in headless Chromium: clicks in the demo shop reach the dashboard in 2 minutes
test-up:
	bash tests/e2e/make-up-test.sh

test-dashboard:
	bash dashboard/scripts/test.sh

test-deploy:
	bash scripts/deploy-checks-env.sh
	.venv-hcl/bin/python -m pytest tests/deploy -q -p no:cacheprovider

test-sdk:
	CLICKSTREAM_COLLECTOR_BIN="$(TARGET_DIR)/debug/clickstream-collector" bash storefront-sdk/scripts/test.sh

test-clients:
	CLICKSTREAM_COLLECTOR_BIN="$(TARGET_DIR)/debug/clickstream-collector" bash tests/clients/test.sh

## bench: load and throughput benchmarks (collector, batcher core, end to end: spool → marts);
## prints tables and writes bench/RESULTS.md. The end-to-end part alone: bash scripts/bench-e2e.sh
bench:
	bash scripts/bench-collector.sh
	bash scripts/bench-batcher.sh
	bash scripts/bench-e2e.sh

## soak: collector → spool → batcher for 30 min (SOAK_SECONDS) at a steady rate; writes bench/SOAK.md
soak:
	bash scripts/soak.sh

## crash: crash accounting at full scale on both paths (spool, and the Pub/Sub → GCS → BigQuery
## emulators): 8 clients for 60 s, 16 SIGKILLs of collector and batcher, the loader killed
## mid-load, then dbt; prints the figures and the seed. CRASH_ARGS="--seed 7 --path spool" etc.
crash: python-env
	cargo build --release --workspace --bins
	.venv/bin/python tests/e2e/crash_harness.py --profile release $(CRASH_ARGS)

## fuzz: the property tests of the decoders and encoders (event-model, queue, collector,
## batcher) with fresh random inputs for FUZZ_SECONDS (default 300); prints the cases run
fuzz:
	bash scripts/fuzz.sh

## fmt: format the Rust code (rustfmt.toml)
fmt:
	cargo fmt --all

## lint: what CI checks before the tests: formatting and clippy (the full build and the embedded-only
## one `make run` builds), warnings as errors
lint:
	cargo fmt --all --check
	cargo clippy --workspace --all-targets -- -D warnings
	cargo clippy --no-default-features -p collector -p batcher -p loader -p simulator -- -D warnings
