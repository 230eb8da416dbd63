/* Lock+unlock latency through liblocksmith, one client (one reused connection).
 * usage: etcd_latency ENDPOINT API ITERATIONS   prints one line per iteration: microseconds */
#include <locksmith.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static long long now_us(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1000000LL + ts.tv_nsec / 1000;
}

int main(int argc, char **argv) {
    locksmith_client *c = NULL;
    if (argc != 4) return 2;
    int n = atoi(argv[3]);
    if (locksmith_client_new(&c) < 0 || locksmith_client_set(c, "endpoint", argv[1]) < 0 ||
        locksmith_client_set(c, "etcd-api", argv[2]) < 0 || locksmith_client_set(c, "group", "bench-latency") < 0)
        return 1;
    locksmith_semaphore *s = NULL;
    if (locksmith_client_get(c, &s) < 0) { fprintf(stderr, "%s\n", locksmith_client_last_error(c)); return 1; }
    locksmith_semaphore_free(s);
    for (int i = 0; i < n; i++) {
        long long t = now_us();
        if (locksmith_client_lock(c, "bench-node") < 0 || locksmith_client_unlock(c, "bench-node") < 0) {
            fprintf(stderr, "%s\n", locksmith_client_last_error(c));
            return 1;
        }
        printf("%lld\n", now_us() - t);
    }
    locksmith_client_free(c);
    return 0;
}
