# aclm — the two commands of the README, and the rest.
#   make run    install what is missing, build, start the main job
#   make test   install test dependencies, build with ASan+UBSan, run unit and integration tests
#   make bench  benchmarks (bench/*/run), release build
#   make fuzz   every libFuzzer driver for FUZZ_TIME seconds (default 60); new inputs
#               go to build-fuzz/corpus-NAME, the seeds in tests/fuzz/corpus stay as committed
#   make clean

BUILD       ?= build
BUILD_ASAN  ?= build-asan
BUILD_FUZZ  ?= build-fuzz
BUILD_BENCH ?= build-bench
FUZZ_TIME   ?= 60
PYTEST      ?= /usr/bin/python3 -m pytest
JOBS        ?= $(shell nproc 2>/dev/null || echo 2)
ACLM_DB     ?= sqlite:aclm.db

.PHONY: all build run test unit integration bench fuzz clean deps deps-test

all: build

deps:
	@scripts/install-deps

deps-test:
	@scripts/install-deps --test

$(BUILD)/build.ninja:
	meson setup $(BUILD) -Dbuildtype=debugoptimized

build: deps $(BUILD)/build.ninja
	ninja -C $(BUILD)

# The main job: the system trust store in the inventory (so there is
# something to look at), then `aclm server` on the embedded SQLite database.
# First start prints the admin password once ($ACLM_ADMIN_PASSWORD sets it).
run: build
	@echo "==> importing the system trust store (/etc/ssl/certs) into $(ACLM_DB)"
	@$(BUILD)/src/cli/aclm --db $(ACLM_DB) -q import --exclude java /etc/ssl/certs
	@echo "==> the certificates that expire first"
	@$(BUILD)/src/cli/aclm --db $(ACLM_DB) list --limit 5
	@echo "==> starting aclm server (forgot the admin password? $(BUILD)/src/cli/aclm user passwd admin)"
	@ACLM_CA_AUTO_INIT=$${ACLM_CA_AUTO_INIT:-true} exec $(BUILD)/src/cli/aclm --db $(ACLM_DB) server

$(BUILD_ASAN)/build.ninja:
	meson setup $(BUILD_ASAN) -Dsanitize=true -Db_lundef=false

# The sanitizer build runs everything of ours; the plain build provides
# aclm-pq.so, which foreign programs (openssl, nginx) load without ASan.
# valgrind cannot run ASan binaries: the constant-time checks run on the
# plain build.
VALGRIND_TESTS = mlkem-ct mlkem-ct-portable
TEST_ENV = ACLM_BIN=$(CURDIR)/$(BUILD_ASAN)/src/cli/aclm ACLM_PQ_MODULE_DIR=$(CURDIR)/$(BUILD)/src/crypto

test: deps-test $(BUILD_ASAN)/build.ninja $(BUILD)/build.ninja
	ninja -C $(BUILD_ASAN)
	ninja -C $(BUILD)
	meson test -C $(BUILD_ASAN) --print-errorlogs --num-processes $(JOBS)
	meson test -C $(BUILD) --print-errorlogs --num-processes $(JOBS) $(VALGRIND_TESTS)
	$(TEST_ENV) $(PYTEST) -n $(JOBS) -q tests/integration

unit: $(BUILD_ASAN)/build.ninja
	ninja -C $(BUILD_ASAN)
	meson test -C $(BUILD_ASAN) --print-errorlogs

integration: $(BUILD_ASAN)/build.ninja $(BUILD)/build.ninja
	ninja -C $(BUILD_ASAN)
	ninja -C $(BUILD)
	$(TEST_ENV) $(PYTEST) -n $(JOBS) -q tests/integration

bench:
	@scripts/install-deps --bench
	@[ -f $(BUILD_BENCH)/build.ninja ] || meson setup $(BUILD_BENCH) -Dbuildtype=release
	ninja -C $(BUILD_BENCH)
	ACLM_BIN=$(CURDIR)/$(BUILD_BENCH)/src/cli/aclm bench/run

fuzz:
	@scripts/install-deps --fuzz
	@[ -f $(BUILD_FUZZ)/build.ninja ] || CC=clang meson setup $(BUILD_FUZZ) -Dfuzz=true -Db_lundef=false
	ninja -C $(BUILD_FUZZ)
	@set -e; for drv in $(BUILD_FUZZ)/tests/fuzz/fuzz_*; do \
		[ -f "$$drv" ] && [ -x "$$drv" ] || continue; \
		name=$${drv##*/fuzz_}; \
		work=$(BUILD_FUZZ)/corpus-$$name; \
		mkdir -p tests/fuzz/artifacts/$$name $$work; \
		echo "==> $$name for $(FUZZ_TIME)s"; \
		"$$drv" -max_total_time=$(FUZZ_TIME) -timeout=10 -rss_limit_mb=2048 \
			-artifact_prefix=tests/fuzz/artifacts/$$name/ $$work tests/fuzz/corpus/$$name; \
	done

clean:
	rm -rf $(BUILD) $(BUILD_ASAN) $(BUILD_FUZZ) $(BUILD_BENCH)
