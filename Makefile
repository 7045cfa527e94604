# ssecfs: build, test, demo, benchmark.
# Go lives in /usr/local/go on the reference machine; keep it on PATH.
export PATH := /usr/local/go/bin:$(PATH)

VERSION := $(shell git describe --always --dirty 2>/dev/null || echo dev)
GOFLAGS_BUILD := -trimpath -ldflags "-s -w -X main.version=$(VERSION)"

.PHONY: build unit test integration demo demo-stop bench bench-quick servers servers-down vet clean

build:
	go build $(GOFLAGS_BUILD) -o bin/ssecfs ./cmd/ssecfs

vet:
	go vet ./...
	go vet -tags integration ./integration/

# Fast tests: no network; the FUSE tests mount in-process (root).
unit:
	go test -race -count=1 ./...

# Everything: installs and starts the test servers (root, Debian 12), then
# unit, in-process FUSE and integration tests against Ceph RGW and MinIO.
test: servers vet unit integration

integration: servers
	go test -tags integration -count=1 -timeout 25m ./integration/

servers:
	integration/servers/up.sh

servers-down:
	integration/servers/down.sh

# A local Ceph RGW, sample files uploaded with aws --sse-c, mounted at
# ./demo-mount. Stop with `make demo-stop`.
demo: build
	scripts/demo.sh

demo-stop:
	scripts/demo.sh stop

bench:
	go run ./bench

bench-quick:
	go run ./bench -quick

clean:
	rm -rf bin
