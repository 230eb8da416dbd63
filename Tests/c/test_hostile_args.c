/* Every function of include/locksmith.h with hostile arguments: NULL, "", a 2 MiB string and
 * strings that are not UTF-8 for each string parameter, NULL for each pointer, and numbers at
 * their limits (every unknown flag bit of the LOCKSMITH_2 functions, deadlines up to
 * UINT64_MAX). Each call must return the code the header documents, leave ret_* untouched on
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
#include <sys/wait.h>
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

/* An absolute path of 2 MiB: longer than any path, and than any argument may be. */
static char *huge_root;

static void make_huge_root(void) {
    huge_root = malloc((2u << 20) + 1);
    memset(huge_root, 'a', 2u << 20);
    huge_root[0] = '/';
    huge_root[2u << 20] = 0;
}

/* Whether locksmith_client_set_deadline(c, usec) returns 0 in a child process (which then
 * exits); a crash or another result is a failed check here, not the end of the run. */
static int survives_set_deadline(locksmith_client *c, uint64_t usec) {
    fflush(NULL);
    pid_t pid = fork();
    if (pid < 0) {
        perror("fork");
        exit(2);
    }
    if (pid == 0)
        _exit(locksmith_client_set_deadline(c, usec) == 0 ? 0 : 1);
    int status = 0;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
    if (WIFEXITED(status) && WEXITSTATUS(status) == 0) {
        passed++;
        return 1;
    }
    failed++;
    if (WIFSIGNALED(status))
        fprintf(stderr, "test_hostile_args.c:%d: FAILED: locksmith_client_set_deadline(c, %llu) was killed by signal %d (%s)\n",
                __LINE__, (unsigned long long)usec, WTERMSIG(status), strsignal(WTERMSIG(status)));
    else
        fprintf(stderr, "test_hostile_args.c:%d: FAILED: locksmith_client_set_deadline(c, %llu) did not return 0\n", __LINE__,
                (unsigned long long)usec);
    return 0;
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

    /* locksmith_machine_id_at: NULL is "/"; every other hostile root is not an absolute path. */
    for (int i = 0; i < H_COUNT; i++) {
        const struct hostile *h = &hostiles[i];
        if (i == H_NULL) {
            int r = locksmith_machine_id_at(NULL, &id);
            CHECK(r == 0 || r == -ENOENT || r == -EBADMSG); /* whatever this machine has */
            if (r == 0) {
                CHECK(id != SENTINEL && strlen(id) == 32);
                free(id);
                id = SENTINEL;
            }
        } else {
            CHECK_RC_S(locksmith_machine_id_at(h->s, &id), -EINVAL, h);
        }
        CHECK_RC_S(locksmith_machine_id_at(h->s, NULL), -EINVAL, h);
        CHECK(id == SENTINEL);
    }
    CHECK_RC(locksmith_machine_id_at(huge_root, &id), -EINVAL);
    CHECK_RC(locksmith_machine_id_at("/tmp/\xff\xfe", &id), -EINVAL);
    CHECK_RC(locksmith_machine_id_at("etc/..", &id), -EINVAL);
    CHECK_RC(locksmith_machine_id_at(root, &id), -ENOENT); /* machine-id was removed above */
    CHECK(id == SENTINEL);

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

    /* locksmith_config_load_at: the same file under an explicit root; NULL is "/"; every other
     * hostile root is not an absolute path; every flag but LOCKSMITH_NO_ENVIRONMENT is unknown. */
    write_file(path, "GROUP=\xff\xfe\n", 9);
    CHECK_RC(locksmith_config_load_at(root, 0, &c), -EBADMSG);
    CHECK_RC(locksmith_config_load_at(root, LOCKSMITH_NO_ENVIRONMENT, &c), -EBADMSG);
    unlink(path);
    for (int i = 0; i < H_COUNT; i++) {
        const struct hostile *h = &hostiles[i];
        if (i == H_NULL) {
            CHECK_RC_S(locksmith_config_load_at(NULL, LOCKSMITH_NO_ENVIRONMENT, &c), 0, h);
            c = locksmith_config_free(c);
            c = SENTINEL;
        } else {
            CHECK_RC_S(locksmith_config_load_at(h->s, 0, &c), -EINVAL, h);
            CHECK_RC_S(locksmith_config_load_at(h->s, LOCKSMITH_NO_ENVIRONMENT, &c), -EINVAL, h);
        }
        CHECK_RC_S(locksmith_config_load_at(h->s, 0, NULL), -EINVAL, h);
        CHECK(c == SENTINEL);
    }
    CHECK_RC(locksmith_config_load_at(huge_root, 0, &c), -EINVAL);
    CHECK_RC(locksmith_config_load_at("/tmp/\xff\xfe", 0, &c), -EINVAL);
    CHECK_RC(locksmith_config_load_at("etc", 0, &c), -EINVAL);
    for (int bit = 1; bit < 64; bit++) {
        uint64_t flags = UINT64_C(1) << bit;
        if (locksmith_config_load_at(root, flags, &c) != -EINVAL || locksmith_config_load_at(root, flags | LOCKSMITH_NO_ENVIRONMENT, &c) != -EINVAL) {
            failed++;
            fprintf(stderr, "test_hostile_args.c:%d: FAILED: config_load_at with flag bit %d did not return -EINVAL\n", __LINE__, bit);
        } else {
            passed++;
        }
    }
    CHECK_RC(locksmith_config_load_at(root, UINT64_MAX, &c), -EINVAL);
    CHECK_RC(locksmith_config_load_at(NULL, UINT64_MAX, NULL), -EINVAL);
    CHECK(c == SENTINEL);
    CHECK_RC(locksmith_config_load_at(root, LOCKSMITH_NO_ENVIRONMENT, &good), 0);
    good = locksmith_config_free(good);

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
                                    "etcd-username", "etcd-password", "etcd-password-file", "etcd-api", "timeout",
                                    "proxy"};
    locksmith_client *c = NULL;
    locksmith_semaphore *s = SENTINEL;
    int old = -7;
    int64_t requests = -7, conflicts = -7;

    CHECK_RC(locksmith_client_new(NULL), -EINVAL);
    /* locksmith_client_new_with_flags: every flag but LOCKSMITH_NO_ENVIRONMENT is unknown. */
    CHECK_RC(locksmith_client_new_with_flags(0, NULL), -EINVAL);
    CHECK_RC(locksmith_client_new_with_flags(LOCKSMITH_NO_ENVIRONMENT, NULL), -EINVAL);
    {
        locksmith_client *unmade = SENTINEL;
        for (int bit = 1; bit < 64; bit++) {
            uint64_t flags = UINT64_C(1) << bit;
            if (locksmith_client_new_with_flags(flags, &unmade) != -EINVAL ||
                locksmith_client_new_with_flags(flags | LOCKSMITH_NO_ENVIRONMENT, &unmade) != -EINVAL) {
                failed++;
                fprintf(stderr, "test_hostile_args.c:%d: FAILED: client_new_with_flags with flag bit %d did not return -EINVAL\n", __LINE__, bit);
            } else {
                passed++;
            }
        }
        CHECK_RC(locksmith_client_new_with_flags(UINT64_MAX, &unmade), -EINVAL);
        CHECK_RC(locksmith_client_new_with_flags(UINT64_MAX, NULL), -EINVAL);
        CHECK(unmade == SENTINEL);
    }
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
    /* A refused proxy is named without its credentials; no control characters or spaces. */
    CHECK_RC(locksmith_client_set(c, "proxy", "ftp://user:s3cret@proxy.example"), -EINVAL);
    CHECK(strstr(locksmith_client_last_error(c), "s3cret") == NULL);
    CHECK_RC(locksmith_client_set(c, "proxy", "http://proxy.example\r\nHost: evil"), -EINVAL);
    CHECK_RC(locksmith_client_set(c, "proxy", "http://proxy example"), -EINVAL);
    CHECK_RC(locksmith_client_set(c, "proxy", "proxy.example:3128"), -EINVAL);
    CHECK_RC(locksmith_client_set(c, "proxy", ""), 0);
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
    /* locksmith_client_read: NULL arguments; ret untouched on failure. */
    CHECK_RC(locksmith_client_read(NULL, &s), -EINVAL);
    CHECK_RC(locksmith_client_read(c, NULL), -EINVAL);
    CHECK_RC(locksmith_client_read(c, &s), -ECONNREFUSED);
    CHECK(s == SENTINEL);

    /* locksmith_client_set_deadline: any number is a time; 0 is none. Each value is tried in a
     * child process first, so that a crash is one failed check rather than the end of the run. */
    static const uint64_t deadlines[] = {0, 1, 1000000, INT64_MAX, UINT64_C(1) << 63,
                                         UINT64_MAX - 999, UINT64_MAX - 998, UINT64_MAX - 1, UINT64_MAX};
    CHECK_RC(locksmith_client_set_deadline(NULL, 0), -EINVAL);
    CHECK_RC(locksmith_client_set_deadline(NULL, UINT64_MAX), -EINVAL);
    for (size_t i = 0; i < sizeof deadlines / sizeof deadlines[0]; i++) {
        uint64_t usec = deadlines[i];
        if (!survives_set_deadline(c, usec))
            continue;
        CHECK_RC(locksmith_client_set_deadline(c, usec), 0);
        /* None or far ahead: the request is made and refused; at boot (long past): none is made. */
        int want = usec == 1 || usec == 1000000 ? -ETIMEDOUT : -ECONNREFUSED;
        if (locksmith_client_get(c, &s) != want) {
            failed++;
            fprintf(stderr, "test_hostile_args.c:%d: FAILED: client_get after set_deadline(%llu) did not return %d: %s\n",
                    __LINE__, (unsigned long long)usec, want, locksmith_client_last_error(c));
        } else {
            passed++;
        }
    }
    CHECK(s == SENTINEL);
    CHECK(locksmith_client_free(NULL) == NULL);
    c = locksmith_client_free(c);

    /* The same checks come first for a client made without the environment. */
    /* Its NULL id is the machine id under "/": a request to the closed port if this machine
     * has one, else the machine id's error. */
    char *system_id = NULL;
    int no_id = locksmith_machine_id_at(NULL, &system_id);
    free(system_id);
    CHECK_RC(locksmith_client_new_with_flags(LOCKSMITH_NO_ENVIRONMENT, &c), 0);
    CHECK_RC(locksmith_client_set(c, "endpoint", "http://127.0.0.1:9"), 0);
    for (int i = 0; i < H_COUNT; i++) {
        const struct hostile *h = &hostiles[i];
        CHECK_RC_S(locksmith_client_set(c, "proxy", h->s), i == H_EMPTY ? 0 : -EINVAL, h);
        CHECK_RC_S(locksmith_client_lock(c, h->s), i != H_NULL ? -EINVAL : no_id == 0 ? -ECONNREFUSED : no_id, h);
    }
    CHECK_RC(locksmith_client_read(c, NULL), -EINVAL);
    CHECK_RC(locksmith_client_read(c, &s), -ECONNREFUSED);
    CHECK(s == SENTINEL);
    c = locksmith_client_free(c);
}

int main(int argc, char **argv) {
    if (argc != 2) {
        fprintf(stderr, "usage: %s SCRATCH_DIR\n", argv[0]);
        return 2;
    }
    /* The _at functions take absolute roots only. */
    char *scratch = realpath(argv[1], NULL);
    if (!scratch) {
        perror(argv[1]);
        return 2;
    }
    make_hostiles();
    make_huge_root();
    test_general();
    test_semaphore();
    test_window();
    test_node(scratch);
    test_config(scratch);
    test_client(scratch);
    free(scratch);
    free(huge);
    free(huge_root);
    printf("test_hostile_args: %d passed, %d failed\n", passed, failed);
    return failed ? 1 : 0;
}
