/*
 * epoch.c -- the epoch record pool described in epoch.h.
 */
#include "epoch.h"

#include <ck_pr.h>
#include <sched.h>
#include <stddef.h>

#ifdef MANTIS_TSAN
void __tsan_acquire(void *addr);
void __tsan_release(void *addr);
/* One sync object for every domain: over-synchronises distinct structures
 * slightly, which can only hide races between them, never inside one. */
static char tsan_epoch_sync;
#endif

/* Where this thread found a free slot last time.  Only a hint that keeps a
 * thread on the same (cache-warm) slot; ownership is the busy flag. */
static _Thread_local unsigned int slot_hint;

void
mantis_epoch_init(mantis_epoch *e)
{
	ck_epoch_init(&e->domain);
	e->stranded = 0;
	for (unsigned int i = 0; i < MANTIS_EPOCH_POOL_SIZE; i++) {
		e->slots[i].busy = 0;
		e->slots[i].pending_bytes = 0;
		ck_epoch_register(&e->domain, &e->slots[i].rec, NULL);
	}
}

static bool
slot_try_lock(mantis_epoch_slot *s)
{
	/* Cheap load first so a busy slot's line is not pulled exclusive. */
	if (MANTIS_LOAD_ACQ(&s->busy) != 0)
		return false;
	/* Try-lock: the winner owns the slot's record until slot_unlock. */
	if (!ck_pr_cas_uint(&s->busy, 0, 1))
		return false;
	/* Acquire: the previous holder's record writes (pending stacks,
	 * n_pending) happen-before ours. */
	ck_pr_fence_lock();
	return true;
}

static void
slot_unlock(mantis_epoch_slot *s)
{
	/* Release: our record writes are visible to the next holder. */
	ck_pr_fence_unlock();
	MANTIS_STORE_REL(&s->busy, 0u);
}

static mantis_epoch_slot *
slot_acquire(mantis_epoch *e)
{
	unsigned int start = slot_hint;
	for (;;) {
		for (unsigned int n = 0; n < MANTIS_EPOCH_POOL_SIZE; n++) {
			unsigned int i = (start + n) % MANTIS_EPOCH_POOL_SIZE;
			if (slot_try_lock(&e->slots[i])) {
				slot_hint = i;
				return &e->slots[i];
			}
		}
		sched_yield(); /* more calls in flight than slots */
	}
}

mantis_epoch_slot *
mantis_epoch_enter(mantis_epoch *e)
{
	mantis_epoch_slot *s = slot_acquire(e);
	ck_epoch_begin(&s->rec, NULL);
	return s;
}

static unsigned int
slot_index(mantis_epoch *e, mantis_epoch_slot *s)
{
	return (unsigned int)(s - e->slots);
}

/* Polls held slot s (outside any section of s) and keeps its stranded
 * bit in step.  `force`: poll even below the thresholds. */
static void
slot_poll(mantis_epoch *e, mantis_epoch_slot *s, bool force)
{
	if (!force && s->rec.n_pending < MANTIS_EPOCH_POLL_PENDING &&
	    s->pending_bytes < MANTIS_EPOCH_POLL_BYTES)
		return;
	if (s->rec.n_pending != 0)
		(void)ck_epoch_poll(&s->rec); /* outside the section: may free */
	/* ck_epoch does not say which entries it ran: the byte count is
	 * known to be zero only once nothing is pending. */
	if (s->rec.n_pending == 0)
		s->pending_bytes = 0;
	uint64_t bit = (uint64_t)1 << slot_index(e, s);
	bool stuck = s->pending_bytes >= MANTIS_EPOCH_POLL_BYTES;
	bool marked = (MANTIS_LOAD_ACQ(&e->stranded) & bit) != 0;
	/* Relaxed RMW: the bit is only a hint to borrow the slot; the slot's
	 * try-lock orders every access to its record. */
	if (stuck && !marked)
		__atomic_fetch_or(&e->stranded, bit, __ATOMIC_RELAXED);
	else if (!stuck && marked)
		__atomic_fetch_and(&e->stranded, ~bit, __ATOMIC_RELAXED);
}

/* Borrows one stranded slot, if any is idle, and polls it (epoch.h, 2). */
static void
help_stranded(mantis_epoch *e)
{
	uint64_t m = MANTIS_LOAD_ACQ(&e->stranded);
	while (m != 0) {
		unsigned int i = (unsigned int)__builtin_ctzll(m);
		m &= m - 1;
		mantis_epoch_slot *s = &e->slots[i];
		if (!slot_try_lock(s))
			continue; /* its holder polls it at exit */
		slot_poll(e, s, true);
		slot_unlock(s);
		return;
	}
}

void
mantis_epoch_exit(mantis_epoch_slot *s)
{
#ifdef MANTIS_TSAN
	__tsan_release(&tsan_epoch_sync);
#endif
	ck_epoch_end(&s->rec, NULL);
	/* The record's global pointer (set at registration) is &e->domain. */
	mantis_epoch *e = (mantis_epoch *)((char *)s->rec.global -
					   offsetof(mantis_epoch, domain));
	slot_poll(e, s, false);
	slot_unlock(s);
	if (__atomic_load_n(&e->stranded, __ATOMIC_RELAXED) != 0)
		help_stranded(e);
}

bool
mantis_epoch_reclaim(mantis_epoch *e)
{
	bool clean = true;
	for (unsigned int i = 0; i < MANTIS_EPOCH_POOL_SIZE; i++) {
		mantis_epoch_slot *s = &e->slots[i];
		/* Only the holder may read the record: borrow it first. */
		if (!slot_try_lock(s)) {
			clean = false;
			continue;
		}
		slot_poll(e, s, true);
		clean = clean && s->rec.n_pending == 0;
		slot_unlock(s);
	}
	return clean;
}

void
mantis_epoch_quiesce(mantis_epoch *e)
{
	for (unsigned int i = 0; i < MANTIS_EPOCH_POOL_SIZE; i++) {
		mantis_epoch_slot *s = &e->slots[i];
		if (!slot_try_lock(s))
			continue;
		/* Grace period for everything this slot retired, then run it. */
		ck_epoch_barrier(&s->rec);
		slot_poll(e, s, true); /* n_pending is 0: clears the bookkeeping */
		slot_unlock(s);
	}
}

void
mantis_epoch_destroy(mantis_epoch *e)
{
	for (unsigned int i = 0; i < MANTIS_EPOCH_POOL_SIZE; i++) {
		ck_epoch_barrier(&e->slots[i].rec);
		e->slots[i].pending_bytes = 0;
	}
	e->stranded = 0;
}

void
mantis_epoch_before_free(void)
{
#ifdef MANTIS_TSAN
	__tsan_acquire(&tsan_epoch_sync);
#endif
}
