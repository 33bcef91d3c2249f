# The two README commands (`make run`, `make check`) and the rest.
# meson + ninja do the building; this file only strings the steps together.
BUILD ?= build
ASAN_BUILD ?= build-asan
CACHE ?= $(HOME)/.cache/cvirt
MEMORY ?= 256M
CPUS ?= 2
ABS_BUILD := $(abspath $(BUILD))

.PHONY: all deps build kit guest run check check-asan bench fuzz clean

all: build

deps:
	@scripts/deps.sh

$(BUILD)/build.ninja: | deps
	@meson setup $(BUILD) >/dev/null

build: deps $(BUILD)/build.ninja
	@ninja -C $(BUILD) | grep -v '^ninja: no work to do' || true
	@test -x $(BUILD)/src/vmm/cvirt-vmm
	@$(MAKE) --no-print-directory -s kit

kit:
	@$(MAKE) --no-print-directory -s -C tests/guest/kit OUT=$(ABS_BUILD)/kit
	@$(MAKE) --no-print-directory -s -C bench/tiny OUT=$(ABS_BUILD)/tiny

# The real Linux guest: kernel and initramfs built once into $(CACHE).
guest: deps
	@tests/guest/linux/prepare.sh > $(BUILD)/guest.env
	@cat $(BUILD)/guest.env

# Boots the Linux guest to a shell on this terminal (Ctrl-A x quits).
# STOCK=1 boots Debian's stock kernel instead (hosts with VMX or SVM only),
# with its modules in the initramfs; ROOT=debian adds a fresh copy of the
# Debian 12 root (mk-debian-root.sh, built once as root) as the virtio disk
# and boots it with systemd, root logged in on the console.
run: build guest
ifeq ($(STOCK),1)
	@k=$$(tests/guest/linux/stock-kernel.sh | tail -n 1) && \
	  i=$$(tests/guest/linux/mk-stock-initramfs.sh "$$k" | tail -n 1) && \
	  if [ "$(ROOT)" = debian ]; then \
	    img=$$(tests/guest/linux/mk-debian-root.sh | tail -n 1) && \
	    cp --sparse=always "$$img" $(BUILD)/debian-root.img && \
	    set -- --disk $(BUILD)/debian-root.img --rng --append "console=ttyS0 panic=-1 quiet"; \
	  else \
	    set -- --append "console=ttyS0 panic=-1 quiet cvirt.shell"; \
	  fi && \
	  $(BUILD)/src/vmm/cvirt-vmm --kernel "$$k" --initrd "$$i" "$$@" \
	    --memory $(MEMORY) --cpus $(CPUS)
else
	@. $(ABS_BUILD)/guest.env && \
	  $(BUILD)/src/vmm/cvirt-vmm --kernel "$$KERNEL" --initrd "$$INITRD" \
	    --append "$$(cat $$CMDLINE_FILE) cvirt.shell" --memory $(MEMORY) --cpus $(CPUS)
endif

check: build guest
	@tests/run-tests

# The same tests on a build with AddressSanitizer and UBSan.
check-asan: deps guest
	@test -f $(ASAN_BUILD)/build.ninja || \
	  meson setup $(ASAN_BUILD) -Db_sanitize=address,undefined -Db_lundef=false >/dev/null
	@ninja -C $(ASAN_BUILD) >/dev/null
	@$(MAKE) --no-print-directory -s -C tests/guest/kit OUT=$(abspath $(ASAN_BUILD))/kit
	@$(MAKE) --no-print-directory -s -C bench/tiny OUT=$(abspath $(ASAN_BUILD))/tiny
	@cp $(BUILD)/guest.env $(ASAN_BUILD)/guest.env 2>/dev/null || true
	@UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 BUILD=$(ASAN_BUILD) tests/run-tests

bench: build guest
	@bench/run

fuzz: deps
	@test -f build-fuzz/build.ninja || \
	  CC=clang meson setup build-fuzz -Dfuzz=true -Dtests=false \
	    -Db_sanitize=address,undefined -Db_lundef=false \
	    -Dc_args=-fsanitize=fuzzer-no-link >/dev/null
	@ninja -C build-fuzz

clean:
	rm -rf $(BUILD) $(ASAN_BUILD) build-fuzz
