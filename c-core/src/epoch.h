/*
 * epoch.h -- private: a pool of Concurrency Kit epoch records, so that every
 * public call of a concurrent structure runs exactly one epoch section on a
 * record it borrows for the duration of the call.
 *
 * Why a pool and not a thread-local record: a Go goroutine may run two
 * consecutive cgo calls on different OS threads, and an OS thread may be
 * shared by many goroutines.  A thread-local record would tie reclamation
 * progress to threads the core does not control (and leak a record per
 * short-lived thread, since ck_epoch records can never be destroyed).  A
 * fixed pool bounds the records the epoch scan walks, and a record is held
 * only between mantis_epoch_enter and mantis_epoch_exit inside one call, so
 * no epoch section outlives a call.
 *
 * Thread safety: enter/exit/retire may run on any number of threads.  A
 * slot is owned exclusively between enter and exit (a try-lock flag per
 * slot), which is what makes the single-producer ck_epoch_call safe.  When
 * every slot is busy enter spins (yielding): that needs more than
 * MANTIS_EPOCH_POOL_SIZE calls in flight at once.  destroy is
 * single-threaded.  Nested sections on one thread (a view callback calling
 * get) borrow a second slot; they must not call quiesce (it would wait for
 * the caller's own section).
 *
 * TSan: Debian's libck is built without TSan instrumentation, so TSan cannot
 * see the happens-before edge "reader leaves its section -> ck_epoch_poll
 * observes it -> callback frees".  Builds with TSan annotate that edge
 * explicitly: a release on a sync object at section exit and an acquire
 * before any reclaim callback frees (mantis_epoch_before_free).  That
 * describes the real ordering ck_epoch provides; it hides no other access.
 */
#ifndef MANTIS_EPOCH_H
#define MANTIS_EPOCH_H

#include <ck_epoch.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#if defined(__SANITIZE_THREAD__)
#define MANTIS_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define MANTIS_TSAN 1
#endif
#endif

/*
 * Atomic loads and stores of shared words.  ck_pr_load/ck_pr_store are
 * volatile accesses, which TSan treats as plain ones and would report as
 * racing with ck_pr CAS; the C11 builtins with acquire/release compile to
 * the same plain mov on x86-64, give the ordering dependent loads need on
 * weaker CPUs, and are visible to TSan.  CAS and fences stay ck_pr.
 */
#define MANTIS_LOAD_ACQ(p) __atomic_load_n((p), __ATOMIC_ACQUIRE)
#define MANTIS_STORE_REL(p, v) __atomic_store_n((p), (v), __ATOMIC_RELEASE)

#define MANTIS_EPOCH_POOL_SIZE 64
/* A holder polls (tries to advance the epoch and free) once this many
 * retirements are pending on its slot: amortises the scan of all slots. */
#define MANTIS_EPOCH_POLL_PENDING 64
/* ... or once this many retired bytes are: a count alone lets 63 retired
 * 4 MiB values (252 MiB) sit on one slot indefinitely. */
#define MANTIS_EPOCH_POLL_BYTES ((size_t)1 << 20)

/*
 * Reclamation progress (why memory comes back after deletes):
 *  1. A holder polls its own slot at exit once it has POLL_PENDING entries
 *     or POLL_BYTES bytes pending.  With no other section running, one
 *     poll frees everything pending on the slot.
 *  2. If that poll cannot free enough (a concurrent section pins an older
 *     epoch), the slot's bit in `stranded` is set as it is released.  A
 *     slot may then go idle forever (threads keep to their own slots), so
 *     every exit that finds a bit set borrows one such slot with its
 *     try-lock, as enter does (a slot's pending list is touched only by its
 *     holder), polls it and clears its bit once it is below the threshold.
 *     So stranded memory is freed within a bounded number of calls after
 *     the pinning section ends.
 *  3. mantis_epoch_reclaim polls every idle slot with anything pending
 *     (the maintenance path: it also frees what is below the thresholds).
 * What can stay pending without a stranded bit is below the thresholds on
 * each slot: at most POOL_SIZE * POLL_BYTES plus POLL_PENDING small
 * objects per slot, until the next poll of that slot.
 */
typedef struct mantis_epoch_slot {
	ck_epoch_record_t rec; /* cache-line aligned by CK */
	unsigned int busy;     /* 0 free, 1 held; CAS try-lock */
	size_t pending_bytes;  /* retired, not known freed; holder only */
} mantis_epoch_slot;

typedef struct mantis_epoch {
	ck_epoch_t domain;
	/* Bit i: slot i was released with >= POLL_BYTES it could not free.
	 * Set and cleared (atomic or/and) only by slot i's holder; read by
	 * every exit (a relaxed load of a line that rarely changes). */
	uint64_t stranded;
	mantis_epoch_slot slots[MANTIS_EPOCH_POOL_SIZE];
} mantis_epoch;

/* Registers every slot.  `e` must be 64-byte aligned (CK_CC_CACHELINE). */
void mantis_epoch_init(mantis_epoch *e);

/* Borrows a slot and begins its epoch section.  Never fails. */
mantis_epoch_slot *mantis_epoch_enter(mantis_epoch *e);

/* Ends the section, polls when enough is pending, returns the slot. */
void mantis_epoch_exit(mantis_epoch_slot *s);

/* Defers cb(entry) until no section that may see the object is running.
 * Only between enter and exit on the same slot.  `bytes` is the size cb
 * will free (a hint that drives polling; it need not be exact). */
static inline void
mantis_epoch_retire(mantis_epoch_slot *s, ck_epoch_entry_t *entry,
		    ck_epoch_cb_t *cb, size_t bytes)
{
	ck_epoch_call(&s->rec, entry, cb);
	s->pending_bytes += bytes;
}

/* Polls every idle slot that has anything pending, without waiting for a
 * grace period: frees whatever no running section can still see.  Any
 * thread, outside any section; never blocks.  Returns true when every
 * slot it could borrow was left with nothing pending. */
bool mantis_epoch_reclaim(mantis_epoch *e);

/* Waits for a grace period and runs every pending callback of every slot
 * that is idle.  Any thread, outside any section. */
void mantis_epoch_quiesce(mantis_epoch *e);

/* Runs every pending callback; no other call may be running. */
void mantis_epoch_destroy(mantis_epoch *e);

/* Call first thing in every reclaim callback (TSan edge, see above). */
void mantis_epoch_before_free(void);

#endif /* MANTIS_EPOCH_H */
