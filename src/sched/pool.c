#include "pool.h"

#include <stdio.h>

#include "units.h"

static struct pool_amount amin(struct pool_amount a, struct pool_amount b)
{
	return (struct pool_amount){ a.memory < b.memory ? a.memory : b.memory, a.cpus < b.cpus ? a.cpus : b.cpus,
				     a.vcpus < b.vcpus ? a.vcpus : b.vcpus };
}

static struct pool_amount add(struct pool_amount a, struct pool_amount b)
{
	return (struct pool_amount){ a.memory + b.memory, a.cpus + b.cpus, a.vcpus + b.vcpus };
}

/* a - b, each field floored at 0 */
static struct pool_amount sub(struct pool_amount a, struct pool_amount b)
{
	return (struct pool_amount){ a.memory > b.memory ? a.memory - b.memory : 0, a.cpus > b.cpus ? a.cpus - b.cpus : 0,
				     a.vcpus > b.vcpus ? a.vcpus - b.vcpus : 0 };
}

bool pool_le(struct pool_amount a, struct pool_amount b)
{
	return a.memory <= b.memory && a.cpus <= b.cpus && a.vcpus <= b.vcpus;
}

struct pool_amount pool_available(const struct pool *p)
{
	return sub(p->total, p->used);
}

bool pool_fits(const struct pool *p, struct pool_amount want)
{
	return pool_le(want, pool_available(p));
}

/* A claim's cpus are the vCPUs its VMs need, and as many of the pool's cpus
 * as there are (a claim of all the cores runs the file alone); a claim of
 * more cpus than the host has is not an error, its VMs share the cores. */
struct pool_amount pool_reservation(const struct pool *p, const struct pv_resource *claim)
{
	struct pool_amount r = { PV_RUNNER_OVERHEAD_BYTES, 1, 1 };
	if (claim) {
		r.memory += claim->memory_bytes;
		if (claim->cpus > 1) {
			r.vcpus = claim->cpus;
			r.cpus = claim->cpus < p->total.cpus ? claim->cpus : p->total.cpus;
		}
	}
	return r;
}

void pool_dispatch(struct pool *p, struct pool_share *sh, struct pool_amount r)
{
	p->used = add(p->used, r);
	*sh = (struct pool_share){ .reserved = r };
	sh->budget_free = (struct pool_amount){ r.memory - PV_RUNNER_OVERHEAD_BYTES, 0, r.vcpus };
}

enum pool_answer pool_acquire(struct pool *p, struct pool_share *sh, struct pool_amount want, char *why,
			      size_t whylen)
{
	struct pool_amount from_budget = amin(want, sh->budget_free);
	struct pool_amount extra = sub(want, from_budget);
	/* what this file could ever get: the whole pool less what it holds */
	struct pool_amount held = add(sh->reserved, sh->vm_from_pool);
	struct pool_amount ever = sub(p->total, held);

	if (!pool_le(extra, ever)) {
		char a[64], h[64], t[64], e[64];
		pool_describe(want, a, sizeof(a));
		pool_describe(held, h, sizeof(h));
		pool_describe(p->total, t, sizeof(t));
		struct pool_amount fit = add(ever, sh->budget_free);
		fit.cpus = 0; /* VMs take no runner cpus */
		pool_describe(fit, e, sizeof(e));
		snprintf(why, whylen,
			 "booting needs %s (VM memory + 100 MiB overhead each); this file already holds %s (runner, claim "
			 "and running VMs) of a pool of %s, so at most %s would ever fit; give the VMs less memory, shut "
			 "one down first, or raise --mem/--vcpus",
			 a, h, t, e);
		return POOL_NEVER;
	}
	if (!pool_fits(p, extra))
		return POOL_WAIT;
	p->used = add(p->used, extra);
	sh->vm_from_pool = add(sh->vm_from_pool, extra);
	sh->budget_free = sub(sh->budget_free, from_budget);
	sh->vm_held = add(sh->vm_held, want);
	return POOL_GRANTED;
}

bool pool_release(struct pool *p, struct pool_share *sh, struct pool_amount r)
{
	struct pool_amount ok = amin(r, sh->vm_held);
	/* back to the pool what came from it, the rest to the budget */
	struct pool_amount to_pool = amin(ok, sh->vm_from_pool);
	p->used = sub(p->used, to_pool);
	sh->vm_from_pool = sub(sh->vm_from_pool, to_pool);
	sh->budget_free = add(sh->budget_free, sub(ok, to_pool));
	sh->vm_held = sub(sh->vm_held, ok);
	return pool_le(r, ok);
}

enum pool_answer pool_grow_claim(struct pool *p, struct pool_share *sh, const struct pv_resource *claim, char *why,
				 size_t whylen)
{
	struct pool_amount target = pool_reservation(p, claim);
	struct pool_amount extra = sub(target, sh->reserved);
	if (!pool_le(target, p->total)) {
		char a[64], t[64];
		pool_describe(target, a, sizeof(a));
		pool_describe(p->total, t, sizeof(t));
		snprintf(why, whylen,
			 "provium:claim needs %s with the runner, more than the whole pool (%s); lower the claim or raise "
			 "--mem/--vcpus",
			 a, t);
		return POOL_NEVER;
	}
	if (!pool_fits(p, extra))
		return POOL_WAIT;
	p->used = add(p->used, extra);
	sh->reserved = add(sh->reserved, extra);
	sh->budget_free = add(sh->budget_free, (struct pool_amount){ extra.memory, 0, extra.vcpus });
	return POOL_GRANTED;
}

ptrdiff_t pool_deadlock_victim(const struct pool_waiter *running, size_t n, unsigned *ret_stuck)
{
	ptrdiff_t victim = -1;
	for (size_t i = 0; i < n; i++) {
		if (running[i].fixture_waiting)
			continue;
		if (!running[i].vm_waiting)
			return -1; /* someone is still making progress */
		victim = (ptrdiff_t)i;
	}
	if (victim >= 0 && ret_stuck)
		*ret_stuck = (unsigned)n;
	return victim;
}

void pool_end_file(struct pool *p, struct pool_share *sh)
{
	p->used = sub(p->used, add(sh->reserved, sh->vm_from_pool));
	*sh = (struct pool_share){ 0 };
}

void pool_describe(struct pool_amount a, char *buf, size_t len)
{
	char m[32];
	int n = snprintf(buf, len, "%s memory", pv_format_size(a.memory, m));
	if (n < 0 || (size_t)n >= len)
		return;
	if (a.cpus)
		n += snprintf(buf + n, len - (size_t)n, ", %u cpus", a.cpus);
	if ((size_t)n < len && (a.vcpus || !a.cpus))
		snprintf(buf + n, len - (size_t)n, ", %u vCPUs", a.vcpus);
}

struct pv_resource pool_to_resource(struct pool_amount a)
{
	return (struct pv_resource){ a.memory, a.cpus };
}
