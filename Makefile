# Every target sets itself up (scripts/bootstrap.sh is idempotent and fast when
# nothing changed) and runs with Node >= 22 from .tools/ when the host's is older.
SHELL := /bin/bash
export PATH := $(CURDIR)/.tools/node_modules/.bin:$(CURDIR)/node_modules/.bin:$(PATH)

.PHONY: setup build typecheck lint test demo bench clean

setup:
	@bash scripts/bootstrap.sh

build: setup
	@tsc -p tsconfig.build.json
	@node scripts/bundle-cli.mjs

typecheck: setup
	@tsc -p tsconfig.json --noEmit

lint: setup
	@eslint .

## make test: typecheck, lint, build (CLI tests run the built bin) and every test.
test: setup
	@tsc -p tsconfig.json --noEmit
	@eslint .
	@tsc -p tsconfig.build.json
	@node scripts/bundle-cli.mjs
	@vitest run

## make demo: a short scripted tour of the sandbox.
demo: build
	@./bin/luminaguard demo

## make bench: spawn (vs raw bwrap and srt) and network benchmarks; writes bench/results/ and docs/BENCHMARKS.md.
bench: build
	@bash bench/setup.sh
	@tsc -p tsconfig.bench.json
	@node .cache/bench-build/bench/spawn.js
	@node .cache/bench-build/bench/net.js
	@node .cache/bench-build/bench/report.js

clean:
	rm -rf dist
