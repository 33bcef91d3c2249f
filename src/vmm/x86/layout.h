/* Guest physical and I/O port layout of a cvirt-vmm x86 machine.
 * One place for every fixed address so the ACPI tables, the boot code and
 * the devices cannot disagree. */
#ifndef CVIRT_VMM_X86_LAYOUT_H
#define CVIRT_VMM_X86_LAYOUT_H

/* Low memory */
#define LAYOUT_GDT_ADDR          0x0500ULL   /* boot GDT (64-bit and 32-bit entry) */
#define LAYOUT_BOOT_PARAMS_ADDR  0x7000ULL   /* Linux zero page */
#define LAYOUT_START_INFO_ADDR   0x6000ULL   /* PVH hvm_start_info + modlist + memmap */
#define LAYOUT_PML4_ADDR         0x9000ULL   /* identity page tables for 64-bit entry */
#define LAYOUT_PDPT_ADDR         0xA000ULL
#define LAYOUT_PD_ADDR           0xB000ULL   /* 4 pages: 4 GiB of 2 MiB pages */
#define LAYOUT_BOOT_STACK        0x8ff0ULL
#define LAYOUT_CMDLINE_ADDR      0x20000ULL
#define LAYOUT_CMDLINE_MAX       0x10000ULL
#define LAYOUT_EBDA_START        0x9f000ULL  /* end of usable low RAM */
#define LAYOUT_MPTABLE_ADDR      0x9f000ULL  /* MP configuration table */
#define LAYOUT_MPTABLE_FP_ADDR   0x9fc00ULL  /* MP floating pointer: last KiB below 640K */
#define LAYOUT_EBDA_END          0xa0000ULL
#define LAYOUT_ACPI_START        0xe0000ULL  /* RSDP + tables, searched by the legacy scan */
#define LAYOUT_ACPI_END          0x100000ULL
#define LAYOUT_HIMEM_START       0x100000ULL /* 1 MiB: kernels load here */

/* 32-bit hole below 4 GiB */
#define LAYOUT_MMIO_HOLE_START   0xc0000000ULL /* RAM above this moves to 4 GiB */
#define LAYOUT_PCI_MMIO_START    0xc0000000ULL
#define LAYOUT_PCI_MMIO_SIZE     0x20000000ULL
#define LAYOUT_PCIE_ECAM_START   0xe0000000ULL
#define LAYOUT_PCIE_ECAM_SIZE    0x10000000ULL /* 256 buses */
#define LAYOUT_IOAPIC_ADDR       0xfec00000ULL
#define LAYOUT_LAPIC_ADDR        0xfee00000ULL
#define LAYOUT_TSS_ADDR          0xfffbd000ULL /* KVM_SET_TSS_ADDR: 3 pages */
#define LAYOUT_IDENTITY_MAP_ADDR 0xfffbc000ULL /* KVM_SET_IDENTITY_MAP_ADDR: 1 page */
#define LAYOUT_4G                0x100000000ULL

/* I/O ports */
#define LAYOUT_PORT_I8042_DATA   0x60
#define LAYOUT_PORT_I8042_CMD    0x64
#define LAYOUT_PORT_RTC          0x70          /* 0x70 index, 0x71 data */
#define LAYOUT_PORT_COM1         0x3f8
#define LAYOUT_PORT_RESET_CF9    0xcf9
#define LAYOUT_PORT_PCI_CONFIG   0xcf8         /* 0xcf8..0xcff */
#define LAYOUT_PORT_ACPI_PM_BASE 0x600
#define LAYOUT_PORT_PM1A_EVT     0x600         /* 4 bytes: status(2) + enable(2) */
#define LAYOUT_PORT_PM1A_CNT     0x604         /* 2 bytes */
#define LAYOUT_PORT_PM_TMR       0x608         /* 4 bytes, 3.579545 MHz */
#define LAYOUT_PORT_GPE0_BLK     0x620         /* 8 bytes: status(4) + enable(4) */
#define LAYOUT_PORT_ACPI_PM_LEN  0x40
#define LAYOUT_PORT_PCI_HOTPLUG  0xae00        /* 12 bytes: up, down, eject (dwords) */
#define LAYOUT_PCI_HOTPLUG_LEN   12
#define LAYOUT_GPE_PCI_HOTPLUG   1             /* GPE0 bit: the DSDT's \_GPE._E01 */

/* Interrupt lines (ISA IRQ == GSI except IRQ0 -> GSI2 override) */
#define LAYOUT_IRQ_COM1          4
#define LAYOUT_IRQ_RTC           8
#define LAYOUT_IRQ_SCI           9
#define LAYOUT_IRQ_KBD           1

/* PCI INTx: the four lines INTA#..INTD# of bus 0 end on IOAPIC pins
 * 16..19, above every ISA IRQ, so they need no interrupt source override
 * and share nothing with a legacy device. Like a real board, the wiring
 * rotates with the slot, so INTA# of neighbouring slots lands on different
 * pins: slot s, pin p (0 = INTA#) drives GSI 16 + (s + p) % 4. The DSDT's
 * _PRT and the Interrupt Line register both follow this one function. */
#define LAYOUT_GSI_PCI_INTX      16
#define LAYOUT_PCI_INTX_LINES    4
static inline unsigned layout_pci_intx_gsi(unsigned slot, unsigned pin)
{
    return LAYOUT_GSI_PCI_INTX + (slot + pin) % LAYOUT_PCI_INTX_LINES;
}

/* ACPI sleep type written to PM1a_CNT.SLP_TYP for S5 (the DSDT's \_S5). */
#define LAYOUT_S5_SLP_TYP        5
#define LAYOUT_ACPI_RESET_VALUE  0x06          /* written to 0xcf9 via FADT RESET_REG */

#endif
