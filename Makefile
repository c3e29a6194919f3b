# hallguard build, run and test targets. `make run` and `make test` are the
# two commands a newcomer needs (README).
GO       ?= go
PKG      := github.com/hallguard/hallguard
VERSION  ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS  := -s -w -X $(PKG)/daemon.Version=$(VERSION)
BIN      := bin/hallguard
GOFILES   = $(shell find . -name '*.go' -not -path './devices/gpiocdev/vmtest/.cache/*' -not -path './.run/*')

.PHONY: all build run test fmt-check vet cross vmtest clean

all: build

build:
	$(GO) build -trimpath -ldflags "$(LDFLAGS)" -o $(BIN) ./daemon/cmd/hallguard

# The simulated hall, the embedded broker on 127.0.0.1:1883 and metrics on
# 127.0.0.1:9464. Ctrl-C stops it (outputs to fail-safe, reports flushed).
run: build
	$(BIN) run -config configs/demo.yaml

vet:
	$(GO) vet ./...

fmt-check:
	@out=$$(gofmt -l $(GOFILES)); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi

# vet, gofmt and every unit and integration test with the race detector.
test: vet fmt-check
	$(GO) test -race -count=1 ./...

# Every test five times under the race detector, then the whole-binary tests
# (test/) five times more, each in a fresh process: for flakes that show only
# on a busy machine. Run it with load alongside (README, "Testing").
.PHONY: soak
soak: vet
	$(GO) test -race -count=5 -timeout 90m ./...
	for i in 1 2 3 4 5; do $(GO) test -count=1 -timeout 20m ./test/ || exit 1; done

# Stripped, version-stamped release binaries for the Pi-class boxes.
cross:
	@mkdir -p dist
	CGO_ENABLED=0 GOOS=linux GOARCH=arm64 $(GO) build -trimpath -ldflags "$(LDFLAGS)" -o dist/hallguard-linux-arm64 ./daemon/cmd/hallguard
	CGO_ENABLED=0 GOOS=linux GOARCH=arm GOARM=7 $(GO) build -trimpath -ldflags "$(LDFLAGS)" -o dist/hallguard-linux-armv7 ./daemon/cmd/hallguard
	CGO_ENABLED=0 GOOS=linux GOARCH=amd64 $(GO) build -trimpath -ldflags "$(LDFLAGS)" -o dist/hallguard-linux-amd64 ./daemon/cmd/hallguard
	@ls -l dist/ | awk 'NR>1 {printf "%-28s %6.2f MiB\n", $$9, $$5/1048576}'

# Real-kernel GPIO tests: qemu + gpio-sim (devices/gpiocdev/vmtest/README.md).
vmtest:
	bash devices/gpiocdev/vmtest/run.sh

clean:
	rm -rf bin dist

# --- Operations: install, and checks of the ops files -----------------------
# configs/prometheus/README.md and systemd/README.md say what each is for.
#
# make install [DESTDIR=/tmp/stage] [PREFIX=/usr]: the binary, the systemd
# unit, sysusers.d, tmpfiles.d and the udev rule, /etc/hallguard with the
# production template (only if no hallguard.yaml is there yet) and the
# playbooks (replaced: they are the plan, changed in this repository).
# Without DESTDIR on a running systemd it also creates the user and the
# /etc/hallguard modes and reloads udev and systemd.
PREFIX           ?= /usr
DESTDIR          ?=
OPS_UNITDIR      ?= /lib/systemd/system
OPS_UDEVDIR      ?= /lib/udev/rules.d
OPS_SYSUSERSDIR  ?= $(PREFIX)/lib/sysusers.d
OPS_TMPFILESDIR  ?= $(PREFIX)/lib/tmpfiles.d
OPS_EXPOSURE_MAX ?= 2.0
PROMTOOL         ?= promtool
SYSTEMD_ANALYZE  ?= systemd-analyze

.PHONY: install ops-rules ops-check-metrics ops-systemd ops-check

install: build
	install -D -m 0755 $(BIN) $(DESTDIR)$(PREFIX)/bin/hallguard
	install -d -m 0755 $(DESTDIR)$(OPS_UNITDIR)
	sed 's|/usr/bin/hallguard|$(PREFIX)/bin/hallguard|g' systemd/hallguard.service > $(DESTDIR)$(OPS_UNITDIR)/hallguard.service
	chmod 0644 $(DESTDIR)$(OPS_UNITDIR)/hallguard.service
	install -D -m 0644 systemd/hallguard.sysusers $(DESTDIR)$(OPS_SYSUSERSDIR)/hallguard.conf
	install -D -m 0644 systemd/hallguard.tmpfiles $(DESTDIR)$(OPS_TMPFILESDIR)/hallguard.conf
	install -D -m 0644 systemd/60-hallguard-gpio.rules $(DESTDIR)$(OPS_UDEVDIR)/60-hallguard-gpio.rules
	install -d -m 0755 $(DESTDIR)/etc/hallguard $(DESTDIR)/etc/hallguard/playbooks
	install -d -m 0700 $(DESTDIR)/etc/hallguard/credentials
	@if [ -e $(DESTDIR)/etc/hallguard/hallguard.yaml ]; then \
		echo "kept $(DESTDIR)/etc/hallguard/hallguard.yaml (not replaced by configs/hallguard.yaml)"; \
	else install -v -m 0640 configs/hallguard.yaml $(DESTDIR)/etc/hallguard/hallguard.yaml; fi
	install -m 0644 configs/playbooks/*.yaml $(DESTDIR)/etc/hallguard/playbooks/
	@if [ -z "$(DESTDIR)" ] && [ -d /run/systemd/system ]; then \
		set -x; systemd-sysusers hallguard.conf && systemd-tmpfiles --create hallguard.conf && \
		udevadm control --reload && udevadm trigger --subsystem-match=gpio && systemctl daemon-reload; \
	else echo "installed under '$(DESTDIR)'; on the box: systemd-sysusers; systemd-tmpfiles --create; udevadm trigger -s gpio; systemctl daemon-reload"; fi

# promtool: check the rules, then run their unit tests (Debian: prometheus).
ops-rules:
	$(PROMTOOL) check rules configs/prometheus/hallguard-rules.yml
	$(PROMTOOL) test rules configs/prometheus/hallguard-rules.test.yml

# A real scrape of the demo daemon (free ports, private state dir, stopped by
# its PID), after a simulated panic press so that the incident and latency
# series exist, through `promtool check metrics`, which must print nothing.
ops-check-metrics: build
	@set -eu; d=$$(mktemp -d); \
	$(BIN) run -config configs/demo.yaml -state-dir $$d/state -http-listen 127.0.0.1:0 -local-listen 127.0.0.1:0 -mqtt-listen 127.0.0.1:0 >$$d/log 2>&1 & pid=$$!; \
	trap 'kill $$pid 2>/dev/null || true; wait $$pid 2>/dev/null || true; rm -rf $$d' EXIT; \
	addr=""; for i in $$(seq 200); do \
		addr=$$(sed -n 's/.*msg="hallguard ready".* http=\([0-9.:]*\).*/\1/p' $$d/log); \
		[ -n "$$addr" ] && break; \
		kill -0 $$pid 2>/dev/null || { echo "hallguard exited:"; cat $$d/log; exit 1; }; sleep 0.1; \
	done; \
	[ -n "$$addr" ] || { echo "hallguard not ready after 20s:"; cat $$d/log; exit 1; }; \
	$(BIN) sim -socket $$d/state/sim.sock press panic-teller-1 >/dev/null; \
	for i in $$(seq 100); do \
		curl -fsS http://$$addr/metrics >$$d/metrics; \
		grep -q '^hallguard_incidents_total{' $$d/metrics && break; sleep 0.1; \
	done; \
	rc=0; out=$$($(PROMTOOL) check metrics <$$d/metrics 2>&1) || rc=$$?; \
	if [ -n "$$out" ] || [ $$rc -ne 0 ]; then echo "promtool check metrics (exit $$rc):"; echo "$$out"; exit 1; fi; \
	echo "promtool check metrics: no complaints ($$(grep -c '^hallguard_' $$d/metrics) hallguard samples from http://$$addr/metrics)"

# Install into a temporary root; apply the sysusers.d and tmpfiles.d files
# there (both must parse and create the user, groups and modes); then
# `systemd-analyze verify` the unit there
# (with the host's targets and /bin/kill copied in, so that After= and
# ExecReload= resolve and ExecStart= is the installed binary) and
# `systemd-analyze security --offline`: fail above OPS_EXPOSURE_MAX.
ops-systemd:
	@set -eu; t=$$(mktemp -d); trap 'rm -rf $$t' EXIT; r=$$t/root; \
	$(MAKE) --no-print-directory install DESTDIR=$$r >$$t/install.log || { cat $$t/install.log; exit 1; }; \
	echo "systemd-sysusers, systemd-tmpfiles --create (in the temporary root):"; \
	systemd-sysusers --root=$$r hallguard.conf; \
	systemd-tmpfiles --root=$$r --create hallguard.conf; \
	ls -ln $$r/etc/hallguard | sed 1d; \
	mkdir -p $$r/bin && cp /bin/kill $$r/bin/kill; \
	for u in /lib/systemd/system/*.target; do [ -e $$r$(OPS_UNITDIR)/$${u##*/} ] || cp $$u $$r$(OPS_UNITDIR)/; done; \
	echo "systemd-analyze verify:"; \
	$(SYSTEMD_ANALYZE) verify --root=$$r --recursive-errors=no --man=no hallguard.service; \
	echo "  ok"; \
	$(SYSTEMD_ANALYZE) security --offline=true --root=$$r hallguard.service >$$t/security.txt 2>&1 || true; \
	grep '✗' $$t/security.txt || true; \
	score=$$(sed -n 's/.*Overall exposure level for hallguard.service: \([0-9.]*\).*/\1/p' $$t/security.txt); \
	[ -n "$$score" ] || { cat $$t/security.txt; echo "no exposure level in systemd-analyze security's output"; exit 1; }; \
	echo "systemd-analyze security: overall exposure $$score (at most $(OPS_EXPOSURE_MAX))"; \
	awk -v s=$$score -v m=$(OPS_EXPOSURE_MAX) 'BEGIN { exit !(s <= m) }' || { echo "exposure $$score is above $(OPS_EXPOSURE_MAX)"; exit 1; }

# Everything above plus the dashboard test (a live scrape of the binary).
ops-check: ops-rules ops-check-metrics ops-systemd
	$(GO) test -count=1 -run 'Ops' ./test/

# Fault tests against Debian's mosquitto (apt-get install mosquitto; root for
# the tmpfs): broker and daemon SIGKILLs, a full disk, a damaged journal, and
# the DC-09 path with its receiver or the daemon SIGKILLed
# (test/fault_test.go, test/fault_arc_test.go, configs/mosquitto/).
.PHONY: fault
fault:
	$(GO) test -tags fault -count=1 -v -timeout 20m ./test/ -run Fault

# Attacks from the branch LAN against the real binary (test/security_*_test.go):
# one ATTACK line each, with what it tried and what it got. Loopback only.
.PHONY: security
security:
	$(GO) test -tags security -count=1 -v -timeout 15m -run Security ./test/

# The staff console (daemon/console) end to end in Debian's headless
# Chromium (apt-get install chromium; no browser download) driven by
# playwright-core, against bin/hallguard on configs/demo.yaml.
# `cd test/console && npm run screenshots` remakes daemon/console/screenshots/.
console-test: build
	cd test/console && PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm ci --no-audit --no-fund
	cd test/console && node --test --test-concurrency=1 console.test.mjs

# --- Benchmarks (test/bench/README.md) -----------------------------------------
# make bench: the release binary (make build, and make cross for the binary
# sizes) against Debian's mosquitto on 127.0.0.1 with
# configs/mosquitto/mosquitto.conf. One table, also written to
# test/bench/results.json (git-ignored). BENCH_FLAGS=-quick for a short
# development run (the outage and idle windows are then 10 s, not 60 s).
# make bench-nodered: the optional peer comparison; Node-RED is installed
# with npm into test/bench/.nodered (git-ignored).
BENCH_FLAGS ?=
BENCH_MOSQUITTO = command -v mosquitto >/dev/null 2>&1 || [ -x /usr/sbin/mosquitto ] || \
	{ apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends mosquitto; }

.PHONY: bench bench-nodered

bench: build cross
	@$(BENCH_MOSQUITTO)
	$(GO) run ./test/bench -bin $(BIN) -dist dist $(BENCH_FLAGS)

bench-nodered: build
	@$(BENCH_MOSQUITTO)
	@[ -f test/bench/.nodered/node_modules/node-red/red.js ] || \
		npm install --prefix test/bench/.nodered --no-audit --no-fund --loglevel=error node-red
	$(GO) run ./test/bench -nodered -bin $(BIN) $(BENCH_FLAGS)
