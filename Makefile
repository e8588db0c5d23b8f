# SPDX-License-Identifier: GPL-2.0-only
#
# winvm: the module (Kbuild), libwinvm, winvmctl, the selftests, and the
# VM that runs them. `make run` and `make check` install what is missing.

# The kernel to build for and boot: newest /boot/vmlinuz with headers.
KVER = $(shell scripts/kver)
KDIR = /lib/modules/$(KVER)/build

# The kernels `make check` runs the tests on: all (both), stock (Debian's,
# the fast loop) or debug (scripts/mkdebugkernel's, KASAN and friends).
KERNELS ?= all

BUILD := build
PREFIX ?= /usr/local
VERSION := 0.1.0
SOVERSION := 1

CC ?= cc
CFLAGS ?= -O2 -g
WARN := -Wall -Wextra -Wno-unused-parameter
CPPFLAGS_WINVM := -Iuapi -Ilib/include

# linux-source carries the kselftest harness, checkpatch and kernel-doc;
# they are taken from there at build time.
KSRC_TAR := /usr/src/linux-source-6.1.tar.xz
KTOOLS := $(BUILD)/ksrc
KTOOL_FILES := tools/testing/selftests/kselftest_harness.h \
	       tools/testing/selftests/kselftest.h \
	       scripts/checkpatch.pl scripts/spelling.txt \
	       scripts/const_structs.checkpatch scripts/kernel-doc

LIB_SRC := lib/winvm.c lib/exception.c lib/heap.c lib/global.c lib/memory.c \
	   lib/process.c
LIB_HDR := lib/include/winvm.h lib/include/windows.h lib/internal.h \
	   uapi/linux/winvm.h
LIB_OBJ := $(patsubst lib/%.c,$(BUILD)/lib/%.o,$(LIB_SRC))
LIBA := $(BUILD)/lib/libwinvm.a
LIBSO := $(BUILD)/lib/libwinvm.so.$(VERSION)
LIBPC := $(BUILD)/lib/pkgconfig/winvm.pc
TOOLS := $(BUILD)/bin/winvmctl $(BUILD)/bin/winvm-demo
SELFTESTS := $(patsubst selftests/%.c,$(BUILD)/selftests/%,\
	$(filter-out selftests/hdrtest.c,$(wildcard selftests/*.c)))
HELPERS := $(patsubst selftests/helpers/%.c,$(BUILD)/helpers/%,\
	$(wildcard selftests/helpers/*.c))

.PHONY: all module module-debug lib tools selftests deps run fuzz check lint \
	checkpatch sparse kerneldoc hdrtest install clean distclean bench

all: module lib tools selftests

deps:
	@scripts/deps

module:
	$(MAKE) -C $(KDIR) M=$(CURDIR) modules

# winvm.ko for the debug kernel (built and cached by scripts/mkdebugkernel),
# as $(DEBUG_MOD)/winvm.ko: Kbuild writes its objects next to the sources,
# so it builds a copy of them, leaving the stock build alone.  Files are
# copied only when they differ, so that make rebuilds only what changed.
DEBUG_MOD := $(BUILD)/debug-module
DEBUG_MOD_SRC = Kbuild $(wildcard module/*.c module/*.h uapi/linux/*.h)

module-debug:
	@scripts/mkdebugkernel
	@mkdir -p $(addprefix $(DEBUG_MOD)/,$(sort $(dir $(DEBUG_MOD_SRC))))
	@for f in $(DEBUG_MOD_SRC); do \
		cmp -s $$f $(DEBUG_MOD)/$$f || cp $$f $(DEBUG_MOD)/$$f || exit 1; \
	done
	$(MAKE) -C "$$(scripts/mkdebugkernel --print-dir)" \
		M=$(CURDIR)/$(DEBUG_MOD) modules

lib: $(LIBA) $(LIBSO) $(LIBPC)

tools: $(TOOLS)

# The helpers are named here, not only as prerequisites of the pattern rule,
# or make would delete them as intermediate files once the tests are built.
selftests: $(SELFTESTS) $(HELPERS)

$(BUILD)/lib/%.o: lib/%.c $(LIB_HDR)
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) $(WARN) -std=gnu11 -fPIC -fvisibility=hidden \
		$(CPPFLAGS_WINVM) -c -o $@ $<

$(LIBA): $(LIB_OBJ)
	rm -f $@
	$(AR) rcs $@ $^

$(LIBSO): $(LIB_OBJ)
	$(CC) -shared -Wl,-soname,libwinvm.so.$(SOVERSION) -o $@ $^ -lpthread
	ln -sf libwinvm.so.$(VERSION) $(BUILD)/lib/libwinvm.so.$(SOVERSION)
	ln -sf libwinvm.so.$(SOVERSION) $(BUILD)/lib/libwinvm.so

$(LIBPC): lib/winvm.pc.in Makefile
	@mkdir -p $(@D)
	sed -e 's|@PREFIX@|$(PREFIX)|' -e 's|@VERSION@|$(VERSION)|' $< > $@

# Programs link the shared library from the build tree; the VM sees the
# repository at the same path, so the rpath holds there too.
LINK_WINVM := -L$(BUILD)/lib -Wl,-rpath,$(CURDIR)/$(BUILD)/lib -lwinvm

$(BUILD)/bin/winvmctl: lib/winvmctl.c uapi/linux/winvm.h
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) $(WARN) $(CPPFLAGS_WINVM) -o $@ $< -lkmod

$(BUILD)/bin/winvm-demo: lib/demo.c $(LIB_HDR) $(LIBSO)
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) $(WARN) -Ilib/include -o $@ $< $(LINK_WINVM)

$(KTOOLS)/.stamp: $(KSRC_TAR)
	rm -rf $(KTOOLS)
	mkdir -p $(KTOOLS)
	tar -xJf $< -C $(KTOOLS) --strip-components=1 \
		$(addprefix linux-source-6.1/,$(KTOOL_FILES))
	touch $@

# The library tests link libwinvm; the others talk to /dev/winvm directly.
LIB_TESTS := win32 exceptions fuzz heap global watch
$(addprefix $(BUILD)/selftests/,$(LIB_TESTS)): TEST_LIBS = $(LINK_WINVM)

$(BUILD)/selftests/%: selftests/%.c selftests/winvm_util.h selftests/win32_util.h \
		      selftests/harness.h $(LIB_HDR) \
		      $(LIBSO) $(KTOOLS)/.stamp $(HELPERS)
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) -Wall $(CPPFLAGS_WINVM) \
		-I$(KTOOLS)/tools/testing/selftests \
		-DHELPERS_DIR='"$(CURDIR)/$(BUILD)/helpers"' \
		-DLIB_DIR='"$(CURDIR)/$(BUILD)/lib"' -o $@ $< \
		$(TEST_LIBS) -lpthread

# Programs the selftests run; not tests themselves.
$(BUILD)/helpers/%: selftests/helpers/%.c $(LIB_HDR)
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) -Wall -Ilib/include -o $@ $<

# Boot the test VM, load winvm.ko and show what it does.
run: deps
	$(MAKE) all
	scripts/vm-run $(CURDIR)/$(BUILD)/bin/winvm-demo

# The model-checked fuzzer alone, any amount: make fuzz OPS=N SEED=S
# [SEEDS=N] [THREADS=N] [SECONDS=T] (defaults: those of selftests/fuzz.c).
fuzz: deps
	$(MAKE) all
	scripts/vm-run --timeout 86400 $(CURDIR)/$(BUILD)/selftests/fuzz \
		$(if $(SEED),--seed $(SEED)) $(if $(SEEDS),--seeds $(SEEDS)) \
		$(if $(OPS),--ops $(OPS)) $(if $(THREADS),--threads $(THREADS)) \
		$(if $(SECONDS),--seconds $(SECONDS))

# Every test: lint on the host, selftests and library tests in the VM on
# each kernel of KERNELS (the debug one's module is built by scripts/check).
check: deps
	$(MAKE) all
	KERNELS='$(KERNELS)' scripts/check

# Benchmarks in the test VM against raw Linux and Wine (see bench/):
# results in bench/; QUICK=1 is the one-minute subset (build/bench/quick/).
bench:
	@scripts/deps bench
	$(MAKE) module lib tools
	QUICK='$(QUICK)' scripts/bench

lint: checkpatch sparse kerneldoc hdrtest

CHECKPATCH := $(KTOOLS)/scripts/checkpatch.pl --no-tree --strict --quiet \
	--ignore FILE_PATH_CHANGES,SPDX_LICENSE_TAG

checkpatch: $(KTOOLS)/.stamp
	$(CHECKPATCH) -f module/*.c module/*.h uapi/linux/winvm.h

sparse:
	$(MAKE) -C $(KDIR) M=$(CURDIR) C=2 W=1 KCFLAGS=-Werror modules 2>&1 | \
		tee $(BUILD)/sparse.log
	! grep -E "warning|error" $(BUILD)/sparse.log

kerneldoc: $(KTOOLS)/.stamp
	$(KTOOLS)/scripts/kernel-doc -none -Werror uapi/linux/winvm.h \
		module/winvm.c 2>&1 | tee $(BUILD)/kerneldoc.log
	! grep -q . $(BUILD)/kerneldoc.log

# The uapi header compiles alone, as C and C++, with the documented layout.
hdrtest: selftests/hdrtest.c uapi/linux/winvm.h
	@mkdir -p $(BUILD)
	$(CC) -Wall -Werror -Iuapi -fsyntax-only -x c selftests/hdrtest.c
	$(CXX) -Wall -Werror -Iuapi -fsyntax-only -x c++ selftests/hdrtest.c

install: lib tools
	install -d $(DESTDIR)$(PREFIX)/lib/pkgconfig $(DESTDIR)$(PREFIX)/bin \
		$(DESTDIR)$(PREFIX)/include/linux
	install -m 644 $(LIBA) $(LIBSO) $(DESTDIR)$(PREFIX)/lib/
	ln -sf libwinvm.so.$(VERSION) \
		$(DESTDIR)$(PREFIX)/lib/libwinvm.so.$(SOVERSION)
	ln -sf libwinvm.so.$(SOVERSION) $(DESTDIR)$(PREFIX)/lib/libwinvm.so
	install -m 644 $(LIBPC) $(DESTDIR)$(PREFIX)/lib/pkgconfig/
	install -m 644 lib/include/winvm.h lib/include/windows.h \
		$(DESTDIR)$(PREFIX)/include/
	install -m 644 uapi/linux/winvm.h $(DESTDIR)$(PREFIX)/include/linux/
	install -m 755 $(BUILD)/bin/winvmctl $(DESTDIR)$(PREFIX)/bin/

# clean keeps the debug kernel ($(BUILD)/kernel: 20 minutes to build again),
# so it removes Kbuild's output itself: `make -C $(KDIR) M=. clean` would
# also sweep the objects of that tree.  distclean removes it too.
clean:
	rm -f *.ko *.o *.mod *.mod.c .*.cmd .*.d Module.symvers modules.order \
		module/*.o module/.*.cmd module/.*.d
	rm -rf $(filter-out $(BUILD)/kernel,$(wildcard $(BUILD)/*))

distclean: clean
	rm -rf $(BUILD)
