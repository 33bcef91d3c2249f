/* MSI-X table and PBA: the writable bits of an entry, masking and pending
 * bits, delivery through each vector's eventfd, and the MSI routes the VM
 * records for vectors that can fire. No KVM VM exists here, so routes are
 * kept in the VM's table only. */
#include <errno.h>
#include <poll.h>
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "iobus.h"
#include "pci/msix.h"
#include "vm.h"

struct fixture {
    struct vm *vm;
    struct msix *m;
};

static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof(*f));
    f->vm = calloc(1, sizeof(*f->vm));
    f->vm->vm_fd = -1;
    pthread_mutex_init(&f->vm->route_lock, NULL);
    struct err e = { 0 };
    assert_int_equal(msix_create(&f->m, f->vm, 4, &e), 0);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    msix_destroy(f->m);
    for (unsigned i = 0; i < VM_MAX_MSI_ROUTES; i++)
        assert_false(f->vm->msi_routes[i].allocated);
    pthread_mutex_destroy(&f->vm->route_lock);
    free(f->vm);
    free(f);
    return 0;
}

static void tbl_out(struct fixture *f, uint64_t off, unsigned len, uint64_t v)
{
    uint8_t d[8];
    io_data_put(d, len, v);
    msix_table_write(f->m, off, d, len);
}

static uint64_t tbl_in(struct fixture *f, uint64_t off, unsigned len)
{
    uint8_t d[8];
    msix_table_read(f->m, off, d, len);
    return io_data_get(d, len);
}

static uint64_t pba(struct fixture *f)
{
    uint8_t d[8];
    msix_pba_read(f->m, 0, d, 8);
    return io_data_get(d, 8);
}

/* How many times vector n fired since the last look (eventfd counter). */
static uint64_t fired(struct fixture *f, unsigned n)
{
    uint64_t v = 0;
    if (read(f->m->vec[n].efd, &v, sizeof(v)) != sizeof(v))
        return 0;
    return v;
}

static const struct vm_msi_route *route(struct fixture *f, unsigned n)
{
    return &f->vm->msi_routes[f->m->vec[n].gsi - VM_GSI_MSI_BASE];
}

static void program(struct fixture *f, unsigned n, uint64_t addr, uint32_t data)
{
    tbl_out(f, n * 16, 4, (uint32_t)addr);
    tbl_out(f, n * 16 + 4, 4, addr >> 32);
    tbl_out(f, n * 16 + 8, 4, data);
}

static void test_power_on(void **state)
{
    struct fixture *f = *state;
    for (unsigned n = 0; n < 4; n++) {
        assert_int_equal(tbl_in(f, n * 16, 8), 0);
        assert_int_equal(tbl_in(f, n * 16 + 12, 4), MSIX_VECTOR_MASKED);
        /* Distinct GSIs above the IOAPIC's pins. */
        assert_true(f->m->vec[n].gsi >= VM_GSI_MSI_BASE);
        for (unsigned k = 0; k < n; k++)
            assert_int_not_equal(f->m->vec[n].gsi, f->m->vec[k].gsi);
    }
    assert_int_equal(pba(f), 0);
    assert_false(msix_enabled(f->m));
    /* Disabled: the caller must fall back to INTx. */
    assert_int_equal(msix_notify(f->m, 0), -ENODEV);
    assert_int_equal(msix_notify(f->m, 4), -EINVAL);
    assert_int_equal(msix_notify(f->m, 0xffff), -EINVAL);
}

static void test_entry_bits(void **state)
{
    struct fixture *f = *state;
    program(f, 1, 0xfee01000, 0x4031);
    assert_int_equal(tbl_in(f, 16, 4), 0xfee01000);
    assert_int_equal(tbl_in(f, 24, 4), 0x4031);
    assert_int_equal(tbl_in(f, 16, 8), 0xfee01000);
    /* Vector control: only the mask bit sticks. */
    tbl_out(f, 28, 4, 0xfffffffe);
    assert_int_equal(tbl_in(f, 28, 4), 0);
    tbl_out(f, 28, 4, 0xffffffff);
    assert_int_equal(tbl_in(f, 28, 4), 1);
    /* A 64-bit access covers address low and high. */
    tbl_out(f, 32, 8, 0x00000001fee02000ULL);
    assert_int_equal(tbl_in(f, 32, 4), 0xfee02000);
    assert_int_equal(tbl_in(f, 36, 4), 1);
    /* Past the table: writes vanish, reads are zero. */
    tbl_out(f, 64, 4, 0x12345678);
    assert_int_equal(tbl_in(f, 64, 4), 0);
    tbl_out(f, 1ULL << 40, 4, 0x12345678);
    assert_int_equal(tbl_in(f, 1ULL << 40, 4), 0);
    uint8_t d[4];
    msix_pba_read(f->m, 4096, d, 4);
    assert_int_equal(io_data_get(d, 4), 0);
}

static void test_delivery(void **state)
{
    struct fixture *f = *state;
    msix_set_control(f->m, MSIX_CTRL_ENABLE);
    assert_true(msix_enabled(f->m));
    program(f, 0, 0xfee00000, 0x4022);
    /* Masked: remembered, not delivered, no route needed yet. */
    assert_int_equal(msix_notify(f->m, 0), 0);
    assert_int_equal(fired(f, 0), 0);
    assert_int_equal(pba(f), 1);
    assert_false(route(f, 0)->valid);
    /* Unmasking routes the message and delivers the pending one. */
    tbl_out(f, 12, 4, 0);
    assert_int_equal(fired(f, 0), 1);
    assert_int_equal(pba(f), 0);
    assert_true(route(f, 0)->valid);
    assert_int_equal(route(f, 0)->addr, 0xfee00000);
    assert_int_equal(route(f, 0)->data, 0x4022);
    /* Live: straight through the eventfd. */
    assert_int_equal(msix_notify(f->m, 0), 0);
    assert_int_equal(msix_notify(f->m, 0), 0);
    assert_int_equal(fired(f, 0), 2);
    assert_int_equal(pba(f), 0);
    /* The driver retargets a live vector: the route follows. */
    tbl_out(f, 8, 4, 0x4023);
    assert_int_equal(route(f, 0)->data, 0x4023);
    /* Other vectors are untouched. */
    assert_int_equal(fired(f, 1), 0);
    assert_false(route(f, 1)->valid);
}

static void test_function_mask(void **state)
{
    struct fixture *f = *state;
    program(f, 2, 0xfee00000, 0x4050);
    tbl_out(f, 2 * 16 + 12, 4, 0);
    msix_set_control(f->m, MSIX_CTRL_ENABLE | MSIX_CTRL_MASKALL);
    assert_int_equal(msix_notify(f->m, 2), 0);
    assert_int_equal(msix_notify(f->m, 3), 0);
    assert_int_equal(pba(f), 0xc);
    assert_int_equal(fired(f, 2), 0);
    /* Function mask off: vector 2 fires, vector 3 stays masked and pending. */
    msix_set_control(f->m, MSIX_CTRL_ENABLE);
    assert_int_equal(fired(f, 2), 1);
    assert_int_equal(fired(f, 3), 0);
    assert_int_equal(pba(f), 0x8);
    /* Disabling MSI-X takes the routes out of the table. */
    assert_true(route(f, 2)->valid);
    msix_set_control(f->m, 0);
    assert_false(route(f, 2)->valid);
    assert_int_equal(msix_notify(f->m, 2), -ENODEV);
}

static void test_reset(void **state)
{
    struct fixture *f = *state;
    msix_set_control(f->m, MSIX_CTRL_ENABLE);
    program(f, 3, 0xfee00000, 0x4060);
    tbl_out(f, 3 * 16 + 12, 4, 0);
    assert_true(route(f, 3)->valid);
    tbl_out(f, 12, 4, 1);
    msix_notify(f->m, 0);
    assert_int_equal(pba(f), 1);
    msix_reset(f->m);
    assert_false(msix_enabled(f->m));
    assert_int_equal(pba(f), 0);
    assert_false(route(f, 3)->valid);
    assert_int_equal(tbl_in(f, 3 * 16, 4), 0);
    assert_int_equal(tbl_in(f, 3 * 16 + 12, 4), MSIX_VECTOR_MASKED);
}

static void test_limits(void **state)
{
    struct vm *vm = calloc(1, sizeof(*vm));
    vm->vm_fd = -1;
    pthread_mutex_init(&vm->route_lock, NULL);
    struct err e = { 0 };
    struct msix *m;
    assert_int_equal(msix_create(&m, vm, 0, &e), -EINVAL);
    assert_int_equal(msix_create(&m, vm, MSIX_MAX_VECTORS + 1, NULL), -EINVAL);
    /* Running out of GSIs fails cleanly and gives back what it took. */
    struct msix *ms[VM_MAX_MSI_ROUTES / MSIX_MAX_VECTORS];
    for (unsigned i = 0; i < VM_MAX_MSI_ROUTES / MSIX_MAX_VECTORS; i++)
        assert_int_equal(msix_create(&ms[i], vm, MSIX_MAX_VECTORS, &e), 0);
    err_clear(&e);
    assert_int_equal(msix_create(&m, vm, 1, &e), -ENOSPC);
    assert_non_null(strstr(e.msg, "GSI"));
    msix_destroy(ms[0]);
    assert_int_equal(msix_create(&m, vm, 2, &e), 0);
    msix_destroy(m);
    for (unsigned i = 1; i < VM_MAX_MSI_ROUTES / MSIX_MAX_VECTORS; i++)
        msix_destroy(ms[i]);
    for (unsigned i = 0; i < VM_MAX_MSI_ROUTES; i++)
        assert_false(vm->msi_routes[i].allocated);
    assert_int_equal(vm_msi_route(vm, 3, 0, 0, true), -EINVAL);
    assert_int_equal(vm_msi_route(vm, VM_GSI_MSI_BASE, 0, 0, true), -EINVAL);
    pthread_mutex_destroy(&vm->route_lock);
    free(vm);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_power_on, setup, teardown),
        cmocka_unit_test_setup_teardown(test_entry_bits, setup, teardown),
        cmocka_unit_test_setup_teardown(test_delivery, setup, teardown),
        cmocka_unit_test_setup_teardown(test_function_mask, setup, teardown),
        cmocka_unit_test_setup_teardown(test_reset, setup, teardown),
        cmocka_unit_test(test_limits),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
