# Every target sets itself up (scripts/bootstrap.sh is idempotent and fast when
# nothing changed) and runs with Node >= 22 from .tools/ when the host's is older.
SHELL := /bin/bash
export PATH := $(CURDIR)/.tools/node_modules/.bin:$(CURDIR)/node_modules/.bin:$(PATH)

.PHONY: setup build typecheck lint test demo bench clean image

# The micro-VM guest image (images/build.sh, after the agent bundle): minutes the first
# time, seconds when only the agent changed, well under a second when it is current.
# Building needs root; without it micro-VM tests skip and say why.
IMAGE_STEP = if [ "$$(id -u)" = 0 ]; then ./bin/luminaguard image build >&2; \
	else echo "[image] not root: the micro-VM guest image is not built (sudo ./bin/luminaguard image build)" >&2; fi

# The egress proxy's kernel relay (busy tunnels move their bytes with splice(2)): compiled only when
# its source is newer. Without gcc the proxy relays in Node and says so.
# $(call c-helper,tag,what happens without it): compile $< into $@ with gcc, or say what is missing.
define c-helper
	@mkdir -p $(@D)
	@if command -v gcc >/dev/null; then gcc -O2 -Wall -Wextra -o $@.tmp $< && mv $@.tmp $@; \
	else echo "[$(1)] gcc is missing: $@ not built; $(2)" >&2; fi
endef

RELAY := dist/bin/lg-relay
$(RELAY): src/policy/firewall/relay/lg-relay.c
	$(call c-helper,relay,the egress proxy relays tunnels in Node)

# Mounts and unmounts sandbox scratch disks without a mount(8) process each (~2.5 ms saved twice per
# sandbox). Without gcc, mount(8) and umount(8) do it.
MOUNTER := dist/bin/lg-mount
$(MOUNTER): src/sandbox/mount-helper/lg-mount.c
	$(call c-helper,mount,scratch disks are mounted with mount(8))

setup:
	@bash scripts/bootstrap.sh

build: setup
	@tsc -p tsconfig.build.json
	@$(MAKE) -s --no-print-directory $(RELAY) $(MOUNTER)
	@node scripts/bundle-cli.mjs
	@node scripts/bundle-guest.mjs
	@node scripts/bundle-mcp-servers.mjs

typecheck: setup
	@tsc -p tsconfig.json --noEmit

lint: setup
	@eslint .

## make test: typecheck, lint, build (CLI tests run the built bin) and every test.
test: setup
	@tsc -p tsconfig.json --noEmit
	@eslint .
	@tsc -p tsconfig.build.json
	@$(MAKE) -s --no-print-directory $(RELAY) $(MOUNTER)
	@node scripts/bundle-cli.mjs
	@node scripts/bundle-guest.mjs
	@node scripts/bundle-mcp-servers.mjs
	@$(IMAGE_STEP)
	@vitest run

## make demo: a short scripted tour: sandboxes, escapes, firewall, micro-VMs, and an agent behind the Approval Cliff.
demo: build
	@$(IMAGE_STEP)
	@./bin/luminaguard demo

## make bench: spawn (vs raw bwrap and srt), network, micro-VM (vs raw QEMU and runsc) and MCP gateway (vs direct SDK) benchmarks;
## writes bench/results/ and docs/BENCHMARKS.md.
bench: build
	@$(IMAGE_STEP)
	@bash bench/setup.sh
	@tsc -p tsconfig.bench.json
	@node .cache/bench-build/bench/spawn.js
	@node .cache/bench-build/bench/net.js
	@node .cache/bench-build/bench/vm.js
	@node .cache/bench-build/bench/mcp.js
	@node .cache/bench-build/bench/security.js
	@node .cache/bench-build/bench/load.js
	@node .cache/bench-build/bench/report.js

## make image: build the micro-VM guest image when it is missing or out of date.
image: build
	@$(IMAGE_STEP)

clean:
	rm -rf dist
