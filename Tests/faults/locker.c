/* SPDX-License-Identifier: Apache-2.0 */
/*
 * locker: many clients of liblocksmith contending for one semaphore, for the fault tests.
 *
 * Each of N threads has its own locksmith_client and id (<prefix>-NN) and loops for a duration:
 * lock (waiting with locksmith_client_wait while busy), hold a few milliseconds, unlock, and
 * sometimes pause over a second (so that the client's remembered value goes stale and the next
 * operation reads). Every call is printed as one line on stdout:
 *
 *     op <id> <lock|unlock|get> <result errno, 0 for success> <mono start> <mono end>
 *        <real start> <real end> [holder]
 *
 * times in microseconds (CLOCK_MONOTONIC and CLOCK_REALTIME); for "get" the last field says
 * whether the id was a holder (1/0). A call that fails with anything but a refusal (-EBUSY,
 * -EEXIST, -ENOENT) has an unknown outcome: the write may have been applied. The thread then
 * keeps asking until it knows: it repeats the operation, and when a lock is refused with -EBUSY
 * (which the library reports before -EEXIST, even to a holder) it reads the semaphore to see
 * whether it holds a slot after all. At the end every thread gives back what it holds and prints
 * "final <id> <0|1>": whether it believes it holds a slot (it should be 0).
 *
 * With --mode queue each thread waits for its slot in the group's fair queue
 * (locksmith_client_acquire, reported as a "lock" call) instead of lock-and-watch, holds it 20 to
 * 80 ms, and at the end also prints "jobs <id> <turns taken>".
 *
 * With --steps lock,unlock,get,... one client (id <prefix>) makes exactly those calls, once
 * each, and prints their lines: for tests that break one reply on purpose.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <locksmith.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static const char *endpoints, *api = "v3", *group = "", *prefix = "c", *timeout = "1s", *steps, *mode = "lock",
                  *queue_ttl = "60s";
static int threads = 10, duration_s = 30;
static int64_t deadline_us;
static pthread_mutex_t out_lock = PTHREAD_MUTEX_INITIALIZER;

static int64_t now_us(clockid_t clock) {
    struct timespec ts;
    clock_gettime(clock, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static void sleep_ms(int ms) {
    struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000L };
    while (nanosleep(&ts, &ts) < 0 && errno == EINTR) {}
}

struct span { int64_t m0, r0; };

static struct span begin(void) { return (struct span){ now_us(CLOCK_MONOTONIC), now_us(CLOCK_REALTIME) }; }

static void report(const char *id, const char *op, int r, struct span s, int extra, locksmith_client *c) {
    int64_t m1 = now_us(CLOCK_MONOTONIC), r1 = now_us(CLOCK_REALTIME);
    pthread_mutex_lock(&out_lock);
    printf("op %s %s %d %lld %lld %lld %lld %d", id, op, r < 0 ? -r : 0, (long long)s.m0, (long long)m1,
           (long long)s.r0, (long long)r1, extra);
    if (r < 0 && r != -EBUSY && r != -EEXIST && r != -ENOENT) {
        /* The reason, on one line, for the log only. */
        const char *e = locksmith_client_last_error(c);
        putchar(' ');
        for (; *e; e++) putchar(*e == '\n' ? ' ' : *e);
    }
    putchar('\n');
    fflush(stdout);
    pthread_mutex_unlock(&out_lock);
}

/* Whether id holds a slot, per a fresh read: 1, 0, or a negative errno. */
static int holds(locksmith_client *c, const char *id) {
    locksmith_semaphore *s = NULL;
    struct span t = begin();
    int r = locksmith_client_get(c, &s);
    int h = r < 0 ? r : locksmith_semaphore_is_holder(s, id);
    report(id, "get", r, t, h > 0, c);
    locksmith_semaphore_free(s);
    return h;
}

/* Takes a slot; returns 1 when held, 0 when the run ended first. */
static int take(locksmith_client *c, const char *id, unsigned *seed) {
    int unknown = 0;  /* a write of ours may have been applied */
    for (;;) {
        struct span t = begin();
        int r = locksmith_client_lock(c, id);
        report(id, "lock", r, t, 0, c);
        if (r == 0 || r == -EEXIST)
            return 1;
        if (r == -EBUSY) {
            if (unknown) {
                int h = holds(c, id);
                if (h > 0) return 1;
                if (h == 0) unknown = 0;
            }
            if (now_us(CLOCK_MONOTONIC) >= deadline_us && !unknown) return 0;
            locksmith_client_wait(c, 2000);
            continue;
        }
        unknown = 1;
        sleep_ms(50 + (int)(rand_r(seed) % 100));
    }
}

/* Takes a slot in turn in the queue; 1 when held (the queue mode runs until its turn comes). */
static int take_in_turn(locksmith_client *c, const char *id, unsigned *seed) {
    for (;;) {
        struct span t = begin();
        int r = locksmith_client_acquire(c, id, -1, NULL, NULL);
        report(id, "lock", r > 0 ? -EBUSY : r, t, 0, c);
        if (r == 0 || r == -EEXIST)
            return 1;
        /* An error: the slot may have been taken all the same. */
        sleep_ms(50 + (int)(rand_r(seed) % 100));
        if (holds(c, id) > 0) return 1;
    }
}

/* Gives back the slot; retried until etcd gives a definite answer. */
static void give_back(locksmith_client *c, const char *id, unsigned *seed) {
    for (;;) {
        struct span t = begin();
        int r = locksmith_client_unlock(c, id);
        report(id, "unlock", r, t, 0, c);
        if (r == 0 || r == -ENOENT) return;
        sleep_ms(50 + (int)(rand_r(seed) % 100));
    }
}

static locksmith_client *make_client(const char *id);

static void *run(void *arg) {
    int n = (int)(intptr_t)arg;
    char id[64];
    snprintf(id, sizeof id, "%s-%02d", prefix, n);
    unsigned seed = (unsigned)(now_us(CLOCK_REALTIME) ^ (n * 7919));
    locksmith_client *c = make_client(id);
    int queue = !strcmp(mode, "queue"), turns = 0;
    while (now_us(CLOCK_MONOTONIC) < deadline_us) {
        if (queue ? !take_in_turn(c, id, &seed) : !take(c, id, &seed)) break;
        turns++;
        sleep_ms(queue ? 20 + (int)(rand_r(&seed) % 60) : 1 + (int)(rand_r(&seed) % 8));
        give_back(c, id, &seed);
        /* Mostly straight back in line; one time in ten a pause long enough that what the
         * client remembers goes stale. */
        sleep_ms(rand_r(&seed) % 10 == 0 ? 1100 + (int)(rand_r(&seed) % 900) : (int)(rand_r(&seed) % 5));
    }
    pthread_mutex_lock(&out_lock);
    printf("final %s 0\n", id);
    if (queue) printf("jobs %s %d\n", id, turns);
    fflush(stdout);
    pthread_mutex_unlock(&out_lock);
    int64_t requests = -1, conflicts = -1;
    if (locksmith_client_stats(c, &requests, &conflicts) < 0) requests = conflicts = -1;
    pthread_mutex_lock(&out_lock);
    printf("stats %s %lld %lld\n", id, (long long)requests, (long long)conflicts);
    fflush(stdout);
    pthread_mutex_unlock(&out_lock);
    locksmith_client_free(c);
    return NULL;
}

static locksmith_client *make_client(const char *id) {
    locksmith_client *c = NULL;
    int r = locksmith_client_new(&c);
    if (r >= 0) r = locksmith_client_set(c, "endpoint", endpoints);
    if (r >= 0) r = locksmith_client_set(c, "etcd-api", api);
    if (r >= 0) r = locksmith_client_set(c, "group", group);
    if (r >= 0) r = locksmith_client_set(c, "timeout", timeout);
    if (r >= 0) r = locksmith_client_set(c, "queue-ttl", queue_ttl);
    if (r < 0) {
        fprintf(stderr, "locker: %s: %s\n", id, locksmith_last_error());
        exit(1);
    }
    return c;
}

/* One client, the given calls in order. */
static int run_steps(void) {
    locksmith_client *c = make_client(prefix);
    char *list = strdup(steps), *save = NULL;
    for (char *step = strtok_r(list, ",", &save); step; step = strtok_r(NULL, ",", &save)) {
        struct span t = begin();
        if (!strcmp(step, "lock")) report(prefix, step, locksmith_client_lock(c, prefix), t, 0, c);
        else if (!strcmp(step, "unlock")) report(prefix, step, locksmith_client_unlock(c, prefix), t, 0, c);
        else if (!strcmp(step, "get")) holds(c, prefix);
        else { fprintf(stderr, "locker: unknown step '%s' (lock, unlock, get)\n", step); return 2; }
    }
    free(list);
    locksmith_client_free(c);
    return 0;
}

static void usage(void) {
    fprintf(stderr, "usage: locker --endpoints URLS [--api v2|v3] [--threads N] [--duration SECONDS]\n"
                    "              [--group G] [--prefix ID] [--timeout DURATION] [--mode lock|queue]\n"
                    "              [--queue-ttl DURATION] [--steps lock,unlock,get,...]\n");
    exit(2);
}

int main(int argc, char **argv) {
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!v) usage();
        if (!strcmp(a, "--endpoints")) endpoints = v;
        else if (!strcmp(a, "--api")) api = v;
        else if (!strcmp(a, "--group")) group = v;
        else if (!strcmp(a, "--prefix")) prefix = v;
        else if (!strcmp(a, "--timeout")) timeout = v;
        else if (!strcmp(a, "--steps")) steps = v;
        else if (!strcmp(a, "--mode")) mode = v;
        else if (!strcmp(a, "--queue-ttl")) queue_ttl = v;
        else if (!strcmp(a, "--threads")) threads = atoi(v);
        else if (!strcmp(a, "--duration")) duration_s = atoi(v);
        else { fprintf(stderr, "locker: unknown option %s\n", a); usage(); }
        i++;
    }
    if (!endpoints || threads < 1 || threads > 1000 || duration_s < 1 || (strcmp(mode, "lock") && strcmp(mode, "queue"))) usage();
    if (steps) return run_steps();
    deadline_us = now_us(CLOCK_MONOTONIC) + (int64_t)duration_s * 1000000;
    pthread_t t[1000];
    for (int i = 0; i < threads; i++)
        if (pthread_create(&t[i], NULL, run, (void *)(intptr_t)(i + 1)) != 0) {
            perror("locker: pthread_create");
            return 1;
        }
    for (int i = 0; i < threads; i++) pthread_join(t[i], NULL);
    return 0;
}
