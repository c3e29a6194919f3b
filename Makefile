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
