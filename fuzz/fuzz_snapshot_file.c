/* A snapshot file from disk is as hostile as an image: the header, the
 * state checksum, the config section and the device sections must be
 * refused cleanly whatever they hold.
 *
 * Input: byte 0 picks the mode. Mode 0 writes the rest as the whole file
 * and opens it, which reaches the header checks. Mode 1 wraps the rest as
 * the state of a file with a valid header and checksum, so that the state
 * parsing (config, sections, platform devices, chips) sees every input
 * instead of stopping at a checksum. The VM is a stand-in without KVM: its
 * vm_fd and its one vCPU's fd are -1, so chip and CPU sections are parsed
 * up to their first ioctl and fail there; it has no PCI bus, so a PCI
 * section is refused. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "hw/platform.h"
#include "snapshot/format.h"
#include "snapshot/snapshot_int.h"
#include "vcpu.h"
#include "vm.h"

#ifdef FUZZ_RENAME
#define LLVMFuzzerTestOneInput fuzz_snapshot_file_one
#endif
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct vm vm;
static struct vcpu cpu0;
static bool have_platform;

static void setup_vm(void)
{
    static bool done;
    if (done)
        return;
    done = true;
    memset(&vm, 0, sizeof(vm));
    vm.kvm_fd = vm.vm_fd = -1;
    cpu0.vm = &vm;
    cpu0.fd = -1;
    vm.vcpus[0] = &cpu0;
    vm.ncpus = 1;
    struct err e = { 0 };
    have_platform = platform_create_all(&vm, &e) == 0;
    if (!have_platform)
        fprintf(stderr, "fuzz_snapshot_file: no platform devices (%s)\n", e.msg);
}

/* Without platform devices a PLATFORM section would reach a NULL device;
 * the real VM always has them, so such inputs are skipped. */
static bool loadable(const struct snapbuf *state)
{
    struct snapbuf it, body;
    uint32_t tag, inst;
    snapbuf_view(&it, state->data, state->len);
    while (snapbuf_section_next(&it, &tag, &inst, &body) == 1)
        if (tag == SNAP_SEC_PLATFORM && !have_platform)
            return false;
    return true;
}

static void check_file(int fd)
{
    char path[64];
    snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
    struct snap_file f;
    struct err e = { 0 };
    if (snap_file_open(&f, path, &e) < 0) {
        if (!e.msg[0])
            abort();            /* every refusal says why */
        return;
    }
    if (f.h.state_len != f.state.len || f.h.mem_off < f.h.state_off + f.h.state_len)
        abort();
    int argc;
    char **argv;
    if (snap_state_config(&f.state, &argc, &argv, &e) == 0) {
        for (int i = 0; i < argc; i++) {
            if (!argv[i])
                abort();
            free(argv[i]);
        }
        if (argv[argc])
            abort();
        free(argv);
    }
    if (loadable(&f.state))
        snap_state_load(&f.state, &vm, &e);
    snap_file_close(&f);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1 || size > SNAP_MAX_STATE)
        return 0;
    setup_vm();
    int fd = memfd_create("snap", MFD_CLOEXEC);
    if (fd < 0)
        abort();
    const uint8_t *body = data + 1;
    size_t len = size - 1;
    if (data[0] & 1) {
        uint8_t hdr[SNAP_HEADER_SIZE];
        uint64_t mem_off = (SNAP_HEADER_SIZE + len + SNAP_FILE_PAGE - 1) & ~(uint64_t)(SNAP_FILE_PAGE - 1);
        struct snap_header h = {
            .version = SNAP_FILE_VERSION, .state_off = SNAP_HEADER_SIZE, .state_len = len,
            .state_crc = snap_crc32c(0, body, len), .mem_off = mem_off, .mem_len = 0,
        };
        snap_header_encode(&h, hdr);
        if (pwrite(fd, hdr, sizeof hdr, 0) != (ssize_t)sizeof hdr ||
            pwrite(fd, body, len, SNAP_HEADER_SIZE) != (ssize_t)len ||
            ftruncate(fd, (off_t)mem_off) < 0)
            abort();
    } else if (len && write(fd, body, len) != (ssize_t)len) {
        abort();
    }
    check_file(fd);
    close(fd);
    return 0;
}
