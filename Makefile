# ringkv — one build for everything (DESIGN §1).
#
#   make          build everything (binaries in build/bin, objects in build/)
#   make test     install missing packages, build the tests under ASan+UBSan (and TSan for the
#                 concurrency test) and run them all with a per-test timeout
#   make bench    install missing packages, build, run the benchmarks (scripts/bench.sh)
#   make run      install missing packages, build, run the main job (scripts/run.sh)
#   make fuzz     build the libFuzzer targets and run each for FUZZ_SECONDS (default 60)
#   make deps     install missing Debian packages (scripts/deps.sh)
#   make NATIVE=1 ...   opt in to -march=native (never the default)
#
# Dependency rule: dpdk-app -> io -> core, client -> core, bench -> client, core.
# core/ and client/ objects are built with -fPIC so libringkv.so can reuse them.

CC      ?= gcc
CLANG   ?= clang
BUILD   := build
BIN     := $(BUILD)/bin
OPT     ?= -O2 -g
ifeq ($(NATIVE),1)
OPT     += -march=native
endif
CPPFLAGS := -D_GNU_SOURCE -I. -Icore -Iclient
CFLAGS   := -std=gnu11 $(OPT) -Wall -Wextra -Werror -fPIC -pthread
SAN      := -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=all
TSAN     := -fsanitize=thread -fno-omit-frame-pointer
LDLIBS_CORE := -lzstd -lm -pthread

PKG_DPDK_CFLAGS = $(shell pkg-config --cflags libdpdk 2>/dev/null)
PKG_DPDK_LIBS   = $(shell pkg-config --libs libdpdk 2>/dev/null)
URING_LIBS      = -luring
# ringkvd's /metrics endpoint (dpdk-app/metrics.c).
HTTPD_LIBS      = $(shell pkg-config --libs libmicrohttpd 2>/dev/null || echo -lmicrohttpd)
# ringkvd's RESP endpoint (dpdk-app/resp.c) parses with hiredis's reader.
HIREDIS_LIBS    = $(shell pkg-config --libs hiredis 2>/dev/null || echo -lhiredis)

CORE_SRC   := $(wildcard core/*.c)
IO_SRC     := $(wildcard io/*.c)
CLIENT_SRC := $(filter-out client/cli.c,$(wildcard client/*.c))
APP_SRC    := $(wildcard dpdk-app/*.c)
BENCH_SRC  := $(wildcard bench/*.c)
TEST_SRC   := $(wildcard tests/test_*.c)
TSAN_SRC   := $(wildcard tests/test_*concurrency*.c)
FUZZ_SRC   := $(wildcard tests/fuzz/fuzz_*.c)

CORE_OBJ   := $(CORE_SRC:%.c=$(BUILD)/%.o)
IO_OBJ     := $(IO_SRC:%.c=$(BUILD)/%.o)
CLIENT_OBJ := $(CLIENT_SRC:%.c=$(BUILD)/%.o)
APP_OBJ    := $(APP_SRC:%.c=$(BUILD)/%.o)
BENCH_OBJ  := $(BENCH_SRC:%.c=$(BUILD)/%.o)

# dpdk-app/shm.c and exec.c (the executor it shares with UDP) have no DPDK inside: tests drive
# them in-process.
ASAN_LIB_OBJ := $(CORE_SRC:%.c=$(BUILD)/asan/%.o) $(CLIENT_SRC:%.c=$(BUILD)/asan/%.o) \
		$(IO_SRC:%.c=$(BUILD)/asan/%.o) $(BUILD)/asan/dpdk-app/shm.o $(BUILD)/asan/dpdk-app/exec.o
TSAN_LIB_OBJ := $(CORE_SRC:%.c=$(BUILD)/tsan/%.o)

TESTS      := $(TEST_SRC:tests/%.c=$(BUILD)/tests/%)
TSAN_TESTS := $(TSAN_SRC:tests/%.c=$(BUILD)/tests/tsan_%)
FUZZERS    := $(FUZZ_SRC:tests/fuzz/%.c=$(BUILD)/fuzz/%)

LIBCORE    := $(BUILD)/libringkv-core.a
LIBRINGKV  := $(BUILD)/libringkv.a
LIBRINGKV_SO := $(BUILD)/libringkv.so
# The cluster tests' history client (tests/cluster/hist_client.c), a plain build on libringkv.a.
HIST_CLIENT := $(if $(CLIENT_SRC),$(BUILD)/tests/cluster/hist_client)
PROGRAMS   := $(if $(BENCH_SRC),$(BIN)/ringkv-bench) $(if $(APP_SRC),$(BIN)/ringkvd) \
	      $(if $(wildcard client/cli.c),$(BIN)/ringkv)

.PHONY: all deps test test-build tsan bench run fuzz fuzz-build clean
.DEFAULT_GOAL := all

all: $(LIBCORE) $(if $(CLIENT_SRC),$(LIBRINGKV) $(LIBRINGKV_SO) $(BUILD)/ringkv.pc) $(PROGRAMS) \
	$(HIST_CLIENT)

deps:
	@scripts/deps.sh

# ---- libraries -----------------------------------------------------------------------------

$(BUILD)/%.o: %.c
	@mkdir -p $(@D)
	$(CC) $(CPPFLAGS) -MMD -MP $(CFLAGS) -c $< -o $@

$(BUILD)/dpdk-app/%.o $(BUILD)/bench/%.o: CFLAGS += $(PKG_DPDK_CFLAGS)

$(LIBCORE): $(CORE_OBJ)
	@mkdir -p $(@D); rm -f $@
	$(AR) rcs $@ $^

$(LIBRINGKV): $(CLIENT_OBJ) $(CORE_OBJ)
	@rm -f $@
	$(AR) rcs $@ $^

$(LIBRINGKV_SO): $(CLIENT_OBJ) $(CORE_OBJ)
	$(CC) -shared -Wl,-soname,libringkv.so.0 -o $@ $^ $(LDLIBS_CORE)
	ln -sf libringkv.so $(BUILD)/libringkv.so.0

$(BUILD)/ringkv.pc: client/ringkv.pc.in
	@mkdir -p $(@D)
	sed -e 's|@PREFIX@|$(abspath $(BUILD))|' -e 's|@INCLUDE@|$(abspath client)|' $< > $@

# ---- programs ------------------------------------------------------------------------------
$(BIN)/ringkvd: $(APP_OBJ) $(IO_OBJ) $(LIBCORE)
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) -o $@ $(APP_OBJ) $(IO_OBJ) $(LIBCORE) $(PKG_DPDK_LIBS) $(URING_LIBS) $(HTTPD_LIBS) $(HIREDIS_LIBS) $(LDLIBS_CORE)

$(BIN)/ringkv-bench: $(BENCH_OBJ) $(if $(CLIENT_SRC),$(LIBRINGKV)) $(LIBCORE)
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) -o $@ $(BENCH_OBJ) $(if $(CLIENT_SRC),$(LIBRINGKV)) $(LIBCORE) $(PKG_DPDK_LIBS) $(LDLIBS_CORE)

$(BIN)/ringkv: $(BUILD)/client/cli.o $(LIBRINGKV)
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) -o $@ $^ $(LDLIBS_CORE)

# ---- tests ---------------------------------------------------------------------------------
$(BUILD)/tests/cluster/hist_client: tests/cluster/hist_client.c $(LIBRINGKV)
	@mkdir -p $(@D)
	$(CC) $(CPPFLAGS) -MMD -MP $(CFLAGS) -o $@ $< $(LIBRINGKV) $(LDLIBS_CORE)

$(BUILD)/asan/%.o: %.c
	@mkdir -p $(@D)
	$(CC) $(CPPFLAGS) -MMD -MP $(CFLAGS) $(SAN) -c $< -o $@

$(BUILD)/tsan/%.o: %.c
	@mkdir -p $(@D)
	$(CC) $(CPPFLAGS) -MMD -MP $(CFLAGS) $(TSAN) -c $< -o $@

# Tests link archives, so a test pulls in only the objects it uses.
$(BUILD)/asan/libtest.a: $(ASAN_LIB_OBJ)
	@mkdir -p $(@D); rm -f $@
	$(AR) rcs $@ $^

$(BUILD)/tsan/libtest.a: $(TSAN_LIB_OBJ)
	@mkdir -p $(@D); rm -f $@
	$(AR) rcs $@ $^

$(BUILD)/tests/%: tests/%.c $(BUILD)/asan/libtest.a tests/testutil.h
	@mkdir -p $(@D)
	$(CC) $(CPPFLAGS) -MMD -MP -Itests $(CFLAGS) $(SAN) -o $@ $< $(BUILD)/asan/libtest.a -lcmocka $(URING_LIBS) $(LDLIBS_CORE)

$(BUILD)/tests/tsan_%: tests/%.c $(BUILD)/tsan/libtest.a tests/testutil.h
	@mkdir -p $(@D)
	$(CC) $(CPPFLAGS) -MMD -MP -Itests $(CFLAGS) $(TSAN) -o $@ $< $(BUILD)/tsan/libtest.a -lcmocka $(LDLIBS_CORE)

test-build: all $(TESTS) $(TSAN_TESTS)

tsan: $(TSAN_TESTS)

test: deps
	@$(MAKE) --no-print-directory -s test-build >$(BUILD).log 2>&1 || { cat $(BUILD).log; exit 1; }
	@scripts/run-tests.sh $(TESTS) $(TSAN_TESTS) $(sort $(wildcard tests/test_*.sh))

# ---- benchmarks, main job, fuzzing -------------------------------------------------------
bench: deps
	@$(MAKE) --no-print-directory all
	@scripts/bench.sh

# make run NODES=1: one node (shm + UDP) instead of the 3-node cluster.
NODES ?= 3
run: deps
	@$(MAKE) --no-print-directory all
	@NODES=$(NODES) scripts/run.sh

FUZZ_SECONDS ?= 60
FUZZ_MAX_LEN ?= 400
# Sources a target needs beyond core/ and io/ (the shm server has no DPDK inside).
FUZZ_EXTRA_fuzz_shm := dpdk-app/shm.c dpdk-app/exec.c
.SECONDEXPANSION:
$(BUILD)/fuzz/%: tests/fuzz/%.c $(CORE_SRC) $(IO_SRC) $$(FUZZ_EXTRA_$$*) \
		$(wildcard core/*.h io/*.h dpdk-app/*.h tests/fuzz/*.h)
	@mkdir -p $(@D)
	$(CLANG) $(CPPFLAGS) -std=gnu11 -O1 -g -Wall -Wextra -Werror \
		-fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all \
		-o $@ $< $(CORE_SRC) $(IO_SRC) $(FUZZ_EXTRA_$*) $(URING_LIBS) $(LDLIBS_CORE)

fuzz-build: $(FUZZERS)

fuzz: deps
	@$(MAKE) --no-print-directory fuzz-build
	@for f in $(FUZZERS); do \
		mkdir -p $(BUILD)/fuzz/corpus-$$(basename $$f); \
		echo "fuzz: $$f for $(FUZZ_SECONDS)s"; \
		$$f -max_total_time=$(FUZZ_SECONDS) -max_len=$(FUZZ_MAX_LEN) -print_final_stats=1 \
			$(BUILD)/fuzz/corpus-$$(basename $$f) >$(BUILD)/fuzz/$$(basename $$f).log 2>&1; \
		rc=$$?; grep -E 'stat::number_of_executed_units|ERROR|SUMMARY' $(BUILD)/fuzz/$$(basename $$f).log; \
		[ $$rc -eq 0 ] || { echo "fuzz: $$f failed (exit $$rc), log in $(BUILD)/fuzz/$$(basename $$f).log"; exit 1; }; \
	done

clean:
	rm -rf $(BUILD) $(BUILD).log

-include $(shell find $(BUILD) -name '*.d' 2>/dev/null)
