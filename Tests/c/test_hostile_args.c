/* Every function of include/locksmith.h with hostile arguments: NULL, "", a 2 MiB string and
 * strings that are not UTF-8 for each string parameter, NULL for each pointer and handle, and
 * numbers at their limits (every unknown flag bit of the LOCKSMITH_2 functions, deadlines up to
 * UINT64_MAX, indexes from INT_MIN to INT_MAX); and hostile values where the library reads
 * them itself (the environment, update.conf, the reboot-slot record). Each call must return the code the header documents, leave ret_* untouched on
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
/* A borrowed string that must be there and equal want. */
#define CHECK_STR_OK(got, want) check((got) != NULL && strcmp((got), (want)) == 0, #got " is \"" want "\"", __LINE__)

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

/* text with control characters as \xNN, for failure messages (a static buffer). */
static const char *visible(const char *text) {
    static char out[1024];
    size_t o = 0;
    for (const unsigned char *p = (const unsigned char *)text; *p && o + 5 < sizeof out; p++) {
        if (*p < 0x20 || *p == 0x7f)
            o += (size_t)snprintf(out + o, sizeof out - o, "\\x%02x", *p);
        else
            out[o++] = (char)*p;
    }
    out[o] = 0;
    return out;
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
        CHECK_RC_S(locksmith_client_unlock_record(c, h->s, 1), i == H_NULL ? -ENOENT : -EINVAL, h);
        CHECK_RC_S(locksmith_client_unlock_record(NULL, h->s, 1), -EINVAL, h);
    }
    CHECK_RC(locksmith_client_unlock_record(c, "an-id", INT64_MIN), -EINVAL);
    CHECK_RC(locksmith_client_unlock_record(c, "an-id", -1), -EINVAL);
    CHECK(locksmith_holder_records_key(NULL, INT32_MIN) == NULL);
    CHECK(locksmith_holder_records_revision(NULL, INT32_MAX) == -1);
    CHECK_RC(locksmith_holder_records_ignored(NULL, -1), -EINVAL);
    CHECK_RC(locksmith_client_queue_all(NULL, NULL), -EINVAL);
    CHECK_RC(locksmith_client_get_all(NULL, NULL, NULL, NULL), -EINVAL);
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

/* ---- Version 2, continued: what programs need ---------------------------------------------- */

static void test_text_functions(const char *root) {
    char *s = SENTINEL;

    /* locksmith_root: only ret can be bad; an odd $LOCKSMITH_ROOT is passed on exactly or
     * refused, never changed into another path. */
    CHECK_RC(locksmith_root(NULL), -EINVAL);
    static const char *roots[] = {"/tmp/\xff\xfe", "/tmp/\xc0\xaf", "relative", "/a\nb"};
    for (size_t i = 0; i < sizeof roots / sizeof roots[0]; i++) {
        setenv("LOCKSMITH_ROOT", roots[i], 1);
        s = SENTINEL;
        int r = locksmith_root(&s);
        if (r == 0) {
            if (strcmp(s, roots[i]) != 0) {
                failed++;
                fprintf(stderr, "test_hostile_args.c:%d: FAILED: LOCKSMITH_ROOT=\"%s\" became the root \"%s\"\n", __LINE__,
                        roots[i], s);
            } else {
                passed++;
            }
            free(s);
        } else {
            CHECK(r == -EINVAL && s == SENTINEL);
        }
    }
    setenv("LOCKSMITH_ROOT", huge_root, 1);
    s = SENTINEL;
    int r = locksmith_root(&s);
    CHECK(r == -EINVAL || (r == 0 && strcmp(s, huge_root) == 0));
    if (r == 0)
        free(s);
    setenv("LOCKSMITH_ROOT", root, 1);
    s = SENTINEL;

    /* locksmith_duration_format: every number is a duration. */
    static const int64_t durations[] = {INT64_MIN, INT64_MIN + 1, -1, 0, 1, 999, 1000, INT64_MAX - 1, INT64_MAX};
    for (size_t i = 0; i < sizeof durations / sizeof durations[0]; i++) {
        char *text = SENTINEL;
        int64_t back = 0;
        CHECK_RC(locksmith_duration_format(durations[i], &text), 0);
        CHECK(text != SENTINEL && strlen(text) > 0 && strlen(text) < 40);
        /* Go's syntax reads it back, except INT64_MIN's magnitude, which is one too large */
        if (text != SENTINEL && durations[i] != INT64_MIN) {
            CHECK_RC(locksmith_duration_parse(text, &back), 0);
            CHECK(back == durations[i]);
        }
        if (text != SENTINEL)
            free(text);
        CHECK_RC(locksmith_duration_format(durations[i], NULL), -EINVAL);
    }

    /* locksmith_json_quote: NULL and over-long are bad; anything else is quoted, as valid
     * UTF-8 JSON without control characters. */
    for (int i = 0; i < H_COUNT; i++) {
        const struct hostile *h = &hostiles[i];
        char *q = SENTINEL;
        int want = (i == H_NULL || i == H_HUGE) ? -EINVAL : 0;
        CHECK_RC_S(locksmith_json_quote(h->s, &q), want, h);
        if (want == 0 && q != SENTINEL) {
            size_t n = strlen(q);
            CHECK(n >= 2 && q[0] == '"' && q[n - 1] == '"');
            int clean = 1;
            for (size_t k = 0; k < n; k++)
                if ((unsigned char)q[k] < 0x20 || (unsigned char)q[k] == 0xff || (unsigned char)q[k] == 0xfe ||
                    (unsigned char)q[k] == 0xc0)
                    clean = 0;
            CHECK(clean);
            free(q);
        } else {
            CHECK(q == SENTINEL);
        }
        CHECK_RC_S(locksmith_json_quote(h->s, NULL), -EINVAL, h);
    }
    {
        /* 1 MiB of control characters: each becomes six bytes. */
        size_t n = 1u << 20;
        char *controls = malloc(n + 1), *q = NULL;
        memset(controls, '\x01', n);
        controls[n] = 0;
        CHECK_RC(locksmith_json_quote(controls, &q), 0);
        CHECK(q && strlen(q) == n * 6 + 2);
        free(q);
        free(controls);
    }

    /* locksmith_client_option_name: NULL for every number outside 0..12. */
    static const int out_of_range[] = {INT_MIN, -2, -1, 13, 14, 1000, INT_MAX};
    for (size_t i = 0; i < sizeof out_of_range / sizeof out_of_range[0]; i++)
        CHECK(locksmith_client_option_name(out_of_range[i]) == NULL);
    for (int i = 0; i <= 12; i++)
        CHECK(locksmith_client_option_name(i) != NULL);
    /* locksmith_client_option_help: -EINVAL outside 0..12, outputs untouched; NULL outputs fine. */
    for (size_t i = 0; i < sizeof out_of_range / sizeof out_of_range[0]; i++) {
        const char *v = "sentinel", *d = "sentinel";
        CHECK(locksmith_client_option_help(out_of_range[i], &v, &d) == -EINVAL);
        CHECK(strcmp(v, "sentinel") == 0 && strcmp(d, "sentinel") == 0);
    }
    for (int i = 0; i <= 12; i++)
        CHECK(locksmith_client_option_help(i, NULL, NULL) == 0);

    /* locksmith_key_group: NULL, "", over-long, not UTF-8: -EINVAL; ret untouched. */
    for (int i = 0; i < H_COUNT; i++) {
        const struct hostile *h = &hostiles[i];
        char *group = SENTINEL;
        CHECK_RC_S(locksmith_key_group(h->s, &group), -EINVAL, h);
        CHECK(group == SENTINEL);
        CHECK_RC_S(locksmith_key_group(h->s, NULL), -EINVAL, h);
    }
    {
        char *group = SENTINEL;
        static const char *not_keys[] = {
            LOCKSMITH_KEY_PREFIX, LOCKSMITH_KEY_PREFIX "/", LOCKSMITH_KEY_PREFIX "/groups//semaphore",
            LOCKSMITH_KEY_PREFIX "/groups/a/b", LOCKSMITH_KEY_PREFIX "/groups/%zz/semaphore",
            LOCKSMITH_KEY_PREFIX "/groups/%ff/semaphore", LOCKSMITH_KEY_PREFIX "/groups/%/semaphore",
            LOCKSMITH_KEY_PREFIX "/groups/a\nb/semaphore", LOCKSMITH_KEY_PREFIX "/groups/\x01/semaphore",
            "semaphore", "/",
        };
        for (size_t i = 0; i < sizeof not_keys / sizeof not_keys[0]; i++) {
            if (locksmith_key_group(not_keys[i], &group) != -EINVAL) {
                failed++;
                fprintf(stderr, "test_hostile_args.c:%d: FAILED: locksmith_key_group(\"%s\") is not -EINVAL\n", __LINE__,
                        visible(not_keys[i]));
                if (group != SENTINEL)
                    free(group);
                group = SENTINEL;
            } else {
                passed++;
            }
        }
        CHECK(group == SENTINEL);
        CHECK_RC(locksmith_key_group(LOCKSMITH_DEFAULT_KEY, &group), 0);
        CHECK(group != SENTINEL && strcmp(group, "") == 0);
        free(group);
    }
}

static void test_config_warnings(void) {
    locksmith_config *c = NULL;

    CHECK_RC(locksmith_config_warning_count(NULL), -EINVAL);
    static const int indexes[] = {INT_MIN, -1, 0, 1, INT_MAX};
    for (size_t i = 0; i < sizeof indexes / sizeof indexes[0]; i++)
        CHECK(locksmith_config_warning(NULL, indexes[i]) == NULL);
    /* Lines that are not assignments: long ones, control characters. */
    size_t n = 512u << 10;
    char *text = malloc(n + 64);
    memset(text, 'x', n);
    strcpy(text + n, "\n\x01\x02\x7f\nA=1\n");
    CHECK_RC(locksmith_config_parse(text, "origin", &c), 0);
    CHECK_RC(locksmith_config_warning_count(c), 2);
    CHECK_RC(locksmith_config_line(c, "A"), 3); /* after a 512 KiB line and a line of control characters */
    for (int i = 0; i < H_COUNT; i++) CHECK_RC_S(locksmith_config_line(c, hostiles[i].s), hostiles[i].s && !hostiles[i].s[0] ? -ENOENT : -EINVAL, &hostiles[i]);
    CHECK(locksmith_config_warning(c, 0) != NULL && locksmith_config_warning(c, 1) != NULL);
    /* no raw control character reaches a warning */
    const char *w = locksmith_config_warning(c, 1);
    CHECK(w && !strchr(w, '\x01') && !strchr(w, '\x02'));
    for (size_t i = 0; i < sizeof indexes / sizeof indexes[0]; i++) {
        if (indexes[i] == 0 || indexes[i] == 1)
            continue;
        CHECK(locksmith_config_warning(c, indexes[i]) == NULL);
    }
    c = locksmith_config_free(c);
    free(text);
}

static void test_client_settings(void) {
    locksmith_client *c = NULL;
    locksmith_config *conf = NULL;
    const char *value = SENTINEL, *origin = SENTINEL;

    CHECK_RC(locksmith_client_new(&c), 0);
    CHECK_RC(locksmith_config_parse("LOCKSMITHD_GROUP=web\n", "/etc/coreos/update.conf", &conf), 0);
    for (int i = 0; i < H_COUNT; i++) {
        const struct hostile *h = &hostiles[i];
        CHECK_RC_S(locksmith_client_load_settings(c, h->s, conf), -EINVAL, h);
        CHECK_RC_S(locksmith_client_load_settings(c, h->s, NULL), -EINVAL, h);
        CHECK_RC_S(locksmith_client_load_settings(NULL, h->s, conf), -EINVAL, h);
    }
    /* Prefixes that are not upper-case variable names. */
    static const char *prefixes[] = {"lower", "A-B", "A B", "A=B", "A\nB", "\xc3\x89T\xc3\x89"};
    for (size_t i = 0; i < sizeof prefixes / sizeof prefixes[0]; i++)
        CHECK_RC(locksmith_client_load_settings(c, prefixes[i], conf), -EINVAL);
    /* Nothing was set by the refusals. */
    for (int i = 0; i <= 10; i++)
        CHECK_RC(locksmith_client_setting(c, i, &value, &origin), -ENOENT);
    CHECK(value == SENTINEL && origin == SENTINEL);

    /* Values that are not UTF-8 in the environment: refused as locksmith_client_set refuses
     * them (-EINVAL, naming the variable), never read as another group. */
    static const char *bad_values[] = {"\xff\xfe", "\xc0\xaf", "\xed\xa0\x80"};
    for (size_t i = 0; i < sizeof bad_values / sizeof bad_values[0]; i++) {
        locksmith_client *d = NULL;
        setenv("LOCKSMITHHOSTILE_GROUP", bad_values[i], 1);
        CHECK_RC(locksmith_client_new(&d), 0);
        int r = locksmith_client_load_settings(d, "LOCKSMITHHOSTILE", NULL);
        if (r != -EINVAL || !strstr(locksmith_client_last_error(d), "LOCKSMITHHOSTILE_GROUP")) {
            const char *shown = NULL;
            if (locksmith_client_setting(d, 1, &shown, NULL) < 0) shown = NULL;
            failed++;
            fprintf(stderr, "test_hostile_args.c:%d: FAILED: LOCKSMITHHOSTILE_GROUP=<bad value %zu>: load_settings returned %d, "
                    "the group is now \"%s\" (key %s)\n", __LINE__, i, r, shown ? shown : "(unset)",
                    locksmith_client_key(d) ? locksmith_client_key(d) : "(null)");
        } else {
            passed++;
        }
        locksmith_client_free(d);
    }
    unsetenv("LOCKSMITHHOSTILE_GROUP");
    /* 2 MiB in a variable: refused with a message of bounded size. */
    setenv("LOCKSMITHHOSTILE_ENDPOINT", huge, 1);
    {
        locksmith_client *d = NULL;
        CHECK_RC(locksmith_client_new(&d), 0);
        CHECK_RC(locksmith_client_load_settings(d, "LOCKSMITHHOSTILE", NULL), -EINVAL);
        CHECK(strstr(locksmith_client_last_error(d), "LOCKSMITHHOSTILE_ENDPOINT") != NULL);
        CHECK(strlen(locksmith_client_last_error(d)) < 4096);
        CHECK_STR_OK(locksmith_client_last_error_option(d), "endpoint");
        locksmith_client_free(d);
    }
    unsetenv("LOCKSMITHHOSTILE_ENDPOINT");
    conf = locksmith_config_free(conf);
    {
        /* a group name of 300 bytes in update.conf */
        char text[400] = "LOCKSMITHD_GROUP=";
        memset(text + strlen(text), 'g', 300);
        text[17 + 300] = 0;
        strcat(text, "\n");
        locksmith_client *d = NULL;
        CHECK_RC(locksmith_config_parse(text, "/etc/coreos/update.conf", &conf), 0);
        CHECK_RC(locksmith_client_new(&d), 0);
        CHECK_RC(locksmith_client_load_settings(d, "LOCKSMITHHOSTILE", conf), -EINVAL);
        CHECK(strstr(locksmith_client_last_error(d), "LOCKSMITHD_GROUP") != NULL);
        CHECK(strstr(locksmith_client_last_error(d), "/etc/coreos/update.conf") != NULL);
        CHECK_STR_OK(locksmith_client_last_error_option(d), "group");
        locksmith_client_free(d);
        conf = locksmith_config_free(conf);
    }

    /* locksmith_client_setting: out-of-range numbers and NULL handles; NULL out-pointers. */
    static const int indexes[] = {INT_MIN, -1, 13, 14, INT_MAX};
    CHECK_RC(locksmith_client_set(c, "group", "g"), 0);
    for (size_t i = 0; i < sizeof indexes / sizeof indexes[0]; i++) {
        CHECK_RC(locksmith_client_setting(c, indexes[i], &value, &origin), -EINVAL);
        CHECK_RC(locksmith_client_setting(NULL, indexes[i], &value, &origin), -EINVAL);
    }
    CHECK_RC(locksmith_client_setting(NULL, 1, &value, &origin), -EINVAL);
    CHECK(value == SENTINEL && origin == SENTINEL);
    CHECK_RC(locksmith_client_setting(c, 1, NULL, NULL), 0);
    CHECK_RC(locksmith_client_setting(c, 0, NULL, NULL), -ENOENT);
    /* Values as set, shown without control characters. */
    CHECK_RC(locksmith_client_set(c, "etcd-username", "user\x1b[31m"), 0);
    CHECK_RC(locksmith_client_setting(c, 5, &value, &origin), 0);
    CHECK(value != SENTINEL && !strchr(value, '\x1b'));
    /* locksmith_client_environment: hostile prefixes and NULLs leave *ret_strv alone. */
    char **strv = (char **)SENTINEL;
    CHECK_RC(locksmith_client_environment(c, huge, &strv), -EINVAL);
    CHECK_RC(locksmith_client_environment(c, "\xff\xfe", &strv), -EINVAL);
    CHECK_RC(locksmith_client_environment(c, "A=B", &strv), -EINVAL);
    CHECK_RC(locksmith_client_environment(c, NULL, &strv), -EINVAL);
    CHECK_RC(locksmith_client_environment(NULL, "X", &strv), -EINVAL);
    CHECK(strv == (char **)SENTINEL);
    CHECK_RC(locksmith_client_environment(c, "X", &strv), 2); /* group and username */
    CHECK(locksmith_strv_free(strv) == NULL);

    /* locksmith_client_warning*, last_error_option, key: NULL handles, out-of-range numbers. */
    CHECK_RC(locksmith_client_warning_count(NULL), -EINVAL);
    CHECK_RC(locksmith_client_warning_count(c), 0);
    for (size_t i = 0; i < sizeof indexes / sizeof indexes[0]; i++) {
        CHECK(locksmith_client_warning(NULL, indexes[i]) == NULL);
        CHECK(locksmith_client_warning(c, indexes[i]) == NULL);
    }
    CHECK(locksmith_client_warning(c, 0) == NULL);
    CHECK(locksmith_client_last_error_option(NULL) == NULL);
    CHECK(locksmith_client_key(NULL) == NULL);
    /* a key for every group the client takes, including the longest */
    char longest[256];
    memset(longest, '/', 255);
    longest[255] = 0;
    CHECK_RC(locksmith_client_set(c, "group", longest), 0);
    CHECK(locksmith_client_key(c) != NULL && strlen(locksmith_client_key(c)) == strlen(LOCKSMITH_KEY_PREFIX "/groups//semaphore") + 255 * 3);
    c = locksmith_client_free(c);
}

static int trace_calls;
static void count_trace(const char *line, void *userdata) {
    (void)line;
    (void)userdata;
    trace_calls++;
}

static void test_client_new_calls(void) {
    locksmith_client *c = NULL;
    locksmith_semaphore *s = SENTINEL;
    locksmith_groups *g = SENTINEL;

    /* trace, cancel, prepare: NULL handles. */
    CHECK_RC(locksmith_client_set_trace(NULL, count_trace, NULL), -EINVAL);
    CHECK_RC(locksmith_client_set_trace(NULL, NULL, SENTINEL), -EINVAL);
    static const int cancels[] = {INT_MIN, -1, 0, 1, 2, INT_MAX};
    for (size_t i = 0; i < sizeof cancels / sizeof cancels[0]; i++)
        CHECK_RC(locksmith_client_cancel(NULL, cancels[i]), -EINVAL);
    CHECK_RC(locksmith_client_prepare(NULL), -EINVAL);

    CHECK_RC(locksmith_client_new(&c), 0);
    CHECK_RC(locksmith_client_set(c, "endpoint", "http://127.0.0.1:9"), 0);
    CHECK_RC(locksmith_client_set(c, "timeout", "200ms"), 0);
    /* prepare sends nothing */
    CHECK_RC(locksmith_client_prepare(c), 0);
    CHECK_RC(locksmith_client_prepare(c), 0);
    int64_t requests = -7;
    CHECK_RC(locksmith_client_stats(c, &requests, NULL), 0);
    CHECK(requests == 0);
    /* a userdata the library must only hand back, never touch */
    CHECK_RC(locksmith_client_set_trace(c, count_trace, SENTINEL), 0);
    CHECK_RC(locksmith_client_get(c, &s), -ECONNREFUSED);
    CHECK(trace_calls == 1);
    CHECK_RC(locksmith_client_set_trace(c, NULL, SENTINEL), 0);
    CHECK_RC(locksmith_client_get(c, &s), -ECONNREFUSED);
    CHECK(trace_calls == 1);
    /* every non-zero value cancels; 0 takes it back */
    for (size_t i = 0; i < sizeof cancels / sizeof cancels[0]; i++) {
        CHECK_RC(locksmith_client_cancel(c, cancels[i]), 0);
        CHECK_RC(locksmith_client_get(c, &s), cancels[i] ? -ECANCELED : -ECONNREFUSED);
    }
    CHECK_RC(locksmith_client_cancel(c, 0), 0);
    CHECK(s == SENTINEL);

    /* last_seen and groups: NULL arguments; ret untouched on failure. */
    CHECK_RC(locksmith_client_last_seen(NULL, &s), -EINVAL);
    CHECK_RC(locksmith_client_last_seen(c, NULL), -EINVAL);
    CHECK_RC(locksmith_client_last_seen(c, &s), -ENOENT);
    CHECK(s == SENTINEL);
    CHECK_RC(locksmith_client_groups(NULL, &g), -EINVAL);
    CHECK_RC(locksmith_client_groups(c, NULL), -EINVAL);
    CHECK_RC(locksmith_client_groups(c, &g), -ECONNREFUSED);
    CHECK(g == SENTINEL);
    c = locksmith_client_free(c);

    /* locksmith_groups_*: NULL handles, every index. */
    static const int indexes[] = {INT_MIN, -1, 0, 1, INT_MAX};
    CHECK_RC(locksmith_groups_count(NULL), -EINVAL);
    for (size_t i = 0; i < sizeof indexes / sizeof indexes[0]; i++) {
        CHECK(locksmith_groups_name(NULL, indexes[i]) == NULL);
        CHECK(locksmith_groups_key(NULL, indexes[i]) == NULL);
        CHECK(locksmith_groups_semaphore(NULL, indexes[i]) == NULL);
        CHECK(locksmith_groups_error(NULL, indexes[i]) == NULL);
    }
    CHECK(locksmith_groups_free(NULL) == NULL);
}

static void test_daemon_settings(const char *root) {
    locksmith_config *conf = NULL;
    locksmith_daemon_settings *d = SENTINEL, *good = NULL;
    locksmith_client *c = SENTINEL;

    CHECK_RC(locksmith_config_parse("REBOOT_STRATEGY=etcd-lock\nLOCKSMITHD_REBOOT_WINDOW_START=Thu 23:00\n"
                                    "LOCKSMITHD_REBOOT_WINDOW_LENGTH=1h\n", NULL, &conf), 0);
    /* root: NULL is "/"; every other hostile root is not an absolute path. */
    for (int i = 0; i < H_COUNT; i++) {
        const struct hostile *h = &hostiles[i];
        if (i == H_NULL) {
            CHECK_RC_S(locksmith_daemon_settings_load(conf, h->s, &good), 0, h);
            good = locksmith_daemon_settings_free(good);
        } else {
            CHECK_RC_S(locksmith_daemon_settings_load(conf, h->s, &d), -EINVAL, h);
        }
        CHECK_RC_S(locksmith_daemon_settings_load(NULL, h->s, &d), -EINVAL, h);
        CHECK_RC_S(locksmith_daemon_settings_load(conf, h->s, NULL), -EINVAL, h);
        CHECK(d == SENTINEL);
    }
    CHECK_RC(locksmith_daemon_settings_load(conf, huge_root, &d), -EINVAL);
    CHECK_RC(locksmith_daemon_settings_load(conf, "/tmp/\xff\xfe", &d), -EINVAL);
    CHECK(d == SENTINEL);
    conf = locksmith_config_free(conf);

    /* Hostile values: each is -EINVAL, and the message is bounded. */
    static const char *bad_texts[] = {
        "REBOOT_STRATEGY=\xff\n", "REBOOT_STRATEGY=etcd-lock\x01\n", "LOCKSMITHD_REBOOT_WINDOW_START=Thu 23:00\n",
        "LOCKSMITHD_REBOOT_WINDOW_START=Thu 99:00\nLOCKSMITHD_REBOOT_WINDOW_LENGTH=1h\n",
        "LOCKSMITHD_REBOOT_WINDOW_START=Thu 23:00\nLOCKSMITHD_REBOOT_WINDOW_LENGTH=169h\n",
        "LOCKSMITHD_REBOOT_BROADCAST_DELAY=99999999999h\n", "LOCKSMITHD_REBOOT_BROADCAST_DELAY=-1ns\n",
        "LOCKSMITHD_SLOT_WAIT=WATCH\n", "LOCKSMITHD_ETCD_API=v2\x01\n", "LOCKSMITHD_ENDPOINT=http://user:pw@host\n",
    };
    for (size_t i = 0; i < sizeof bad_texts / sizeof bad_texts[0]; i++) {
        int r = locksmith_config_parse(bad_texts[i], "origin", &conf);
        if (r == -EINVAL) { /* not UTF-8: refused already */
            passed++;
            continue;
        }
        CHECK_RC(r, 0);
        if (locksmith_daemon_settings_load(conf, root, &d) != -EINVAL || strlen(locksmith_last_error()) > 1000) {
            failed++;
            fprintf(stderr, "test_hostile_args.c:%d: FAILED: daemon settings from text %zu are not -EINVAL: %s\n", __LINE__, i,
                    locksmith_last_error());
        } else {
            passed++;
        }
        conf = locksmith_config_free(conf);
    }
    {
        /* a strategy of 512 KiB */
        size_t n = 512u << 10;
        char *text = malloc(n + 32);
        strcpy(text, "REBOOT_STRATEGY=");
        memset(text + 16, 's', n);
        strcpy(text + 16 + n, "\n");
        CHECK_RC(locksmith_config_parse(text, "origin", &conf), 0);
        CHECK_RC(locksmith_daemon_settings_load(conf, root, &d), -EINVAL);
        CHECK(strlen(locksmith_last_error()) < 4096);
        conf = locksmith_config_free(conf);
        free(text);
    }
    CHECK(d == SENTINEL);

    /* Getters: NULL handles, out-of-range numbers. */
    CHECK(locksmith_daemon_settings_strategy(NULL) == NULL);
    CHECK(locksmith_daemon_settings_window(NULL) == NULL);
    CHECK(locksmith_daemon_settings_broadcast_delay(NULL) == -1);
    CHECK(locksmith_daemon_settings_slot_wait(NULL) == NULL);
    CHECK(locksmith_daemon_settings_utmp(NULL) == NULL);
    CHECK(locksmith_daemon_settings_group(NULL) == NULL);
    CHECK_RC(locksmith_daemon_settings_warning_count(NULL), -EINVAL);
    static const int indexes[] = {INT_MIN, -1, 0, 1, 2, INT_MAX};
    CHECK_RC(locksmith_config_parse("REBOOT_STRATEGY=best-effort\nLOCKSMITHD_REBOOT_WINDOW_START=Thu 23:00\n"
                                    "LOCKSMITHD_REBOOT_WINDOW_LENGTH=1h\n", NULL, &conf), 0);
    CHECK_RC(locksmith_daemon_settings_load(conf, root, &good), 0);
    conf = locksmith_config_free(conf);
    for (size_t i = 0; i < sizeof indexes / sizeof indexes[0]; i++) {
        int in = indexes[i] == 0 || indexes[i] == 1;
        CHECK(locksmith_daemon_settings_window_source(NULL, indexes[i]) == NULL);
        CHECK((locksmith_daemon_settings_window_source(good, indexes[i]) != NULL) == in);
        CHECK(locksmith_daemon_settings_warning(NULL, indexes[i]) == NULL);
        CHECK((locksmith_daemon_settings_warning(good, indexes[i]) != NULL) == (indexes[i] == 0));
    }
    CHECK_RC(locksmith_daemon_settings_warning_count(good), 1);

    /* new_client: NULL handle, NULL ret, every unknown flag bit. */
    CHECK_RC(locksmith_daemon_settings_new_client(NULL, 0, &c), -EINVAL);
    CHECK_RC(locksmith_daemon_settings_new_client(good, 0, NULL), -EINVAL);
    for (int bit = 1; bit < 64; bit++) {
        uint64_t flags = UINT64_C(1) << bit;
        if (locksmith_daemon_settings_new_client(good, flags, &c) != -EINVAL ||
            locksmith_daemon_settings_new_client(good, flags | LOCKSMITH_NO_ENVIRONMENT, &c) != -EINVAL) {
            failed++;
            fprintf(stderr, "test_hostile_args.c:%d: FAILED: daemon_settings_new_client with flag bit %d did not return -EINVAL\n",
                    __LINE__, bit);
        } else {
            passed++;
        }
    }
    CHECK_RC(locksmith_daemon_settings_new_client(good, UINT64_MAX, &c), -EINVAL);
    CHECK(c == SENTINEL);
    CHECK_RC(locksmith_daemon_settings_new_client(good, LOCKSMITH_NO_ENVIRONMENT, &c), 0);
    c = locksmith_client_free(c);
    CHECK(locksmith_daemon_settings_free(NULL) == NULL);
    good = locksmith_daemon_settings_free(good);
}

static void test_slot_record(const char *scratch) {
    char root[4096], *key = SENTINEL, *id = SENTINEL;
    snprintf(root, sizeof root, "%s/slot-root", scratch);
    mkdir(root, 0755);

    /* root: every hostile root but NULL ("/", this machine: only with arguments that are
     * refused first, so nothing is ever written there) is not an absolute path. */
    for (int i = 0; i < H_COUNT; i++) {
        const struct hostile *h = &hostiles[i];
        if (i != H_NULL) {
            CHECK_RC_S(locksmith_slot_record_write(h->s, LOCKSMITH_DEFAULT_KEY, "node"), -EINVAL, h);
            CHECK_RC_S(locksmith_slot_record_write(h->s, NULL, NULL), -EINVAL, h);
            CHECK_RC_S(locksmith_slot_record_read(h->s, &key, &id), -EINVAL, h);
        } else {
            int r = locksmith_slot_record_read(NULL, &key, &id);
            CHECK(r == 0 || r == 1 || r == -ENOENT || r == -EBADMSG || r == -EACCES); /* whatever this machine has */
            if (r == 1) {
                free(key);
                free(id);
                key = id = SENTINEL;
            }
        }
        /* key and id: NULL with the other set, "", over-long, not UTF-8 */
        CHECK_RC_S(locksmith_slot_record_write(root, h->s, "node"), -EINVAL, h);
        CHECK_RC_S(locksmith_slot_record_write(NULL, h->s, "node"), -EINVAL, h);
        CHECK_RC_S(locksmith_slot_record_write(root, LOCKSMITH_DEFAULT_KEY, h->s), -EINVAL, h);
        CHECK_RC_S(locksmith_slot_record_write(NULL, LOCKSMITH_DEFAULT_KEY, h->s), -EINVAL, h);
        CHECK(key == SENTINEL && id == SENTINEL);
    }
    CHECK_RC(locksmith_slot_record_write(huge_root, NULL, NULL), -EINVAL);
    CHECK_RC(locksmith_slot_record_read(huge_root, &key, &id), -EINVAL);
    CHECK_RC(locksmith_slot_record_write("/tmp/\xff\xfe", NULL, NULL), -EINVAL);
    {
        char id256[257];
        memset(id256, 'i', 256);
        id256[256] = 0;
        CHECK_RC(locksmith_slot_record_write(root, LOCKSMITH_DEFAULT_KEY, id256), -EINVAL);
        id256[255] = 0;
        CHECK_RC(locksmith_slot_record_write(root, LOCKSMITH_DEFAULT_KEY, id256), 0);
        CHECK_RC(locksmith_slot_record_read(root, &key, &id), 1);
        CHECK(id != SENTINEL && strcmp(id, id256) == 0);
        free(key);
        free(id);
        key = id = SENTINEL;
    }
    /* keys with control characters, and keys locksmith_group_key() cannot make */
    static const char *bad_keys[] = {LOCKSMITH_KEY_PREFIX "/groups/a\nHELD=no/semaphore", LOCKSMITH_KEY_PREFIX "/groups/\x7f/semaphore",
                                     LOCKSMITH_KEY_PREFIX "/groups/%zz/semaphore", LOCKSMITH_KEY_PREFIX "/other",
                                     "/", "semaphore"};
    for (size_t i = 0; i < sizeof bad_keys / sizeof bad_keys[0]; i++) {
        if (locksmith_slot_record_write(root, bad_keys[i], "node") != -EINVAL) {
            failed++;
            fprintf(stderr, "test_hostile_args.c:%d: FAILED: slot_record_write took the key \"%s\"\n", __LINE__, visible(bad_keys[i]));
        } else {
            passed++;
        }
    }
    /* ids with control characters */
    CHECK_RC(locksmith_slot_record_write(root, LOCKSMITH_DEFAULT_KEY, "a\nHELD=no"), -EINVAL);
    CHECK_RC(locksmith_slot_record_write(root, LOCKSMITH_DEFAULT_KEY, "a\rb"), -EINVAL);
    /* the record is still the last good one */
    CHECK_RC(locksmith_slot_record_read(root, NULL, NULL), 1);

    /* Hostile files: 2 MiB, not UTF-8, NUL bytes: -EBADMSG, ret untouched. */
    char file[4200];
    snprintf(file, sizeof file, "%s/var/lib/locksmith/reboot-slot", root);
    write_file(file, huge, 2u << 20);
    CHECK_RC(locksmith_slot_record_read(root, &key, &id), -EBADMSG);
    write_file(file, "HELD=yes\nKEY=\xff\nID=x\n", 21);
    CHECK_RC(locksmith_slot_record_read(root, &key, &id), -EBADMSG);
    write_file(file, "HELD=yes\0\nKEY=" LOCKSMITH_DEFAULT_KEY "\nID=x\n", 14 + strlen(LOCKSMITH_DEFAULT_KEY) + 6);
    int r = locksmith_slot_record_read(root, &key, &id);
    CHECK(r == -EBADMSG);
    CHECK(key == SENTINEL && id == SENTINEL);
    if (r == 1) {
        free(key);
        free(id);
    }
    unlink(file);
}

/* LOCKSMITH_3: every hostile root, path and value is refused without touching ret_*. */
static void test_daemon_files(const char *scratch) {
    locksmith_config *conf = SENTINEL;
    char *text = SENTINEL;
    int64_t modified = -7;
    for (int i = 0; i < H_COUNT; i++) {
        const struct hostile *h = &hostiles[i];
        if (i != H_NULL) CHECK_RC_S(locksmith_daemon_file_read(h->s, LOCKSMITH_STATE_PATH, &conf, &modified), -EINVAL, h);
        CHECK_RC_S(locksmith_daemon_file_read(scratch, h->s, &conf, &modified), -EINVAL, h);
        CHECK_RC_S(locksmith_daemon_state_text(h->s, "running", 1, NULL, NULL, -1, &text), -EINVAL, h);
        CHECK_RC_S(locksmith_daemon_state_text("reboot", h->s, 1, NULL, NULL, -1, &text), -EINVAL, h);
        CHECK_RC_S(locksmith_daemon_state_text("reboot", "running", 1, h->s, "id", -1, &text), -EINVAL, h);
    }
    CHECK_RC(locksmith_daemon_file_read(scratch, LOCKSMITH_STATE_PATH, NULL, &modified), -EINVAL);
    CHECK_RC(locksmith_daemon_file_read(huge_root, LOCKSMITH_STATE_PATH, &conf, &modified), -EINVAL);
    CHECK_RC(locksmith_daemon_file_read(scratch, "run/locksmith/state", &conf, &modified), -EINVAL);
    CHECK_RC(locksmith_daemon_state_text("reboot", "running", 1, NULL, NULL, -1, NULL), -EINVAL);
    CHECK_RC(locksmith_daemon_state_text("reboot", "running", 1, LOCKSMITH_DEFAULT_KEY, huge, -1, &text), -EINVAL);
    CHECK(conf == SENTINEL && text == SENTINEL && modified == -7);
}

/* The LOCKSMITH_5 functions: every hostile string is -EINVAL where a value is required (a
 * FleetLock group, an option name, a prefix, a path, a setting's name) and ret is untouched; the
 * list accessors end at NULL whatever the index. */
static void test_version_5(void) {
    locksmith_config *conf = NULL;
    locksmith_daemon_settings *d = NULL;
    CHECK_RC(locksmith_config_parse("", NULL, &conf), 0);
    CHECK_RC(locksmith_daemon_settings_load(conf, NULL, &d), 0);
    for (int i = 0; i < H_COUNT; i++) {
        const struct hostile *h = &hostiles[i];
        char *out = SENTINEL;
        const char *value = SENTINEL;
        CHECK_RC_S(locksmith_fleetlock_group_check(h->s), -EINVAL, h);
        CHECK_RC_S(locksmith_client_option_variable(h->s, "group", &out), -EINVAL, h);
        CHECK_RC_S(locksmith_client_option_variable("LOCKSMITHD", h->s, &out), -EINVAL, h);
        CHECK_RC_S(locksmith_root_path("/srv", h->s, &out), -EINVAL, h);
        if (i != H_NULL) CHECK_RC_S(locksmith_root_path(h->s, "/etc/machine-id", &out), -EINVAL, h);
        CHECK(out == SENTINEL);
        CHECK_RC_S(locksmith_daemon_settings_get(d, h->s, &value), -EINVAL, h);
        CHECK(value == SENTINEL);
        /* A format: NULL is the default, anything valid is formatted; the rest is -EINVAL. */
        int format_ok = i == H_NULL || i == H_EMPTY;
        CHECK_RC_S(locksmith_time_format(0, h->s, 1, &out), format_ok ? 0 : -EINVAL, h);
        if (format_ok) free(out);
        else CHECK(out == SENTINEL);
    }
    static const int indexes[] = {-1, 5, 1000, INT32_MAX, INT32_MIN};
    for (size_t i = 0; i < sizeof indexes / sizeof indexes[0]; i++) {
        CHECK(locksmith_config_file(indexes[i]) == NULL);
        CHECK(locksmith_daemon_settings_name(indexes[i] == 5 ? 15 : indexes[i]) == NULL);
    }
    char *out = SENTINEL;
    CHECK_RC(locksmith_time_format(INT64_MAX, NULL, 0, &out), 0); /* beyond the C library: the number */
    CHECK(out != SENTINEL && strcmp(out, "9223372036854775807") == 0);
    free(out);
    CHECK_RC(locksmith_time_format(INT64_MIN, "%c", 1, &out), 0);
    free(out);
    d = locksmith_daemon_settings_free(d);
    conf = locksmith_config_free(conf);
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
    test_text_functions(scratch);
    test_config_warnings();
    test_client_settings();
    test_client_new_calls();
    test_daemon_settings(scratch);
    test_slot_record(scratch);
    test_daemon_files(scratch);
    test_version_5();
    free(scratch);
    free(huge);
    free(huge_root);
    printf("test_hostile_args: %d passed, %d failed\n", passed, failed);
    return failed ? 1 : 0;
}
