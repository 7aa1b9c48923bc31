# Sluice — developer entry points. `make services` (as root) prepares the
# local PostgreSQL, MariaDB and Redis for CDC; everything else assumes it ran.

GO            ?= go
BIN           := bin
STATICCHECK   := honnef.co/go/tools/cmd/staticcheck@v0.8.2
TEST_TIMEOUT  ?= 20m
# The Lambda functions' architecture: arm64 as template.yaml deploys them; amd64 for LocalStack
# on an x86_64 machine without emulation (with ARCH=x86_64 there, see localstack/README.md).
LAMBDA_GOARCH ?= arm64

.PHONY: all build lambda tools test test-short bench soak demo lint services clean

all: build

build:
	$(GO) build -o $(BIN)/ ./cmd/...

# One Lambda function per cmd/lambda-<name>: bin/lambda/<name>/bootstrap (the CodeUri of
# template.yaml) and bin/lambda/<name>.zip holding just bootstrap (aws lambda create-function,
# localstack/). Zipped with Python's zipfile, which keeps the executable bit and is on every
# machine that has python3, where the zip program may not be.
lambda:
	@set -e; for dir in cmd/lambda-*/; do \
		[ -d "$$dir" ] || continue; \
		name=$${dir#cmd/lambda-}; name=$${name%/}; \
		echo "lambda $$name -> $(BIN)/lambda/$$name.zip"; \
		GOOS=linux GOARCH=$(LAMBDA_GOARCH) CGO_ENABLED=0 $(GO) build -tags lambda.norpc -trimpath -ldflags '-s -w' \
			-o $(BIN)/lambda/$$name/bootstrap ./cmd/lambda-$$name; \
		rm -f $(BIN)/lambda/$$name.zip; \
		(cd $(BIN)/lambda/$$name && python3 -m zipfile -c ../$$name.zip bootstrap); \
	done

# The packages make test runs again under the race detector: all but ./test
# and the folders under it, whose end-to-end suites take minutes without
# -race and spend them in other processes (sluice serve, the replicator,
# the databases), where -race sees nothing. Computed, so that a new package
# is raced without anyone remembering to add it.
RACE_PKGS = $(shell $(GO) list ./... | grep -v '/test\(/\|$$\)')

# The whole suite: unit, integration and end-to-end tests against the real
# services, then the unit packages again under -race. Long soaks and
# benchmarks are not here (see soak and bench).
test: build
	$(GO) test -count=1 -timeout $(TEST_TIMEOUT) ./...
	$(GO) test -race -count=1 -timeout $(TEST_TIMEOUT) $(RACE_PKGS)

# Unit tests only: no services and no bin/ needed. The helpers that reach a
# service (test/testenv, infra/store/storetest, infra/mototest) skip the
# test in -short mode, and ./test's TestMain skips the whole package.
test-short:
	$(GO) test -short -count=1 ./...

# The kill -9 soak: 20 SIGKILLs of the replicators of a PostgreSQL (pgbench) and a MariaDB
# (sysbench) replication under `sluice serve`, with the recovery time after each; make test runs
# the same test with 4 kills. SOAK_KILLS=50 for more.
SOAK_KILLS ?= 20
soak: build
	SLUICE_SOAK_KILLS=$(SOAK_KILLS) $(GO) test -count=1 -timeout 30m -run 'TestSoakKill9' -v ./test/

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
	@command -v cfn-lint >/dev/null || { echo "cfn-lint not found: it checks template.yaml (it comes with the machine image; pip install cfn-lint)"; exit 1; }
	cfn-lint template.yaml
	@command -v shellcheck >/dev/null || { echo "shellcheck not found: it checks the shell scripts (make tools installs it, as root)"; exit 1; }
	shellcheck test/services test/bench/run test/layering .ci/run localstack/init/ready.d/*.sh
	bash test/layering

# The linters that are not Go modules, from Debian (as root); cfn-lint comes
# with the machine image, or pip install cfn-lint.
tools:
	@command -v shellcheck >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq shellcheck; }

services:
	bash test/services

clean:
	rm -rf $(BIN)
