# preflight: a flight recorder for one systemd service.
# `make demo` and `make test` are the two commands a newcomer needs.

GO        ?= go
VERSION   ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS   := -s -w -X main.Version=$(VERSION)
BIN       := bin/preflight

.PHONY: all build demo test vet bench clean

all: build

build:
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(BIN) ./cmd/preflight
	$(GO) build -o bin/preflight-demo ./cmd/preflight-demo

# Runs preflight against a demo service that fails, then prints the capture.
demo: build
	./bin/preflight-demo -preflight $(BIN) -dir demo/captures

# What CI runs (.ci/run): vet, then every test with the race detector.
test:
	$(GO) vet ./...
	$(GO) test -race -count=1 ./...

bench:
	$(GO) test -run '^$$' -bench . -benchmem ./...

clean:
	rm -rf bin demo
