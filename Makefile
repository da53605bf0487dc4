# wpm — worker pool manager. `make help` lists the targets.

GO       ?= go
VERSION  ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS  := -s -w -X main.version=$(VERSION)
CONFIG   ?= config/default.yaml
# Plugins are plain Go programs under plugins/; each becomes bin/plugins/<name>.
PLUGINS  := $(wildcard plugins/*)

.DEFAULT_GOAL := help
.PHONY: help build run test lint clean

help: ## list the targets
	@awk 'BEGIN {FS = ":.*## "} /^[a-z-]+:.*## / {printf "  %-8s %s\n", $$1, $$2}' $(MAKEFILE_LIST)

build: ## build bin/wpm and every plugin into bin/plugins/
	$(GO) build -ldflags '$(LDFLAGS)' -o bin/wpm ./cmd/wpm
	@mkdir -p bin/plugins
	CGO_ENABLED=0 $(GO) build -ldflags '-s -w' -o bin/plugins/ $(addprefix ./,$(PLUGINS))

run: build ## build everything and serve the shipped config on 127.0.0.1:3000
	./bin/wpm serve --config $(CONFIG)

test: ## vet and run every test with the race detector
	$(GO) vet ./...
	$(GO) test -race -count=1 -timeout 20m ./...

lint: ## check formatting and vet
	@fmt=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$fmt" ]; then echo "gofmt would change: $$fmt"; exit 1; fi
	$(GO) vet ./...

clean: ## remove what build made
	rm -rf bin
