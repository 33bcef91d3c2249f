/* CPUID shaping per vCPU: APIC ids, topology leaves, KVM leaves. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "x86/cpuid.h"

static void add(struct cpuid_table *t, unsigned fn, unsigned idx, bool sig, unsigned eax,
                unsigned ebx, unsigned ecx, unsigned edx)
{
    struct kvm_cpuid_entry2 *en = &t->entries[t->hdr.nent++];
    memset(en, 0, sizeof(*en));
    en->function = fn;
    en->index = idx;
    en->flags = sig ? KVM_CPUID_FLAG_SIGNIFCANT_INDEX : 0;
    en->eax = eax; en->ebx = ebx; en->ecx = ecx; en->edx = edx;
}

/* A table shaped like what KVM reports on an Intel host. */
static void synthetic(struct cpuid_table *t)
{
    memset(t, 0, sizeof(*t));
    add(t, 0, 0, false, 0x1f, 0x756e6547, 0x6c65746e, 0x49656e69);
    add(t, 1, 0, false, 0x000806f8, 0x00010800, 0x0efa3203 | (1u << 27), 0x178bfbff);
    add(t, 4, 0, true, 0x121, 0, 0, 0);  /* L1d */
    add(t, 4, 1, true, 0x143, 0, 0, 0);  /* L2 */
    add(t, 4, 2, true, 0x163, 0, 0, 0);  /* L3 */
    add(t, 4, 3, true, 0, 0, 0, 0);
    add(t, 6, 0, false, 0x77 /* DTS, turbo, ARAT, PLN, ECMD, PTM */, 0, 9, 0);
    add(t, 0xa, 0, false, 0x07300805, 0, 0, 0x603);
    for (unsigned i = 0; i < 3; i++) {
        add(t, 0xb, i, true, 0, 0, 0, 0);
        add(t, 0x1f, i, true, 0, 0, 0, 0);
    }
    add(t, 0x40000000, 0, false, 0, 0, 0, 0);
    add(t, 0x40000001, 0, false, 0x01007afb, 0, 0, 0);
}

static void test_apic_ids_and_counts(void **state)
{
    static struct cpuid_table t;
    for (unsigned n = 1; n <= 8; n++) {
        for (unsigned i = 0; i < n; i++) {
            synthetic(&t);
            cpuid_shape(&t, i, n, &(struct cpuid_policy){ .tsc_deadline = true, .hypercalls = true });
            struct kvm_cpuid_entry2 *l1 = cpuid_find(&t, 1, 0);
            assert_int_equal(l1->ebx >> 24, i);
            assert_int_equal((l1->ebx >> 16) & 0xff, n);
            assert_int_equal(l1->ebx & 0xffff, 0x0800); /* brand/clflush kept */
            assert_true(l1->ecx & (1u << 31));          /* hypervisor */
            assert_true(l1->ecx & (1u << 24));          /* TSC deadline */
            assert_false(l1->ecx & (1u << 27));         /* OSXSAVE is KVM's */
            assert_int_equal(!!(l1->edx & (1u << 28)), n > 1);
            struct kvm_cpuid_entry2 *smt = cpuid_find(&t, 0xb, 0), *core = cpuid_find(&t, 0xb, 1);
            struct kvm_cpuid_entry2 *end = cpuid_find(&t, 0xb, 2);
            assert_int_equal(smt->edx, i);
            assert_int_equal(smt->ebx, 1);
            assert_int_equal((smt->ecx >> 8) & 0xff, 1);
            assert_int_equal(core->ebx, n);
            assert_int_equal((core->ecx >> 8) & 0xff, 2);
            /* The core shift must cover every APIC id. */
            assert_true((1u << core->eax) >= n);
            assert_true(n == 1 || (1u << (core->eax - 1)) < n);
            assert_int_equal((end->ecx >> 8) & 0xff, 0);
            assert_int_equal(cpuid_find(&t, 0x1f, 1)->ebx, n);
        }
    }
}

static void test_cache_and_pmu(void **state)
{
    static struct cpuid_table t;
    synthetic(&t);
    cpuid_shape(&t, 0, 4, &(struct cpuid_policy){ .hypercalls = true });
    assert_int_equal(((cpuid_find(&t, 4, 0)->eax >> 14) & 0xfff) + 1, 1);
    assert_int_equal(((cpuid_find(&t, 4, 2)->eax >> 14) & 0xfff) + 1, 4);
    assert_int_equal(((cpuid_find(&t, 4, 1)->eax >> 26) & 0x3f) + 1, 4);
    assert_int_equal(cpuid_find(&t, 4, 3)->eax, 0);
    assert_int_equal(cpuid_find(&t, 0xa, 0)->eax, 0);
    assert_int_equal(cpuid_find(&t, 6, 0)->eax, 1u << 2); /* ARAT only */
    assert_int_equal(cpuid_find(&t, 6, 0)->ecx, 0);
    assert_false(cpuid_find(&t, 1, 0)->ecx & (1u << 24));
}

static void test_kvm_leaves(void **state)
{
    static struct cpuid_table t;
    synthetic(&t);
    cpuid_shape(&t, 0, 1, &(struct cpuid_policy){ .hypercalls = true });
    struct kvm_cpuid_entry2 *sig = cpuid_find(&t, 0x40000000, 0);
    char s[13] = { 0 };
    memcpy(s, &sig->ebx, 4);
    memcpy(s + 4, &sig->ecx, 4);
    memcpy(s + 8, &sig->edx, 4);
    assert_string_equal(s, "KVMKVMKVM");
    assert_int_equal(sig->eax, 0x40000001);
    /* kvm-clock feature bits are passed through. */
    assert_int_equal(cpuid_find(&t, 0x40000001, 0)->eax, 0x01007afb);
    assert_null(cpuid_find(&t, 0x12345678, 0));

    /* Without working hypercalls, the PV features that use them go. */
    synthetic(&t);
    cpuid_shape(&t, 0, 2, &(struct cpuid_policy){ .hypercalls = false });
    unsigned feat = cpuid_find(&t, 0x40000001, 0)->eax;
    assert_int_equal(feat & ((1u << 7) | (1u << 11) | (1u << 13)), 0);
    assert_int_equal(feat, 0x01007afb & ~((1u << 7) | (1u << 11) | (1u << 13)));
}

/* On this host's KVM: the real table has the leaves the guest needs. */
static void test_real_kvm(void **state)
{
    int fd = open("/dev/kvm", O_RDWR | O_CLOEXEC);
    if (fd < 0) {
        if (getenv("CVIRT_REQUIRE_KVM") && !strcmp(getenv("CVIRT_REQUIRE_KVM"), "1"))
            fail_msg("/dev/kvm is required but cannot be opened");
        skip();
    }
    static struct cpuid_table t;
    struct err e = { 0 };
    assert_int_equal(cpuid_get_supported(fd, &t, &e), 0);
    close(fd);
    cpuid_shape(&t, 1, 2, &(struct cpuid_policy){ .tsc_deadline = true });
    assert_non_null(cpuid_find(&t, 0, 0));
    assert_int_equal(cpuid_find(&t, 1, 0)->ebx >> 24, 1);
    assert_non_null(cpuid_find(&t, 0x40000001, 0));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_apic_ids_and_counts),
        cmocka_unit_test(test_cache_and_pmu),
        cmocka_unit_test(test_kvm_leaves),
        cmocka_unit_test(test_real_kvm),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
