/* failalloc.c - a test-only allocation-failure hook, preloaded into the presso
 * command (LD_PRELOAD) by tests/test_faults.c; never linked into presso.
 *
 * It interposes malloc, calloc, realloc, aligned_alloc, posix_memalign and
 * memalign (free is left to the C library: every block still comes from it)
 * and counts allocation *sites* in order of first appearance. A site is a
 * pair of return addresses, found by unwinding the stack:
 *  - presso's own call of an allocator: (that call, that call);
 *  - a library allocating for presso (strdup, fopen, SQLite, cJSON,
 *    protobuf-c, zlib, libgomp), directly or through a presso callback (the
 *    cJSON hooks of base/json_get.c, the protobuf-c allocator of the ONNX
 *    import): (the innermost library frame, the presso code that called into
 *    the library). So each presso call of strdup, sqlite3_prepare or
 *    cJSON_Parse is a site of its own: SQLite makes all its allocations from
 *    one line of its own, and cJSON through presso's hook;
 *  - an allocation with no presso code on the stack (the dynamic loader,
 *    library constructors before main, the C library at exit) is no site and
 *    never fails.
 * Glibc's own functions that allocate (strdup, fopen, qsort...) call the
 * interposed malloc: the C library supports replacing it, so those are seen.
 *
 * Environment:
 *   PRESSO_FAIL_SITE=k    the first allocation from the k-th site (1-based)
 *                         returns NULL with errno ENOMEM; every other one, and
 *                         later ones from that site, succeed.
 *   PRESSO_FAIL_REPORT=f  at exit, f receives "sites N" (the distinct sites
 *                         seen, so a test knows how far to iterate) and, in
 *                         a failing run, "failed k: SITE" as soon as the
 *                         allocation is failed (written at once, so a crash
 *                         still leaves it), SITE being "caller <- origin",
 *                         each as file+0xOFFSET (addr2line -e build/presso
 *                         0xOFFSET names the line).
 * Without PRESSO_FAIL_SITE it only counts.
 *
 * The order of sites is the order of a deterministic run: run presso with one
 * worker thread, so that two runs of the same command see the same sites in
 * the same order up to the failure.
 *
 * Built by CMake as a module library in the build without sanitizers only:
 * AddressSanitizer replaces malloc itself and must be loaded first.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <link.h>
#include <malloc.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <unwind.h>

/* glibc's allocator under its exported internal names: no dlsym, so no
 * allocation while resolving the real functions. */
extern void *__libc_malloc(size_t n);
extern void *__libc_calloc(size_t n, size_t size);
extern void *__libc_realloc(void *p, size_t n);
extern void *__libc_memalign(size_t align, size_t n);

#define TABLE_SLOTS (1u << 16) /* distinct sites held; presso has a few thousand */
#define MAX_FRAMES 96          /* deeper than any presso -> library call chain */

struct site {
	uintptr_t caller, origin; /* 0 caller: empty slot */
};

static struct site table[TABLE_SLOTS];
static unsigned n_sites;
static bool table_full;
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;

static bool ready;          /* set by the constructor: before it, count nothing */
static uintptr_t exe_lo, exe_hi; /* presso's loaded segments */
static unsigned fail_site;  /* 0: count only */
static bool failed;         /* the one failure has happened */
static const char *report_path;

/* Set while the hook itself runs on this thread: what the unwinder or the
 * report may allocate passes through uncounted. Initial-exec TLS needs no
 * allocation in a preloaded library. */
static __thread int in_hook __attribute__((tls_model("initial-exec")));

static bool in_exe(uintptr_t a)
{
	return a >= exe_lo && a < exe_hi;
}

static int find_exe(struct dl_phdr_info *info, size_t size, void *data)
{
	(void)size;
	(void)data;
	/* the first object is the main program */
	for (int i = 0; i < info->dlpi_phnum; i++) {
		const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
		if (ph->p_type != PT_LOAD)
			continue;
		uintptr_t lo = info->dlpi_addr + ph->p_vaddr, hi = lo + ph->p_memsz;
		if (!exe_lo || lo < exe_lo)
			exe_lo = lo;
		if (hi > exe_hi)
			exe_hi = hi;
	}
	return 1;
}

/* One unwinding of the stack from the allocation's caller (f1) up. */
struct walk {
	uintptr_t caller;  /* f1 */
	bool started;      /* reached f1 (the frames before it are the hook's own) */
	uintptr_t library; /* the innermost library frame from f1 up, unless f1 and
			      the frame above it are both presso's */
	uintptr_t origin;  /* the first presso frame above `library` */
	int n;
};

static _Unwind_Reason_Code walk_frame(struct _Unwind_Context *ctx, void *data)
{
	struct walk *w = data;
	uintptr_t ip = _Unwind_GetIP(ctx);
	if (!ip || ++w->n > MAX_FRAMES)
		return _URC_END_OF_STACK;
	if (!w->started) {
		if (ip == w->caller) {
			w->started = true;
			if (!in_exe(ip))
				w->library = ip;
		}
		return _URC_NO_REASON;
	}
	if (!w->library) {
		if (in_exe(ip))
			return _URC_END_OF_STACK; /* presso calling presso: a plain site */
		w->library = ip;           /* f1 is presso code a library calls back */
		return _URC_NO_REASON;
	}
	if (in_exe(ip)) {
		w->origin = ip;
		return _URC_END_OF_STACK;
	}
	return _URC_NO_REASON;
}

/* "file+0xOFFSET" of an address, into buf. */
static void describe(uintptr_t a, char *buf, size_t n)
{
	Dl_info di;
	if (dladdr((void *)a, &di) && di.dli_fname) {
		const char *base = strrchr(di.dli_fname, '/');
		base = base ? base + 1 : di.dli_fname;
		snprintf(buf, n, "%s+0x%lx", *base ? base : "presso",
			 (unsigned long)(a - (uintptr_t)di.dli_fbase - 1));
	} else {
		snprintf(buf, n, "0x%lx", (unsigned long)a);
	}
}

static void report_failure(unsigned k, uintptr_t caller, uintptr_t origin)
{
	if (!report_path)
		return;
	char a[512], b[512], line[1200];
	describe(caller, a, sizeof a);
	describe(origin, b, sizeof b);
	int len = snprintf(line, sizeof line, "failed %u: %s <- %s\n", k, a, b);
	int fd = open(report_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd >= 0) {
		ssize_t w = write(fd, line, (size_t)len);
		(void)w;
		close(fd);
	}
}

/* The slot of (caller, origin) in the table: the site, or the empty slot
 * where it goes; -1 when the table is full. Under lock. */
static long slot_of(uintptr_t caller, uintptr_t origin)
{
	uintptr_t h = (caller * 0x9E3779B97F4A7C15ull) ^ (origin * 0xC2B2AE3D27D4EB4Full);
	unsigned i = (unsigned)(h >> 40) & (TABLE_SLOTS - 1);
	for (unsigned probes = 0; probes < TABLE_SLOTS; probes++, i = (i + 1) & (TABLE_SLOTS - 1))
		if (!table[i].caller || (table[i].caller == caller && table[i].origin == origin))
			return i;
	return -1;
}

/* Whether the allocation called from `caller` must fail: finds its site
 * (see the top of the file) and counts it if it is new. */
static bool should_fail(uintptr_t caller)
{
	if (!ready || in_hook || (fail_site && __atomic_load_n(&failed, __ATOMIC_RELAXED)))
		return false;
	in_hook = 1;
	bool fail = false, known = false;
	/* a presso caller already seen as a plain site: no unwinding */
	if (in_exe(caller)) {
		pthread_mutex_lock(&lock);
		long i = slot_of(caller, caller);
		known = i >= 0 && table[i].caller;
		pthread_mutex_unlock(&lock);
	}
	uintptr_t key_a = 0, key_b = 0;
	if (!known) {
		struct walk w = {.caller = caller};
		_Unwind_Backtrace(walk_frame, &w);
		if (w.library && w.origin) {
			key_a = w.library; /* a library allocating for presso code */
			key_b = w.origin;
		} else if (in_exe(caller)) {
			key_a = key_b = caller; /* presso's own allocation */
		}
		/* else: no presso code on the stack, no site */
	}
	if (key_a) {
		pthread_mutex_lock(&lock);
		long i = slot_of(key_a, key_b);
		if (i < 0 || (!table[i].caller && n_sites >= TABLE_SLOTS / 2)) {
			table_full = true;
		} else if (!table[i].caller) {
			table[i] = (struct site){key_a, key_b};
			n_sites++;
			if (fail_site && n_sites == fail_site && !failed) {
				__atomic_store_n(&failed, true, __ATOMIC_RELAXED);
				fail = true;
			}
		}
		pthread_mutex_unlock(&lock);
		if (fail)
			report_failure(fail_site, key_a, key_b);
	}
	in_hook = 0;
	return fail;
}

#define CALLER ((uintptr_t)__builtin_return_address(0))

void *malloc(size_t n)
{
	if (should_fail(CALLER)) {
		errno = ENOMEM;
		return NULL;
	}
	return __libc_malloc(n);
}

void *calloc(size_t n, size_t size)
{
	if (should_fail(CALLER)) {
		errno = ENOMEM;
		return NULL;
	}
	return __libc_calloc(n, size);
}

void *realloc(void *p, size_t n)
{
	/* realloc(p, 0) frees: nothing to fail */
	if ((n || !p) && should_fail(CALLER)) {
		errno = ENOMEM;
		return NULL;
	}
	return __libc_realloc(p, n);
}

void *memalign(size_t align, size_t n)
{
	if (should_fail(CALLER)) {
		errno = ENOMEM;
		return NULL;
	}
	return __libc_memalign(align, n);
}

void *aligned_alloc(size_t align, size_t n)
{
	if (align == 0 || (align & (align - 1))) {
		errno = EINVAL;
		return NULL;
	}
	if (should_fail(CALLER)) {
		errno = ENOMEM;
		return NULL;
	}
	return __libc_memalign(align, n);
}

int posix_memalign(void **out, size_t align, size_t n)
{
	if (align < sizeof(void *) || (align & (align - 1)))
		return EINVAL;
	if (should_fail(CALLER))
		return ENOMEM;
	void *p = __libc_memalign(align, n);
	if (!p)
		return ENOMEM;
	*out = p;
	return 0;
}

__attribute__((constructor)) static void failalloc_init(void)
{
	in_hook = 1;
	dl_iterate_phdr(find_exe, NULL);
	const char *k = getenv("PRESSO_FAIL_SITE");
	if (k && *k)
		fail_site = (unsigned)strtoul(k, NULL, 10);
	report_path = getenv("PRESSO_FAIL_REPORT");
	/* the unwinder's first use may load or set up what it needs */
	struct walk w = {.caller = 1};
	_Unwind_Backtrace(walk_frame, &w);
	in_hook = 0;
	ready = exe_hi > exe_lo;
}

__attribute__((destructor)) static void failalloc_report(void)
{
	if (!report_path)
		return;
	in_hook = 1;
	char line[128];
	int len = snprintf(line, sizeof line, "sites %u%s\n", n_sites,
			   table_full ? " (table full: some not counted)" : "");
	int fd = open(report_path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
	if (fd >= 0) {
		ssize_t w = write(fd, line, (size_t)len);
		(void)w;
		close(fd);
	}
	in_hook = 0;
}
