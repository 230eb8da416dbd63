/* Contention: CLIENTS threads, each with its own client, take and give back a slot ROUNDS
 * times with max MAX, waiting with the watch when no slot is free. Prints the total time,
 * compare-and-swap retries per successful lock, and etcd requests per successful lock.
 * usage: etcd_contention ENDPOINT API CLIENTS ROUNDS MAX */
#include <errno.h>
#include <locksmith.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static const char *endpoint, *api;
static int rounds;
static char group[64];
static int64_t total_requests, total_conflicts, total_locks, failures;
static pthread_mutex_t mutex = PTHREAD_MUTEX_INITIALIZER;

static void *worker(void *arg) {
    long i = (long)arg;
    char id[32];
    locksmith_client *c = NULL;
    int locks = 0, r = 0;
    snprintf(id, sizeof id, "node-%ld", i);
    if (locksmith_client_new(&c) < 0 || locksmith_client_set(c, "endpoint", endpoint) < 0 ||
        locksmith_client_set(c, "etcd-api", api) < 0 || locksmith_client_set(c, "group", group) < 0)
        goto out;
    while (locks < rounds) {
        r = locksmith_client_lock(c, id);
        if (r == -EBUSY) {
            if (locksmith_client_wait(c, 5000) < 0) break;
            continue;
        }
        if (r < 0 || locksmith_client_unlock(c, id) < 0) break;
        locks++;
    }
out:;
    int64_t requests = 0, conflicts = 0;
    if (locksmith_client_stats(c, &requests, &conflicts) < 0) requests = conflicts = 0;
    pthread_mutex_lock(&mutex);
    total_requests += requests;
    total_conflicts += conflicts;
    total_locks += locks;
    if (locks < rounds) {
        failures++;
        fprintf(stderr, "%s: %s\n", id, locksmith_client_last_error(c));
    }
    pthread_mutex_unlock(&mutex);
    locksmith_client_free(c);
    return NULL;
}

int main(int argc, char **argv) {
    if (argc != 6) return 2;
    endpoint = argv[1];
    api = argv[2];
    int clients = atoi(argv[3]), max = atoi(argv[5]);
    rounds = atoi(argv[4]);
    snprintf(group, sizeof group, "bench-contention-%s-%ld", api, (long)time(NULL));
    locksmith_client *setup = NULL;
    if (locksmith_client_new(&setup) < 0 || locksmith_client_set(setup, "endpoint", endpoint) < 0 ||
        locksmith_client_set(setup, "etcd-api", api) < 0 || locksmith_client_set(setup, "group", group) < 0 ||
        locksmith_client_set_max(setup, max, NULL) < 0) { fprintf(stderr, "%s\n", locksmith_client_last_error(setup)); return 1; }
    locksmith_client_free(setup);

    pthread_t *threads = calloc(clients, sizeof *threads);
    struct timespec a, b;
    clock_gettime(CLOCK_MONOTONIC, &a);
    for (long i = 0; i < clients; i++) pthread_create(&threads[i], NULL, worker, (void *)i);
    for (int i = 0; i < clients; i++) pthread_join(threads[i], NULL);
    clock_gettime(CLOCK_MONOTONIC, &b);
    double seconds = (b.tv_sec - a.tv_sec) + (b.tv_nsec - a.tv_nsec) / 1e9;
    printf("%s: %d clients x %d lock/unlock, max %d: %.2f s, %lld locks, %.2f CAS retries per lock, "
           "%.1f etcd requests per lock (lock, unlock and waits), %lld clients failed\n",
           api, clients, rounds, max, seconds, (long long)total_locks,
           total_locks ? (double)total_conflicts / total_locks : 0.0,
           total_locks ? (double)total_requests / total_locks : 0.0, (long long)failures);
    free(threads);
    return failures ? 1 : 0;
}
