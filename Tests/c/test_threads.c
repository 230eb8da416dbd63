/* The thread-safety promises of include/locksmith.h, tested from many threads at once: functions
 * that take no object may be called from any thread, an object may be used on one thread while
 * other objects are used on others, and locksmith_last_error() is per thread. Every thread
 * compares its results with the ones the main thread computed alone beforehand. The clients'
 * first requests all start together, so libcurl is loaded by many threads at the same moment.
 * Last, one more thread cancels the other threads' clients while they wait on them
 * (locksmith_client_cancel is the one client function any thread may call).
 * Tests/harness/test-sanitizers runs it under ThreadSanitizer and under AddressSanitizer.
 *
 * usage: test_threads ROOT_DIR ETCD_ENDPOINT
 *   ROOT_DIR       an empty scratch directory used as LOCKSMITH_ROOT
 *   ETCD_ENDPOINT  a running etcd (v2 enabled)
 */
#define _GNU_SOURCE
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <locksmith.h>

#define THREADS 16
#define ROUNDS 100
#define MACHINE_ID "0123456789abcdef0123456789abcdef"

/* Computed by the main thread before any other thread starts; read-only afterwards. */
static struct {
    const char *version;
    int64_t window_start[ROUNDS], window_end[ROUNDS], window_seconds[ROUNDS];
} expected;

/* 2026-03-01 00:00 UTC; the rounds step through a week of hours around the spring-forward of
 * 2026-03-08 in America/Los_Angeles, so the windows cross a daylight-saving change. */
static const int64_t first_now = 1772323200;
static int64_t round_now(int r) { return first_now + (int64_t)r * 7 * 3600; }

static pthread_barrier_t barrier;
/* The cancel phase: the workers and the canceller (THREADS + 1) meet here. */
static pthread_barrier_t cancel_barrier;
/* Each worker's client for the cancel phase, published before the first cancel_barrier. */
static locksmith_client *to_cancel[THREADS];
static const char *endpoint;
static char run_id[32];

struct worker {
    int index;
    pthread_t thread;
    int checks, failures;
    int race_result; /* of the race for the one slot of the shared group */
};

static void fail(struct worker *w, int line, const char *format, ...) {
    va_list ap;
    char message[512];
    va_start(ap, format);
    vsnprintf(message, sizeof message, format, ap);
    va_end(ap);
    /* One fprintf per line, so that lines of different threads do not interleave. */
    fprintf(stderr, "test_threads.c:%d: thread %d: FAILED: %s\n", line, w->index, message);
    w->failures++;
}

#define EXPECT(w, cond, ...) \
    do { (w)->checks++; if (!(cond)) fail((w), __LINE__, __VA_ARGS__); } while (0)
#define EXPECT_RC(w, call, want) \
    do { int rc_ = (call); (w)->checks++; \
         if (rc_ != (want)) fail((w), __LINE__, "%s returned %d, want %d (last error: %s)", #call, rc_, (want), \
                                 locksmith_last_error()); } while (0)

static void wait_for_all(void) {
    int r = pthread_barrier_wait(&barrier);
    if (r != 0 && r != PTHREAD_BARRIER_SERIAL_THREAD) {
        fprintf(stderr, "pthread_barrier_wait: %s\n", strerror(r));
        abort();
    }
}

/* Each thread's failure message must survive the other threads' failures. */
static void last_error_per_thread(struct worker *w) {
    char mine[64];
    int64_t seconds = 0;
    for (int round = 0; round < 3; round++) {
        int attempt = -(w->index * 10 + round + 1);
        snprintf(mine, sizeof mine, "attempt is negative: %d", attempt);
        EXPECT_RC(w, locksmith_backoff_delay(attempt, &seconds), -EINVAL);
        wait_for_all(); /* every thread has now failed with its own message */
        EXPECT(w, strcmp(locksmith_last_error(), mine) == 0, "last error is \"%s\", want \"%s\"",
               locksmith_last_error(), mine);
        wait_for_all();
    }
}

/* Functions without objects, and objects of this thread's own, many times over. */
static void objects_of_its_own(struct worker *w) {
    char id[32], json[256], want[256], group[32], key[256], text[64], origin[32], bad[32];
    for (int r = 0; r < ROUNDS; r++) {
        EXPECT(w, locksmith_version() == expected.version, "locksmith_version() changed");

        /* semaphore */
        locksmith_semaphore *s = NULL;
        char *out = NULL;
        snprintf(json, sizeof json, "{\"semaphore\":2,\"max\":3,\"holders\":[\"t%d-held\"],\"thread\":%d}", w->index, w->index);
        EXPECT_RC(w, locksmith_semaphore_parse(json, &s), 0);
        snprintf(id, sizeof id, "t%d-r%d", w->index, r);
        EXPECT_RC(w, locksmith_semaphore_lock(s, id), 0);
        EXPECT_RC(w, locksmith_semaphore_to_json(s, &out), 0);
        snprintf(want, sizeof want, "{\"semaphore\":1,\"max\":3,\"holders\":[\"t%d-held\",\"%s\"],\"thread\":%d}",
                 w->index, id, w->index);
        EXPECT(w, out && strcmp(out, want) == 0, "to_json gave %s, want %s", out ? out : "(null)", want);
        free(out);
        EXPECT_RC(w, locksmith_semaphore_unlock(s, id), 0);
        EXPECT_RC(w, locksmith_semaphore_is_holder(s, id), 0);
        s = locksmith_semaphore_free(s);
        snprintf(bad, sizeof bad, "[\"t%d\"", w->index);
        EXPECT_RC(w, locksmith_semaphore_parse(bad, &s), -EBADMSG);
        EXPECT(w, s == NULL, "a failed parse wrote its out-parameter");

        /* window: the same answers as the main thread got alone */
        locksmith_window *win = NULL;
        int64_t start = 0, end = 0, seconds = 0;
        EXPECT_RC(w, locksmith_window_parse("Sun 02:30", "1h30m", &win), 0);
        EXPECT_RC(w, locksmith_window_next(win, round_now(r), &start, &end), 0);
        EXPECT_RC(w, locksmith_window_seconds_to_start(win, round_now(r), &seconds), 0);
        EXPECT(w, start == expected.window_start[r] && end == expected.window_end[r] && seconds == expected.window_seconds[r],
               "round %d: window %" PRId64 "..%" PRId64 " in %" PRId64 ", alone it was %" PRId64 "..%" PRId64 " in %" PRId64,
               r, start, end, seconds, expected.window_start[r], expected.window_end[r], expected.window_seconds[r]);
        win = locksmith_window_free(win);

        /* duration, backoff, group key, machine id */
        int64_t ns = 0, delay = 0;
        EXPECT_RC(w, locksmith_duration_parse("1h30m", &ns), 0);
        EXPECT(w, ns == INT64_C(5400000000000), "1h30m is %" PRId64 " ns", ns);
        EXPECT_RC(w, locksmith_backoff_delay(r % 12, &delay), 0);
        int64_t want_delay = (INT64_C(5) << (r % 12)) > 300 ? 300 : (INT64_C(5) << (r % 12));
        EXPECT(w, delay == want_delay, "backoff %d is %" PRId64 ", want %" PRId64, r % 12, delay, want_delay);
        snprintf(group, sizeof group, "grp/t%d", w->index);
        char *k = NULL;
        EXPECT_RC(w, locksmith_group_key(group, &k), 0);
        snprintf(key, sizeof key, LOCKSMITH_KEY_PREFIX "/groups/grp%%2Ft%d/semaphore", w->index);
        EXPECT(w, k && strcmp(k, key) == 0, "group key %s, want %s", k ? k : "(null)", key);
        free(k);
        char *mid = NULL;
        EXPECT_RC(w, locksmith_machine_id(&mid), 0);
        EXPECT(w, mid && strcmp(mid, MACHINE_ID) == 0, "machine id %s", mid ? mid : "(null)");
        free(mid);

        /* configuration */
        locksmith_config *c = NULL;
        const char *value = NULL, *from = NULL;
        snprintf(text, sizeof text, "# thread %d\nGROUP=\"t%d\"\n", w->index, w->index);
        snprintf(origin, sizeof origin, "thread-%d", w->index);
        EXPECT_RC(w, locksmith_config_parse(text, origin, &c), 0);
        EXPECT_RC(w, locksmith_config_get(c, "GROUP", &value, &from), 0);
        snprintf(want, sizeof want, "t%d", w->index);
        EXPECT(w, value && from && strcmp(value, want) == 0 && strcmp(from, origin) == 0, "GROUP is %s from %s",
               value ? value : "(null)", from ? from : "(null)");
        c = locksmith_config_free(c);
        EXPECT_RC(w, locksmith_config_load(&c), 0);
        c = locksmith_config_free(c);
    }
}

static locksmith_client *client_for(struct worker *w, const char *group) {
    locksmith_client *c = NULL;
    EXPECT_RC(w, locksmith_client_new(&c), 0);
    if (!c) return NULL;
    EXPECT_RC(w, locksmith_client_set(c, "endpoint", endpoint), 0);
    EXPECT_RC(w, locksmith_client_set(c, "group", group), 0);
    EXPECT_RC(w, locksmith_client_set(c, "etcd-api", w->index % 2 ? "v3" : "v2"), 0);
    EXPECT_RC(w, locksmith_client_set(c, "timeout", "10s"), 0);
    return c;
}

/* A client per thread: first a group of its own, then one slot that every thread of the same
 * etcd API tries to take at the same moment (exactly one may get it). */
static void clients(struct worker *w) {
    char group[64], id[32];
    snprintf(group, sizeof group, "%s-t%d", run_id, w->index);
    snprintf(id, sizeof id, "t%d", w->index);

    wait_for_all(); /* every thread's first request at once: libcurl is loaded by one of them */
    locksmith_client *c = client_for(w, group);
    if (!c) return;
    locksmith_semaphore *s = NULL;
    int old_max = 0;
    EXPECT_RC(w, locksmith_client_set_max(c, 2, &old_max), 0); /* a free slot left: a second lock is -EEXIST */
    EXPECT(w, old_max == 1, "a new group's max is %d", old_max);
    EXPECT_RC(w, locksmith_client_lock(c, id), 0);
    EXPECT_RC(w, locksmith_client_get(c, &s), 0);
    EXPECT(w, s && locksmith_semaphore_is_holder(s, id) == 1, "%s does not hold its own group's slot", id);
    s = locksmith_semaphore_free(s);
    EXPECT_RC(w, locksmith_client_lock(c, id), -EEXIST);
    EXPECT(w, strcmp(locksmith_client_last_error(c), "holder exists") == 0, "client error \"%s\"",
           locksmith_client_last_error(c));
    EXPECT_RC(w, locksmith_client_unlock(c, id), 0);
    const char *api = locksmith_client_api(c);
    EXPECT(w, api && strcmp(api, w->index % 2 ? "v3" : "v2") == 0, "api %s", api ? api : "(null)");
    c = locksmith_client_free(c);

    snprintf(group, sizeof group, "%s-race", run_id);
    c = client_for(w, group);
    if (!c) return;
    wait_for_all();
    w->race_result = locksmith_client_lock(c, id);
    w->checks++;
    if (w->race_result == -EBUSY) {
        EXPECT(w, strcmp(locksmith_client_last_error(c), "semaphore is at 0") == 0, "client error \"%s\"",
               locksmith_client_last_error(c));
    } else if (w->race_result != 0) {
        fail(w, __LINE__, "the race for the slot ended with %d (%s)", w->race_result, locksmith_client_last_error(c));
    }
    wait_for_all(); /* everyone has tried: the winner gives the slot back */
    if (w->race_result == 0) EXPECT_RC(w, locksmith_client_unlock(c, id), 0);
    locksmith_client_free(c);
}

static void wait_for_cancel_phase(void) {
    int r = pthread_barrier_wait(&cancel_barrier);
    if (r != 0 && r != PTHREAD_BARRIER_SERIAL_THREAD) {
        fprintf(stderr, "pthread_barrier_wait: %s\n", strerror(r));
        abort();
    }
}

static uint64_t monotonic_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* Each worker waits 30 s on its own group while the canceller thread cancels its client: the
 * wait ends with -ECANCELED (at once if the cancel came first), and after the owner takes the
 * cancel back the client works again. */
static void cancelled_by_another_thread(struct worker *w) {
    char group[64];
    snprintf(group, sizeof group, "%s-cancel-t%d", run_id, w->index);
    locksmith_client *c = client_for(w, group);
    locksmith_semaphore *s = NULL;
    if (c) EXPECT_RC(w, locksmith_client_get(c, &s), 0);
    s = locksmith_semaphore_free(s);
    to_cancel[w->index] = c;
    wait_for_cancel_phase(); /* every client is published */
    if (c) {
        uint64_t start = monotonic_ms();
        EXPECT_RC(w, locksmith_client_wait(c, 30000), -ECANCELED);
        EXPECT(w, monotonic_ms() - start < 10000, "the cancelled wait took %llu ms", (unsigned long long)(monotonic_ms() - start));
    }
    wait_for_cancel_phase(); /* the canceller is done with every client */
    if (!c) return;
    EXPECT_RC(w, locksmith_client_get(c, &s), -ECANCELED);
    EXPECT_RC(w, locksmith_client_cancel(c, 0), 0);
    EXPECT_RC(w, locksmith_client_get(c, &s), 0);
    s = locksmith_semaphore_free(s);
    locksmith_client_free(c);
}

static void *run(void *arg) {
    struct worker *w = arg;
    last_error_per_thread(w);
    objects_of_its_own(w);
    clients(w);
    cancelled_by_another_thread(w);
    return NULL;
}

/* The canceller: once every worker has published its client, a moment for them to begin
 * waiting, then cancels each. */
static void *cancel_all(void *arg) {
    struct worker *w = arg;
    wait_for_cancel_phase();
    usleep(300000);
    for (int i = 0; i < THREADS; i++)
        if (to_cancel[i]) EXPECT_RC(w, locksmith_client_cancel(to_cancel[i], 1), 0);
    wait_for_cancel_phase();
    return NULL;
}

int main(int argc, char **argv) {
    if (argc != 3) {
        fprintf(stderr, "usage: %s ROOT_DIR ETCD_ENDPOINT\n", argv[0]);
        return 2;
    }
    endpoint = argv[2];
    snprintf(run_id, sizeof run_id, "threads-%ld", (long)getpid());

    /* The environment is set up before any thread starts: getenv is only read from then on. */
    char path[4096];
    snprintf(path, sizeof path, "%s/etc", argv[1]);
    if (mkdir(path, 0755) < 0 && errno != EEXIST) { perror(path); return 2; }
    snprintf(path, sizeof path, "%s/etc/machine-id", argv[1]);
    FILE *f = fopen(path, "w");
    if (!f || fputs(MACHINE_ID "\n", f) < 0 || fclose(f) != 0) { perror(path); return 2; }
    setenv("LOCKSMITH_ROOT", argv[1], 1);
    setenv("TZ", "America/Los_Angeles", 1);
    tzset();

    if (strcmp(locksmith_last_error(), "") != 0) {
        fprintf(stderr, "last error before any failure is \"%s\"\n", locksmith_last_error());
        return 1;
    }
    expected.version = locksmith_version();
    locksmith_window *win = NULL;
    if (locksmith_window_parse("Sun 02:30", "1h30m", &win) < 0) { fprintf(stderr, "%s\n", locksmith_last_error()); return 1; }
    for (int r = 0; r < ROUNDS; r++) {
        if (locksmith_window_next(win, round_now(r), &expected.window_start[r], &expected.window_end[r]) < 0 ||
            locksmith_window_seconds_to_start(win, round_now(r), &expected.window_seconds[r]) < 0) {
            fprintf(stderr, "%s\n", locksmith_last_error());
            return 1;
        }
    }
    locksmith_window_free(win);

    static struct worker workers[THREADS], canceller = {.index = THREADS};
    pthread_barrier_init(&barrier, NULL, THREADS);
    pthread_barrier_init(&cancel_barrier, NULL, THREADS + 1);
    for (int i = 0; i < THREADS; i++) {
        workers[i].index = i;
        int r = pthread_create(&workers[i].thread, NULL, run, &workers[i]);
        if (r != 0) { fprintf(stderr, "pthread_create: %s\n", strerror(r)); return 2; }
    }
    int r = pthread_create(&canceller.thread, NULL, cancel_all, &canceller);
    if (r != 0) { fprintf(stderr, "pthread_create: %s\n", strerror(r)); return 2; }
    int checks = 0, failures = 0, winners[2] = {0, 0};
    for (int i = 0; i < THREADS; i++) {
        pthread_join(workers[i].thread, NULL);
        checks += workers[i].checks;
        failures += workers[i].failures;
        if (workers[i].race_result == 0) winners[i % 2]++;
    }
    pthread_join(canceller.thread, NULL);
    checks += canceller.checks;
    failures += canceller.failures;
    pthread_barrier_destroy(&barrier);
    pthread_barrier_destroy(&cancel_barrier);
    for (int api = 0; api < 2; api++) {
        checks++;
        if (winners[api] != 1) {
            failures++;
            fprintf(stderr, "test_threads.c: FAILED: %d %s clients took the one slot, want exactly 1\n", winners[api],
                    api ? "v3" : "v2");
        }
    }
    printf("C API from %d threads: %d passed, %d failed\n", THREADS, checks - failures, failures);
    return failures ? 1 : 0;
}
