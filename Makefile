# Sluice — developer entry points. `make services` (as root) prepares the
# local PostgreSQL, MariaDB and Redis for CDC; everything else assumes it ran.

GO            ?= go
BIN           := bin
STATICCHECK   := honnef.co/go/tools/cmd/staticcheck@v0.8.2
TEST_TIMEOUT  ?= 20m

.PHONY: all build test test-short bench demo lint services clean

all: build

build:
	$(GO) build -o $(BIN)/ ./cmd/...

# The whole suite: unit, integration and end-to-end tests against the real
# services. Long soaks and benchmarks are not here (see bench).
test: build
	$(GO) test -count=1 -timeout $(TEST_TIMEOUT) ./...

# Unit tests only: no services needed.
test-short:
	$(GO) test -short -count=1 ./...

# Benchmarks against peer tools on the same machine, in one run.
bench: build
	BENCH_ARGS="$(BENCH_ARGS)" bash test/bench/run

# The main job, end to end, through the API, on the local services.
demo: build
	$(GO) run ./test/demo

lint:
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...
	$(GO) run $(STATICCHECK) ./...
	@if command -v shellcheck >/dev/null; then shellcheck test/services test/bench/run .ci/run; fi

services:
	bash test/services

clean:
	rm -rf $(BIN)
