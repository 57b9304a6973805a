# seatbroker: the two commands a new user needs are `make run` and `make test`.
GO ?= go
LISTEN ?= 127.0.0.1:8080
PKGS := ./...

.PHONY: run build test vet lint fuzz bench clean

## run: serve on $(LISTEN); with no SEATBROKER_REDIS_URL, in demo mode on an in-process Redis
run:
	$(GO) run ./cmd/seatbroker -listen $(LISTEN)

## build: build bin/seatbroker and bin/seatctl
build:
	$(GO) build -o bin/seatbroker ./cmd/seatbroker
	$(GO) build -o bin/seatctl ./cmd/seatctl

## test: vet, lint, then every test with the race detector against a throwaway redis-server (and headless Chromium for the page)
test: vet lint
	@command -v redis-server >/dev/null || { echo "make test: redis-server is not installed (apt-get install redis-server); the tests start their own on a free loopback port"; exit 1; }
	$(GO) test -race -count=1 -timeout 8m $(TESTFLAGS) $(PKGS)
	$(MAKE) --no-print-directory fuzz

vet:
	@test -z "$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go'))" || { echo "gofmt would change:"; gofmt -l .; exit 1; }
	$(GO) vet $(PKGS)

## lint: staticcheck (a go.mod tool, fetched through the module proxy)
lint:
	$(GO) tool staticcheck $(PKGS)

## fuzz: a short run of each fuzz target
fuzz:
	@./scripts/fuzz.sh

## bench: throughput and Redis CPU per cycle against a real redis-server, beside the raw Redis ceiling (docs/benchmarks.md)
BENCH_FLAGS ?=
bench:
	@command -v redis-server >/dev/null || { echo "make bench: redis-server is not installed (apt-get install redis-server)"; exit 1; }
	$(GO) test -run '^$$' -bench . -benchtime 1x -count 1 ./bench/ -timeout 20m $(BENCH_FLAGS)

clean:
	rm -rf bin
