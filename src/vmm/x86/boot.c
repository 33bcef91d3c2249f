#include "util/le.h"
#include "x86/boot.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "util/log.h"
#include "vm.h"
#include "x86/acpi.h"
#include "x86/layout.h"
#include "x86/mptable.h"

#define BOOT_FILE_MAX (1ULL << 32)   /* no kernel or initrd is 4 GiB */
#define PAGE_SIZE_4K  0x1000ULL
#define XLF_KERNEL_64 (1u << 0)
#define LOADED_HIGH   (1u << 0)
#define CAN_USE_HEAP  (1u << 7)

static void put8(uint8_t *p, uint8_t v) { p[0] = v; }

unsigned boot_e820(uint64_t mem_size, struct e820_entry *out, unsigned max)
{
    unsigned n = 0;
    uint64_t low = mem_size < LAYOUT_MMIO_HOLE_START ? mem_size : LAYOUT_MMIO_HOLE_START;
#define ADD(a, s, t) do { if (n < max) out[n++] = (struct e820_entry){ (a), (s), (t) }; } while (0)
    ADD(0, LAYOUT_EBDA_START, E820_RAM);
    ADD(LAYOUT_EBDA_START, LAYOUT_EBDA_END - LAYOUT_EBDA_START, E820_RESERVED);
    /* The ACPI tables live in the old BIOS area, which stays reserved. */
    ADD(LAYOUT_ACPI_START, LAYOUT_ACPI_END - LAYOUT_ACPI_START, E820_RESERVED);
    if (low > LAYOUT_HIMEM_START)
        ADD(LAYOUT_HIMEM_START, low - LAYOUT_HIMEM_START, E820_RAM);
    /* Linux only trusts an MCFG region the e820 map or ACPI reserve. */
    ADD(LAYOUT_PCIE_ECAM_START, LAYOUT_PCIE_ECAM_SIZE, E820_RESERVED);
    if (mem_size > low)
        ADD(LAYOUT_4G, mem_size - low, E820_RAM);
#undef ADD
    return n;
}

/* ---- probing ---------------------------------------------------------- */

static int probe_bzimage(const uint8_t *buf, size_t len, struct boot_image *img, struct err *e)
{
    if (len < BP_INIT_SIZE + 4)
        return err_set(e, ENOEXEC, "kernel file too short for a bzImage header");
    uint16_t proto = le16_get(buf + BP_VERSION);
    if (proto < 0x020c)
        return err_set(e, ENOEXEC,
                       "bzImage boot protocol %u.%02u is too old: 2.12 (Linux 3.8) or later is needed",
                       proto >> 8, proto & 0xff);
    if (!(le16_get(buf + BP_XLOADFLAGS) & XLF_KERNEL_64))
        return err_set(e, ENOEXEC, "bzImage has no 64-bit entry point (not an x86_64 kernel)");
    unsigned sects = buf[BP_SETUP_SECTS] ? buf[BP_SETUP_SECTS] : 4;
    size_t setup = (size_t)(sects + 1) * 512;
    if (setup >= len)
        return err_set(e, ENOEXEC, "bzImage setup (%zu bytes) is beyond the end of the file", setup);
    img->kind = BOOT_BZIMAGE;
    img->protocol = proto;
    img->setup_size = setup;
    img->init_size = le32_get(buf + BP_INIT_SIZE);
    img->initrd_addr_max = le32_get(buf + BP_INITRD_ADDR_MAX);
    img->cmdline_size = le32_get(buf + BP_CMDLINE_SIZE);
    if (img->init_size < len - setup)
        img->init_size = (uint32_t)(len - setup);
    return 0;
}

/* Walks the notes in [p, p+n) looking for Xen's PHYS32_ENTRY. */
static int find_pvh_note(const uint8_t *p, size_t n, uint64_t *entry)
{
    size_t off = 0;
    while (n - off >= 12) {
        uint32_t namesz = le32_get(p + off), descsz = le32_get(p + off + 4), type = le32_get(p + off + 8);
        size_t name_pad = ((size_t)namesz + 3) & ~(size_t)3;
        size_t desc_pad = ((size_t)descsz + 3) & ~(size_t)3;
        off += 12;
        if (name_pad > n - off || desc_pad > n - off - name_pad)
            return -1;
        const uint8_t *name = p + off, *desc = p + off + name_pad;
        if (type == XEN_ELFNOTE_PHYS32_ENTRY && namesz == 4 && !memcmp(name, "Xen", 4)) {
            if (descsz == 4)
                *entry = le32_get(desc);
            else if (descsz == 8)
                *entry = le64_get(desc);
            else
                return -1;
            return 1;
        }
        off += name_pad + desc_pad;
    }
    return 0;
}

struct elf_phdr {
    uint32_t type;
    uint64_t offset, paddr, filesz, memsz;
};

static int elf_phdr_at(const uint8_t *buf, size_t len, bool is64, size_t at, struct elf_phdr *ph)
{
    size_t need = is64 ? 56 : 32;
    if (at > len || need > len - at)
        return -1;
    const uint8_t *p = buf + at;
    ph->type = le32_get(p);
    if (is64) {
        ph->offset = le64_get(p + 8);
        ph->paddr = le64_get(p + 24);
        ph->filesz = le64_get(p + 32);
        ph->memsz = le64_get(p + 40);
    } else {
        ph->offset = le32_get(p + 4);
        ph->paddr = le32_get(p + 12);
        ph->filesz = le32_get(p + 16);
        ph->memsz = le32_get(p + 20);
    }
    return 0;
}

#define PT_LOAD 1
#define PT_NOTE 4

static int elf_header(const uint8_t *buf, size_t len, bool *is64, uint64_t *phoff,
                      unsigned *phnum, unsigned *phentsize, struct err *e)
{
    if (len < 52)
        return err_set(e, ENOEXEC, "ELF header truncated");
    if (buf[4] != 1 && buf[4] != 2)
        return err_set(e, ENOEXEC, "ELF class %u is neither 32- nor 64-bit", buf[4]);
    if (buf[5] != 1)
        return err_set(e, ENOEXEC, "ELF file is not little-endian");
    *is64 = buf[4] == 2;
    size_t ehsize = *is64 ? 64 : 52;
    if (len < ehsize)
        return err_set(e, ENOEXEC, "ELF header truncated");
    uint16_t machine = le16_get(buf + 18);
    if (machine != 62 /* x86-64 */ && machine != 3 /* i386 */)
        return err_set(e, ENOEXEC, "ELF machine %u is not x86", machine);
    *phoff = *is64 ? le64_get(buf + 32) : le32_get(buf + 28);
    *phentsize = le16_get(buf + (*is64 ? 54 : 42));
    *phnum = le16_get(buf + (*is64 ? 56 : 44));
    if (*phentsize < (*is64 ? 56u : 32u))
        return err_set(e, ENOEXEC, "ELF program header size %u is too small", *phentsize);
    if (*phnum == 0 || *phoff > len || (uint64_t)*phnum * *phentsize > len - *phoff)
        return err_set(e, ENOEXEC, "ELF program headers lie outside the file");
    return 0;
}

static int probe_pvh_elf(const uint8_t *buf, size_t len, struct boot_image *img, struct err *e)
{
    bool is64 = false;
    uint64_t phoff = 0;
    unsigned phnum = 0, phentsize = 0;
    int r = elf_header(buf, len, &is64, &phoff, &phnum, &phentsize, e);
    if (r < 0)
        return r;
    bool found = false;
    uint64_t lo = UINT64_MAX, hi = 0;
    for (unsigned i = 0; i < phnum; i++) {
        struct elf_phdr ph;
        elf_phdr_at(buf, len, is64, phoff + (size_t)i * phentsize, &ph);
        if (ph.type != PT_LOAD && ph.type != PT_NOTE)
            continue;
        if (ph.offset > len || ph.filesz > len - ph.offset)
            return err_set(e, ENOEXEC, "ELF segment %u lies outside the file", i);
        if (ph.type == PT_NOTE) {
            int f = find_pvh_note(buf + ph.offset, ph.filesz, &img->pvh_entry);
            if (f < 0)
                return err_set(e, ENOEXEC, "ELF note segment %u is malformed", i);
            found |= f > 0;
            continue;
        }
        if (ph.filesz > ph.memsz || ph.paddr + ph.memsz < ph.paddr)
            return err_set(e, ENOEXEC, "ELF segment %u has inconsistent sizes", i);
        if (ph.memsz == 0)
            continue;
        if (ph.paddr < lo)
            lo = ph.paddr;
        if (ph.paddr + ph.memsz > hi)
            hi = ph.paddr + ph.memsz;
    }
    if (!found)
        return err_set(e, ENOEXEC,
                       "ELF kernel has no PVH entry point (XEN_ELFNOTE_PHYS32_ENTRY note): "
                       "build it with CONFIG_PVH=y or boot its bzImage");
    if (hi == 0)
        return err_set(e, ENOEXEC, "ELF kernel has no loadable segment");
    if (img->pvh_entry >= (1ULL << 32))
        return err_set(e, ENOEXEC, "PVH entry point %#llx is above 4 GiB",
                       (unsigned long long)img->pvh_entry);
    img->kind = BOOT_PVH_ELF;
    img->load_lo = lo;
    img->load_hi = hi;
    return 0;
}

int boot_probe(const uint8_t *buf, size_t len, struct boot_image *img, struct err *e)
{
    memset(img, 0, sizeof(*img));
    if (len >= 4 && !memcmp(buf, "\x7f" "ELF", 4))
        return probe_pvh_elf(buf, len, img, e);
    if (len >= BP_HEADER + 4 && !memcmp(buf + BP_HEADER, "HdrS", 4) &&
        le16_get(buf + BP_BOOT_FLAG) == 0xaa55)
        return probe_bzimage(buf, len, img, e);
    return err_set(e, ENOEXEC, "not a Linux bzImage nor an ELF kernel with a PVH entry point");
}

/* ---- loading ---------------------------------------------------------- */

static int read_file(const char *what, const char *path, uint8_t **out, size_t *len, struct err *e)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return err_set_errno(e, errno, "cannot open %s '%s'", what, path);
    struct stat st;
    int r = 0;
    if (fstat(fd, &st) < 0) {
        r = err_set_errno(e, errno, "cannot stat %s '%s'", what, path);
        goto out;
    }
    if (!S_ISREG(st.st_mode)) {
        r = err_set(e, EINVAL, "%s '%s' is not a regular file", what, path);
        goto out;
    }
    if ((uint64_t)st.st_size > BOOT_FILE_MAX) {
        r = err_set(e, EFBIG, "%s '%s' is too large", what, path);
        goto out;
    }
    *len = (size_t)st.st_size;
    *out = malloc(*len ? *len : 1);
    if (!*out) {
        r = err_set(e, ENOMEM, "out of memory reading %s '%s'", what, path);
        goto out;
    }
    size_t done = 0;
    while (done < *len) {
        ssize_t n = read(fd, *out + done, *len - done);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            r = n < 0 ? err_set_errno(e, errno, "cannot read %s '%s'", what, path)
                      : err_set(e, EIO, "%s '%s' shrank while being read", what, path);
            free(*out);
            *out = NULL;
            goto out;
        }
        done += (size_t)n;
    }
out:
    close(fd);
    return r;
}

static uint64_t low_ram_end(const struct vm *vm)
{
    return vm->slots[0].size;
}

/* Copies len bytes to guest address gpa, checking it is all RAM. */
static int copy_to_guest(struct vm *vm, uint64_t gpa, const void *src, size_t len,
                         const char *what, struct err *e)
{
    void *dst = vm_gpa(vm, gpa, len);
    if (!dst)
        return err_set(e, ENOSPC, "%s (%zu bytes at %#llx) does not fit in guest memory (%llu MiB)",
                       what, len, (unsigned long long)gpa,
                       (unsigned long long)(vm->ram_size >> 20));
    memcpy(dst, src, len);
    return 0;
}

/* Puts the initrd as high as allowed below max_end, above floor. */
static int load_initrd(struct vm *vm, uint64_t floor, uint64_t max_end, uint64_t *addr,
                       uint64_t *size, struct err *e)
{
    *addr = *size = 0;
    if (!vm->cfg.initrd)
        return 0;
    uint8_t *buf;
    size_t len;
    int r = read_file("initrd", vm->cfg.initrd, &buf, &len, e);
    if (r < 0)
        return r;
    uint64_t end = low_ram_end(vm);
    if (max_end && max_end < end)
        end = max_end;
    uint64_t start = len > end ? 0 : (end - len) & ~(PAGE_SIZE_4K - 1);
    if (len > end || start < floor) {
        err_set(e, ENOSPC,
                "initrd '%s' (%zu KiB) does not fit in guest memory above the kernel: "
                "give the VM more memory (now %llu MiB)",
                vm->cfg.initrd, len >> 10, (unsigned long long)(vm->ram_size >> 20));
        free(buf);
        return -ENOSPC;
    }
    r = copy_to_guest(vm, start, buf, len, "initrd", e);
    free(buf);
    *addr = start;
    *size = len;
    return r;
}

static int load_cmdline(struct vm *vm, size_t max, struct err *e)
{
    const char *cmd = vm->cfg.cmdline ? vm->cfg.cmdline : "";
    size_t len = strlen(cmd);
    if (max > LAYOUT_CMDLINE_MAX)
        max = LAYOUT_CMDLINE_MAX;
    if (len + 1 > max)
        return err_set(e, E2BIG, "kernel command line is %zu bytes; this kernel takes at most %zu",
                       len, max - 1);
    return copy_to_guest(vm, LAYOUT_CMDLINE_ADDR, cmd, len + 1, "command line", e);
}

static int load_acpi(struct vm *vm, struct err *e)
{
    uint8_t *mp = vm_gpa(vm, LAYOUT_MPTABLE_ADDR, LAYOUT_EBDA_END - LAYOUT_MPTABLE_ADDR);
    int rm = mp ? mptable_build(vm->cfg.ncpus, mp, LAYOUT_EBDA_END - LAYOUT_MPTABLE_ADDR,
                                LAYOUT_MPTABLE_ADDR,
                                LAYOUT_MPTABLE_FP_ADDR - LAYOUT_MPTABLE_ADDR, e)
                : err_set(e, ENOSPC, "no guest memory for the MP tables");
    if (rm < 0)
        return rm;
    size_t len = LAYOUT_ACPI_END - LAYOUT_ACPI_START;
    uint8_t *buf = vm_gpa(vm, LAYOUT_ACPI_START, len);
    if (!buf)
        return err_set(e, ENOSPC, "no guest memory for the ACPI tables");
    struct acpi_config cfg = {
        .ncpus = vm->cfg.ncpus,
        .pci = vm->pci != NULL,
        .ecam_base = LAYOUT_PCIE_ECAM_START,
        .ecam_end_bus = (unsigned)(LAYOUT_PCIE_ECAM_SIZE >> 20) - 1,
    };
    return acpi_build(&cfg, buf, len, LAYOUT_ACPI_START, &vm->rsdp_gpa, e);
}

static int load_bzimage(struct vm *vm, const uint8_t *k, size_t klen, const struct boot_image *img,
                        struct err *e)
{
    uint8_t *bp = vm_gpa(vm, LAYOUT_BOOT_PARAMS_ADDR, BP_SIZE);
    if (!bp)
        return err_set(e, ENOSPC, "no guest memory for boot_params");
    memset(bp, 0, BP_SIZE);
    /* The setup header runs from 0x1f1 to 0x202 + the jump's byte. */
    size_t hdr_end = 0x202 + k[0x201];
    if (hdr_end > klen)
        hdr_end = klen;
    if (hdr_end > BP_E820_TABLE)
        hdr_end = BP_E820_TABLE;
    memcpy(bp + BP_SETUP_SECTS, k + BP_SETUP_SECTS, hdr_end - BP_SETUP_SECTS);

    uint64_t kaddr = LAYOUT_HIMEM_START;
    uint64_t kend = kaddr + img->init_size;
    if (kend > low_ram_end(vm))
        return err_set(e, ENOSPC, "kernel needs %u KiB from 1 MiB but the VM has only %llu MiB",
                       img->init_size >> 10, (unsigned long long)(vm->ram_size >> 20));
    int r = copy_to_guest(vm, kaddr, k + img->setup_size, klen - img->setup_size, "kernel", e);
    if (r < 0)
        return r;

    size_t cmd_max = img->protocol >= 0x0206 ? (size_t)img->cmdline_size + 1 : 256;
    if ((r = load_cmdline(vm, cmd_max, e)) < 0)
        return r;
    uint64_t iaddr, isize;
    uint64_t imax = img->initrd_addr_max ? (uint64_t)img->initrd_addr_max + 1 : 0x38000000;
    if ((r = load_initrd(vm, kend, imax, &iaddr, &isize, e)) < 0)
        return r;
    if ((r = load_acpi(vm, e)) < 0)
        return r;

    put8(bp + BP_TYPE_OF_LOADER, 0xff);
    put8(bp + BP_LOADFLAGS, (uint8_t)(bp[BP_LOADFLAGS] | LOADED_HIGH | CAN_USE_HEAP));
    le16_put(bp + BP_HEAP_END_PTR, 0xfe00);
    le32_put(bp + BP_CODE32_START, (uint32_t)kaddr);
    le32_put(bp + BP_CMD_LINE_PTR, (uint32_t)LAYOUT_CMDLINE_ADDR);
    le32_put(bp + BP_RAMDISK_IMAGE, (uint32_t)iaddr);
    le32_put(bp + BP_RAMDISK_SIZE, (uint32_t)isize);
    le32_put(bp + BP_EXT_RAMDISK_IMG, (uint32_t)(iaddr >> 32));
    le32_put(bp + BP_EXT_RAMDISK_SIZE, (uint32_t)(isize >> 32));
    le64_put(bp + BP_ACPI_RSDP_ADDR, vm->rsdp_gpa);
    struct e820_entry map[BOOT_E820_MAX];
    unsigned n = boot_e820(vm->ram_size, map, BOOT_E820_MAX);
    put8(bp + BP_E820_ENTRIES, (uint8_t)n);
    memcpy(bp + BP_E820_TABLE, map, n * sizeof(map[0]));

    vm->entry = kaddr + 0x200; /* the 64-bit entry, startup_64 */
    vm->entry_pvh = false;
    return 0;
}

static int load_elf_segments(struct vm *vm, const uint8_t *k, size_t klen, struct err *e)
{
    bool is64 = k[4] == 2;
    uint64_t phoff = is64 ? le64_get(k + 32) : le32_get(k + 28);
    unsigned phentsize = le16_get(k + (is64 ? 54 : 42)), phnum = le16_get(k + (is64 ? 56 : 44));
    for (unsigned i = 0; i < phnum; i++) {
        struct elf_phdr ph;
        if (elf_phdr_at(k, klen, is64, phoff + (size_t)i * phentsize, &ph) < 0)
            return err_set(e, ENOEXEC, "ELF program header %u truncated", i);
        if (ph.type != PT_LOAD || ph.memsz == 0)
            continue;
        if (ph.paddr < LAYOUT_HIMEM_START)
            return err_set(e, ENOEXEC, "ELF segment %u loads at %#llx, below 1 MiB", i,
                           (unsigned long long)ph.paddr);
        uint8_t *dst = vm_gpa(vm, ph.paddr, ph.memsz);
        if (!dst)
            return err_set(e, ENOSPC,
                           "ELF segment %u (%llu KiB at %#llx) does not fit in guest memory (%llu MiB)",
                           i, (unsigned long long)(ph.memsz >> 10), (unsigned long long)ph.paddr,
                           (unsigned long long)(vm->ram_size >> 20));
        memcpy(dst, k + ph.offset, ph.filesz);
        memset(dst + ph.filesz, 0, ph.memsz - ph.filesz);
    }
    return 0;
}

/* hvm_start_info and what it points to, all in one page. */
#define SI_MODLIST (LAYOUT_START_INFO_ADDR + 0x40)
#define SI_MEMMAP  (LAYOUT_START_INFO_ADDR + 0x80)

static int load_pvh(struct vm *vm, const uint8_t *k, size_t klen, const struct boot_image *img,
                    struct err *e)
{
    int r = load_elf_segments(vm, k, klen, e);
    if (r < 0)
        return r;
    if ((r = load_cmdline(vm, LAYOUT_CMDLINE_MAX, e)) < 0)
        return r;
    uint64_t iaddr, isize;
    uint64_t floor = (img->load_hi + PAGE_SIZE_4K - 1) & ~(PAGE_SIZE_4K - 1);
    if ((r = load_initrd(vm, floor, 0, &iaddr, &isize, e)) < 0)
        return r;
    if ((r = load_acpi(vm, e)) < 0)
        return r;

    uint8_t *si = vm_gpa(vm, LAYOUT_START_INFO_ADDR, PAGE_SIZE_4K);
    if (!si)
        return err_set(e, ENOSPC, "no guest memory for the PVH start info");
    memset(si, 0, PAGE_SIZE_4K);
    struct e820_entry map[BOOT_E820_MAX];
    unsigned n = boot_e820(vm->ram_size, map, BOOT_E820_MAX);
    le32_put(si + 0, PVH_START_MAGIC);
    le32_put(si + 4, 1);                       /* version: has the memory map */
    le32_put(si + 8, 0);                       /* flags */
    le32_put(si + 12, isize ? 1 : 0);          /* nr_modules */
    le64_put(si + 16, isize ? SI_MODLIST : 0);
    le64_put(si + 24, LAYOUT_CMDLINE_ADDR);
    le64_put(si + 32, vm->rsdp_gpa);
    le64_put(si + 40, SI_MEMMAP);
    le32_put(si + 48, n);
    uint8_t *mod = si + (SI_MODLIST - LAYOUT_START_INFO_ADDR);
    le64_put(mod + 0, iaddr);
    le64_put(mod + 8, isize);
    uint8_t *mm = si + (SI_MEMMAP - LAYOUT_START_INFO_ADDR);
    for (unsigned i = 0; i < n; i++) {
        le64_put(mm + 24 * i, map[i].addr);
        le64_put(mm + 24 * i + 8, map[i].size);
        le32_put(mm + 24 * i + 16, map[i].type);
    }
    vm->entry = img->pvh_entry;
    vm->entry_pvh = true;
    return 0;
}

int boot_load(struct vm *vm, struct err *e)
{
    uint8_t *k;
    size_t klen;
    int r = read_file("kernel", vm->cfg.kernel, &k, &klen, e);
    if (r < 0)
        return r;
    struct boot_image img;
    r = boot_probe(k, klen, &img, e);
    if (r < 0)
        err_prefix(e, "kernel '%s': ", vm->cfg.kernel);
    else
        r = img.kind == BOOT_BZIMAGE ? load_bzimage(vm, k, klen, &img, e)
                                     : load_pvh(vm, k, klen, &img, e);
    free(k);
    return r;
}

/* ---- the boot vCPU ---------------------------------------------------- */

#include <linux/kvm.h>
#include <sys/ioctl.h>

#include "vcpu.h"

#define SEL_CODE 0x10 /* __BOOT_CS */
#define SEL_DATA 0x18 /* __BOOT_DS */
#define SEL_TSS  0x20

#define X86_CR0_PE  (1u << 0)
#define X86_CR0_ET  (1u << 4)
#define X86_CR0_PG  (1u << 31)
#define X86_CR4_PAE (1u << 5)
#define EFER_LME    (1u << 8)
#define EFER_LMA    (1u << 10)

static struct kvm_segment seg_code(bool long_mode)
{
    return (struct kvm_segment){ .base = 0, .limit = 0xffffffff, .selector = SEL_CODE,
                                 .type = 0xb, .present = 1, .s = 1, .g = 1,
                                 .l = long_mode, .db = !long_mode };
}

static struct kvm_segment seg_data(void)
{
    return (struct kvm_segment){ .base = 0, .limit = 0xffffffff, .selector = SEL_DATA,
                                 .type = 0x3, .present = 1, .s = 1, .g = 1, .db = 1 };
}

/* Encodes a GDT descriptor from the same fields KVM uses. */
static uint64_t gdt_entry(const struct kvm_segment *s)
{
    uint32_t lim = s->g ? s->limit >> 12 : s->limit;
    uint64_t d = (lim & 0xffffULL) | ((uint64_t)(s->base & 0xffffff) << 16);
    d |= (uint64_t)(s->type & 0xf) << 40 | (uint64_t)s->s << 44 | (uint64_t)s->dpl << 45;
    d |= (uint64_t)s->present << 47 | (uint64_t)((lim >> 16) & 0xf) << 48;
    d |= (uint64_t)s->avl << 52 | (uint64_t)s->l << 53 | (uint64_t)s->db << 54;
    d |= (uint64_t)s->g << 55 | (uint64_t)((s->base >> 24) & 0xff) << 56;
    return d;
}

static int write_gdt(struct vm *vm, const struct kvm_segment *code, const struct kvm_segment *data,
                     const struct kvm_segment *tss, struct err *e)
{
    uint8_t *gdt = vm_gpa(vm, LAYOUT_GDT_ADDR, 6 * 8);
    if (!gdt)
        return err_set(e, ENOSPC, "no guest memory for the boot GDT");
    memset(gdt, 0, 6 * 8);
    le64_put(gdt + SEL_CODE, gdt_entry(code));
    le64_put(gdt + SEL_DATA, gdt_entry(data));
    le64_put(gdt + SEL_TSS, gdt_entry(tss));
    return 0;
}

/* Identity map of the first 4 GiB with 2 MiB pages for the 64-bit entry. */
static int write_page_tables(struct vm *vm, struct err *e)
{
    uint8_t *pml4 = vm_gpa(vm, LAYOUT_PML4_ADDR, PAGE_SIZE_4K);
    uint8_t *pdpt = vm_gpa(vm, LAYOUT_PDPT_ADDR, PAGE_SIZE_4K);
    uint8_t *pd = vm_gpa(vm, LAYOUT_PD_ADDR, 4 * PAGE_SIZE_4K);
    if (!pml4 || !pdpt || !pd)
        return err_set(e, ENOSPC, "no guest memory for the boot page tables");
    memset(pml4, 0, PAGE_SIZE_4K);
    memset(pdpt, 0, PAGE_SIZE_4K);
    le64_put(pml4, LAYOUT_PDPT_ADDR | 0x3);
    for (uint64_t i = 0; i < 4; i++)
        le64_put(pdpt + 8 * i, (LAYOUT_PD_ADDR + i * PAGE_SIZE_4K) | 0x3);
    for (uint64_t i = 0; i < 4 * 512; i++)
        le64_put(pd + 8 * i, (i << 21) | 0x83); /* present, writable, 2 MiB */
    return 0;
}

int boot_setup_bsp(struct vm *vm, struct vcpu *bsp, struct err *e)
{
    struct kvm_sregs sregs;
    if (ioctl(bsp->fd, KVM_GET_SREGS, &sregs) < 0)
        return err_set_errno(e, errno, "KVM_GET_SREGS");
    bool lm = !vm->entry_pvh;
    struct kvm_segment code = seg_code(lm), data = seg_data();
    struct kvm_segment tss = { .base = 0, .limit = 0x67, .selector = SEL_TSS, .type = 0xb,
                               .present = 1 };
    int r = write_gdt(vm, &code, &data, &tss, e);
    if (r < 0)
        return r;
    sregs.gdt.base = LAYOUT_GDT_ADDR;
    sregs.gdt.limit = 6 * 8 - 1;
    sregs.idt.base = 0;
    sregs.idt.limit = 0;
    sregs.cs = code;
    sregs.ds = sregs.es = sregs.fs = sregs.gs = sregs.ss = data;
    sregs.tr = tss;
    sregs.cr0 = X86_CR0_PE | X86_CR0_ET;
    sregs.cr4 = 0;
    sregs.efer = 0;
    if (lm) {
        if ((r = write_page_tables(vm, e)) < 0)
            return r;
        sregs.cr3 = LAYOUT_PML4_ADDR;
        sregs.cr4 |= X86_CR4_PAE;
        sregs.cr0 |= X86_CR0_PG;
        sregs.efer |= EFER_LME | EFER_LMA;
    }
    if (ioctl(bsp->fd, KVM_SET_SREGS, &sregs) < 0)
        return err_set_errno(e, errno, "KVM_SET_SREGS");

    struct kvm_regs regs = { .rflags = 0x2, .rip = vm->entry, .rsp = LAYOUT_BOOT_STACK };
    if (lm)
        regs.rsi = LAYOUT_BOOT_PARAMS_ADDR;
    else
        regs.rbx = LAYOUT_START_INFO_ADDR;
    if (ioctl(bsp->fd, KVM_SET_REGS, &regs) < 0)
        return err_set_errno(e, errno, "KVM_SET_REGS");

    struct kvm_fpu fpu = { .fcw = 0x37f, .mxcsr = 0x1f80 };
    if (ioctl(bsp->fd, KVM_SET_FPU, &fpu) < 0)
        return err_set_errno(e, errno, "KVM_SET_FPU");
    return 0;
}
