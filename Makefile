# ferry: `make help` lists the targets.
SHELL := /bin/bash
GO ?= go
BIN := bin/ferry
STATE := .ferry
STATICCHECK := honnef.co/go/tools/cmd/staticcheck@v0.8.2
# golangci-lint, pinned: built from source into bin/ by `make lint` (the Go
# module proxy is the only download), rebuilt when this version changes.
GOLANGCI_VERSION := v2.6.2
GOLANGCI := bin/golangci-lint-$(GOLANGCI_VERSION)
# helm, pinned the same way: built from source into bin/ by `make helm-check`.
HELM_VERSION := v4.3.2
HELM := bin/helm-$(HELM_VERSION)
HELM_CHART := deploy/helm/ferry
# ferry version reads these (a checkout's VCS stamps are missing in a git
# worktree or a Docker build).
LDFLAGS := -X main.buildCommit=$(shell git describe --always --dirty --abbrev=12 2>/dev/null) \
	-X main.buildDate=$(shell date -u +%Y-%m-%dT%H:%M:%SZ)

.DEFAULT_GOAL := help

help: ## List the targets
	@grep -hE '^[a-z0-9-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-15s %s\n", $$1, $$2}'

build: ## Build bin/ferry
	$(GO) build -ldflags '$(LDFLAGS)' -o $(BIN) ./cmd/ferry

stack: ## Start Postgres and MinIO on loopback if they are not running (installs what is missing)
	@scripts/stack.sh up

run: stack build ## Bring up the stack and serve, with a local fake sink as the target (Ctrl-C stops)
	@mkdir -p $(STATE)/sink
	@$(BIN) fake sink --listen 127.0.0.1:9100 --dir $(STATE)/sink >$(STATE)/sink.log 2>&1 & echo $$! >$(STATE)/sink.pid
	@trap 'kill $$(cat $(STATE)/sink.pid) 2>/dev/null' EXIT; \
	  eval "$$(scripts/stack.sh env)"; \
	  FERRY_TARGETS=$${FERRY_TARGETS:-examples/targets.yaml} FERRY_DATA_DIR=$(STATE)/data $(BIN) serve

test: stack ## Run every test, with the race detector, against real Postgres, NATS and MinIO
	$(GO) test -race -count=1 -timeout 25m ./...

test-short: stack ## The fast tier: every test but chaos, bench smoke, the browser and other long ones (-short), under 3 min on 2 cores
	$(GO) test -race -count=1 -short -timeout 10m ./...

# Fuzz targets, as package:target; their seed corpora (testdata/fuzz) run in make test.
FUZZ_TARGETS := ./api:FuzzUpload ./targets:FuzzParseFile ./targets:FuzzContentDisposition \
	./targets:FuzzParseRetryAfter ./client/push:FuzzManifest
FUZZTIME ?= 30s

fuzz: stack ## Fuzz the parsers of untrusted input, 30 s each, FUZZTIME=... (upload handler, targets file, Content-Disposition, Retry-After, manifest)
	@set -e; for t in $(FUZZ_TARGETS); do \
	  pkg=$${t%%:*}; name=$${t##*:}; echo "== $$name ($$pkg)"; \
	  $(GO) test -run '^$$' -fuzz "^$$name$$" -fuzztime $(FUZZTIME) $$pkg; \
	done

chaos: stack build ## Push 3000 files through ferry while killing workers, API, NATS, Postgres, MinIO; 0 lost or stuck (CHAOS_FLAGS=...)
	$(GO) run ./cmd/ferry-chaos -ferry $(BIN) $(CHAOS_FLAGS)

cluster: stack build ## Start a loopback cluster (3 NATS R3, 4-drive MinIO, Postgres, 2 API behind a proxy, 3 workers) under .ferry/cluster; Ctrl-C stops
	$(GO) run ./cmd/ferry-chaos -up -ferry $(BIN) -dir $(STATE)/cluster $(CLUSTER_FLAGS)

cluster-test: stack build ## The cluster proof: 1000 files while the stream leader, a MinIO drive, a worker and an API die for good (CLUSTER_FLAGS=...)
	$(GO) run ./cmd/ferry-chaos -cluster -ferry $(BIN) $(CLUSTER_FLAGS)

screenshots: stack ## Refresh the dashboard's screenshots in docs/screenshots (headless chromium)
	@mkdir -p docs/screenshots
	FERRY_SCREENSHOTS=$(CURDIR)/docs/screenshots $(GO) test -count=1 -run 'TestDashboardInBrowser|TestProbeNowOpenCircuit' ./e2e

bench: stack build ## Measure ferry against MinIO, Postgres and NATS side by side; table in bench-results/latest.md (BENCH_FLAGS=...)
	@eval "$$(scripts/stack.sh env)"; $(GO) run ./cmd/ferry-bench -ferry $(BIN) -out bench-results/latest.md $(BENCH_FLAGS)

lint: $(GOLANGCI) ## gofmt, go vet, staticcheck, golangci-lint (.golangci.yml: layering, errorlint, noctx, ...), file and function sizes
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || { gofmt -l $$(git ls-files '*.go'); exit 1; }
	$(GO) vet ./...
	$(GO) run $(STATICCHECK) ./...
	$(GOLANGCI) run --allow-parallel-runners ./...
	$(GO) run ./internal/tools/sizecheck

$(GOLANGCI):
	@mkdir -p bin
	GOBIN=$(CURDIR)/bin/.golangci $(GO) install github.com/golangci/golangci-lint/v2/cmd/golangci-lint@$(GOLANGCI_VERSION)
	mv bin/.golangci/golangci-lint $@ && rmdir bin/.golangci

# The S3 proof on SeaweedFS: storage, the sweeper's clean-up and retention,
# and an end-to-end subset (uploads, deliveries, a missing stored file).
SEAWEED_SWEEPER := TestCleanRemovesOrphans|TestCleanAbortsDeadUploadsAndKeepsLiveOnes|TestCleanRemovesDeliveredFilesAfterRetention
SEAWEED_E2E := TestDeliversMixedSizesByteIdentical|TestRetriesThenSucceeds|TestStoredFileMissingOrCorrupted|TestFailedMultiFileRequestLeavesNothing|TestIdleBodyCut

test-s3-seaweed: stack ## Storage tests and an end-to-end subset against SeaweedFS's S3 gateway (builds weed into .ferry/ once, ~10 min)
	@scripts/seaweed.sh up
	@eval "$$(scripts/seaweed.sh env)"; set -e; \
	  $(GO) test -race -count=1 ./storage/...; \
	  $(GO) test -race -count=1 -run '^($(SEAWEED_SWEEPER))$$' ./sweeper; \
	  $(GO) test -race -count=1 -run '^($(SEAWEED_E2E))$$' ./e2e

helm-check: $(HELM) ## Lint and render the Helm chart (default and cluster values) and check the pods' settings against ferry's
	$(HELM) lint $(HELM_CHART)
	$(HELM) lint $(HELM_CHART) -f $(HELM_CHART)/ci/cluster-values.yaml
	$(HELM) template ferry $(HELM_CHART) >/dev/null
	$(HELM) template ferry $(HELM_CHART) -f $(HELM_CHART)/ci/cluster-values.yaml >/dev/null
	FERRY_HELM=$(CURDIR)/$(HELM) $(GO) test -count=1 -run '^TestHelmChart' ./cmd/ferry

$(HELM):
	@mkdir -p bin
	GOBIN=$(CURDIR)/bin/.helm $(GO) install helm.sh/helm/v4/cmd/helm@$(HELM_VERSION)
	mv bin/.helm/helm $@ && rmdir bin/.helm

clean: ## Stop the MinIO (and SeaweedFS) started here, remove .ferry/ and bin/ (the database stays: make reset)
	@scripts/stack.sh down
	@scripts/seaweed.sh down
	rm -rf $(STATE) bin

reset: build ## Delete every job, batch and API key: drop ferry's tables in FERRY_DATABASE_URL (asks; RESET=yes does not)
	@$(BIN) reset $(if $(filter yes,$(RESET)),--yes)

.PHONY: help build stack run test test-short fuzz chaos cluster cluster-test bench lint clean reset screenshots helm-check test-s3-seaweed
