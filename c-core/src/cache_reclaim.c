/*
 * cache_reclaim.c -- deferred reclamation for mantis_cache: nothing a
 * reader may still hold is freed.  Interface and use in cache_reclaim.h.
 *
 * Reads execute no locked instruction and no fence:
 *   - each thread gets a dedicated reader slot (a process-wide thread id,
 *     returned to a free list when the thread exits), so no CAS to own it;
 *   - the store-load fence moves to the writer side: before a writer
 *     snapshots the readers' section counters it calls
 *     membarrier(MEMBARRIER_CMD_PRIVATE_EXPEDITED), which runs a full
 *     barrier on every thread of the process (the asymmetric fence of
 *     liburcu's urcu-memb and folly's hazard pointers).  Writers pay a
 *     syscall per reclaimed batch (POLL_EVERY retirements or poll_bytes
 *     bytes), readers pay nothing.
 * Where membarrier is missing (non-Linux, seccomp, old kernels) and in
 * TSan builds (TSan does not model membarrier), a reader's store is a
 * seq_cst exchange and the writer's barrier a seq_cst fence instead: the
 * same protocol, the textbook Dekker pairing, at ck_epoch's read cost.
 *
 * Thread safety
 * -------------
 *   - cache_reader_enter/exit: any thread, any time; a section never
 *     outlives one cache call, so a caller may move between OS threads
 *     between calls (Go goroutines do).  What a thread keeps between calls
 *     is only its slot number (cache_tl_tid).  Threads beyond
 *     CACHE_READER_SLOTS, and threads whose number was returned at exit,
 *     share CACHE_SPARE_SLOTS slots through a try-lock (a CAS per
 *     outermost read).
 *   - cache_retire / cache_grace_poll on one struct cache_grace: under the
 *     writer lock of its domain (a shard's mutex).  Different domains run
 *     in parallel; they only read the reader slots.
 *   - Host slots (CACHE_HOST_SLOTS, the last ones): written by code outside
 *     C that follows the reader protocol below on them, one owner per slot
 *     at a time (Go: the goroutine that holds P number i pinned).  Here
 *     they are only snapshotted and summed, like the others.
 *   - A nested read (from inside a view callback) finds its slot's seq odd,
 *     runs inside the outer section and leaves seq to the outer read.
 *
 * Invariants
 * ----------
 *   1. readers[i].seq is odd exactly while a section runs on slot i, and
 *      only slot i's owner writes it.  Counters are 64-bit, never wrap.
 *   2. A block on a domain's pend or wait list is unreachable from the
 *      structure (it was unlinked, with a release store, before retirement).
 *   3. A waiting batch is freed only when every slot in its snapshot has
 *      moved past the snapshotted odd value.  It leaves the domain (into a
 *      struct cache_reaped) at that moment, under the writer lock; the
 *      free itself may come after the unlock, as nothing reachable from
 *      the structure or from the domain points to it any more.
 *
 * Protocol (why nothing is freed under a reader)
 * ----------------------------------------------
 *   reader:  seq = seq + 1 (odd)  ;  BARRIER_R  ;  load pointers, deref ... ;
 *            seq = seq + 1 (even, release)
 *   writer:  unlink o (release store) ; retire o to `pend` ;  ...
 *            later, in cache_grace_poll: BARRIER_W ; snapshot every odd
 *            seq ; o's batch is freed once each snapshotted slot's seq
 *            changed (an acquire load of a different value).
 *   BARRIER_R/BARRIER_W are a compiler barrier / membarrier(), or else a
 *   seq_cst exchange (the odd store itself) / a seq_cst fence (a seq_cst
 *   RMW under TSan, which rejects fences).  The writer's unlink of o is
 *   globally visible before BARRIER_W completes (membarrier starts with a
 *   full barrier on the caller), and BARRIER_W splits each reader's
 *   instruction stream at a point P (membarrier: a full barrier on every
 *   thread, or a context switch for one not running; fence mode: the place
 *   of R's exchange relative to the fence in the single total order of
 *   seq_cst operations).  For a reader R that could dereference o:
 *     - if R's odd store is before P, the snapshot (after BARRIER_W) sees
 *       it or a later value; a section with that odd value has to end, by
 *       a release store the writer acquires, before o is freed;
 *     - if R's odd store is after P, so are R's loads, which then see the
 *       unlink: R never reaches o.
 *   A seq that changed means the snapshotted section ended; any later
 *   section began after BARRIER_W and is in the second case.  Each batch
 *   is snapshotted after all its unlinks (under the writer lock, in
 *   program order), and one batch waits per domain while the next
 *   accumulates in `pend`.
 */
#include "cache_reclaim.h"

#include "alloc.h"

#include <pthread.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#ifdef __linux__
#include <linux/membarrier.h>
#include <sys/syscall.h>
#include <unistd.h>
#endif

#if defined(__SANITIZE_THREAD__)
#define CACHE_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define CACHE_TSAN 1
#endif
#endif

/*
 * A grace-period batch closes at POLL_EVERY retirements or at
 * min(POLL_BYTES, domain budget / 16) retired bytes, whichever comes first.
 * Each batch costs one membarrier, which interrupts every CPU running one
 * of our threads (an IPI); at 1024 retirements per batch those interrupts
 * are amortised over the writes that caused them.  While readers' sections
 * are short, what waits for reclamation is at most two batches per domain
 * (pending, and waiting for the readers of its snapshot), each under
 * poll_bytes plus the block that closed it: with small entries about 1/8
 * of the budget for small caches, about 2 MiB per shard for large.
 *
 * The cap.  A long section (a view callback that blocks, the copy of a
 * very large value) keeps the waiting batch from being freed and the
 * pending one from closing, so without a bound everything retired on the
 * domain meanwhile would accumulate: an audit measured 405 MB over a 1 MiB
 * budget behind a parked view callback.  So a writer about to add memory
 * (a put) first checks pend_bytes + wait_bytes against cap_bytes, the
 * domain's budget (cache_grace_room).  Past it, the writer reclaims as RCU's
 * synchronize does: it polls with force and yields until the backlog is
 * under the cap, for at most GRACE_WAIT_NS; if a section outlasts that, or
 * the writer is itself inside a section of this cache (a put from a view
 * callback, which mantis.h forbids and which could never see its own
 * section end), it gives up and the put is refused (MANTIS_BUSY), nothing
 * changed.  A bounded wait, not an unbounded one: a callback that waits for
 * a writer of the same cache would otherwise deadlock.  Once a writer gave
 * up on a waiting batch, the next ones give up at once (gave_up) until that
 * batch is freed, so writers held up by one parked reader do not each wait
 * under the shard's lock.  Only puts are gated: a delete, a clear, an
 * expiry or an eviction retires what it unlinks from the live set, so live
 * + retired does not grow.  A domain's memory, live plus retired,
 * therefore stays under about twice its budget, whatever its readers do:
 * the budget live, the cap retired, and what one put retires past its
 * check (its evictions, at most its own charge; the value it replaces;
 * the index table a growth replaces, which is outside the budget).
 */
#define POLL_EVERY 1024
#define POLL_BYTES (1u << 20)
/* How long a writer over the cap waits for sections to end: far longer
 * than a get's section, short enough that a writer held up by a parked
 * reader answers soon. */
#define GRACE_WAIT_NS 1000000

/*
 * Thread ids: process-wide, shared by every cache.  An id returns to the
 * free set when its thread exits (the key destructor), and that thread uses
 * spare slots from then on (a later destructor may still read a cache).
 * tid_mu orders the old owner's last slot writes before the new owner's
 * first.
 */
static pthread_once_t tid_once = PTHREAD_ONCE_INIT;
static pthread_key_t tid_key;
static bool tid_key_ok;
static pthread_mutex_t tid_mu = PTHREAD_MUTEX_INITIALIZER;
static bool tid_used[CACHE_READER_SLOTS];
_Thread_local int cache_tl_tid;
/* The spare slot this thread holds (innermost), so a nested read of the
 * same cache reuses it instead of waiting for a second one. */
static _Thread_local struct cache_rslot *tl_spare;

static void
tid_release(void *v)
{
	unsigned i = (unsigned)(uintptr_t)v - 1;
	pthread_mutex_lock(&tid_mu);
	tid_used[i] = false;
	pthread_mutex_unlock(&tid_mu);
	cache_tl_tid = -1;
}

static void
tid_init(void)
{
	tid_key_ok = pthread_key_create(&tid_key, tid_release) == 0;
}

int
cache_tid_assign(void)
{
	int t = -1;
	pthread_once(&tid_once, tid_init);
	if (tid_key_ok) {
		pthread_mutex_lock(&tid_mu);
		for (unsigned i = 0; i < CACHE_READER_SLOTS; i++) {
			if (!tid_used[i]) {
				tid_used[i] = true;
				t = (int)i + 1;
				break;
			}
		}
		pthread_mutex_unlock(&tid_mu);
		if (t > 0 && pthread_setspecific(tid_key, (void *)(uintptr_t)t) != 0) {
			tid_release((void *)(uintptr_t)t);
			t = -1;
		}
	}
	cache_tl_tid = t;
	return t;
}

/*
 * Whether membarrier(PRIVATE_EXPEDITED) is usable: registered once per
 * process.  Never under TSan, which cannot see the barrier it implies.
 */
#if defined(__linux__) && defined(__NR_membarrier) && !defined(CACHE_TSAN)
#define CACHE_MEMBARRIER 1
#endif
static pthread_once_t asym_once = PTHREAD_ONCE_INIT;
static bool asym_ok;

/* MANTIS_CACHE_FENCES (set, not "0") chooses the fence protocol even where
 * membarrier works: the path of systems without it, for tests (go/cache
 * runs its reader races under it) and for comparing the two.  Read once,
 * at the first cache's creation. */
static void
asym_init(void)
{
	const char *fences = getenv("MANTIS_CACHE_FENCES");
	if (fences != NULL && fences[0] != '\0' && strcmp(fences, "0") != 0)
		return;
#ifdef CACHE_MEMBARRIER
	long q = syscall(__NR_membarrier, MEMBARRIER_CMD_QUERY, 0, 0);
	asym_ok = q > 0 && (q & MEMBARRIER_CMD_PRIVATE_EXPEDITED) != 0 &&
		  syscall(__NR_membarrier, MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED, 0, 0) == 0;
#endif
}

bool
cache_reclaim_asym(void)
{
	pthread_once(&asym_once, asym_init);
	return asym_ok;
}

/* BARRIER_W.  false: no barrier was possible, so nothing may be freed. */
static bool
writer_barrier(bool asym)
{
#ifdef CACHE_MEMBARRIER
	if (asym) {
		/* A full barrier on every thread of the process, this one too. */
		if (syscall(__NR_membarrier, MEMBARRIER_CMD_PRIVATE_EXPEDITED, 0, 0) == 0)
			return true;
		/* Registration is per address space; should it be gone,
		 * renew and retry once.  If that fails too, free nothing this
		 * time: readers do not fence, so there is no other barrier. */
		return syscall(__NR_membarrier, MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED, 0, 0) ==
			       0 &&
		       syscall(__NR_membarrier, MEMBARRIER_CMD_PRIVATE_EXPEDITED, 0, 0) == 0;
	}
#else
	(void)asym;
#endif
	/* Full barrier, pairs with the readers' seq_cst exchange (Dekker):
	 * see "Protocol".  GCC's TSan rejects atomic_thread_fence, so TSan
	 * builds use a seq_cst RMW, a full barrier on x86 and arm64. */
#ifdef CACHE_TSAN
	static _Atomic unsigned fence_word;
	atomic_fetch_add_explicit(&fence_word, 0, memory_order_seq_cst);
#else
	atomic_thread_fence(memory_order_seq_cst);
#endif
	return true;
}

struct cache_rslot *
cache_spare_acquire(struct cache_rslot *readers)
{
	const struct cache_rslot *a = tl_spare;
	if (a >= readers && a < readers + CACHE_SPARE_END)
		return tl_spare; /* nested read of this cache: seq is odd */
	for (;;) {
		for (unsigned i = CACHE_READER_SLOTS; i < CACHE_SPARE_END; i++) {
			struct cache_rslot *r = &readers[i];
			unsigned expect = 0;
			/* Acquire: the previous owner's slot writes happen first. */
			if (atomic_load_explicit(&r->busy, memory_order_relaxed) == 0 &&
			    atomic_compare_exchange_strong_explicit(&r->busy, &expect, 1,
								    memory_order_acquire,
								    memory_order_relaxed)) {
				r->outer = tl_spare;
				tl_spare = r;
				return r;
			}
		}
		/* More than CACHE_SPARE_SLOTS id-less reads in flight: let one end. */
		sched_yield();
	}
}

void
cache_spare_release(struct cache_rslot *r)
{
	tl_spare = r->outer;
	/* Release: hands the slot (seq, counters) to the next owner. */
	atomic_store_explicit(&r->busy, 0, memory_order_release);
}

void
cache_grace_init(struct cache_grace *g, uint64_t budget)
{
	g->poll_bytes = budget / 16 < POLL_BYTES ? (size_t)(budget / 16) : POLL_BYTES;
	g->cap_bytes = budget < SIZE_MAX ? (size_t)budget : SIZE_MAX;
}

void
cache_retire(struct cache_grace *g, void *b, size_t size)
{
	struct cache_retired *r = b;
	r->next = g->pend;
	r->size = size;
	g->pend = r;
	g->pend_n++;
	g->pend_bytes += size;
}

static void
free_list(struct cache_retired *r)
{
	while (r != NULL) {
		struct cache_retired *n = r->next;
		mantis_free(r, r->size);
		r = n;
	}
}

/* Has every section in the snapshot ended?  Drops those that have. */
static bool
grace_passed(struct cache_grace *g, struct cache_rslot *readers)
{
	unsigned n = g->snap_n;
	for (unsigned k = 0; k < n;) {
		/* Acquire: pairs with cache_reader_exit's release (what the
		 * section read happens before our free). */
		uint64_t q = atomic_load_explicit(&readers[g->snap_idx[k]].seq,
						  memory_order_acquire);
		if (q == g->snap_seq[k]) {
			g->snap_n = n;
			return false;
		}
		n--;
		g->snap_idx[k] = g->snap_idx[n];
		g->snap_seq[k] = g->snap_seq[n];
	}
	g->snap_n = 0;
	return true;
}

/* Hands the waiting batch (grace passed) to the caller's list. */
static void
reap_waiting(struct cache_grace *g, struct cache_retired **to)
{
	*to = g->wait;
	g->wait = NULL;
	g->wait_bytes = 0;
	g->waiting = false;
	g->gave_up = false;
}

void
cache_reaped_free(struct cache_reaped *r)
{
	free_list(r->list[0]);
	free_list(r->list[1]);
	r->list[0] = r->list[1] = NULL;
}

void
cache_grace_poll(struct cache_grace *g, struct cache_rslot *readers, bool asym, bool force,
		 struct cache_reaped *out)
{
	out->list[0] = out->list[1] = NULL;
	if (g->waiting) {
		if (!grace_passed(g, readers))
			return;
		reap_waiting(g, &out->list[0]);
	}
	if (g->pend == NULL)
		return;
	if (!force && g->pend_n < POLL_EVERY && g->pend_bytes < g->poll_bytes)
		return;
	if (!writer_barrier(asym))
		return;
	unsigned n = 0;
	for (unsigned i = 0; i < CACHE_NSLOTS; i++) {
		/* Acquire: an even value orders the slot's earlier sections
		 * before our free (pairs with cache_reader_exit). */
		uint64_t q = atomic_load_explicit(&readers[i].seq, memory_order_acquire);
		if (q & 1) {
			g->snap_idx[n] = (uint16_t)i;
			g->snap_seq[n] = q;
			n++;
		}
	}
	g->snap_n = n;
	g->wait = g->pend;
	g->wait_bytes = g->pend_bytes;
	g->pend = NULL;
	g->pend_n = 0;
	g->pend_bytes = 0;
	g->waiting = true;
	if (grace_passed(g, readers))
		reap_waiting(g, &out->list[1]);
}

void
cache_grace_free_all(struct cache_grace *g)
{
	free_list(g->pend);
	free_list(g->wait);
	g->pend = g->wait = NULL;
	g->pend_n = g->pend_bytes = g->wait_bytes = 0;
	g->waiting = g->gave_up = false;
	g->snap_n = 0;
}

/* Is a section of this cache (readers) open on the calling thread? */
static bool
own_section(const struct cache_rslot *readers)
{
	int t = cache_tl_tid;
	/* Relaxed: only this thread writes its own slot. */
	if (t > 0 && (atomic_load_explicit(&readers[t - 1].seq, memory_order_relaxed) & 1) != 0)
		return true;
	const struct cache_rslot *a = tl_spare;
	return a >= readers && a < readers + CACHE_SPARE_END;
}

static uint64_t
mono_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

bool
cache_grace_room_slow(struct cache_grace *g, struct cache_rslot *readers, bool asym)
{
	uint64_t start = 0;
	for (;;) {
		/* The rare path: what it reaps is freed under the lock. */
		struct cache_reaped done;
		cache_grace_poll(g, readers, asym, true, &done);
		cache_reaped_free(&done);
		if (!cache_grace_over_cap(g))
			return true;
		if (g->gave_up || own_section(readers))
			return false;
		if (start == 0) {
			start = mono_ns();
		} else if (mono_ns() - start > GRACE_WAIT_NS) {
			/* Only a waiting batch can hold the backlog over the
			 * cap here: the forced poll closes the pending one
			 * whenever none waits. */
			g->gave_up = g->waiting;
			return false;
		}
		sched_yield();
	}
}
