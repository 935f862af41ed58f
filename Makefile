# Thin wrapper: every target installs what it needs (scripts/bootstrap), then calls CMake
# presets and CTest. See docs/development.md.
.DEFAULT_GOAL := demo
MAKEFLAGS += --no-print-directory

FUZZ_SECONDS ?= 60
# Tests run one per core: they are independent (own ports, temp dirs and servers), and the
# two CI passes take about half the time this way (docs/development.md, CI).
TEST_JOBS ?= $(shell nproc)
SOURCES = $(shell git ls-files --cached --others --exclude-standard '*.cc' '*.h' 2>/dev/null)

.PHONY: bootstrap build demo test unit asan bench fuzz fuzz-ci format format-check lint tidy clean

bootstrap:
	@scripts/bootstrap

build: bootstrap
	@cmake --preset default >/dev/null
	@cmake --build --preset default

# The main job: the agentry CLI's end-to-end self-check of this build; the project's own
# triage agent model (trained by `agentry train` on first run: 795 s on 2 cores with
# AVX-512, 1 082 s with AVX2 only; docs/agent-model.md) answering held-out conversations (tool
# calls decoded under the tools' JSON schemas, answers that use tool results and what the user
# said earlier); then that model serving the triage agent on the local data plane
# (`agentry up`), with a short conversation through `agentry chat` whose later turns use what
# earlier ones said, and the same session going on after the data plane restarts.
AGENT_MODEL = build/agent-model/model-q8_0.gguf
demo: build
	build/default/cli/agentry selfcheck --manifest examples/triage-agent.yaml
	@scripts/train-agent-model build/default build/agent-model
	@echo; echo "== the triage agent model on four held-out conversations"
	build/default/cli/agentry eval-agent -m $(AGENT_MODEL) -n 4 -v 2>&1
	@echo; scripts/demo-conversation build/default

# What CI runs (.ci/run): unit tests under Address+UB sanitizers, a fixed-seed pass of every
# fuzzer, then every test in the default build; ctest's summary of the full suite is the last
# thing printed.
# The fuzz pass and the default build run side by side (their outputs printed whole, one after
# the other): the fuzzers leave a core idle once the short ones end.
test: asan
	@$(MAKE) -j2 --output-sync=target fuzz-ci build
	ctest --preset default -j $(TEST_JOBS)

# The fast loop while developing: the default build's tests only.
unit: build
	ctest --preset default -j $(TEST_JOBS)

asan: bootstrap
	@cmake --preset asan >/dev/null
	@cmake --build --preset asan --target unit_tests
	ctest --preset asan -j $(TEST_JOBS)

bench: build
	scripts/run-benchmarks build/default

fuzz: bootstrap
	@cmake --preset fuzz >/dev/null
	@cmake --build --preset fuzz --target fuzzers
	scripts/run-fuzzers build/fuzz $(FUZZ_SECONDS)

# Every fuzzer on the same inputs each time (seed 1): reproducible, for CI. 200 000 each,
# 50 000 for the two slowest under the instrumentation (at 200 000, beside the default
# build, they took 400 and 200 s: the longest part of a cold CI's second phase).
fuzz-ci: bootstrap
	@cmake --preset fuzz >/dev/null
	@cmake --build --preset fuzz --target fuzzers
	FUZZ_RUNS=200000 FUZZ_RUNS_tokenizer_fuzz=50000 FUZZ_RUNS_manifest_fuzz=50000 \
	  scripts/run-fuzzers build/fuzz 0

format: bootstrap
	clang-format -i $(SOURCES)

format-check:
	clang-format --dry-run -Werror $(SOURCES)

# clang-tidy needs one compile command per file, which the unity builds do not list: its own
# configuration, of which only the generated protobuf headers are built.
tidy: bootstrap
	@cmake --preset tidy >/dev/null
	@cmake --build --preset tidy --target agentry_proto
	scripts/run-clang-tidy build/tidy

lint: format-check tidy

clean:
	rm -rf build
