/* Unit tests of the pool arithmetic: reservations, VM budgets, the vCPU
 * overcommit, refusals that say what would fit, and release exactly once. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "pool.h"

#define MI (UINT64_C(1) << 20)
#define GI (MI << 10)
#define VM(mem_mib, vcpus) ((struct pool_amount){ (mem_mib) * MI + PV_VM_OVERHEAD_BYTES, 0, (vcpus) })

/* The defaults on a 2-core host with 24 GiB: 80% of the memory, 2 cpus,
 * PV_VCPU_RATIO vCPUs per cpu. */
static struct pool host2(void)
{
	return (struct pool){ .total = { 24 * GI / 10 * 8, 2, 2 * PV_VCPU_RATIO } };
}

static void assert_used(const struct pool *p, uint64_t mem, uint32_t cpus, uint32_t vcpus)
{
	assert_int_equal(p->used.memory, mem);
	assert_int_equal(p->used.cpus, cpus);
	assert_int_equal(p->used.vcpus, vcpus);
}

static void test_reservation(void **state)
{
	(void)state;
	struct pool p = host2();
	struct pool_amount r = pool_reservation(&p, NULL);
	assert_int_equal(r.memory, PV_RUNNER_OVERHEAD_BYTES);
	assert_int_equal(r.cpus, 1);
	assert_int_equal(r.vcpus, 1);

	struct pv_resource c = { 200 * MI, 1 };
	r = pool_reservation(&p, &c);
	assert_int_equal(r.memory, 250 * MI);
	assert_int_equal(r.cpus, 1);

	/* a 4-node lab's claim on a 2-core host: all the cores, 4 vCPUs */
	c = (struct pv_resource){ 1 * GI, 4 };
	r = pool_reservation(&p, &c);
	assert_int_equal(r.cpus, 2);
	assert_int_equal(r.vcpus, 4);
	assert_true(pool_le(r, p.total));
}

/* The case: two VMs at file scope, a third in a test, no claim. */
static void test_lab_of_eight_on_two_cores(void **state)
{
	(void)state;
	struct pool p = host2();
	struct pool_share sh;
	char why[512] = "";

	pool_dispatch(&p, &sh, pool_reservation(&p, NULL));
	for (int i = 0; i < 8; i++) {
		assert_int_equal(pool_acquire(&p, &sh, VM(128, 1), why, sizeof(why)), POOL_GRANTED);
	}
	assert_used(&p, PV_RUNNER_OVERHEAD_BYTES + 8 * (228 * MI), 1, 8);

	/* the ninth can never fit: the message says what is held and what fits */
	assert_int_equal(pool_acquire(&p, &sh, VM(128, 1), why, sizeof(why)), POOL_NEVER);
	assert_non_null(strstr(why, "booting needs 228MiB memory, 1 vCPUs"));
	assert_non_null(strstr(why, "this file already holds"));
	assert_non_null(strstr(why, ", 8 vCPUs"));
	assert_non_null(strstr(why, "0 vCPUs would ever fit"));
	assert_non_null(strstr(why, "--vcpus"));
	assert_used(&p, PV_RUNNER_OVERHEAD_BYTES + 8 * (228 * MI), 1, 8);

	pool_end_file(&p, &sh);
	assert_used(&p, 0, 0, 0);
}

static void test_runners_bounded_by_cores(void **state)
{
	(void)state;
	struct pool p = host2();
	struct pool_share a, b;
	struct pool_amount r = pool_reservation(&p, NULL);

	assert_true(pool_fits(&p, r));
	pool_dispatch(&p, &a, r);
	assert_true(pool_fits(&p, r));
	pool_dispatch(&p, &b, r);
	assert_false(pool_fits(&p, r)); /* a third runner waits for a core */
	pool_end_file(&p, &a);
	assert_true(pool_fits(&p, r));
	pool_end_file(&p, &b);
	assert_used(&p, 0, 0, 0);
}

static void test_wait_then_granted(void **state)
{
	(void)state;
	struct pool p = host2();
	struct pool_share a, b;
	char why[512];

	pool_dispatch(&p, &a, pool_reservation(&p, NULL));
	pool_dispatch(&p, &b, pool_reservation(&p, NULL));
	assert_int_equal(pool_acquire(&p, &a, VM(128, 6), why, sizeof(why)), POOL_GRANTED);
	/* 7 of 8 vCPUs are taken; b's budget has one, it wants three */
	assert_int_equal(pool_acquire(&p, &b, VM(128, 3), why, sizeof(why)), POOL_WAIT);
	assert_true(pool_release(&p, &a, VM(128, 6)));
	assert_int_equal(pool_acquire(&p, &b, VM(128, 3), why, sizeof(why)), POOL_GRANTED);
	pool_end_file(&p, &a);
	pool_end_file(&p, &b);
	assert_used(&p, 0, 0, 0);
}

static void test_memory_never_overcommitted(void **state)
{
	(void)state;
	struct pool p = { .total = { 600 * MI, 2, 8 } };
	struct pool_share sh;
	char why[512];

	pool_dispatch(&p, &sh, pool_reservation(&p, NULL));
	assert_int_equal(pool_acquire(&p, &sh, VM(128, 1), why, sizeof(why)), POOL_GRANTED);
	assert_int_equal(pool_acquire(&p, &sh, VM(128, 1), why, sizeof(why)), POOL_GRANTED);
	assert_int_equal(pool_acquire(&p, &sh, VM(128, 1), why, sizeof(why)), POOL_NEVER);
	assert_non_null(strstr(why, "already holds 506MiB memory, 1 cpus, 2 vCPUs"));
	assert_non_null(strstr(why, "of a pool of 600MiB memory, 2 cpus, 8 vCPUs"));
	assert_non_null(strstr(why, "at most 94MiB memory, 6 vCPUs would ever fit"));
}

/* A runner that releases a VM twice (or more than it took) frees nothing
 * it does not hold: another file cannot be granted memory that is in use. */
static void test_release_exactly_once(void **state)
{
	(void)state;
	struct pool p = { .total = { 400 * MI, 2, 8 } };
	struct pool_share a, b;
	char why[512];

	pool_dispatch(&p, &a, pool_reservation(&p, NULL));
	pool_dispatch(&p, &b, pool_reservation(&p, NULL));
	assert_int_equal(pool_acquire(&p, &a, VM(128, 1), why, sizeof(why)), POOL_GRANTED);
	assert_true(pool_release(&p, &a, VM(128, 1)));
	assert_false(pool_release(&p, &a, VM(128, 1)));
	assert_used(&p, 2 * PV_RUNNER_OVERHEAD_BYTES, 2, 2);
	assert_int_equal(a.budget_free.memory, 0);
	assert_int_equal(a.budget_free.vcpus, 1);
	/* b's VM fits, but a second VM of a's must still wait for it */
	assert_int_equal(pool_acquire(&p, &b, VM(128, 1), why, sizeof(why)), POOL_GRANTED);
	assert_int_equal(pool_acquire(&p, &a, VM(128, 1), why, sizeof(why)), POOL_WAIT);
	pool_end_file(&p, &a);
	pool_end_file(&p, &b);
	assert_used(&p, 0, 0, 0);
}

static void test_budget_first(void **state)
{
	(void)state;
	struct pool p = host2();
	struct pool_share sh;
	struct pv_resource c = { 512 * MI, 2 };
	char why[512];

	pool_dispatch(&p, &sh, pool_reservation(&p, &c));
	assert_used(&p, 562 * MI, 2, 2);
	/* two 128M VMs (456 MiB) come out of the claim: the pool does not move */
	assert_int_equal(pool_acquire(&p, &sh, VM(128, 1), why, sizeof(why)), POOL_GRANTED);
	assert_int_equal(pool_acquire(&p, &sh, VM(128, 1), why, sizeof(why)), POOL_GRANTED);
	assert_used(&p, 562 * MI, 2, 2);
	/* a third goes beyond it */
	assert_int_equal(pool_acquire(&p, &sh, VM(128, 1), why, sizeof(why)), POOL_GRANTED);
	assert_used(&p, 562 * MI + 228 * MI - 56 * MI, 2, 3);
	pool_end_file(&p, &sh);
	assert_used(&p, 0, 0, 0);
}

static void test_grow_claim(void **state)
{
	(void)state;
	struct pool p = host2();
	struct pool_share sh;
	struct pv_resource c = { 64 * MI, 0 };
	char why[512];

	pool_dispatch(&p, &sh, pool_reservation(&p, NULL));
	assert_int_equal(pool_grow_claim(&p, &sh, &c, why, sizeof(why)), POOL_GRANTED);
	assert_used(&p, 114 * MI, 1, 1);
	assert_int_equal(sh.budget_free.memory, 64 * MI);
	c = (struct pv_resource){ 100 * GI, 1 };
	assert_int_equal(pool_grow_claim(&p, &sh, &c, why, sizeof(why)), POOL_NEVER);
	assert_non_null(strstr(why, "more than the whole pool"));
	pool_end_file(&p, &sh);
	assert_used(&p, 0, 0, 0);
}

static void test_deadlock(void **state)
{
	(void)state;
	unsigned stuck = 0;
	struct pool_waiter w[3] = { { true, false }, { true, false }, { false, false } };

	assert_int_equal(pool_deadlock_victim(w, 0, &stuck), -1);      /* nothing runs */
	assert_int_equal(pool_deadlock_victim(w, 3, &stuck), -1);      /* the third makes progress */
	assert_int_equal(pool_deadlock_victim(w, 2, &stuck), 1);       /* both wait: the newest is refused */
	assert_int_equal(stuck, 2);
	w[2].fixture_waiting = true;                                   /* on a lock the others hold */
	assert_int_equal(pool_deadlock_victim(w, 3, &stuck), 1);
	assert_int_equal(stuck, 3);
	w[0] = w[1] = (struct pool_waiter){ false, true };
	assert_int_equal(pool_deadlock_victim(w, 3, &stuck), -1); /* only lock waiters: no request to refuse */
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_reservation),
		cmocka_unit_test(test_lab_of_eight_on_two_cores),
		cmocka_unit_test(test_runners_bounded_by_cores),
		cmocka_unit_test(test_wait_then_granted),
		cmocka_unit_test(test_memory_never_overcommitted),
		cmocka_unit_test(test_release_exactly_once),
		cmocka_unit_test(test_budget_first),
		cmocka_unit_test(test_grow_claim),
		cmocka_unit_test(test_deadlock),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
