# June Orchestrator — the front door. `make help` lists the targets.
CARGO ?= cargo

.PHONY: help run build release test unit replicas doctest examples fmt fmt-check lint check-deps conformance-deps deploy-check python-client ts-client-deps ts-client schemathesis-deps docker bench bench-profile bench-deps openapi clean

PYTHON ?= python3
# LiveKit's official Python server SDK, the conformance peer of tests/api/conformance.rs.
LIVEKIT_PY_SDK ?= livekit-api==1.2.2

help: ## List the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-12s %s\n", $$1, $$2}'

run: ## Run the server on its embedded defaults (LiveKit dev mode at ws://localhost:7880, SQLite in ./data)
	$(CARGO) run --release --bin june-orchestrator

build: ## Debug build of everything
	$(CARGO) build --workspace

release: ## Release build: target/release/june-orchestrator
	$(CARGO) build --release --bin june-orchestrator

test: fmt-check lint check-deps deploy-check conformance-deps python-client ts-client-deps schemathesis-deps doctest examples unit replicas ## Everything CI runs: format, lints, layering rule, deployment files, all tests

conformance-deps: .venv/.livekit-sdk ## Install LiveKit's Python SDK into .venv (conformance peer)

.venv/.livekit-sdk: .venv/bin/python
	.venv/bin/pip install --quiet --disable-pip-version-check "$(LIVEKIT_PY_SDK)"
	touch $@

.venv/bin/python:
	$(PYTHON) -m venv .venv

# Offline Kubernetes schemas and a YAML parser for deploy/check.py.
.venv/.deploy-deps: .venv/bin/python
	.venv/bin/pip install --quiet --disable-pip-version-check "kubernetes-validate==1.37.0" "pyyaml==6.0.3"
	touch $@

# A PromQL parser for the dashboard's and the alerts' queries (its own stamp, so a venv made
# before it was added gets it too).
.venv/.promql-parser: .venv/bin/python
	.venv/bin/pip install --quiet --disable-pip-version-check "promql-parser==0.11.0"
	touch $@

deploy-check: .venv/.deploy-deps .venv/.promql-parser ## Deployment files: YAML parses, kustomizations render and validate, no literal secrets, Dockerfile sane
	.venv/bin/python deploy/check.py

openapi: ## Write openapi/openapi.json from the code, then the TypeScript client from it (tests fail when either is stale)
	$(CARGO) run --quiet --bin june-orchestrator -- openapi > openapi/openapi.json
	$(MAKE) ts-client

TS_CLIENT := clients/typescript

ts-client-deps: $(TS_CLIENT)/node_modules/.installed ## Install the TypeScript client's pinned npm packages (npm ci)

# The stamp lives inside node_modules, so `npm ci` (which empties it) and a lost folder both
# invalidate it; a changed lock file re-installs.
$(TS_CLIENT)/node_modules/.installed: $(TS_CLIENT)/package.json $(TS_CLIENT)/package-lock.json
	cd $(TS_CLIENT) && npm ci --no-audit --no-fund --loglevel=error
	touch $@

ts-client: ts-client-deps ## Regenerate clients/typescript/src/schema.d.ts from openapi/openapi.json
	cd $(TS_CLIENT) && npm run --silent generate

.venv/.client-deps: .venv/bin/python
	.venv/bin/pip install --quiet --disable-pip-version-check "openapi-python-client==0.29.1"
	touch $@

python-client: .venv/.client-deps ## Generate the Python client from openapi/openapi.json into target/python-client
	PATH="$(CURDIR)/.venv/bin:$$PATH" .venv/bin/openapi-python-client generate \
	  --path openapi/openapi.json --output-path target/python-client --overwrite

schemathesis-deps: .venv/.schemathesis ## Install schemathesis into .venv (the schema-driven run of tests/api/schemathesis.rs)

.venv/.schemathesis: .venv/bin/python
	.venv/bin/pip install --quiet --disable-pip-version-check "schemathesis==4.32.5"
	touch $@

docker: ## Build the container image (needs a Docker engine)
	docker build -f deploy/Dockerfile -t june-orchestrator:latest .

unit: ## Every unit, adapter, HTTP and end-to-end test (nextest), but the OS-process replica suite
	$(CARGO) nextest run --workspace --all-features --no-fail-fast -E 'not binary_id(june-e2e::replicas)'

replicas: release ## The release binary as several processes on one PostgreSQL (and Redis): tests/replicas
	$(CARGO) nextest run --workspace --all-features --no-fail-fast -E 'binary_id(june-e2e::replicas)'

doctest: ## Doc examples (nextest skips them)
	$(CARGO) test --workspace --doc --all-features

examples: ## Build and run the embedding example of june-domain (crates/domain/examples)
	$(CARGO) run -q -p june-domain --example embed

fmt: ## Format the code
	$(CARGO) fmt --all

fmt-check: ## Fail if the code is not formatted
	$(CARGO) fmt --all -- --check

lint: ## Clippy on all targets, warnings are errors
	$(CARGO) clippy --workspace --all-targets --all-features -- -D warnings

check-deps: ## The domain and HTTP crates must not depend on adapters' technologies, nor the client on the server's crates
	@bad=$$($(CARGO) tree -p june-domain -e normal --prefix none | grep -E '^(actix|sqlx|reqwest|livekit|utoipa|anyhow|tokio)' | sort -u); \
	if [ -n "$$bad" ]; then echo "june-domain must not depend on: $$bad"; exit 1; fi
	@bad=$$($(CARGO) tree -p june-http-api -e normal --prefix none | grep -E '^(sqlx|reqwest|livekit|jsonwebtoken|redis)' | sort -u); \
	if [ -n "$$bad" ]; then echo "june-http-api must not depend on: $$bad"; exit 1; fi
	@bad=$$($(CARGO) tree -p june-client -e normal --prefix none | grep -E '^(june-|actix|sqlx|livekit|utoipa|redis)' | grep -v '^june-client ' | sort -u); \
	if [ -n "$$bad" ]; then echo "june-client must not depend on: $$bad"; exit 1; fi
	@echo "layering rules hold"

bench: bench-deps ## Criterion micro-benchmarks; wrk against the release server on SQLite and PostgreSQL (RSS at 10k and 100k sessions); in-process webhook (many rooms, one big room) and voice-turn load on both
	$(CARGO) bench -p june-bench --bench micro -- --warm-up-time 1 --measurement-time 3
	$(CARGO) build --release -p june-orchestrator -p june-bench --bins
	$(CARGO) run --release -p june-bench --bin june-serverbench -- --seconds 10 --database sqlite
	$(CARGO) run --release -p june-bench --bin june-serverbench -- --seconds 10 --database postgres
	$(CARGO) run --release -p june-bench --bin june-serverbench -- --seconds 5 --sessions 100000
	$(CARGO) run --release -p june-bench --bin june-loadgen -- --seconds 10 --concurrency 32 --backends sqlite,postgres

bench-profile: bench-deps ## The wrk scenarios again under perf; hottest symbols per scenario in target/profiles
	@command -v perf >/dev/null 2>&1 || apt-get install -y linux-perf || { apt-get update && apt-get install -y linux-perf; }
	$(CARGO) build --release -p june-orchestrator -p june-bench --bins
	$(CARGO) run --release -p june-bench --bin june-serverbench -- --seconds 10 --perf target/profiles

bench-deps: ## wrk, the load generator, from Debian's packages
	@command -v wrk >/dev/null 2>&1 || apt-get install -y wrk || { apt-get update && apt-get install -y wrk; }

clean:
	$(CARGO) clean
