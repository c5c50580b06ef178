/* The scheduler's resource pool: what a file reserves when it is
 * dispatched, what its VMs draw when they boot, and what goes back.
 *
 * Three quantities are shared out, because they are scarce in different ways:
 *
 *   memory  host RAM. A runner reserves PV_RUNNER_OVERHEAD_BYTES plus its claim's
 *           memory; a VM takes its RAM + PV_VM_OVERHEAD_BYTES. Never overcommitted:
 *           guest RAM that the host does not have ends in the OOM killer.
 *   cpus    host cores for runners (dispatch slots). A runner takes one, or
 *           its claim's cpus up to the whole pool. Bounds how many files
 *           run at once.
 *   vcpus   VM vCPUs of all files together. vCPUs are QEMU threads that
 *           share the cores, so this budget is overcommitted (by default
 *           PV_VCPU_RATIO x cpus): a 2-core host can boot a lab of eight
 *           1-vCPU VMs, but not eighty.
 *
 * A file's budget is what it reserved beyond its runner: its claim's memory
 * and max(1, claim cpus) vCPUs. Its VMs draw from the budget first, then
 * from the pool. This module is pure arithmetic (no I/O), so every rule is
 * unit-tested (tests/unit/test_pool.c).
 *
 * Protocol, per file:
 *   1. pool_reservation() says what dispatching it takes; pool_fits() says
 *      whether that is free now, pool_le() whether it could ever be.
 *   2. pool_dispatch() takes it and opens the file's budget.
 *   3. pool_acquire() / pool_release() for each VM boot and shutdown;
 *      pool_grow_claim() for a claim made at run time.
 *   4. pool_end_file() gives back everything the file still holds.
 */
#ifndef PV_POOL_H
#define PV_POOL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "event.h"

#define PV_RUNNER_OVERHEAD_BYTES (50ull << 20)
#define PV_VM_OVERHEAD_BYTES (100ull << 20)
#define PV_VCPU_RATIO 4u /* default vCPUs per pool cpu */

struct pool_amount {
	uint64_t memory;
	uint32_t cpus;
	uint32_t vcpus;
};

struct pool {
	struct pool_amount total, used;
};

struct pool_share {
	struct pool_amount reserved;     /* runner + claim: held until the file ends */
	struct pool_amount budget_free;  /* the part of reserved its VMs do not use now */
	struct pool_amount vm_from_pool; /* what its VMs hold beyond the budget */
	struct pool_amount vm_held;      /* what its VMs hold in all */
};

enum pool_answer { POOL_GRANTED, POOL_WAIT, POOL_NEVER };

/* What dispatching a file with this claim (NULL: none) reserves. */
struct pool_amount pool_reservation(const struct pool *p, const struct pv_resource *claim);
bool pool_le(struct pool_amount a, struct pool_amount b);
bool pool_fits(const struct pool *p, struct pool_amount want);

/* Takes `r` (from pool_reservation(), which must fit) and opens the budget. */
void pool_dispatch(struct pool *p, struct pool_share *sh, struct pool_amount r);

/* A VM boot wanting `want` (memory with overhead, vcpus; cpus 0). GRANTED
 * takes it; WAIT means it fits once others give back; NEVER writes why into
 * `why` (what is asked, what the file holds, what would ever fit). */
enum pool_answer pool_acquire(struct pool *p, struct pool_share *sh, struct pool_amount want, char *why,
			      size_t whylen);

/* Gives back what a VM took. More than the file's VMs hold is clamped to
 * what they hold (a runner cannot free what it never took); returns false
 * when it had to clamp. */
bool pool_release(struct pool *p, struct pool_share *sh, struct pool_amount r);

/* Raises the file's reservation to what `claim` needs (a provium:claim made
 * at run time). NEVER when it exceeds the whole pool. */
enum pool_answer pool_grow_claim(struct pool *p, struct pool_share *sh, const struct pv_resource *claim, char *why,
				 size_t whylen);

/* Deadlock: a running file is stuck when its VM boot waits for the pool
 * (vm_waiting) or it waits on a fixture build lock held by another file
 * (fixture_waiting); when every running file is stuck nobody will ever give
 * anything back. Returns the index of the file whose boot to refuse (the
 * last, i.e. newest, VM waiter: fixture waiters cannot be refused, they hold
 * no request) and the number of stuck files in *ret_stuck, or -1 when some
 * file can still make progress. */
struct pool_waiter {
	bool vm_waiting, fixture_waiting;
};
ptrdiff_t pool_deadlock_victim(const struct pool_waiter *running, size_t n, unsigned *ret_stuck);

/* Everything the file holds goes back; the share is zeroed. */
void pool_end_file(struct pool *p, struct pool_share *sh);

/* "356MiB memory, 2 vCPUs" (zero vcpus/cpus left out unless all are zero). */
void pool_describe(struct pool_amount a, char *buf, size_t len);

/* For events, whose ResourceAmount has memory and cpus: pool cpus. */
struct pv_resource pool_to_resource(struct pool_amount a);
struct pool_amount pool_available(const struct pool *p);

#endif
