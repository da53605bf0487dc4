# wpm — worker pool manager. `make help` lists the targets.

GO       ?= go
VERSION  ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS  := -s -w -X main.version=$(VERSION)
CONFIG   ?= config/default.yaml
# Plugins are plain Go programs under plugins/; each becomes bin/plugins/<name>.
PLUGINS  := $(wildcard plugins/*)
# Python plugins are directories under examples/plugins/ with a __main__.py;
# each becomes bin/plugins/<name>, a zipapp with the SDK (internal/tools/pyzipapp;
# no Python is needed to build it, only to run it).
PYPLUGINS := $(patsubst %/__main__.py,%,$(wildcard examples/plugins/*/__main__.py))

.DEFAULT_GOAL := help
.PHONY: help build run deps test lint clean bench soak chaos cluster proto

help: ## list the targets
	@awk 'BEGIN {FS = ":.*## "} /^[a-z-]+:.*## / {printf "  %-8s %s\n", $$1, $$2}' $(MAKEFILE_LIST)

build: ## build bin/wpm and every plugin into bin/plugins/
	$(GO) build -ldflags '$(LDFLAGS)' -o bin/wpm ./cmd/wpm
	@mkdir -p bin/plugins
	CGO_ENABLED=0 $(GO) build -ldflags '-s -w' -o bin/plugins/ $(addprefix ./,$(PLUGINS))
	$(GO) build -o bin/tools/pyzipapp ./internal/tools/pyzipapp
	@for p in $(PYPLUGINS); do echo "bin/tools/pyzipapp $$p bin/plugins/$$(basename $$p)"; \
		bin/tools/pyzipapp $$p bin/plugins/$$(basename $$p) || exit 1; done

# make proto: Debian's protoc (protobuf-compiler) and protoc-gen-go at the
# version of google.golang.org/protobuf in go.mod; the output is committed.
PROTO := proto/wpm/task/v1/task.proto
proto: ## regenerate the Go (internal/taskpb) and Python (sdk/python) code of the task protocol
	@mkdir -p bin/tools
	$(GO) build -o bin/tools/protoc-gen-go google.golang.org/protobuf/cmd/protoc-gen-go
	protoc -I proto --plugin=protoc-gen-go=bin/tools/protoc-gen-go \
		--go_out=. --go_opt=module=github.com/wpmdev/wpm $(PROTO)
	@tmp=$$(mktemp -d) && protoc -I proto --python_out=$$tmp $(PROTO) && \
		mv $$tmp/wpm/task/v1/task_pb2.py sdk/python/wpm_plugin/task_pb2.py && rm -rf $$tmp

run: build ## build everything and serve the shipped config on 127.0.0.1:3000
	./bin/wpm serve --config $(CONFIG)

deps: ## install what the tests need from Debian when it is missing (as root; otherwise say what)
	@scripts/test-deps.sh

test: deps ## install what the tests need, vet, and run every test with the race detector
	$(GO) vet ./...
	$(GO) test -race -count=1 -timeout 20m ./...

lint: ## check formatting and vet
	@fmt=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$fmt" ]; then echo "gofmt would change: $$fmt"; exit 1; fi
	$(GO) vet ./...

# make soak: SOAKSECONDS of chaos; the report lands in bin/soak.md.
SOAKSECONDS ?= 60
soak: ## a chaos soak: load while workers are killed, hang and blow their memory (docs/RELIABILITY.md)
	@mkdir -p bin
	WPM_SOAK_SECONDS=$(SOAKSECONDS) WPM_SOAK_REPORT=$(CURDIR)/bin/soak.md \
		$(GO) test -race -count=1 -timeout 30m -run '^TestSoak$$' ./host/
	@cat bin/soak.md

# make chaos: a network partition (needs root and iproute2: it makes a
# network namespace and a veth pair); the figures land in bin/chaos.md.
chaos: ## a worker host cut off from NATS mid-task and healed (root; docs/RELIABILITY.md)
	@mkdir -p bin && rm -f bin/chaos.md
	WPMTEST_CHAOS_REPORT=$(CURDIR)/bin/chaos.md \
		$(GO) test -race -count=1 -timeout 10m -run '^TestPartition' ./cmd/wpm/
	@cat bin/chaos.md

cluster: ## a 3-server NATS cluster and three wpm hosts on this machine (examples/cluster, docs/SCALING.md)
	examples/cluster/run.sh

clean: ## remove what build made
	rm -rf bin

# make bench: BENCHTIME and BENCHCOUNT are per Go benchmark, BENCHDURATION
# per HTTP case. SEED is the Node seed run side by side (on a copy, when
# node and npm are installed); the case is skipped when it is missing. benchstat summarizes the Go benchmarks against their
# baselines; results are kept in bin/bench-go.txt.
BENCHTIME     ?= 1s
BENCHCOUNT    ?= 3
BENCHDURATION ?= 5s
SEED          ?= $(firstword $(wildcard ../shared/seed/node ../../shared/seed/node))
BENCHSTAT     := golang.org/x/perf/cmd/benchstat@v0.0.0-20260908200009-22c9c6c9d4da
BENCHUNITS    := .unit:(sec/op OR host-cpu-us/op OR p50-us OR p99-us OR allocs/op)
bench: build ## run the Go benchmarks, then the HTTP load benchmark (a few minutes; docs/BENCHMARKS.md)
	$(GO) test -c -o bin/host.test ./host/
	{ bin/host.test -test.run '^$$' -test.bench . -test.benchtime $(BENCHTIME) -test.count $(BENCHCOUNT) \
		-test.timeout 30m 2>bin/bench-go.log; echo $$? >bin/bench-go.status; } | tee bin/bench-go.txt; \
		exit $$(cat bin/bench-go.status)
	-$(GO) run $(BENCHSTAT) -filter '.fullname:/via=/ $(BENCHUNITS)' -col /via bin/bench-go.txt
	-$(GO) run $(BENCHSTAT) -filter '.fullname:/start=/ $(BENCHUNITS)' -col /start bin/bench-go.txt
	$(GO) run ./bench/http -wpm bin/wpm -config $(CONFIG) -duration $(BENCHDURATION) -seed '$(SEED)'
