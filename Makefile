# preflight: a flight recorder for one systemd service.
# `make demo` and `make test` are the two commands a newcomer needs.

GO        ?= go
# The version `preflight version` and the .deb show: packaging/version.sh.
VERSION   ?= $(shell packaging/version.sh)
LDFLAGS   := -s -w -X main.Version=$(VERSION)
BIN       := bin/preflight
# staticcheck 2026.2.2 (built with Go 1.26), pinned, fetched through the Go module proxy only.
STATICCHECK := $(GO) run honnef.co/go/tools/cmd/staticcheck@v0.8.2

.PHONY: all build demo test vet bench clean

all: build

# One invocation, one configuration: the demo shares every compiled package.
build:
	mkdir -p bin
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o bin/ ./cmd/preflight ./cmd/preflight-demo

# Runs preflight against a demo service that fails, then prints the capture.
demo: build
	./bin/preflight-demo -preflight $(BIN) -dir demo/captures

# What CI runs (.ci/run): Debian's redis-server and nginx downloaded for
# the third-party e2e (packaging/e2e/fetch-debs; never installed on the
# host), go.mod tidy, vet, staticcheck, every test with the race detector,
# then the pure cgroup v2 end-to-end test in a qemu guest (root; see
# e2e-v2; not root, it skips saying why).
test:
	packaging/e2e/fetch-debs
	$(GO) mod tidy -diff
	$(GO) vet ./...
	$(STATICCHECK) ./...
	$(GO) test -race -count=1 ./...
	$(MAKE) e2e-v2

# Go benchmarks (benchstat-comparable: make bench | tee new.txt), then the
# side-by-side run with atop and sadc, which writes docs/benchmarks.md (root).
bench:
	$(GO) test -run '^$$' -bench . -benchmem -count 5 ./...
	GO=$(GO) bench/overhead

clean:
	rm -rf bin demo

# Every fuzz target for FUZZTIME each (go test -fuzz takes one at a time).
# `make test` runs only their seeds (testdata/fuzz) and fixed-seed mutations.
FUZZTIME ?= 30s
.PHONY: fuzz
fuzz:
	@set -e; for pkg in ./recorder ./recorder/capture ./recorder/sample ./recorder/secret ./cgroup; do \
	  for f in $$($(GO) test -list '^Fuzz' $$pkg | grep '^Fuzz'); do \
	    echo "== $$pkg $$f ($(FUZZTIME))"; \
	    $(GO) test -run '^$$' -fuzz "^$$f$$" -fuzztime $(FUZZTIME) $$pkg; \
	  done; \
	done

# Installing: see packaging/README.md. `make install` copies what `make build`
# made (build as yourself, install as root): make build && sudo make install.
# make install DESTDIR=/tmp/stage PREFIX=/usr lays out the tree the .deb has.
PREFIX     ?= /usr/local
BINDIR     ?= $(PREFIX)/bin
LIBDIR     ?= $(PREFIX)/lib
MANDIR     ?= $(PREFIX)/share/man
DOCDIR     ?= $(PREFIX)/share/doc/preflight
SYSCONFDIR ?= /etc
UNIT       := $(DESTDIR)$(LIBDIR)/systemd/system/preflight@.service
# nfpm, pinned, fetched through the Go module proxy only.
NFPM       := $(GO) run github.com/goreleaser/nfpm/v2/cmd/nfpm@v2.45.2

.PHONY: install deb e2e e2e-v2

install:
	@test -x $(BIN) || { echo "make install: no $(BIN): run make build first" >&2; exit 1; }
	install -D -m 0755 $(BIN) $(DESTDIR)$(BINDIR)/preflight
	install -d -m 0755 $(dir $(UNIT)) $(DESTDIR)$(SYSCONFDIR)/preflight
	sed 's|/usr/bin/preflight|$(BINDIR)/preflight|' packaging/systemd/preflight@.service > $(UNIT)
	chmod 0644 $(UNIT)
	install -D -m 0644 packaging/catalog/preflight.catalog $(DESTDIR)$(LIBDIR)/systemd/catalog/preflight.catalog
	install -D -m 0644 packaging/sysusers.d/preflight.conf $(DESTDIR)$(LIBDIR)/sysusers.d/preflight.conf
	install -D -m 0644 packaging/tmpfiles.d/preflight.conf $(DESTDIR)$(LIBDIR)/tmpfiles.d/preflight.conf
	install -D -m 0644 packaging/preflight.1 $(DESTDIR)$(MANDIR)/man1/preflight.1
	install -D -m 0644 README.md $(DESTDIR)$(DOCDIR)/README.md
	install -D -m 0644 docs/capture-format.md $(DESTDIR)$(DOCDIR)/capture-format.md
	install -D -m 0644 packaging/README.md $(DESTDIR)$(DOCDIR)/packaging.md
	install -D -m 0644 packaging/examples/dead-drop.env $(DESTDIR)$(DOCDIR)/examples/dead-drop.env
	install -D -m 0644 packaging/examples/preflight.yaml $(DESTDIR)$(DOCDIR)/examples/preflight.yaml
	@echo "then, as root: systemd-sysusers preflight.conf && systemd-tmpfiles --create preflight.conf && journalctl --update-catalog && systemctl daemon-reload"

# bin/preflight_VERSION_ARCH.deb, from packaging/nfpm.yaml.
deb: build
	mkdir -p bin/deb
	cp $(BIN) bin/deb/preflight
	gzip -9n < packaging/preflight.1 > bin/deb/preflight.1.gz
	NFPM_VERSION='$(VERSION)' NFPM_ARCH=$$($(GO) env GOARCH) $(NFPM) package --config packaging/nfpm.yaml --packager deb --target bin/

# The real-systemd end-to-end test of the unit and the package (root; also part of make test).
e2e:
	packaging/e2e/fetch-debs
	$(GO) test -race -count=1 -v ./packaging/e2e/

# The pure cgroup v2 end-to-end test (root; also part of make test): boots a
# Debian 12 guest under qemu, installs the .deb, breaks a service and judges
# the captures (packaging/e2ev2). Needs qemu-system-x86, debootstrap and
# e2fsprogs; the guest's root file system is built once per machine under
# /var/cache/preflight-e2e-v2 (CACHE=DIR: another directory, the test's
# own). REPEAT: runs of each repeated scenario; OUT=DIR keeps the guest's
# results (results.json, captures, journal).
REPEAT ?= 3
# The package is the newest in bin/: the one `make deb` has just written.
e2e-v2: deb
	PREFLIGHT_E2E_V2_DEB="$$(ls -t $(CURDIR)/bin/preflight_*.deb | head -n 1)" PREFLIGHT_E2E_V2_REPEAT=$(REPEAT) PREFLIGHT_E2E_V2_OUT='$(OUT)' PREFLIGHT_E2E_V2_CACHE='$(CACHE)' $(GO) test -count=1 -v -timeout 90m ./packaging/e2ev2/
