/* Shared library of the guest test kit: freestanding, 32-bit, no paging. */
#ifndef KIT_H
#define KIT_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define KIT_NORETURN __attribute__((noreturn))
#define KIT_PRINTF(a, b) __attribute__((format(printf, a, b)))
#define KIT_ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

/* ---- port and memory-mapped I/O ---- */
static inline void outb(uint16_t port, uint8_t v) { __asm__ volatile("outb %0, %1" : : "a"(v), "Nd"(port)); }
static inline void outw(uint16_t port, uint16_t v) { __asm__ volatile("outw %0, %1" : : "a"(v), "Nd"(port)); }
static inline void outl(uint16_t port, uint32_t v) { __asm__ volatile("outl %0, %1" : : "a"(v), "Nd"(port)); }
static inline uint8_t inb(uint16_t port) { uint8_t v; __asm__ volatile("inb %1, %0" : "=a"(v) : "Nd"(port)); return v; }
static inline uint16_t inw(uint16_t port) { uint16_t v; __asm__ volatile("inw %1, %0" : "=a"(v) : "Nd"(port)); return v; }
static inline uint32_t inl(uint16_t port) { uint32_t v; __asm__ volatile("inl %1, %0" : "=a"(v) : "Nd"(port)); return v; }
static inline uint32_t mmio_read32(uintptr_t a) { return *(volatile uint32_t *)a; }
static inline void mmio_write32(uintptr_t a, uint32_t v) { *(volatile uint32_t *)a = v; }
static inline void cpu_relax(void) { __asm__ volatile("pause" ::: "memory"); }
static inline void irq_enable(void) { __asm__ volatile("sti" ::: "memory"); }
static inline void irq_disable(void) { __asm__ volatile("cli" ::: "memory"); }
static inline void cpu_halt(void) { __asm__ volatile("hlt" ::: "memory"); }

/* 64-by-32 division without libgcc: two 32-bit DIVs. */
static inline uint64_t kit_udiv64(uint64_t n, uint32_t d)
{
    uint32_t hi = (uint32_t)(n >> 32), lo = (uint32_t)n, qhi = hi / d, qlo, r = hi % d;
    __asm__("divl %2" : "=a"(qlo), "+d"(r) : "rm"(d), "0"(lo));
    return (uint64_t)qhi << 32 | qlo;
}

/* ---- string helpers (the compiler may also call these) ---- */
void *memset(void *d, int c, size_t n);
void *memcpy(void *d, const void *s, size_t n);
int memcmp(const void *a, const void *b, size_t n);
size_t strlen(const char *s);
int strncmp(const char *a, const char *b, size_t n);

/* ---- serial console (COM1, polled) and formatting ---- */
void uart_init(void);
void uart_putc(char c);
void uart_puts(const char *s);
int kit_vsnprintf(char *buf, size_t size, const char *fmt, va_list ap);
int kit_snprintf(char *buf, size_t size, const char *fmt, ...) KIT_PRINTF(3, 4);
void kit_printf(const char *fmt, ...) KIT_PRINTF(1, 2);

/* ---- TAP reporting ---- */
void tap_plan(int n);
/* One case; detail (printf-style) is printed after '#' only on failure. */
bool tap_check(bool ok, const char *desc, const char *detail, ...) KIT_PRINTF(3, 4);
void tap_diag(const char *fmt, ...) KIT_PRINTF(1, 2);
/* Reports the cases the program never reached as failures, then powers off. */
KIT_NORETURN void tap_finish(void);
KIT_NORETURN void tap_bail(const char *fmt, ...) KIT_PRINTF(1, 2);

/* ---- boot information (struct hvm_start_info, Xen public ABI) ---- */
#define HVM_START_MAGIC 0x336ec578u
struct hvm_start_info {
    uint32_t magic;
    uint32_t version;
    uint32_t flags;
    uint32_t nr_modules;
    uint64_t modlist_paddr;
    uint64_t cmdline_paddr;
    uint64_t rsdp_paddr;
    /* version >= 1 */
    uint64_t memmap_paddr;
    uint32_t memmap_entries;
    uint32_t reserved;
} __attribute__((packed));

struct kit_boot_info {
    uint32_t start_info_paddr;
    bool start_info_ok;           /* magic matched */
    struct hvm_start_info si;     /* copy, zeroed fields past the version */
    char cmdline[512];
};
extern struct kit_boot_info kit_boot_info;

/* Provided by each program. */
void kit_main(void);

/* ---- command line (key=value words) ---- */
bool cmdline_get(const char *key, char *out, size_t size);
bool cmdline_get_uint(const char *key, uint32_t *out);

/* ---- ACPI ---- */
struct acpi_sdt {
    char sig[4];
    uint32_t length;
    uint8_t revision;
    uint8_t checksum;
    char oem_id[6];
    char oem_table_id[8];
    uint32_t oem_revision;
    uint32_t creator_id;
    uint32_t creator_revision;
} __attribute__((packed));

#define ACPI_MAX_CPUS 64

struct acpi_info {
    uint32_t rsdp;                /* 0 when not found */
    bool rsdp_from_start_info;
    uint8_t rsdp_revision;
    uint32_t xsdt, rsdt;          /* the root table in use is xsdt ?: rsdt */
    uint32_t fadt, dsdt, facs, madt;
    uint32_t facs_ptr;            /* as given by the FADT, checked or not */
    uint32_t pm1a_cnt, pm1b_cnt;  /* I/O ports, 0 when absent */
    uint32_t pm_tmr;
    bool pm_tmr_32bit;
    uint8_t century;              /* CMOS register of the century, 0 if none */
    int slp_typa, slp_typb;       /* from \_S5_, -1 when not found */
    uint32_t lapic_addr;
    int ncpus;                    /* enabled local APICs */
    uint8_t apic_ids[ACPI_MAX_CPUS];
    int nioapics;
    uint32_t ioapic_addr, ioapic_gsi_base;
    uint32_t irq0_gsi;            /* from an interrupt source override */
    uint16_t irq0_flags;
};

bool acpi_checksum_ok(const void *p, uint32_t len);
uint32_t acpi_find_rsdp_legacy(void);
/* A table's address if its header is readable and its length sane, else 0. */
uint32_t acpi_table_ok(uint64_t addr, const char *sig);
uint32_t acpi_find_table(const struct acpi_info *ai, const char *sig);
/* Fills ai; returns false (with a reason in why) on the first missing piece.
 * Fields found before the failure stay filled. */
bool acpi_parse(struct acpi_info *ai, char *why, size_t why_size);
/* Finds \_S5_ in AML and decodes its first two package elements. */
bool acpi_find_s5(const uint8_t *aml, uint32_t len, int *typa, int *typb);

/* ---- LAPIC, IOAPIC, 8259 ---- */
#define LAPIC_DEFAULT_BASE 0xfee00000u
#define LAPIC_ID 0x20
#define LAPIC_EOI 0xb0
#define LAPIC_SVR 0xf0
#define LAPIC_ICR_LO 0x300
#define LAPIC_ICR_HI 0x310
#define LAPIC_LVT_TIMER 0x320
#define LAPIC_TIMER_INIT 0x380
#define LAPIC_TIMER_CUR 0x390
#define LAPIC_TIMER_DIV 0x3e0
extern uint32_t kit_lapic_base;   /* from the MADT when a program knows it */
uint32_t lapic_read(uint32_t reg);
void lapic_write(uint32_t reg, uint32_t v);
uint8_t lapic_id(void);
void lapic_enable(uint8_t spurious_vector);
void lapic_eoi(void);
/* Sends an IPI and waits for the delivery-status bit to clear. */
bool lapic_send_ipi(uint8_t dest, uint32_t icr_lo);
uint32_t ioapic_read(uint32_t base, uint8_t reg);
void ioapic_write(uint32_t base, uint8_t reg, uint32_t v);
void ioapic_route(uint32_t base, unsigned pin, uint8_t vector, uint8_t dest,
                  bool level, bool active_low);
void ioapic_mask(uint32_t base, unsigned pin);
void pic_disable(void);

/* ---- interrupts ---- */
struct kit_frame {
    uint32_t edi, esi, ebp, esp, ebx, edx, ecx, eax;
    uint32_t vector, error;
    uint32_t eip, cs, eflags;
};
typedef void (*kit_irq_fn)(struct kit_frame *f);
void idt_init(void);
void idt_set_handler(uint8_t vector, kit_irq_fn fn);

/* ---- PIT (8254) ---- */
#define PIT_HZ 1193182u
void pit_periodic(uint32_t hz);
void pit_stop(void);
/* Busy-waits using channel 2; the guest's notion of time, not the host's. */
void pit_delay_us(uint32_t us);

/* ---- periodic PIT tick through the IOAPIC (IRQ0 per the MADT override) ---- */
#define KIT_VEC_PIT 0x20
#define KIT_VEC_LAPIC_TIMER 0x30
extern volatile uint32_t kit_ticks;
bool ticker_start(const struct acpi_info *ai, uint32_t hz);
void ticker_stop(void);
/* Waits for n more ticks with HLT; interrupts are left disabled. */
bool ticker_wait(uint32_t n);
/* At least ms of guest time: HLT on the ticker if it runs, else PIT polling. */
void kit_sleep_ms(uint32_t ms);

/* ---- ACPI PM timer (3.579545 MHz) ---- */
#define PMTMR_HZ 3579545u
/* Ticks between two reads, handling the 24- or 32-bit wrap. */
uint32_t pmtmr_delta(const struct acpi_info *ai, uint32_t from, uint32_t to);

/* ---- CMOS ---- */
uint8_t cmos_read(uint8_t reg);
void cmos_write(uint8_t reg, uint8_t v);

/* ---- power ---- */
/* ACPI S5 through PM1a_CNT; never returns (halts if the write is ignored). */
KIT_NORETURN void kit_poweroff(void);
/* Fills the two values kit_poweroff would use; false if ACPI lacks them. */
bool kit_s5_params(uint32_t *pm1a_cnt, uint32_t *pm1b_cnt, int *typa, int *typb);

/* ---- reboot programs ---- */
/* First boot: marks CMOS RAM and calls do_reset; second boot: reports. */
void kit_reboot_test(const char *how, uint8_t tag, void (*do_reset)(void));

/* ---- SMP (application processors) ---- */
/* Called on each AP once it runs 32-bit code on its own stack. */
extern void (*kit_ap_hook)(void);
/* Copies the real-mode trampoline to TRAMP_BASE; returns the SIPI vector. */
uint8_t smp_install_trampoline(void);
#define KIT_TRAMP_BASE 0x8000u

#endif
