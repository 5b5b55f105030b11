/*
 * anvil.c - connection counts and event rates per client address, shared
 * by all workers.
 *
 * Postfix counts smtpd_client_connection_count_limit and the per-time-unit
 * rates (smtpd_client_auth_rate_limit, smtpd_client_connection_rate_limit,
 * smtpd_client_message_rate_limit, smtpd_client_recipient_rate_limit) in
 * its anvil server; sluice counts in a table of shared memory that the
 * master maps (MAP_SHARED | MAP_ANONYMOUS) before it forks any worker, so
 * every worker of every generation sees the same table.
 *
 * The table is cut into ANVIL_MAX_OWNERS regions of `slots` slots (only
 * the pages in use cost memory).  Each
 * worker writes only its own region (the master gives it one with
 * anvil_attach() after fork) and reads everybody's to count.  A slot is
 * one 64-bit word, (48-bit hash tag << 16) | count, plus the address
 * itself, so two addresses whose hashes collide are still told apart.
 * Slots are found by linear probing from the hash, at most PROBE_MAX of
 * them; a slot whose count fell to 0 keeps its tag and is reused.
 *
 * Rates live in a second set of regions of the same shape: a rate slot is
 * keyed by "service client" (Postfix's anvil counts per service too), its
 * word is (40-bit tag << 24) | time unit number (now / anvil_rate_time_unit,
 * 24 bits), and one more word holds four 16-bit counters, one per
 * anvil_event.  A reader adds up the slots of every region whose unit is
 * the current one.  Units are aligned to the clock (Postfix starts a
 * client's unit at its first event): either way a client can fit up to
 * twice the limit across the edge of two units.  A slot of an earlier
 * unit is stale and is reused for another client.
 *
 * The promises:
 *  - nothing here ever waits: no locks, a bounded number of probes;
 *  - a reader that sees a count also sees the whole address (the word is
 *    stored with release and loaded with acquire ordering, and re-read to
 *    catch a slot being reused under it);
 *  - the counts of a worker that died without disconnecting its clients
 *    (killed, crashed) are forgotten when the master reaps it
 *    (anvil_release()), as Postfix's anvil forgets an smtpd that is gone;
 *    so are the rates it counted (a reload that retires a worker forgets
 *    the events its sessions counted in the current unit);
 *  - a full region fails open: the connection or event is allowed,
 *    uncounted, and a warning says so (at most once a minute).
 * Two workers counting the same address at the same instant may each see
 * the other's connection or not: the limit is exact to within one.
 */
#include <errno.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/mman.h>

#include "anvil.h"
#include "log.h"

#define ADDR_WORDS	6		/* 48 bytes: an IPv6 text address fits */
#define PROBE_MAX	32
#define COUNT_MAX	0xffff
#define FULL_WARN_INTERVAL 60

struct anvil_slot {
	_Atomic uint64_t word;		/* 0: never used; else tag << 16 | count */
	_Atomic uint64_t addr[ADDR_WORDS];
	uint64_t pad;			/* one slot per 64-byte cache line */
};

#define RATE_KEY_WORDS	14		/* "service client": 111 bytes */
#define RATE_UNIT_BITS	24
#define RATE_UNIT_MASK	((1ULL << RATE_UNIT_BITS) - 1)
#define RATE_COUNT_MAX	0xffffULL

struct anvil_rate_slot {
	_Atomic uint64_t word;		/* 0: never used; else tag << 24 | unit */
	_Atomic uint64_t counts;	/* 16 bits per anvil_event */
	_Atomic uint64_t key[RATE_KEY_WORDS];	/* two cache lines a slot */
};

struct anvil_table {
	int slots;			/* per owner */
	size_t region_bytes;
	size_t rate_region_bytes;
	_Atomic uint64_t active[ANVIL_MAX_OWNERS / 64];	/* regions in use */
	struct anvil_slot *slot;	/* ANVIL_MAX_OWNERS * slots, from the
					 * second page of the mapping */
	struct anvil_rate_slot *rate;	/* ANVIL_MAX_OWNERS * slots, after them */
};

/* An address as it is compared: its tag, start slot and packed text. */
struct anvil_key {
	uint64_t tag;
	unsigned start;
	uint64_t addr[ADDR_WORDS];
};

static struct anvil_table *anvil_table;	/* shared by every process */
static int anvil_owner = -1;		/* this process' region */
static time_t anvil_full_warned;

#define WORD_TAG(w)	((w) >> 16)
#define WORD_COUNT(w)	((int)((w) & COUNT_MAX))
#define MAKE_WORD(tag, count) (((tag) << 16) | (uint64_t)(count))

int anvil_init(int slots)
{
	size_t page = (size_t)sysconf(_SC_PAGESIZE), size;
	char *map;

	if (anvil_table != NULL)
		return 0;
	if (slots <= 0 || sizeof(struct anvil_table) > page) {
		errno = EINVAL;
		return -1;
	}
	size = page + (size_t)ANVIL_MAX_OWNERS * (size_t)slots
	    * (sizeof(struct anvil_slot) + sizeof(struct anvil_rate_slot));
	map = mmap(NULL, size, PROT_READ | PROT_WRITE,
		   MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (map == MAP_FAILED)
		return -1;
	anvil_table = (struct anvil_table *)map;	/* zero-filled */
	anvil_table->slots = slots;
	anvil_table->region_bytes = (size_t)slots * sizeof(struct anvil_slot);
	anvil_table->rate_region_bytes = (size_t)slots
	    * sizeof(struct anvil_rate_slot);
	anvil_table->slot = (struct anvil_slot *)(map + page);
	anvil_table->rate = (struct anvil_rate_slot *)(map + page
	    + (size_t)ANVIL_MAX_OWNERS * anvil_table->region_bytes);
	return 0;
}

static struct anvil_slot *region(int owner)
{
	return &anvil_table->slot[(size_t)owner * (size_t)anvil_table->slots];
}

void anvil_attach(int owner)
{
	anvil_owner = -1;
	if (anvil_table == NULL || owner < 0 || owner >= ANVIL_MAX_OWNERS)
		return;
	anvil_owner = owner;
	atomic_fetch_or(&anvil_table->active[owner / 64], 1ULL << (owner % 64));
}

static struct anvil_rate_slot *rate_region(int owner)
{
	return &anvil_table->rate[(size_t)owner * (size_t)anvil_table->slots];
}

/* Zero a region of `bytes` bytes made of 64-bit words.  Giving its pages
 * back (MADV_REMOVE) both zeroes them and keeps a table that is mostly
 * idle from costing memory; when the region is not page-aligned, store
 * zeros instead. */
static void wipe_words(void *r, size_t bytes)
{
	size_t page = (size_t)sysconf(_SC_PAGESIZE);
	_Atomic uint64_t *w = r;

	if (bytes % page == 0 && (uintptr_t)r % page == 0
	    && madvise(r, bytes, MADV_REMOVE) == 0)
		return;
	for (size_t i = 0; i < bytes / sizeof *w; i++)
		atomic_store_explicit(&w[i], 0, memory_order_relaxed);
}

static void wipe_region(int owner)
{
	wipe_words(region(owner), anvil_table->region_bytes);
	wipe_words(rate_region(owner), anvil_table->rate_region_bytes);
}

void anvil_release(int owner)
{
	if (anvil_table == NULL || owner < 0 || owner >= ANVIL_MAX_OWNERS)
		return;
	atomic_fetch_and(&anvil_table->active[owner / 64],
			 ~(1ULL << (owner % 64)));
	wipe_region(owner);
	atomic_thread_fence(memory_order_release);
}

/* ---- keys ---------------------------------------------------------- */

/* FNV-1a over the text, then MurmurHash3's finalizer: FNV alone leaves
 * the high bits nearly blind to the last characters ("10.0.0.1" and
 * "10.0.0.2" would probe from the same slot). */
static uint64_t hash_addr(const char *addr)
{
	uint64_t h = 0xcbf29ce484222325ULL;

	for (const unsigned char *p = (const unsigned char *)addr; *p; p++)
		h = (h ^ *p) * 0x100000001b3ULL;
	h ^= h >> 33;
	h *= 0xff51afd7ed558ccdULL;
	h ^= h >> 33;
	h *= 0xc4ceb9fe1a85ec53ULL;
	h ^= h >> 33;
	return h;
}

static void make_key(const char *addr, struct anvil_key *k)
{
	char text[ADDR_WORDS * 8] = { 0 };
	uint64_t h = hash_addr(addr);

	k->tag = h >> 16;		/* 48 bits */
	if (k->tag == 0)
		k->tag = 1;		/* a used slot's word is never 0 */
	k->start = (unsigned)h;
	snprintf(text, sizeof text, "%s", addr);
	memcpy(k->addr, text, sizeof k->addr);
}

static bool slot_has_addr(struct anvil_slot *s, const struct anvil_key *k)
{
	for (int j = 0; j < ADDR_WORDS; j++)
		if (atomic_load_explicit(&s->addr[j], memory_order_relaxed) != k->addr[j])
			return false;
	return true;
}

static void slot_set_addr(struct anvil_slot *s, const struct anvil_key *k)
{
	for (int j = 0; j < ADDR_WORDS; j++)
		atomic_store_explicit(&s->addr[j], k->addr[j], memory_order_relaxed);
}

static struct anvil_slot *probe(struct anvil_slot *r, const struct anvil_key *k,
				int i)
{
	return &r[(k->start + (unsigned)i) % (unsigned)anvil_table->slots];
}

/* ---- reading another worker's region ------------------------------- */

static int count_in(int owner, const struct anvil_key *k)
{
	struct anvil_slot *r = region(owner), *s;
	uint64_t w;

	for (int i = 0; i < PROBE_MAX; i++) {
		s = probe(r, k, i);
		w = atomic_load_explicit(&s->word, memory_order_acquire);
		if (w == 0)
			return 0;	/* slots are filled in probe order */
		if (WORD_TAG(w) != k->tag || WORD_COUNT(w) == 0
		    || !slot_has_addr(s, k))
			continue;
		atomic_thread_fence(memory_order_acquire);
		if (atomic_load_explicit(&s->word, memory_order_relaxed) != w)
			return 0;	/* reused while we looked */
		return WORD_COUNT(w);
	}
	return 0;
}

static int count_others(const struct anvil_key *k)
{
	int total = 0;
	uint64_t bits;

	for (int o = 0; o < ANVIL_MAX_OWNERS; o++) {
		bits = atomic_load(&anvil_table->active[o / 64]);
		if (o != anvil_owner && (bits & (1ULL << (o % 64))))
			total += count_in(o, k);
	}
	return total;
}

/* ---- writing our own region (this process is its only writer) ------- */

/* The slot holding k, or NULL; *reusable gets the first free one. */
static struct anvil_slot *own_find(const struct anvil_key *k,
				   struct anvil_slot **reusable)
{
	struct anvil_slot *r = region(anvil_owner), *s;
	uint64_t w;

	*reusable = NULL;
	for (int i = 0; i < PROBE_MAX; i++) {
		s = probe(r, k, i);
		w = atomic_load_explicit(&s->word, memory_order_relaxed);
		if (w != 0 && WORD_TAG(w) == k->tag && slot_has_addr(s, k))
			return s;
		if (*reusable == NULL && WORD_COUNT(w) == 0)
			*reusable = s;
		if (w == 0)
			break;
	}
	return NULL;
}

static void warn_full(const char *what, const char *addr)
{
	time_t now = time(NULL);

	if (now - anvil_full_warned < FULL_WARN_INTERVAL)
		return;
	anvil_full_warned = now;
	msg_warn("anvil: %s table full (%d slots per worker); "
		 "not counting %s toward its limits",
		 what, anvil_table->slots, addr);
}

/* Add one for k; the new count, or 0 when there is no room. */
static int own_add(const struct anvil_key *k)
{
	struct anvil_slot *s, *reusable;
	uint64_t w;

	if ((s = own_find(k, &reusable)) != NULL) {
		w = atomic_load_explicit(&s->word, memory_order_relaxed);
		if (WORD_COUNT(w) < COUNT_MAX)
			w++;
		atomic_store_explicit(&s->word, w, memory_order_release);
		return WORD_COUNT(w);
	}
	if (reusable == NULL)
		return 0;
	slot_set_addr(reusable, k);
	atomic_store_explicit(&reusable->word, MAKE_WORD(k->tag, 1),
			      memory_order_release);
	return 1;
}

int anvil_connect(const char *addr)
{
	struct anvil_key k;
	int mine;

	if (anvil_table == NULL || anvil_owner < 0)
		return 1;
	make_key(addr, &k);
	if ((mine = own_add(&k)) == 0) {
		warn_full("connection", addr);
		return 1;
	}
	return mine + count_others(&k);
}

void anvil_disconnect(const char *addr)
{
	struct anvil_key k;
	struct anvil_slot *s, *reusable;
	uint64_t w;

	if (anvil_table == NULL || anvil_owner < 0)
		return;
	make_key(addr, &k);
	if ((s = own_find(&k, &reusable)) == NULL)
		return;			/* was not counted (table full) */
	w = atomic_load_explicit(&s->word, memory_order_relaxed);
	if (WORD_COUNT(w) > 0)
		atomic_store_explicit(&s->word, w - 1, memory_order_release);
}

/* ---- rates per (service, client) and time unit ------------------------ */

#define RATE_WORD(tag, unit)	(((tag) << RATE_UNIT_BITS) | (unit))
#define RATE_TAG(w)		((w) >> RATE_UNIT_BITS)
#define RATE_UNIT(w)		((w) & RATE_UNIT_MASK)
#define RATE_SHIFT(ev)		(16 * (unsigned)(ev))

struct anvil_rate_key {
	uint64_t tag;
	unsigned start;
	uint64_t unit;
	uint64_t key[RATE_KEY_WORDS];
};

static void make_rate_key(const char *service, const char *addr,
			  long long unit, struct anvil_rate_key *k)
{
	char text[RATE_KEY_WORDS * 8] = { 0 };
	int room = (int)sizeof text - 2 - (int)strlen(addr);
	uint64_t h;

	/* the address always fits whole; a long service name is cut */
	snprintf(text, sizeof text, "%.*s %s", room > 0 ? room : 0, service, addr);
	h = hash_addr(text);
	k->tag = h >> RATE_UNIT_BITS;	/* 40 bits */
	if (k->tag == 0)
		k->tag = 1;		/* a used slot's word is never 0 */
	k->start = (unsigned)h;
	k->unit = (uint64_t)(time(NULL) / (unit > 0 ? unit : 1)) & RATE_UNIT_MASK;
	memcpy(k->key, text, sizeof k->key);
}

static bool rate_has_key(struct anvil_rate_slot *s, const struct anvil_rate_key *k)
{
	for (int j = 0; j < RATE_KEY_WORDS; j++)
		if (atomic_load_explicit(&s->key[j], memory_order_relaxed) != k->key[j])
			return false;
	return true;
}

static struct anvil_rate_slot *rate_probe(struct anvil_rate_slot *r,
					  const struct anvil_rate_key *k, int i)
{
	return &r[(k->start + (unsigned)i) % (unsigned)anvil_table->slots];
}

/* Another worker's count of ev for k in the current unit. */
static int rate_in(int owner, const struct anvil_rate_key *k, enum anvil_event ev)
{
	struct anvil_rate_slot *r = rate_region(owner), *s;
	uint64_t w, c;

	for (int i = 0; i < PROBE_MAX; i++) {
		s = rate_probe(r, k, i);
		w = atomic_load_explicit(&s->word, memory_order_acquire);
		if (w == 0)
			return 0;	/* slots are filled in probe order */
		if (w != RATE_WORD(k->tag, k->unit) || !rate_has_key(s, k))
			continue;
		c = atomic_load_explicit(&s->counts, memory_order_relaxed);
		atomic_thread_fence(memory_order_acquire);
		if (atomic_load_explicit(&s->word, memory_order_relaxed) != w)
			return 0;	/* reused while we looked */
		return (int)((c >> RATE_SHIFT(ev)) & RATE_COUNT_MAX);
	}
	return 0;
}

/* Our slot for k (any unit), or NULL; *reusable gets the first slot that
 * is free or of an earlier unit. */
static struct anvil_rate_slot *rate_own_find(const struct anvil_rate_key *k,
					     struct anvil_rate_slot **reusable)
{
	struct anvil_rate_slot *r = rate_region(anvil_owner), *s;
	uint64_t w;

	*reusable = NULL;
	for (int i = 0; i < PROBE_MAX; i++) {
		s = rate_probe(r, k, i);
		w = atomic_load_explicit(&s->word, memory_order_relaxed);
		if (w != 0 && RATE_TAG(w) == k->tag && rate_has_key(s, k))
			return s;
		if (*reusable == NULL && (w == 0 || RATE_UNIT(w) != k->unit))
			*reusable = s;
		if (w == 0)
			break;
	}
	return NULL;
}

/* Add one ev for k in our region; our count, or 0 when there is no room. */
static int rate_own_add(const struct anvil_rate_key *k, enum anvil_event ev)
{
	struct anvil_rate_slot *s, *reusable;
	uint64_t w, c, n;

	if ((s = rate_own_find(k, &reusable)) == NULL) {
		if ((s = reusable) == NULL)
			return 0;
		/* another client's slot of an earlier unit: no reader adds
		 * it up any more, so it may change under them */
		for (int j = 0; j < RATE_KEY_WORDS; j++)
			atomic_store_explicit(&s->key[j], k->key[j], memory_order_relaxed);
		atomic_store_explicit(&s->counts, 0, memory_order_relaxed);
	}
	w = atomic_load_explicit(&s->word, memory_order_relaxed);
	c = atomic_load_explicit(&s->counts, memory_order_relaxed);
	if (w != RATE_WORD(k->tag, k->unit))
		c = 0;			/* a new unit starts at 0 */
	n = (c >> RATE_SHIFT(ev)) & RATE_COUNT_MAX;
	if (n < RATE_COUNT_MAX)
		c += 1ULL << RATE_SHIFT(ev);
	atomic_store_explicit(&s->counts, c, memory_order_release);
	atomic_store_explicit(&s->word, RATE_WORD(k->tag, k->unit),
			      memory_order_release);
	return (int)((c >> RATE_SHIFT(ev)) & RATE_COUNT_MAX);
}

int anvil_rate(const char *service, const char *addr, enum anvil_event ev,
	       long long unit)
{
	struct anvil_rate_key k;
	uint64_t bits;
	int total;

	if (anvil_table == NULL || anvil_owner < 0 || ev < 0 || ev >= ANVIL_EV_COUNT)
		return 1;
	make_rate_key(service ? service : "", addr, unit, &k);
	if ((total = rate_own_add(&k, ev)) == 0) {
		warn_full("rate", addr);
		return 1;
	}
	for (int o = 0; o < ANVIL_MAX_OWNERS; o++) {
		bits = atomic_load(&anvil_table->active[o / 64]);
		if (o != anvil_owner && (bits & (1ULL << (o % 64))))
			total += rate_in(o, &k, ev);
	}
	return total;
}
