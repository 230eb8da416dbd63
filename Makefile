# locksmith-swift: build, install and test.
#
#   make                  build liblocksmith.so.1 (static Swift runtime, version script, soname)
#                         and the programs (locksmithctl), with man page and shell completions
#   make install          install under $(DESTDIR)$(PREFIX)
#   make check            build, run the Swift, C API and programs' suites (a few minutes)
#   make test             install missing Debian packages, build, run every test suite (CI)
#   make demo             a simulated fleet of real daemons does a rolling reboot
#   make machines-demo    three Debian machines (systemd-nspawn) with the packages really reboot
#   make sysext           the Flatcar system extension, build/sysext/locksmith-swift-VERSION-x86-64.raw
#
# The shared library is linked here rather than in Package.swift, because its flags
# (-static-stdlib, the version script, the soname) are "unsafe" to SwiftPM and would break
# `swift test`. lld with --no-export-dynamic (the static runtime asks for -export-dynamic) lets the
# version script decide alone what is exported. It gets its own scratch path so debug builds and tests are not rebuilt each time.

PREFIX      ?= /usr/local
DESTDIR     ?=
BINDIR      ?= $(PREFIX)/bin
LIBDIR      ?= $(PREFIX)/lib
INCLUDEDIR  ?= $(PREFIX)/include
PKGCONFIGDIR ?= $(LIBDIR)/pkgconfig
DATADIR     ?= $(PREFIX)/share
MANDIR      ?= $(DATADIR)/man
UNITDIR     ?= $(PREFIX)/lib/systemd/system
# PAM finds modules by bare name only in its own directory, whatever PREFIX is; scratch prefixes
# (Tests/harness/test-abi) keep the module under LIBDIR.
PAMDIR      ?= $(if $(filter /usr /usr/local,$(PREFIX)),$(shell pkg-config --variable=libdir pam 2>/dev/null || echo /lib/x86_64-linux-gnu)/security,$(LIBDIR)/security)

SWIFT       ?= swift
BUILD       := build
LIB_SCRATCH := .build-lib
SONAME      := liblocksmith.so.1
VERSION     := $(shell sed -n 's/.*static let string = "\(.*\)"/\1/p' Sources/LocksmithCore/Version.swift)

SWIFT_SOURCES := Package.swift $(shell find Sources -path Sources/locksmith-run -prune -o -path Sources/locksmith-fleetlockd -prune -o -path Sources/pam_locksmith -prune -o \( -name '*.swift' -o -name '*.c' -o -name '*.h' -o -name '*.modulemap' \) -print) include/locksmith.h

# One Swift runtime, in the library. liblocksmith.so.1 links the Swift runtime statically, and
# locksmithctl and locksmithd use that one through a private version node (PRIVATE_NODE) rather
# than carrying their own: a program loads and initializes one runtime, and is about 200 KB.
# The node's symbols are hidden versions (tools/build/hide-private-version): only programs linked
# against this very build find them, never an unversioned lookup. The build goes in three steps:
#   1. build/link-all/liblocksmith.so: the library with the whole runtime in the node;
#   2. the programs, linked against it (resource directory build/swift/programs: every Swift
#      runtime library names liblocksmith instead);
#   3. build/lib/liblocksmith.so.1: the library with exactly what the programs took in the node.
# Both links of the library use build/swift/library, the toolchain's static runtime without the
# --exclude-libs ALL that would hide it from the version script (tools/build/swift-resources).
# -Bsymbolic: the library's own calls into the runtime do not go through its exports.
#
# The library links libstdc++ (the Swift runtime's C++ library) and the unwinder (libgcc_eh)
# statically too, through the linker scripts in build/link: loading libstdc++.so runs its
# initialization in every process, about 2 million instructions. json-c is linked in as well
# (through the resource directory, tools/build/swift-resources), its symbols hidden: each shared
# library loaded costs every process that loads liblocksmith, a login through pam_locksmith among
# them (docs/benchmarks.md). (libcurl stays shared: its static archive needs every TLS library
# linked in.)
#
# --no-export-dynamic: the static runtime's link arguments would export every symbol of a program,
# and each symbol lookup of a library loaded later (libcurl, libsystemd and theirs) would then have
# a long list to search first.
PRIVATE_NODE := LOCKSMITH_PRIVATE_$(VERSION)
LIB_FLAGS := -c release --scratch-path $(LIB_SCRATCH) --product locksmith -Xlinker -L$(CURDIR)/$(BUILD)/link \
	-Xswiftc -static-stdlib -Xswiftc -resource-dir -Xswiftc $(CURDIR)/$(BUILD)/swift/library \
	-Xswiftc -use-ld=lld -Xlinker --no-export-dynamic -Xlinker -Bsymbolic -Xlinker -soname=$(SONAME) \
	-Xlinker -z -Xlinker pack-relative-relocs

PROGRAMS    := locksmithctl locksmithd
BIN_SCRATCH := .build-bin
# The programs link liblocksmith.so.1 (LOCKSMITH_LINK_SHARED: see Package.swift) and find it in
# ../lib next to their directory: build/lib from build/bin, PREFIX/lib when installed.
BIN_FLAGS   := -c release --scratch-path $(BIN_SCRATCH) \
	-Xswiftc -static-stdlib -Xswiftc -resource-dir -Xswiftc $(CURDIR)/$(BUILD)/swift/programs \
	-Xswiftc -use-ld=lld -Xlinker -L$(CURDIR)/$(BUILD)/link -Xlinker -L$(CURDIR)/$(BUILD)/link-all \
	-Xlinker -rpath='$$ORIGIN/../lib' -Xlinker --no-export-dynamic

STANDINS    := fake-logind fake-update-engine

.PHONY: all lib programs tools standins deps install uninstall test check deb test-swift test-abi test-python test-faults test-sanitizers soak fuzz abi-baseline demo test-machines test-sysext machines-demo sysext clean

all: lib programs tools


deps:
	@tools/build/install-deps

lib: $(BUILD)/lib/$(SONAME)

$(BUILD)/swift/.resources: tools/build/swift-resources
	tools/build/swift-resources $(BUILD)/swift
	touch $@

$(BUILD)/swift/all.map: tools/build/private-runtime tools/build/liblocksmith.map Sources/LocksmithCore/Version.swift
	tools/build/private-runtime $(PRIVATE_NODE) $(BUILD)/swift

LIB_INPUTS := $(SWIFT_SOURCES) Makefile $(BUILD)/swift/.resources $(BUILD)/link/libstdc++.so $(BUILD)/link/libgcc_s.so

# Step 1: the library the programs are linked against.
$(BUILD)/link-all/liblocksmith.so: $(LIB_INPUTS) $(BUILD)/swift/all.map
	$(SWIFT) build $(LIB_FLAGS) -Xlinker --version-script=$(CURDIR)/$(BUILD)/swift/all.map \
	    -Xlinker '--undefined-glob=$$s*' -Xlinker '--undefined-glob=swift_*' -Xlinker '--undefined-glob=_swift*'
	mkdir -p $(BUILD)/link-all
	cp $(LIB_SCRATCH)/release/liblocksmith.so $@

# Step 3: the library that is shipped.
$(BUILD)/lib/$(SONAME): $(LIB_INPUTS) $(addprefix $(BUILD)/bin/,$(PROGRAMS)) tools/build/hide-private-version
	tools/build/private-runtime $(PRIVATE_NODE) $(BUILD)/swift $(addprefix $(BUILD)/bin/,$(PROGRAMS))
	$(SWIFT) build $(LIB_FLAGS) -Xlinker --version-script=$(CURDIR)/$(BUILD)/swift/exact.map -Xlinker $(CURDIR)/$(BUILD)/swift/exact.ld
	mkdir -p $(BUILD)/lib
	strip --strip-unneeded -o $@ $(LIB_SCRATCH)/release/liblocksmith.so
	tools/build/hide-private-version $@ $(PRIVATE_NODE)
	ln -sf $(SONAME) $(BUILD)/lib/liblocksmith.so

# Step 2: the programs link liblocksmith.so.1 for all the locksmith logic and the Swift runtime,
# and libsystemd (loaded on first use).
programs: $(addprefix $(BUILD)/bin/,$(PROGRAMS)) $(BUILD)/lib/$(SONAME) $(BUILD)/share/locksmithctl.1 $(BUILD)/share/locksmithd.service

$(BUILD)/link/libstdc++.so:
	mkdir -p $(BUILD)/link
	echo "INPUT($$($(CC) -print-file-name=libstdc++.a))" > $@

# The unwinder too (libgcc_eh.a instead of libgcc_s.so.1): one shared library fewer to load in
# every process that loads liblocksmith (a login through pam_locksmith among them).
$(BUILD)/link/libgcc_s.so:
	mkdir -p $(BUILD)/link
	echo "INPUT($$($(CC) -print-file-name=libgcc_eh.a))" > $@

$(BUILD)/bin/%: $(SWIFT_SOURCES) Makefile $(BUILD)/swift/.resources $(BUILD)/link-all/liblocksmith.so
	LOCKSMITH_LINK_SHARED=1 $(SWIFT) build $(BIN_FLAGS) --product $*
	mkdir -p $(BUILD)/bin
	strip -o $@ $(BIN_SCRATCH)/release/$*

$(BUILD)/share/locksmithctl.1: $(BUILD)/bin/locksmithctl $(BUILD)/lib/$(SONAME)
	mkdir -p $(BUILD)/share/completions
	$(BUILD)/bin/locksmithctl man > $@
	$(BUILD)/bin/locksmithctl completion bash > $(BUILD)/share/completions/locksmithctl.bash
	$(BUILD)/bin/locksmithctl completion zsh > $(BUILD)/share/completions/_locksmithctl
	$(BUILD)/bin/locksmithctl completion fish > $(BUILD)/share/completions/locksmithctl.fish

# Stand-ins for logind and the update engine, for the tests (never installed).
standins: $(addprefix $(BUILD)/standins/,$(STANDINS)) $(BUILD)/standins/curl-shim/libcurl.so.4

# The unit names the installed daemon, so it is made with BINDIR.
$(BUILD)/share/locksmithd.service: systemd/locksmithd.service.in Makefile
	mkdir -p $(BUILD)/share
	sed -e 's|@BINDIR@|$(BINDIR)|' $< > $@

$(BUILD)/share/locksmith-fleetlockd.service: systemd/locksmith-fleetlockd.service.in Makefile
	mkdir -p $(BUILD)/share
	sed -e 's|@BINDIR@|$(BINDIR)|' $< > $@

$(BUILD)/standins/%: Tests/standins/%.c
	mkdir -p $(BUILD)/standins
	$(CC) -O1 -Wall -Wextra -Werror -o $@ $< $$(pkg-config --cflags --libs libsystemd)

# A libcurl.so.4 that forwards to the real one and misbehaves on request (Tests/standins/curl-shim.c):
# programs find it first with LD_LIBRARY_PATH=build/standins/curl-shim.
$(BUILD)/standins/curl-shim/libcurl.so.4: Tests/standins/curl-shim.c
	mkdir -p $(BUILD)/standins/curl-shim
	$(CC) -O1 -Wall -Wextra -Werror -fPIC -shared -Wl,-soname,libcurl.so.4 \
	    -DCURL_SHIM_DEFAULT_REAL='"'$$(pkg-config --variable=libdir libcurl)/libcurl.so.4'"' -o $@ $< -ldl

$(BUILD)/locksmith.pc: tools/build/locksmith.pc.in Sources/LocksmithCore/Version.swift
	mkdir -p $(BUILD)
	sed -e 's|@PREFIX@|$(PREFIX)|' -e 's|@LIBDIR@|$(LIBDIR)|' -e 's|@INCLUDEDIR@|$(INCLUDEDIR)|' \
	    -e 's|@VERSION@|$(VERSION)|' $< > $@

# pkg-config's file for the library in this tree (pkg-config prefers NAME-uninstalled.pc), so the
# C programs below are built through `pkg-config locksmith` exactly as users build theirs.
$(BUILD)/pkgconfig/locksmith-uninstalled.pc: tools/build/locksmith.pc.in Sources/LocksmithCore/Version.swift
	mkdir -p $(BUILD)/pkgconfig
	sed -e 's|@PREFIX@|$(CURDIR)|' -e 's|@LIBDIR@|$(CURDIR)/$(BUILD)/lib|' -e 's|@INCLUDEDIR@|$(CURDIR)/include|' \
	    -e 's|@VERSION@|$(VERSION)|' $< > $@

LOCKSMITH_PC := PKG_CONFIG_PATH=$(CURDIR)/$(BUILD)/pkgconfig pkg-config

# The C programs (Sources/locksmith-run, Sources/pam_locksmith), built on the library as any user
# of it would build them.
TOOLS := locksmith-run locksmith-fleetlockd
# They find liblocksmith.so.1 in ../lib next to their directory, as locksmithctl and locksmithd do:
# PREFIX/lib when installed under any PREFIX (the Debian packages take the path out again).
TOOL_RPATH := -Wl,-rpath,'$$ORIGIN/../lib'
tools: $(addprefix $(BUILD)/tools/,$(TOOLS)) $(BUILD)/tools/pam_locksmith.so

# The FleetLock server: libmicrohttpd for HTTP (docs/decisions.md), gnutls for its client
# certificates, json-c, sd_notify.
$(BUILD)/tools/locksmith-fleetlockd: Sources/locksmith-fleetlockd/locksmith-fleetlockd.c include/locksmith.h $(BUILD)/lib/$(SONAME) $(BUILD)/pkgconfig/locksmith-uninstalled.pc
	mkdir -p $(BUILD)/tools
	$(CC) -std=c11 -O2 -Wall -Wextra -Werror -pthread $$($(LOCKSMITH_PC) --cflags locksmith libmicrohttpd gnutls json-c libsystemd) -o $@ $< \
	    $$($(LOCKSMITH_PC) --libs locksmith libmicrohttpd gnutls json-c libsystemd) $(TOOL_RPATH)

$(BUILD)/tools/locksmith-run: Sources/locksmith-run/locksmith-run.c include/locksmith.h $(BUILD)/lib/$(SONAME) $(BUILD)/pkgconfig/locksmith-uninstalled.pc
	mkdir -p $(BUILD)/tools
	$(CC) -std=c99 -O2 -Wall -Wextra -Werror $$($(LOCKSMITH_PC) --cflags locksmith) -o $@ $< $$($(LOCKSMITH_PC) --libs locksmith) $(TOOL_RPATH)

# The PAM session module (not in TOOLS: those go to BINDIR). -z nodelete keeps it, and the Swift
# runtime in liblocksmith, loaded after pam_end(): the runtime cannot be unloaded safely.
$(BUILD)/tools/pam_locksmith.so: Sources/pam_locksmith/pam_locksmith.c include/locksmith.h $(BUILD)/lib/$(SONAME) $(BUILD)/pkgconfig/locksmith-uninstalled.pc
	mkdir -p $(BUILD)/tools
	$(CC) -std=c99 -O2 -Wall -Wextra -Werror -fPIC -shared -Wl,-z,nodelete -Wl,-z,defs -o $@ $< \
	    $$($(LOCKSMITH_PC) --cflags --libs locksmith pam)

# The .pc file depends on PREFIX, so it is written at install time.
install: lib programs tools
	@# libcurl and libsystemd are loaded on first use (dlopen), so the dynamic loader cannot
	@# refuse to start without them: refuse to install instead (not when staging into DESTDIR).
	@if [ -z "$(DESTDIR)" ]; then for so in libcurl.so.4 libsystemd.so.0; do \
	    ldconfig -p | grep -q "[[:space:]]$$so " || { echo "$$so is not installed (Debian: apt-get install libcurl4 libsystemd0): locksmith-swift needs it at run time" >&2; exit 1; }; \
	done; fi
	rm -f $(BUILD)/locksmith.pc $(BUILD)/share/locksmithd.service $(BUILD)/share/locksmith-fleetlockd.service
	$(MAKE) --no-print-directory $(BUILD)/share/locksmithd.service $(BUILD)/share/locksmith-fleetlockd.service
	$(MAKE) --no-print-directory $(BUILD)/locksmith.pc
	install -d $(DESTDIR)$(LIBDIR) $(DESTDIR)$(INCLUDEDIR) $(DESTDIR)$(PKGCONFIGDIR) $(DESTDIR)$(BINDIR)
	install -m 0755 $(BUILD)/lib/$(SONAME) $(DESTDIR)$(LIBDIR)/$(SONAME)
	ln -sf $(SONAME) $(DESTDIR)$(LIBDIR)/liblocksmith.so
	install -m 0644 include/locksmith.h $(DESTDIR)$(INCLUDEDIR)/locksmith.h
	install -m 0644 $(BUILD)/locksmith.pc $(DESTDIR)$(PKGCONFIGDIR)/locksmith.pc
	install -m 0755 $(addprefix $(BUILD)/bin/,$(PROGRAMS)) $(addprefix $(BUILD)/tools/,$(TOOLS)) $(DESTDIR)$(BINDIR)/
	install -d $(DESTDIR)$(MANDIR)/man1 $(DESTDIR)$(DATADIR)/bash-completion/completions \
	    $(DESTDIR)$(DATADIR)/zsh/vendor-completions $(DESTDIR)$(DATADIR)/fish/vendor_completions.d
	install -m 0644 $(BUILD)/share/locksmithctl.1 $(DESTDIR)$(MANDIR)/man1/locksmithctl.1
	install -m 0644 man/locksmith-run.1 $(DESTDIR)$(MANDIR)/man1/locksmith-run.1
	install -d $(DESTDIR)$(MANDIR)/man8
	install -m 0644 man/locksmithd.8 man/locksmith-fleetlockd.8 $(DESTDIR)$(MANDIR)/man8/
	install -m 0644 $(BUILD)/share/completions/locksmithctl.bash $(DESTDIR)$(DATADIR)/bash-completion/completions/locksmithctl
	install -m 0644 $(BUILD)/share/completions/_locksmithctl $(DESTDIR)$(DATADIR)/zsh/vendor-completions/_locksmithctl
	install -m 0644 $(BUILD)/share/completions/locksmithctl.fish $(DESTDIR)$(DATADIR)/fish/vendor_completions.d/locksmithctl.fish
	install -d $(DESTDIR)$(PAMDIR)
	install -m 0644 $(BUILD)/tools/pam_locksmith.so $(DESTDIR)$(PAMDIR)/pam_locksmith.so
	install -d $(DESTDIR)$(UNITDIR)
	install -m 0644 $(BUILD)/share/locksmithd.service $(DESTDIR)$(UNITDIR)/locksmithd.service
	install -m 0644 $(BUILD)/share/locksmith-fleetlockd.service $(DESTDIR)$(UNITDIR)/locksmith-fleetlockd.service
	@if [ -z "$(DESTDIR)" ] && [ "$$(id -u)" -eq 0 ] && [ "$(LIBDIR)" = "/usr/local/lib" -o "$(LIBDIR)" = "/usr/lib" ]; then ldconfig; fi

uninstall:
	rm -f $(DESTDIR)$(LIBDIR)/$(SONAME) $(DESTDIR)$(LIBDIR)/liblocksmith.so \
	      $(DESTDIR)$(INCLUDEDIR)/locksmith.h $(DESTDIR)$(PKGCONFIGDIR)/locksmith.pc \
	      $(addprefix $(DESTDIR)$(BINDIR)/,$(PROGRAMS) $(TOOLS)) $(DESTDIR)$(MANDIR)/man1/locksmithctl.1 \
	      $(DESTDIR)$(DATADIR)/bash-completion/completions/locksmithctl \
	      $(DESTDIR)$(DATADIR)/zsh/vendor-completions/_locksmithctl \
	      $(DESTDIR)$(DATADIR)/fish/vendor_completions.d/locksmithctl.fish \
	      $(DESTDIR)$(UNITDIR)/locksmithd.service $(DESTDIR)$(PAMDIR)/pam_locksmith.so \
	      $(DESTDIR)$(UNITDIR)/locksmith-fleetlockd.service $(DESTDIR)$(MANDIR)/man8/locksmith-fleetlockd.8 \
	      $(DESTDIR)$(MANDIR)/man8/locksmithd.8 $(DESTDIR)$(MANDIR)/man1/locksmith-run.1

# Every stage (Tests/harness/run-tests: sanitizers, fuzzing, faults, packages, machines too): CI's run.
test: deps
	@Tests/harness/run-tests

# The suites a person runs often: the build, the Swift tests, the library from outside (C API
# under valgrind) and the programs' suites (Tests/cli), in a few minutes.
check: deps
	@Tests/harness/run-tests build swift abi cli

# The Debian packages (debian/), built from a clean export of the committed tree into
# build/deb/: liblocksmith1, liblocksmith-dev, locksmith, locksmith-fleetlockd, libpam-locksmith,
# python3-locksmith. `swift` must be on PATH.
deb: deps
	rm -rf $(BUILD)/deb && mkdir -p $(BUILD)/deb/locksmith-swift
	git archive --format=tar HEAD | tar -xf - -C $(BUILD)/deb/locksmith-swift
	cd $(BUILD)/deb/locksmith-swift && dpkg-buildpackage -us -uc -b
	@ls $(BUILD)/deb/*.deb

# A rolling reboot of a simulated fleet of real daemons (tools/fleet-sim --help for options).
demo: deps
	@$(MAKE) --no-print-directory lib programs standins >/dev/null
	@tools/fleet-sim $(DEMO_ARGS)

# The packages under real systemd: minimal Debian machines booted with systemd-nspawn (root;
# the base root is made once with debootstrap and cached in /var/cache/locksmith-machines).
# MACHINES_ARGS: --release trixie, --machines N, --debs DIR (Tests/machines/test-machines --help).
test-machines: deps lib programs tools
	@Tests/machines/test-machines $(MACHINES_ARGS)

# Flatcar's system extension under real systemd: machines set up as Flatcar (the original
# locksmith, Flatcar's unit), the image merged and unmerged, a mixed fleet (Tests/machines/test-sysext).
test-sysext: deps lib programs tools standins
	@Tests/machines/test-sysext

# The same for a person to watch: the slot's holders as they change, and each step's times.
machines-demo: deps lib programs tools
	@Tests/machines/test-machines --watch $(or $(MACHINES_ARGS),--release bookworm --machines 5)

# Flatcar's system extension (README: Flatcar): a squashfs image whose /usr systemd-sysext lays over
# the host's, locksmith-swift at the original's paths. SYSEXT_ID=_any: an image any host accepts
# (tests), instead of ID=flatcar with Flatcar's SYSEXT_LEVEL. Needs squashfs-tools.
SYSEXT_ID ?= flatcar
sysext: deps lib programs tools
	@tools/build/sysext --id $(SYSEXT_ID) --out $(BUILD)/sysext $(VERSION)

test-swift:
	TZ=America/Los_Angeles $(SWIFT) test

test-abi: lib
	@Tests/harness/test-abi

test-python: lib
	LOCKSMITH_LIBRARY=$(CURDIR)/build/lib/liblocksmith.so.1 /usr/bin/python3 -m pytest -q bindings/python/tests

# Coverage-guided fuzzing (libFuzzer + ASan) of every parser, FUZZ_SECONDS per harness; new
# inputs stay in build/fuzz/corpus (Tests/harness/fuzz merge adds them to Tests/fuzz/corpus).
FUZZ_SECONDS ?= 300
fuzz:
	@Tests/harness/fuzz -j 2 run $(FUZZ_SECONDS)

# The library under ASan+UBSan (leaks on) and TSan; builds in .build-asan, .build-tsan, build/sanitizers.
test-sanitizers:
	@Tests/harness/test-sanitizers

# 50 clients and 10 daemons against a 3-member etcd with faults (--soak: Tests/harness/test-faults --soak MINUTES).
test-faults: lib programs tools standins
	@Tests/harness/test-faults

soak: lib programs standins
	@Tests/harness/test-faults --soak $(or $(MINUTES),30)

# Records the library's exports and ABI in tools/build/abi/ (after a deliberate change; see tools/build/abi-guard).
abi-baseline: lib
	@tools/build/abi-guard update

clean:
	rm -rf $(BUILD) $(LIB_SCRATCH) $(BIN_SCRATCH) .build-asan .build-tsan .build-fuzz
