/* Every function of include/locksmith.h with hostile arguments: NULL, "", a 2 MiB string and
 * strings that are not UTF-8 for each string parameter, NULL for each pointer, and numbers at
 * their limits. Each call must return the code the header documents, leave ret_* untouched on
 * failure and never crash. Built with `pkg-config --cflags --libs locksmith` (or -I/-L) and run
 * under valgrind --error-exitcode=1 with Tests/c/swift-runtime.supp.
 *
 * usage: test_hostile_args SCRATCH_DIR
 *   SCRATCH_DIR  an empty directory used as LOCKSMITH_ROOT
 * No etcd is needed: client calls point at a closed port, and argument checks come first. */
#define _GNU_SOURCE
#include <errno.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <locksmith.h>

static int passed, failed;

#define CHECK(cond) check((cond), #cond, __LINE__)
#define CHECK_RC(call, want) check_rc((call), (want), #call, __LINE__)
/* For a call made once per hostile string: names the string in the failure message. */
#define CHECK_RC_S(call, want, s) check_rc_s((call), (want), #call, __LINE__, (s))

static void check(int ok, const char *what, int line) {
    if (ok) {
        passed++;
    } else {
        failed++;
        fprintf(stderr, "test_hostile_args.c:%d: FAILED: %s\n", line, what);
    }
}

static void check_rc(int got, int want, const char *what, int line) {
    if (got == want) {
        passed++;
    } else {
        failed++;
        fprintf(stderr, "test_hostile_args.c:%d: FAILED: %s returned %d (%s), want %d; last error: %s\n", line, what, got,
                got < 0 ? strerror(-got) : "ok", want, locksmith_last_error());
    }
}

struct hostile {
    const char *name;
    const char *s;
};

static const char *describe(const struct hostile *h) { return h->name; }

static void check_rc_s(int got, int want, const char *what, int line, const struct hostile *h) {
    if (got == want) {
        passed++;
    } else {
        failed++;
        fprintf(stderr, "test_hostile_args.c:%d: FAILED with %s: %s returned %d (%s), want %d; last error: %s\n", line,
                describe(h), what, got, got < 0 ? strerror(-got) : "ok", want, locksmith_last_error());
    }
}

/* The strings every string parameter gets. `bad` says whether the header calls it a bad argument
 * for a parameter that must be a non-empty, valid UTF-8 string of bounded length. */
enum { H_NULL, H_EMPTY, H_HUGE, H_INVALID, H_OVERLONG, H_SURROGATE, H_COUNT };
static struct hostile hostiles[H_COUNT];
static char *huge; /* 2 MiB of 'a', NUL-terminated */

static void make_hostiles(void) {
    huge = malloc((2u << 20) + 1);
    memset(huge, 'a', 2u << 20);
    huge[2u << 20] = 0;
    hostiles[H_NULL] = (struct hostile){"NULL", NULL};
    hostiles[H_EMPTY] = (struct hostile){"\"\"", ""};
    hostiles[H_HUGE] = (struct hostile){"a 2 MiB string", huge};
    hostiles[H_INVALID] = (struct hostile){"\"\\xff\\xfe\"", "\xff\xfe"};
    hostiles[H_OVERLONG] = (struct hostile){"an overlong '/'", "\xc0\xaf"};
    hostiles[H_SURROGATE] = (struct hostile){"an encoded surrogate", "\xed\xa0\x80"};
}

/* A pointer no call may write through on failure. */
#define SENTINEL ((void *)(uintptr_t)0x5a5a5a5a)

static void test_general(void) {
    CHECK(locksmith_version() != NULL);
    locksmith_free(NULL);
    CHECK(locksmith_last_error() != NULL);
}

static void test_semaphore(void) {
    locksmith_semaphore *s = SENTINEL, *good = NULL;
    char *json = SENTINEL;
    int n = -7, old = -7;

    CHECK_RC(locksmith_semaphore_new(NULL), -EINVAL);
    /* parse: NULL is a bad argument, over-long is a bad argument (the 1 MiB limit of every
     * string), anything else that is no document is -EBADMSG. */
    for (int i = 0; i < H_COUNT; i++) {
        const struct hostile *h = &hostiles[i];
        int want = (i == H_NULL || i == H_HUGE) ? -EINVAL : -EBADMSG;
        CHECK_RC_S(locksmith_semaphore_parse(h->s, &s), want, h);
        CHECK(s == SENTINEL);
        CHECK(strlen(locksmith_last_error()) < 1000);
    }
    {
        /* 200 KiB: within the argument limit, over the document limit. */
        size_t size = 200u << 10;
        char *big = malloc(size + 1);
        memset(big, ' ', size);
        memcpy(big, "{\"x\":\"", 6);
        big[size - 2] = '"';
        big[size - 1] = '}';
        big[size] = 0;
        CHECK_RC(locksmith_semaphore_parse(big, &s), -EBADMSG);
        CHECK(strstr(locksmith_last_error(), "allowed") != NULL);
        free(big);
    }
    CHECK_RC(locksmith_semaphore_parse("{}", NULL), -EINVAL);
    CHECK(s == SENTINEL);

    CHECK_RC(locksmith_semaphore_parse("{\"semaphore\":1,\"max\":1,\"holders\":null}", &good), 0);
    CHECK_RC(locksmith_semaphore_to_json(NULL, &json), -EINVAL);
    CHECK_RC(locksmith_semaphore_to_json(good, NULL), -EINVAL);
    CHECK(json == SENTINEL);

    for (int i = 0; i < H_COUNT; i++) {
        const struct hostile *h = &hostiles[i];
        CHECK_RC_S(locksmith_semaphore_lock(good, h->s), -EINVAL, h);
        CHECK_RC_S(locksmith_semaphore_unlock(good, h->s), -EINVAL, h);
        CHECK_RC_S(locksmith_semaphore_lock(NULL, h->s), -EINVAL, h);
        CHECK_RC_S(locksmith_semaphore_unlock(NULL, h->s), -EINVAL, h);
        /* "" holds no slot; every other hostile string is a bad argument. */
        CHECK_RC_S(locksmith_semaphore_is_holder(good, h->s), i == H_EMPTY ? 0 : -EINVAL, h);
        CHECK_RC_S(locksmith_semaphore_is_holder(NULL, h->s), -EINVAL, h);
    }
    CHECK_RC(locksmith_semaphore_lock(good, "a\nb"), -EINVAL);
    {
        char id[257];
        memset(id, 'x', 256);
        id[256] = 0;
        CHECK_RC(locksmith_semaphore_lock(good, id), -EINVAL);
    }
    /* The document is unchanged by all that. */
    CHECK_RC(locksmith_semaphore_to_json(good, &json), 0);
    CHECK(json != SENTINEL && strcmp(json, "{\"semaphore\":1,\"max\":1,\"holders\":null}") == 0);
    free(json);

    CHECK_RC(locksmith_semaphore_set_max(NULL, 1, &old), -EINVAL);
    CHECK_RC(locksmith_semaphore_set_max(good, -1, &old), -EINVAL);
    CHECK_RC(locksmith_semaphore_set_max(good, INT_MIN, &old), -EINVAL);
    CHECK(old == -7);
    CHECK_RC(locksmith_semaphore_set_max(good, INT_MAX, NULL), 0);
    CHECK_RC(locksmith_semaphore_get_available(good, &n), 0);
    CHECK(n == INT_MAX);
    {
        locksmith_semaphore *over = NULL;
        CHECK_RC(locksmith_semaphore_parse("{\"semaphore\":2,\"max\":1}", &over), 0);
        CHECK_RC(locksmith_semaphore_set_max(over, INT_MAX, &old), -ERANGE);
        CHECK(old == -7);
        over = locksmith_semaphore_free(over);
        CHECK(over == NULL);
    }
    n = -7;
    CHECK_RC(locksmith_semaphore_get_available(NULL, &n), -EINVAL);
    CHECK_RC(locksmith_semaphore_get_available(good, NULL), -EINVAL);
    CHECK_RC(locksmith_semaphore_get_max(NULL, &n), -EINVAL);
    CHECK_RC(locksmith_semaphore_get_max(good, NULL), -EINVAL);
    CHECK(n == -7);
    CHECK_RC(locksmith_semaphore_holder_count(NULL), -EINVAL);
    CHECK(locksmith_semaphore_holder(NULL, 0) == NULL);
    CHECK(locksmith_semaphore_holder(good, -1) == NULL);
    CHECK(locksmith_semaphore_holder(good, INT_MIN) == NULL);
    CHECK(locksmith_semaphore_holder(good, INT_MAX) == NULL);
    CHECK(locksmith_semaphore_free(NULL) == NULL);
    good = locksmith_semaphore_free(good);
}

static void test_window(void) {
    locksmith_window *w = SENTINEL, *good = NULL;
    int64_t t = -7, end = -7;
    char *a = SENTINEL, *b = SENTINEL;

    for (int i = 0; i < H_COUNT; i++) {
        const struct hostile *h = &hostiles[i];
        CHECK_RC_S(locksmith_window_parse(h->s, "1h", &w), -EINVAL, h);
        CHECK_RC_S(locksmith_window_parse("Thu 23:00", h->s, &w), -EINVAL, h);
        CHECK_RC_S(locksmith_window_parse(h->s, h->s, &w), -EINVAL, h);
        CHECK(w == SENTINEL);
        CHECK_RC_S(locksmith_duration_parse(h->s, &t), -EINVAL, h);
        CHECK(t == -7);
    }
    CHECK_RC(locksmith_window_parse("Thu 23:00", "1h", NULL), -EINVAL);
    CHECK_RC(locksmith_duration_parse("1h", NULL), -EINVAL);
    CHECK_RC(locksmith_duration_parse("9999999999999999999h", &t), -EINVAL);
    CHECK_RC(locksmith_duration_parse("-9223372036854775809ns", &t), -EINVAL);
    CHECK(t == -7);

    CHECK_RC(locksmith_window_parse("Thu 23:00", "1h", &good), 0);
    CHECK_RC(locksmith_window_seconds_to_start(NULL, 0, &t), -EINVAL);
    CHECK_RC(locksmith_window_seconds_to_start(good, 0, NULL), -EINVAL);
    CHECK_RC(locksmith_window_seconds_to_start(good, INT64_MAX, &t), -ERANGE);
    CHECK_RC(locksmith_window_seconds_to_start(good, INT64_MIN, &t), -ERANGE);
    CHECK(t == -7);
    CHECK_RC(locksmith_window_next(NULL, 0, &t, &end), -EINVAL);
    CHECK_RC(locksmith_window_next(good, 0, NULL, &end), -EINVAL);
    CHECK_RC(locksmith_window_next(good, INT64_MAX, &t, &end), -ERANGE);
    CHECK_RC(locksmith_window_next(good, INT64_MIN, &t, NULL), -ERANGE);
    CHECK(t == -7 && end == -7);
    CHECK_RC(locksmith_window_next(good, 0, &t, NULL), 0);
    CHECK_RC(locksmith_window_to_string(NULL, &a, &b), -EINVAL);
    CHECK(a == SENTINEL && b == SENTINEL);
    CHECK_RC(locksmith_window_to_string(good, NULL, NULL), 0);
    CHECK(locksmith_window_free(NULL) == NULL);
    good = locksmith_window_free(good);
}

static void write_file(const char *path, const void *data, size_t size) {
    FILE *f = fopen(path, "w");
    if (!f) {
        perror(path);
        exit(2);
    }
    fwrite(data, 1, size, f);
    fclose(f);
}

static void test_node(const char *root) {
    char path[4096], *id = SENTINEL, *key = SENTINEL;
    int64_t seconds = -7;

    setenv("LOCKSMITH_ROOT", root, 1);
    CHECK_RC(locksmith_machine_id(NULL), -EINVAL);
    CHECK_RC(locksmith_machine_id(&id), -ENOENT);
    snprintf(path, sizeof path, "%s/etc", root);
    mkdir(path, 0755);
    snprintf(path, sizeof path, "%s/etc/machine-id", root);
    write_file(path, "\xff\xfe\n", 3);
    CHECK_RC(locksmith_machine_id(&id), -EBADMSG);
    write_file(path, huge, 2u << 20);
    CHECK(locksmith_machine_id(&id) < 0);
    write_file(path, "0123456789abcdef\0" "0123456789abcdef\n", 34);
    CHECK_RC(locksmith_machine_id(&id), -EBADMSG);
    CHECK(id == SENTINEL);
    unlink(path);

    for (int i = 0; i < H_COUNT; i++) {
        const struct hostile *h = &hostiles[i];
        /* NULL and "" mean the default group. */
        int want = (i == H_NULL || i == H_EMPTY) ? 0 : -EINVAL;
        char *k = SENTINEL;
        CHECK_RC_S(locksmith_group_key(h->s, &k), want, h);
        if (want == 0) {
            CHECK(k != SENTINEL && strcmp(k, LOCKSMITH_DEFAULT_KEY) == 0);
            free(k);
        } else {
            CHECK(k == SENTINEL);
        }
        CHECK_RC_S(locksmith_group_key(h->s, NULL), -EINVAL, h);
    }
    CHECK(key == SENTINEL);

    CHECK_RC(locksmith_backoff_delay(-1, &seconds), -EINVAL);
    CHECK_RC(locksmith_backoff_delay(INT_MIN, &seconds), -EINVAL);
    CHECK(seconds == -7);
    CHECK_RC(locksmith_backoff_delay(0, NULL), -EINVAL);
    CHECK_RC(locksmith_backoff_delay(INT_MAX, &seconds), 0);
    CHECK(seconds == 300);
}

static void test_config(const char *root) {
    locksmith_config *c = SENTINEL, *good = NULL;
    const char *value = SENTINEL, *origin = SENTINEL;
    char path[4096];

    CHECK_RC(locksmith_config_load(NULL), -EINVAL);
    snprintf(path, sizeof path, "%s/etc/coreos", root);
    mkdir(path, 0755);
    snprintf(path, sizeof path, "%s/etc/coreos/update.conf", root);
    write_file(path, "GROUP=\xff\xfe\n", 9);
    CHECK_RC(locksmith_config_load(&c), -EBADMSG);
    CHECK(c == SENTINEL);
    unlink(path);

    for (int i = 0; i < H_COUNT; i++) {
        const struct hostile *h = &hostiles[i];
        /* text: "" is an empty configuration; origin: NULL and "" are fine. */
        CHECK_RC_S(locksmith_config_parse(h->s, "origin", &c), i == H_EMPTY ? 0 : -EINVAL, h);
        if (i == H_EMPTY) {
            c = locksmith_config_free(c);
            c = SENTINEL;
        }
        CHECK_RC_S(locksmith_config_parse("A=1\n", h->s, &c), (i == H_NULL || i == H_EMPTY) ? 0 : -EINVAL, h);
        if (i == H_NULL || i == H_EMPTY) {
            c = locksmith_config_free(c);
            c = SENTINEL;
        }
        CHECK(c == SENTINEL);
    }
    CHECK_RC(locksmith_config_parse("A=1\n", NULL, NULL), -EINVAL);

    CHECK_RC(locksmith_config_parse("A=1\n", NULL, &good), 0);
    for (int i = 0; i < H_COUNT; i++) {
        const struct hostile *h = &hostiles[i];
        CHECK_RC_S(locksmith_config_get(good, h->s, &value, &origin), i == H_EMPTY ? -ENOENT : -EINVAL, h);
        CHECK_RC_S(locksmith_config_get(NULL, h->s, &value, &origin), -EINVAL, h);
    }
    CHECK(value == SENTINEL && origin == SENTINEL);
    CHECK_RC(locksmith_config_get(good, "A", NULL, &origin), -EINVAL);
    CHECK_RC(locksmith_config_get(good, "A", &value, NULL), 0);
    CHECK(value != SENTINEL && strcmp(value, "1") == 0);
    CHECK(locksmith_config_free(NULL) == NULL);
    good = locksmith_config_free(good);
}

static void test_client(const char *root) {
    static const char *options[] = {"endpoint", "group", "etcd-cafile", "etcd-certfile", "etcd-keyfile",
                                    "etcd-username", "etcd-password", "etcd-password-file", "etcd-api", "timeout"};
    locksmith_client *c = NULL;
    locksmith_semaphore *s = SENTINEL;
    int old = -7;
    int64_t requests = -7, conflicts = -7;

    CHECK_RC(locksmith_client_new(NULL), -EINVAL);
    CHECK_RC(locksmith_client_new(&c), 0);
    /* Nothing listens on port 9 of loopback: a call that got past its argument checks would say
     * -ECONNREFUSED, not the code checked here. */
    CHECK_RC(locksmith_client_set(c, "endpoint", "http://127.0.0.1:9"), 0);
    CHECK_RC(locksmith_client_set(c, "timeout", "200ms"), 0);

    for (int i = 0; i < H_COUNT; i++) {
        const struct hostile *h = &hostiles[i];
        CHECK_RC_S(locksmith_client_set(NULL, "group", h->s), -EINVAL, h);
        CHECK_RC_S(locksmith_client_set(c, h->s, "x"), -EINVAL, h);
        for (size_t o = 0; o < sizeof options / sizeof options[0]; o++) {
            int want = -EINVAL;
            /* "" resets endpoint and clears the others, except for the two with a fixed syntax. */
            if (i == H_EMPTY && strcmp(options[o], "etcd-api") != 0 && strcmp(options[o], "timeout") != 0)
                want = 0;
            if (locksmith_client_set(c, options[o], h->s) != want) {
                failed++;
                fprintf(stderr, "test_hostile_args.c:%d: FAILED: client_set(%s, %s) did not return %d: %s\n", __LINE__,
                        options[o], describe(h), want, locksmith_last_error());
            } else {
                passed++;
            }
            CHECK(strlen(locksmith_client_last_error(c)) < 1000);
        }
        /* "" sent endpoint back to the defaults: point it at the closed port again. */
        CHECK_RC(locksmith_client_set(c, "endpoint", "http://127.0.0.1:9"), 0);
        CHECK_RC_S(locksmith_client_load_env(c, h->s), i == H_EMPTY ? 0 : -EINVAL, h);
        CHECK_RC_S(locksmith_client_load_env(NULL, h->s), -EINVAL, h);
        /* ids: NULL is this machine's (none under the scratch root); the rest are bad. */
        CHECK_RC_S(locksmith_client_lock(c, h->s), i == H_NULL ? -ENOENT : -EINVAL, h);
        CHECK_RC_S(locksmith_client_unlock(c, h->s), i == H_NULL ? -ENOENT : -EINVAL, h);
        CHECK_RC_S(locksmith_client_lock(NULL, h->s), -EINVAL, h);
        CHECK_RC_S(locksmith_client_unlock(NULL, h->s), -EINVAL, h);
    }
    (void)root;
    /* The settings still work after all those refusals. */
    CHECK_RC(locksmith_client_set(c, "endpoint", ""), 0);
    CHECK_RC(locksmith_client_set(c, "endpoint", "http://127.0.0.1:9"), 0);
    CHECK_RC(locksmith_client_set(c, "timeout", "200ms"), 0);

    CHECK_RC(locksmith_client_get(NULL, &s), -EINVAL);
    CHECK_RC(locksmith_client_get(c, NULL), -EINVAL);
    CHECK(s == SENTINEL);
    CHECK_RC(locksmith_client_set_max(NULL, 1, &old), -EINVAL);
    CHECK_RC(locksmith_client_set_max(c, -1, &old), -EINVAL);
    CHECK_RC(locksmith_client_set_max(c, INT_MIN, &old), -EINVAL);
    CHECK(old == -7);
    CHECK_RC(locksmith_client_wait(NULL, 0), -EINVAL);
    CHECK_RC(locksmith_client_wait(c, -1), -EINVAL);
    CHECK_RC(locksmith_client_wait(c, INT64_MIN), -EINVAL);
    CHECK(locksmith_client_last_error(NULL) != NULL && locksmith_client_last_error(NULL)[0] == 0);
    CHECK(locksmith_client_api(NULL) == NULL);
    CHECK(locksmith_client_endpoint(NULL) == NULL);
    CHECK_RC(locksmith_client_stats(NULL, &requests, &conflicts), -EINVAL);
    CHECK(requests == -7 && conflicts == -7);
    CHECK_RC(locksmith_client_stats(c, NULL, NULL), 0);
    /* A real request to the closed port: an error naming the endpoint, no crash. */
    CHECK_RC(locksmith_client_get(c, &s), -ECONNREFUSED);
    CHECK(strstr(locksmith_client_last_error(c), "127.0.0.1:9") != NULL);
    CHECK(s == SENTINEL);
    CHECK(locksmith_client_free(NULL) == NULL);
    c = locksmith_client_free(c);
}

int main(int argc, char **argv) {
    if (argc != 2) {
        fprintf(stderr, "usage: %s SCRATCH_DIR\n", argv[0]);
        return 2;
    }
    make_hostiles();
    test_general();
    test_semaphore();
    test_window();
    test_node(argv[1]);
    test_config(argv[1]);
    test_client(argv[1]);
    free(huge);
    printf("test_hostile_args: %d passed, %d failed\n", passed, failed);
    return failed ? 1 : 0;
}
