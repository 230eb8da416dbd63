/* Exercises every function of include/locksmith.h through the installed library, including
 * NULL and invalid arguments, and the functions of version node LOCKSMITH_2 (explicit roots, no
 * environment, deadlines, reads that never write, the proxy option). Built with
 * `pkg-config --cflags --libs locksmith` and run under valgrind by tools/test-abi.
 *
 * usage: test_api WINDOW_TSV ROOT_DIR ETCD_ENDPOINT
 *   WINDOW_TSV     the window test vectors (evaluated with TZ=America/Los_Angeles)
 *   ROOT_DIR       an empty scratch directory used as LOCKSMITH_ROOT
 *   ETCD_ENDPOINT  a running etcd (v2 enabled) for the client functions
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <locksmith.h>

static int passed, failed;

#define CHECK(cond) check((cond), #cond, __FILE__, __LINE__)
#define CHECK_RC(call, want) check_rc((call), (want), #call, __LINE__)
#define CHECK_STR(got, want) check_str((got), (want), #got, __LINE__)

static void check(int ok, const char *what, const char *file, int line) {
    if (ok) {
        passed++;
    } else {
        failed++;
        fprintf(stderr, "%s:%d: FAILED: %s\n", file, line, what);
    }
}

static void check_rc(int got, int want, const char *what, int line) {
    if (got == want) {
        passed++;
    } else {
        failed++;
        fprintf(stderr, "test_api.c:%d: FAILED: %s returned %d (%s), want %d; last error: %s\n", line, what, got,
                got < 0 ? strerror(-got) : "ok", want, locksmith_last_error());
    }
}

static void check_str(const char *got, const char *want, const char *what, int line) {
    if (got && want && strcmp(got, want) == 0) {
        passed++;
    } else {
        failed++;
        fprintf(stderr, "test_api.c:%d: FAILED: %s is \"%s\", want \"%s\"\n", line, what, got ? got : "(null)",
                want ? want : "(null)");
    }
}

static void write_file(const char *path, const char *text) {
    FILE *f = fopen(path, "w");
    if (!f) {
        perror(path);
        exit(2);
    }
    fputs(text, f);
    fclose(f);
}

/* The document after parse + serialize, or NULL. */
static char *roundtrip(const char *json) {
    locksmith_semaphore *s = NULL;
    char *out = NULL;
    if (locksmith_semaphore_parse(json, &s) < 0)
        return NULL;
    if (locksmith_semaphore_to_json(s, &out) < 0)
        out = NULL;
    locksmith_semaphore_free(s);
    return out;
}

static void test_general(void) {
    const char *v = locksmith_version();
    CHECK(v != NULL && strlen(v) > 0);
    CHECK(strchr(v, '.') != NULL);
    locksmith_free(NULL);
    locksmith_free(malloc(16));
    CHECK(locksmith_last_error() != NULL);
}

static void test_semaphore(void) {
    locksmith_semaphore *s = NULL;
    char *json = NULL;
    int n = -1, old = -1;

    /* NULL arguments */
    CHECK_RC(locksmith_semaphore_new(NULL), -EINVAL);
    CHECK_RC(locksmith_semaphore_parse(NULL, &s), -EINVAL);
    CHECK_RC(locksmith_semaphore_parse("{}", NULL), -EINVAL);
    CHECK(s == NULL);
    CHECK_RC(locksmith_semaphore_to_json(NULL, &json), -EINVAL);
    CHECK_RC(locksmith_semaphore_lock(NULL, "a"), -EINVAL);
    CHECK_RC(locksmith_semaphore_unlock(NULL, "a"), -EINVAL);
    CHECK_RC(locksmith_semaphore_set_max(NULL, 1, &old), -EINVAL);
    CHECK_RC(locksmith_semaphore_get_available(NULL, &n), -EINVAL);
    CHECK_RC(locksmith_semaphore_get_max(NULL, &n), -EINVAL);
    CHECK_RC(locksmith_semaphore_holder_count(NULL), -EINVAL);
    CHECK(locksmith_semaphore_holder(NULL, 0) == NULL);
    CHECK_RC(locksmith_semaphore_is_holder(NULL, "a"), -EINVAL);
    CHECK(locksmith_semaphore_free(NULL) == NULL);

    /* A fresh document */
    CHECK_RC(locksmith_semaphore_new(&s), 0);
    CHECK_RC(locksmith_semaphore_to_json(s, NULL), -EINVAL);
    CHECK_RC(locksmith_semaphore_to_json(s, &json), 0);
    CHECK_STR(json, "{\"semaphore\":1,\"max\":1,\"holders\":null}");
    free(json);
    CHECK_RC(locksmith_semaphore_get_available(s, NULL), -EINVAL);
    CHECK_RC(locksmith_semaphore_get_max(s, NULL), -EINVAL);
    CHECK_RC(locksmith_semaphore_get_available(s, &n), 0);
    CHECK(n == 1);
    CHECK_RC(locksmith_semaphore_get_max(s, &n), 0);
    CHECK(n == 1);
    CHECK_RC(locksmith_semaphore_holder_count(s), 0);

    /* lock / unlock */
    CHECK_RC(locksmith_semaphore_lock(s, NULL), -EINVAL);
    CHECK_RC(locksmith_semaphore_lock(s, ""), -EINVAL);
    CHECK_RC(locksmith_semaphore_lock(s, "bad\nid"), -EINVAL);
    CHECK_RC(locksmith_semaphore_lock(s, "\xff\xfe"), -EINVAL);
    CHECK(strstr(locksmith_last_error(), "UTF-8") != NULL);
    CHECK_RC(locksmith_semaphore_lock(s, "node1"), 0);
    CHECK_RC(locksmith_semaphore_lock(s, "node2"), -EBUSY);
    CHECK_STR(locksmith_last_error(), "semaphore is at 0");
    CHECK_RC(locksmith_semaphore_set_max(s, 3, &old), 0);
    CHECK(old == 1);
    CHECK_RC(locksmith_semaphore_lock(s, "node1"), -EEXIST);
    CHECK_STR(locksmith_last_error(), "holder exists");
    CHECK_RC(locksmith_semaphore_lock(s, "b"), 0);
    CHECK_RC(locksmith_semaphore_lock(s, "a"), 0);
    CHECK_RC(locksmith_semaphore_to_json(s, &json), 0);
    CHECK_STR(json, "{\"semaphore\":0,\"max\":3,\"holders\":[\"a\",\"b\",\"node1\"]}");
    free(json);
    CHECK_RC(locksmith_semaphore_holder_count(s), 3);
    CHECK_STR(locksmith_semaphore_holder(s, 0), "a");
    CHECK_STR(locksmith_semaphore_holder(s, 2), "node1");
    CHECK(locksmith_semaphore_holder(s, 0) == locksmith_semaphore_holder(s, 0));
    CHECK(locksmith_semaphore_holder(s, 3) == NULL);
    CHECK(locksmith_semaphore_holder(s, -1) == NULL);
    CHECK_RC(locksmith_semaphore_is_holder(s, "b"), 1);
    CHECK_RC(locksmith_semaphore_is_holder(s, "c"), 0);
    CHECK_RC(locksmith_semaphore_is_holder(s, NULL), -EINVAL);
    CHECK_RC(locksmith_semaphore_unlock(s, "zzz"), -ENOENT);
    CHECK_STR(locksmith_last_error(), "holder does not exist");
    CHECK_RC(locksmith_semaphore_unlock(s, NULL), -EINVAL);

    /* set-max below the holders leaves a negative count; negative max is refused */
    CHECK_RC(locksmith_semaphore_set_max(s, 2, NULL), 0);
    CHECK_RC(locksmith_semaphore_get_available(s, &n), 0);
    CHECK(n == -1);
    CHECK_RC(locksmith_semaphore_set_max(s, -1, &old), -EINVAL);
    CHECK_RC(locksmith_semaphore_get_max(s, &n), 0);
    CHECK(n == 2);
    CHECK_RC(locksmith_semaphore_lock(s, "x"), -EBUSY);
    CHECK_STR(locksmith_last_error(), "semaphore is at -1");

    CHECK_RC(locksmith_semaphore_unlock(s, "a"), 0);
    CHECK_RC(locksmith_semaphore_unlock(s, "b"), 0);
    CHECK_RC(locksmith_semaphore_unlock(s, "node1"), 0);
    CHECK_RC(locksmith_semaphore_to_json(s, &json), 0);
    CHECK_STR(json, "{\"semaphore\":2,\"max\":2,\"holders\":[]}");
    free(json);
    s = locksmith_semaphore_free(s);
    CHECK(s == NULL);

    /* parse: compatible bytes, unknown fields kept, stored index ignored */
    json = roundtrip("{\"semaphore\":1,\"max\":1,\"holders\":null}");
    CHECK_STR(json, "{\"semaphore\":1,\"max\":1,\"holders\":null}");
    free(json);
    json = roundtrip("{}");
    CHECK_STR(json, "{\"semaphore\":0,\"max\":0,\"holders\":null}");
    free(json);
    json = roundtrip("{ \"holders\": [\"b\", \"a\"], \"index\": 4567, \"max\": 2, \"semaphore\": 0, \"note\": {\"x\": [1, true]} }");
    CHECK_STR(json, "{\"semaphore\":0,\"max\":2,\"holders\":[\"b\",\"a\"],\"index\":4567,\"note\":{\"x\":[1,true]}}");
    free(json);

    /* parse: not a semaphore document */
    static const char *bad[] = {
        "", "not json", "[1,2]", "\"str\"", "{\"max\":\"1\"}", "{\"max\":1.5}", "{\"max\":99999999999}",
        "{\"holders\":\"a\"}", "{\"holders\":[1]}", "{\"holders\":[\"a\",\"a\"]}", "{\"max\":1} x", "{\"max\":1",
        "{\"holders\":[\"\xff\"]}",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        s = NULL;
        CHECK_RC(locksmith_semaphore_parse(bad[i], &s), -EBADMSG);
        CHECK(s == NULL);
        CHECK(strlen(locksmith_last_error()) > 0);
    }
    /* a huge value is refused without reading it all into a document */
    size_t big = 2 << 20;
    char *huge = malloc(big + 1);
    memset(huge, ' ', big);
    huge[big] = 0;
    huge[0] = '{';
    huge[big - 1] = '}';
    CHECK_RC(locksmith_semaphore_parse(huge, &s), -EINVAL); /* longer than any argument may be */
    huge[200 * 1024] = 0;
    huge[200 * 1024 - 1] = '}';
    CHECK_RC(locksmith_semaphore_parse(huge, &s), -EBADMSG); /* larger than a document may be */
    free(huge);
}

static int run_window_vectors(const char *path) {
    FILE *f = fopen(path, "r");
    char line[512];
    int cases = 0;
    if (!f) {
        perror(path);
        return -1;
    }
    while (fgets(line, sizeof line, f)) {
        char *fields[5] = {0};
        int nf = 0;
        if (line[0] == '#' || line[0] == '\n')
            continue;
        line[strcspn(line, "\n")] = 0;
        for (char *p = line; nf < 5; nf++) {
            fields[nf] = p;
            p = strchr(p, '\t');
            if (!p) {
                nf++;
                break;
            }
            *p++ = 0;
        }
        if (nf != 5)
            continue;
        locksmith_window *w = NULL;
        int r = locksmith_window_parse(fields[0], fields[1], &w);
        cases++;
        if (strcmp(fields[4], "error") == 0) {
            if (r != -EINVAL) {
                failed++;
                fprintf(stderr, "window \"%s\" \"%s\" parsed (%d), want -EINVAL\n", fields[0], fields[1], r);
            } else {
                passed++;
            }
        } else {
            int64_t got = 0, want = strtoll(fields[4], NULL, 10), now = strtoll(fields[2], NULL, 10);
            if (r < 0 || locksmith_window_seconds_to_start(w, now, &got) < 0 || got != want) {
                failed++;
                fprintf(stderr, "window \"%s\" \"%s\" at %s: got %lld, want %lld (%s)\n", fields[0], fields[1],
                        fields[3], (long long)got, (long long)want, locksmith_last_error());
            } else {
                passed++;
            }
        }
        locksmith_window_free(w);
    }
    fclose(f);
    return cases;
}

static void test_window(const char *vectors) {
    locksmith_window *w = NULL;
    int64_t x = 0, start = 0, end = 0;
    char *a = NULL, *b = NULL;

    CHECK_RC(locksmith_window_parse(NULL, "1h", &w), -EINVAL);
    CHECK_RC(locksmith_window_parse("Thu 23:00", NULL, &w), -EINVAL);
    CHECK_RC(locksmith_window_parse("Thu 23:00", "1h", NULL), -EINVAL);
    CHECK_RC(locksmith_window_seconds_to_start(NULL, 0, &x), -EINVAL);
    CHECK_RC(locksmith_window_next(NULL, 0, &start, &end), -EINVAL);
    CHECK_RC(locksmith_window_to_string(NULL, &a, &b), -EINVAL);
    CHECK(locksmith_window_free(NULL) == NULL);

    CHECK_RC(locksmith_window_parse("thu 23:00", "1h30m", &w), 0);
    CHECK_RC(locksmith_window_seconds_to_start(w, 0, NULL), -EINVAL);
    CHECK_RC(locksmith_window_next(w, 0, NULL, &end), -EINVAL);
    CHECK_RC(locksmith_window_seconds_to_start(w, INT64_MAX, &x), -ERANGE);
    CHECK_RC(locksmith_window_next(w, INT64_MIN, &start, &end), -ERANGE);
    /* Thu May 21 00:00:00 PDT 2015: the next window opens Thu May 21 23:00 PDT */
    CHECK_RC(locksmith_window_next(w, 1432191600, &start, &end), 0);
    CHECK(start == 1432191600 + 23 * 3600);
    CHECK(end == start + 5400);
    CHECK_RC(locksmith_window_next(w, 1432191600, &start, NULL), 0);
    /* Fri 00:15 is inside the window that opened on Thursday */
    CHECK_RC(locksmith_window_seconds_to_start(w, 1432191600 + 24 * 3600 + 900, &x), 0);
    CHECK(x == -4500);
    CHECK_RC(locksmith_window_to_string(w, &a, &b), 0);
    CHECK_STR(a, "Thu 23:00");
    CHECK_STR(b, "1h30m0s");
    free(a);
    free(b);
    CHECK_RC(locksmith_window_to_string(w, NULL, NULL), 0);
    w = locksmith_window_free(w);

    int cases = run_window_vectors(vectors);
    CHECK(cases >= 21);

    CHECK_RC(locksmith_duration_parse("1h30m", &x), 0);
    CHECK(x == 5400000000000LL);
    CHECK_RC(locksmith_duration_parse("300ms", &x), 0);
    CHECK(x == 300000000LL);
    CHECK_RC(locksmith_duration_parse("1j", &x), -EINVAL);
    CHECK_RC(locksmith_duration_parse("99999999999h", &x), -EINVAL);
    CHECK_RC(locksmith_duration_parse(NULL, &x), -EINVAL);
    CHECK_RC(locksmith_duration_parse("1s", NULL), -EINVAL);
}

static void test_node(const char *root) {
    char path[4096], *id = NULL, *key = NULL;
    int64_t d = 0;

    setenv("LOCKSMITH_ROOT", root, 1);
    CHECK_RC(locksmith_machine_id(NULL), -EINVAL);
    CHECK_RC(locksmith_machine_id(&id), -ENOENT);
    CHECK(id == NULL);
    snprintf(path, sizeof path, "%s/etc", root);
    mkdir(path, 0755);
    snprintf(path, sizeof path, "%s/etc/machine-id", root);
    write_file(path, "  0123456789abcdef0123456789abcdef\n\n");
    CHECK_RC(locksmith_machine_id(&id), 0);
    CHECK_STR(id, "0123456789abcdef0123456789abcdef");
    free(id);
    id = NULL;
    write_file(path, "0123456789ABCDEF0123456789ABCDEF\n");
    CHECK_RC(locksmith_machine_id(&id), -EBADMSG);
    CHECK(id == NULL);

    CHECK_RC(locksmith_group_key(NULL, NULL), -EINVAL);
    CHECK_RC(locksmith_group_key(NULL, &key), 0);
    CHECK_STR(key, LOCKSMITH_DEFAULT_KEY);
    free(key);
    CHECK_RC(locksmith_group_key("", &key), 0);
    CHECK_STR(key, "coreos.com/updateengine/rebootlock/semaphore");
    free(key);
    CHECK_RC(locksmith_group_key("a b/c", &key), 0);
    CHECK_STR(key, "coreos.com/updateengine/rebootlock/groups/a+b%2Fc/semaphore");
    free(key);
    CHECK_RC(locksmith_group_key("prod/database", &key), 0);
    CHECK_STR(key, "coreos.com/updateengine/rebootlock/groups/prod%2Fdatabase/semaphore");
    free(key);
    char longname[300];
    memset(longname, 'g', sizeof longname - 1);
    longname[sizeof longname - 1] = 0;
    CHECK_RC(locksmith_group_key(longname, &key), -EINVAL);
    CHECK_RC(locksmith_group_key("\xc3", &key), -EINVAL);

    CHECK_RC(locksmith_backoff_delay(0, &d), 0);
    CHECK(d == 5);
    CHECK_RC(locksmith_backoff_delay(1, &d), 0);
    CHECK(d == 10);
    CHECK_RC(locksmith_backoff_delay(5, &d), 0);
    CHECK(d == 160);
    CHECK_RC(locksmith_backoff_delay(6, &d), 0);
    CHECK(d == 300);
    CHECK_RC(locksmith_backoff_delay(2147483647, &d), 0);
    CHECK(d == 300);
    CHECK_RC(locksmith_backoff_delay(-1, &d), -EINVAL);
    CHECK_RC(locksmith_backoff_delay(0, NULL), -EINVAL);
}

static void test_config(const char *root) {
    char path[4096];
    locksmith_config *c = NULL;
    const char *value = NULL, *origin = NULL;

    CHECK_RC(locksmith_config_load(NULL), -EINVAL);
    CHECK_RC(locksmith_config_parse(NULL, NULL, &c), -EINVAL);
    CHECK_RC(locksmith_config_parse("A=1", NULL, NULL), -EINVAL);
    CHECK_RC(locksmith_config_get(NULL, "A", &value, &origin), -EINVAL);
    CHECK(locksmith_config_free(NULL) == NULL);

    CHECK_RC(locksmith_config_parse("# comment\nA = 'one two' \nB=\"x\\\"y\"\nC=z  \n", "t.conf", &c), 0);
    CHECK_RC(locksmith_config_get(c, NULL, &value, &origin), -EINVAL);
    CHECK_RC(locksmith_config_get(c, "A", NULL, &origin), -EINVAL);
    CHECK_RC(locksmith_config_get(c, "A", &value, &origin), 0);
    CHECK_STR(value, "one two");
    CHECK_STR(origin, "t.conf");
    CHECK_RC(locksmith_config_get(c, "B", &value, NULL), 0);
    CHECK_STR(value, "x\"y");
    CHECK_RC(locksmith_config_get(c, "C", &value, NULL), 0);
    CHECK_STR(value, "z");
    CHECK_RC(locksmith_config_get(c, "D", &value, NULL), -ENOENT);
    c = locksmith_config_free(c);

    /* Files under the root, later ones winning, the environment over all */
    snprintf(path, sizeof path, "%s/usr", root);
    mkdir(path, 0755);
    snprintf(path, sizeof path, "%s/usr/share", root);
    mkdir(path, 0755);
    snprintf(path, sizeof path, "%s/usr/share/coreos", root);
    mkdir(path, 0755);
    snprintf(path, sizeof path, "%s/etc/flatcar", root);
    mkdir(path, 0755);
    snprintf(path, sizeof path, "%s/usr/share/coreos/update.conf", root);
    write_file(path, "REBOOT_STRATEGY=reboot\nGROUP=alpha\nLOCKSMITHD_TEST_ONLY=file\n");
    snprintf(path, sizeof path, "%s/etc/flatcar/update.conf", root);
    write_file(path, "REBOOT_STRATEGY=etcd-lock\n");
    setenv("LOCKSMITHD_TEST_ONLY", "env", 1);
    CHECK_RC(locksmith_config_load(&c), 0);
    CHECK_RC(locksmith_config_get(c, "REBOOT_STRATEGY", &value, &origin), 0);
    CHECK_STR(value, "etcd-lock");
    snprintf(path, sizeof path, "%s/etc/flatcar/update.conf", root);
    CHECK_STR(origin, path);
    CHECK_RC(locksmith_config_get(c, "GROUP", &value, NULL), 0);
    CHECK_STR(value, "alpha");
    CHECK_RC(locksmith_config_get(c, "LOCKSMITHD_TEST_ONLY", &value, &origin), 0);
    CHECK_STR(value, "env");
    CHECK_STR(origin, "environment");
    locksmith_config_free(c);
    unsetenv("LOCKSMITHD_TEST_ONLY");
    unsetenv("LOCKSMITH_ROOT");
}

static void test_client(const char *endpoint, const char *root) {
    locksmith_client *c = NULL, *d = NULL;
    locksmith_semaphore *s = NULL;
    char group[64], *json = NULL;
    int old = 0;

    /* NULL and bad arguments */
    CHECK_RC(locksmith_client_new(NULL), -EINVAL);
    CHECK_RC(locksmith_client_set(NULL, "group", "x"), -EINVAL);
    CHECK_RC(locksmith_client_load_env(NULL, "X"), -EINVAL);
    CHECK_RC(locksmith_client_get(NULL, &s), -EINVAL);
    CHECK_RC(locksmith_client_lock(NULL, "a"), -EINVAL);
    CHECK_RC(locksmith_client_unlock(NULL, "a"), -EINVAL);
    CHECK_RC(locksmith_client_set_max(NULL, 1, &old), -EINVAL);
    CHECK_RC(locksmith_client_wait(NULL, 0), -EINVAL);
    CHECK_STR(locksmith_client_last_error(NULL), "");
    CHECK(locksmith_client_api(NULL) == NULL);
    CHECK(locksmith_client_endpoint(NULL) == NULL);
    CHECK(locksmith_client_free(NULL) == NULL);

    CHECK_RC(locksmith_client_new(&c), 0);
    CHECK_RC(locksmith_client_set(c, NULL, "x"), -EINVAL);
    CHECK_RC(locksmith_client_set(c, "group", NULL), -EINVAL);
    CHECK_RC(locksmith_client_set(c, "no-such-option", "x"), -EINVAL);
    CHECK(strstr(locksmith_client_last_error(c), "no-such-option") != NULL);
    CHECK_RC(locksmith_client_set(c, "endpoint", "127.0.0.1:2379"), -EINVAL);
    CHECK(strstr(locksmith_client_last_error(c), "127.0.0.1:2379") != NULL);
    CHECK_RC(locksmith_client_set(c, "etcd-api", "v4"), -EINVAL);
    CHECK_RC(locksmith_client_set(c, "timeout", "soon"), -EINVAL);
    CHECK_RC(locksmith_client_set(c, "etcd-cafile", "/nonexistent/ca.pem"), -EINVAL);
    CHECK(strstr(locksmith_client_last_error(c), "/nonexistent/ca.pem") != NULL);
    CHECK_RC(locksmith_client_get(c, NULL), -EINVAL);
    CHECK_RC(locksmith_client_wait(c, -1), -EINVAL);

    /* Against the real etcd, in a group of this run's own */
    snprintf(group, sizeof group, "c-api-%ld", (long)getpid());
    CHECK_RC(locksmith_client_set(c, "endpoint", endpoint), 0);
    CHECK_RC(locksmith_client_set(c, "group", group), 0);
    CHECK_RC(locksmith_client_set(c, "timeout", "2s"), 0);
    CHECK(locksmith_client_api(c) == NULL);
    CHECK_RC(locksmith_client_get(c, &s), 0);
    CHECK_RC(locksmith_semaphore_to_json(s, &json), 0);
    CHECK_STR(json, "{\"semaphore\":1,\"max\":1,\"holders\":null}");
    free(json);
    s = locksmith_semaphore_free(s);
    CHECK_STR(locksmith_client_api(c), "v2");
    CHECK_STR(locksmith_client_endpoint(c), endpoint);
    CHECK_RC(locksmith_client_set_max(c, 2, &old), 0);
    CHECK(old == 1);
    CHECK_RC(locksmith_client_lock(c, "node-a"), 0);
    CHECK_RC(locksmith_client_lock(c, "node-a"), -EEXIST);
    CHECK_STR(locksmith_client_last_error(c), "holder exists");
    CHECK_RC(locksmith_client_lock(c, "node-b"), 0);
    CHECK_RC(locksmith_client_lock(c, "node-c"), -EBUSY);
    CHECK_STR(locksmith_client_last_error(c), "semaphore is at 0");
    CHECK_RC(locksmith_client_unlock(c, "node-c"), -ENOENT);
    CHECK_RC(locksmith_client_set_max(c, -1, NULL), -EINVAL);
    CHECK_RC(locksmith_client_wait(c, 100), 0);
    int64_t requests = -1, conflicts = -1;
    CHECK_RC(locksmith_client_stats(NULL, &requests, &conflicts), -EINVAL);
    CHECK_RC(locksmith_client_stats(c, NULL, NULL), 0);
    CHECK_RC(locksmith_client_stats(c, &requests, &conflicts), 0);
    CHECK(requests >= 5 && requests < 20 && conflicts == 0);

    /* NULL id: this machine's id, from LOCKSMITH_ROOT */
    char path[4096];
    snprintf(path, sizeof path, "%s/etc/machine-id", root);
    write_file(path, "0123456789abcdef0123456789abcdef\n");
    setenv("LOCKSMITH_ROOT", root, 1);
    CHECK_RC(locksmith_client_unlock(c, "node-b"), 0);
    CHECK_RC(locksmith_client_lock(c, NULL), 0);
    CHECK_RC(locksmith_client_get(c, &s), 0);
    CHECK_RC(locksmith_semaphore_is_holder(s, "0123456789abcdef0123456789abcdef"), 1);
    s = locksmith_semaphore_free(s);
    CHECK_RC(locksmith_client_unlock(c, NULL), 0);
    unsetenv("LOCKSMITH_ROOT");

    /* v3 through the environment, in the same group: a separate store */
    setenv("LOCKSMITHTEST_ENDPOINT", endpoint, 1);
    setenv("LOCKSMITHTEST_GROUP", group, 1);
    setenv("LOCKSMITHTEST_ETCD_API", "v3", 1);
    CHECK_RC(locksmith_client_new(&d), 0);
    CHECK_RC(locksmith_client_load_env(d, "LOCKSMITHTEST"), 3);
    CHECK_RC(locksmith_client_get(d, &s), 0);
    CHECK_RC(locksmith_semaphore_holder_count(s), 0);
    s = locksmith_semaphore_free(s);
    CHECK_STR(locksmith_client_api(d), "v3");
    CHECK_RC(locksmith_client_lock(d, "v3-node"), 0);
    CHECK_RC(locksmith_client_unlock(d, "v3-node"), 0);
    setenv("LOCKSMITHTEST_TIMEOUT", "forever", 1);
    CHECK_RC(locksmith_client_load_env(d, "LOCKSMITHTEST"), -EINVAL);
    CHECK(strstr(locksmith_client_last_error(d), "LOCKSMITHTEST_TIMEOUT") != NULL);
    d = locksmith_client_free(d);

    /* Nothing listening: the error names the endpoint */
    CHECK_RC(locksmith_client_new(&d), 0);
    CHECK_RC(locksmith_client_set(d, "endpoint", "http://127.0.0.1:9"), 0);
    CHECK_RC(locksmith_client_lock(d, "x"), -ECONNREFUSED);
    CHECK(strstr(locksmith_client_last_error(d), "http://127.0.0.1:9") != NULL);
    locksmith_client_free(d);
    c = locksmith_client_free(c);
}

/* ---- Version 2 (LOCKSMITH_2) ------------------------------------------------------------------ */

#define FRESH_JSON "{\"semaphore\":1,\"max\":1,\"holders\":null}"

/* mkdir -p ROOT/RELATIVE */
static void make_dirs(const char *root, const char *relative) {
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", root, relative);
    for (char *p = path + 1; *p; p++) {
        if (*p == '/') {
            *p = 0;
            mkdir(path, 0755);
            *p = '/';
        }
    }
    mkdir(path, 0755);
}

/* CLOCK_MONOTONIC in microseconds: the clock of locksmith_client_set_deadline(). */
static uint64_t now_usec(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

/* A TCP socket on a free loopback port that never answers: the kernel completes connections
 * into its backlog, and nobody reads or writes. Returns the socket; its port in *ret_port. */
static int listen_silent(int *ret_port) {
    struct sockaddr_in a;
    socklen_t len = sizeof a;
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof a) < 0 || listen(fd, 16) < 0 ||
        getsockname(fd, (struct sockaddr *)&a, &len) < 0) {
        perror("listen_silent");
        exit(2);
    }
    *ret_port = ntohs(a.sin_port);
    return fd;
}

/* What the first client waiting on listener fd sent (its request line and headers, cut to
 * size - 1 bytes), or "" if no connection arrives within wait_ms. A request sent to a listener
 * that never answered stays in the accepted socket's buffer after the client gave up. */
static const char *take_request(int fd, char *buf, size_t size, int wait_ms) {
    struct pollfd p = {fd, POLLIN, 0};
    size_t n = 0;
    buf[0] = 0;
    if (poll(&p, 1, wait_ms) != 1)
        return buf;
    int conn = accept(fd, NULL, NULL);
    if (conn < 0)
        return buf;
    while (n < size - 1 && !strstr(buf, "\r\n\r\n")) {
        struct pollfd q = {conn, POLLIN, 0};
        if (poll(&q, 1, 1000) != 1)
            break;
        ssize_t got = read(conn, buf + n, size - 1 - n);
        if (got <= 0)
            break;
        n += (size_t)got;
        buf[n] = 0;
    }
    close(conn);
    return buf;
}

static int starts_with(const char *s, const char *prefix) { return strncmp(s, prefix, strlen(prefix)) == 0; }

/* This machine's /etc/machine-id if it holds a valid id (1), missing (0), or else (-1). */
static int system_machine_id(char id[33]) {
    char buf[128] = "";
    FILE *f = fopen("/etc/machine-id", "r");
    if (!f)
        return errno == ENOENT ? 0 : -1;
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = 0;
    char *start = buf + strspn(buf, " \t\r\n");
    size_t len = strcspn(start, " \t\r\n");
    if (len != 32 || strspn(start, "0123456789abcdef") < 32)
        return -1;
    memcpy(id, start, 32);
    id[32] = 0;
    return 1;
}

static void test_config_load_at(const char *root) {
    char dir[2048], path[4096], other[4096];
    locksmith_config *c = NULL;
    const char *value = NULL, *origin = NULL;

    snprintf(dir, sizeof dir, "%s/v2-root", root);
    make_dirs(dir, "etc/coreos");
    snprintf(path, sizeof path, "%s/etc/coreos/update.conf", dir);
    write_file(path, "LOCKSMITHD_GROUP=from-file\nREBOOT_STRATEGY=etcd-lock\n");
    /* The environment would win over the file; LOCKSMITH_ROOT names another root (whose
     * update.conf, from test_config, sets GROUP=alpha) that the _at functions never consult. */
    setenv("LOCKSMITHD_GROUP", "from-environment", 1);
    setenv("LOCKSMITHD_V2_ENV_ONLY", "env", 1);
    setenv("LOCKSMITH_ROOT", root, 1);

    CHECK_RC(locksmith_config_load_at(dir, 0, &c), 0);
    CHECK_RC(locksmith_config_get(c, "LOCKSMITHD_GROUP", &value, &origin), 0);
    CHECK_STR(value, "from-environment");
    CHECK_STR(origin, "environment");
    CHECK_RC(locksmith_config_get(c, "LOCKSMITHD_V2_ENV_ONLY", &value, NULL), 0);
    CHECK_RC(locksmith_config_get(c, "REBOOT_STRATEGY", &value, &origin), 0);
    CHECK_STR(value, "etcd-lock");
    CHECK_STR(origin, path);
    CHECK_RC(locksmith_config_get(c, "GROUP", &value, NULL), -ENOENT);
    c = locksmith_config_free(c);

    /* LOCKSMITH_NO_ENVIRONMENT: the files alone. */
    CHECK_RC(locksmith_config_load_at(dir, LOCKSMITH_NO_ENVIRONMENT, &c), 0);
    CHECK_RC(locksmith_config_get(c, "LOCKSMITHD_GROUP", &value, &origin), 0);
    CHECK_STR(value, "from-file");
    CHECK_STR(origin, path);
    CHECK_RC(locksmith_config_get(c, "REBOOT_STRATEGY", &value, NULL), 0);
    CHECK_STR(value, "etcd-lock");
    CHECK_RC(locksmith_config_get(c, "LOCKSMITHD_V2_ENV_ONLY", &value, NULL), -ENOENT);
    CHECK_RC(locksmith_config_get(c, "PATH", &value, NULL), -ENOENT);
    c = locksmith_config_free(c);

    /* The same root with a trailing slash. */
    snprintf(other, sizeof other, "%s/", dir);
    CHECK_RC(locksmith_config_load_at(other, LOCKSMITH_NO_ENVIRONMENT, &c), 0);
    CHECK_RC(locksmith_config_get(c, "LOCKSMITHD_GROUP", &value, NULL), 0);
    CHECK_STR(value, "from-file");
    c = locksmith_config_free(c);

    /* NULL is "/", not $LOCKSMITH_ROOT. */
    CHECK_RC(locksmith_config_load_at(NULL, LOCKSMITH_NO_ENVIRONMENT, &c), 0);
    value = NULL;
    CHECK(locksmith_config_get(c, "GROUP", &value, NULL) == -ENOENT || strcmp(value, "alpha") != 0);
    CHECK_RC(locksmith_config_get(c, "LOCKSMITHD_V2_ENV_ONLY", &value, NULL), -ENOENT);
    c = locksmith_config_free(c);

    /* A root that does not exist holds no files: an empty configuration. */
    snprintf(other, sizeof other, "%s/no-such-root", root);
    CHECK_RC(locksmith_config_load_at(other, LOCKSMITH_NO_ENVIRONMENT, &c), 0);
    CHECK_RC(locksmith_config_get(c, "LOCKSMITHD_GROUP", &value, NULL), -ENOENT);
    c = locksmith_config_free(c);

    /* Bad arguments; *ret untouched. */
    CHECK_RC(locksmith_config_load_at(dir, 0, NULL), -EINVAL);
    CHECK_RC(locksmith_config_load_at("relative/root", 0, &c), -EINVAL);
    CHECK(strstr(locksmith_last_error(), "relative/root") != NULL);
    CHECK_RC(locksmith_config_load_at("relative/root", LOCKSMITH_NO_ENVIRONMENT, &c), -EINVAL);
    CHECK_RC(locksmith_config_load_at(".", 0, &c), -EINVAL);
    CHECK_RC(locksmith_config_load_at("", 0, &c), -EINVAL);
    CHECK_RC(locksmith_config_load_at(dir, UINT64_C(1) << 1, &c), -EINVAL);
    CHECK(strstr(locksmith_last_error(), "flags") != NULL);
    CHECK_RC(locksmith_config_load_at(dir, LOCKSMITH_NO_ENVIRONMENT | (UINT64_C(1) << 63), &c), -EINVAL);
    CHECK_RC(locksmith_config_load_at(NULL, UINT64_MAX, &c), -EINVAL);
    CHECK(c == NULL);

    /* The errors of locksmith_config_load(): a file that is not UTF-8 text, named. */
    make_dirs(dir, "etc/flatcar");
    snprintf(other, sizeof other, "%s/etc/flatcar/update.conf", dir);
    write_file(other, "GROUP=\xff\xfe\n");
    CHECK_RC(locksmith_config_load_at(dir, LOCKSMITH_NO_ENVIRONMENT, &c), -EBADMSG);
    CHECK(strstr(locksmith_last_error(), other) != NULL);
    CHECK_RC(locksmith_config_load_at(dir, 0, &c), -EBADMSG);
    CHECK(c == NULL);
    unlink(other);

    unsetenv("LOCKSMITHD_GROUP");
    unsetenv("LOCKSMITHD_V2_ENV_ONLY");
    unsetenv("LOCKSMITH_ROOT");
}

static void test_machine_id_at(const char *root) {
    char dir[2048], path[4096], system_id[33], *id = NULL;

    /* $LOCKSMITH_ROOT holds one id, the explicit root another (and at first none). */
    snprintf(path, sizeof path, "%s/etc/machine-id", root);
    write_file(path, "0123456789abcdef0123456789abcdef\n");
    setenv("LOCKSMITH_ROOT", root, 1);
    snprintf(dir, sizeof dir, "%s/v2-id-root", root);
    make_dirs(dir, "etc");
    CHECK_RC(locksmith_machine_id_at(dir, &id), -ENOENT);
    CHECK(id == NULL);
    CHECK(strstr(locksmith_last_error(), "v2-id-root") != NULL);
    snprintf(path, sizeof path, "%s/etc/machine-id", dir);
    write_file(path, "fedcba9876543210fedcba9876543210\n");
    CHECK_RC(locksmith_machine_id_at(dir, &id), 0);
    CHECK_STR(id, "fedcba9876543210fedcba9876543210");
    free(id);
    id = NULL;
    CHECK_RC(locksmith_machine_id(&id), 0);
    CHECK_STR(id, "0123456789abcdef0123456789abcdef");
    free(id);
    id = NULL;

    /* The errors of locksmith_machine_id(). */
    write_file(path, "not a machine id\n");
    CHECK_RC(locksmith_machine_id_at(dir, &id), -EBADMSG);
    CHECK(id == NULL);
    write_file(path, "fedcba9876543210fedcba9876543210\n");

    /* Bad arguments. */
    CHECK_RC(locksmith_machine_id_at(dir, NULL), -EINVAL);
    CHECK_RC(locksmith_machine_id_at(NULL, NULL), -EINVAL);
    CHECK_RC(locksmith_machine_id_at("relative", &id), -EINVAL);
    CHECK_RC(locksmith_machine_id_at("", &id), -EINVAL);
    CHECK_RC(locksmith_machine_id_at("./etc", &id), -EINVAL);
    CHECK(id == NULL);

    /* NULL is "/", whatever $LOCKSMITH_ROOT says. */
    int have = system_machine_id(system_id);
    int r = locksmith_machine_id_at(NULL, &id);
    if (have == 1) {
        CHECK_RC(r, 0);
        CHECK_STR(id, system_id);
    } else if (have == 0) {
        CHECK_RC(r, -ENOENT);
    } else {
        CHECK(r < 0);
    }
    free(id);
    unsetenv("LOCKSMITH_ROOT");
}

/* Stores value at key through etcd's v2 keys API with a bare HTTP request (endpoint
 * "http://127.0.0.1:PORT"): for values the library would never write. Returns the HTTP status. */
static int etcd_put_v2(const char *endpoint, const char *key, const char *value) {
    struct sockaddr_in a;
    char request[1024], answer[512] = "";
    int port = 0, status = -1;
    if (sscanf(endpoint, "http://127.0.0.1:%d", &port) != 1)
        return -1;
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    a.sin_port = htons((uint16_t)port);
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0 || connect(fd, (struct sockaddr *)&a, sizeof a) < 0) {
        if (fd >= 0)
            close(fd);
        return -1;
    }
    int n = snprintf(request, sizeof request,
                     "PUT /v2/keys/%s HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/x-www-form-urlencoded\r\n"
                     "Content-Length: %zu\r\nConnection: close\r\n\r\nvalue=%s",
                     key, strlen("value=") + strlen(value), value);
    if (write(fd, request, (size_t)n) == n && read(fd, answer, sizeof answer - 1) > 0)
        sscanf(answer, "HTTP/1.1 %d", &status);
    close(fd);
    return status;
}

static void test_client_read(const char *endpoint) {
    locksmith_client *c = NULL, *v3 = NULL, *other = NULL;
    locksmith_semaphore *s = NULL;
    char group[64], *json = NULL;

    CHECK_RC(locksmith_client_read(NULL, &s), -EINVAL);
    snprintf(group, sizeof group, "c-api-read-%ld", (long)getpid());
    CHECK_RC(locksmith_client_new_with_flags(0, &c), 0);
    CHECK_RC(locksmith_client_set(c, "endpoint", endpoint), 0);
    CHECK_RC(locksmith_client_set(c, "group", group), 0);
    CHECK_RC(locksmith_client_set(c, "timeout", "2s"), 0);
    CHECK_RC(locksmith_client_read(c, NULL), -EINVAL);

    /* A missing key: -ENOENT, and nothing is created (a second read still finds nothing). */
    CHECK_RC(locksmith_client_read(c, &s), -ENOENT);
    CHECK(s == NULL);
    CHECK(strlen(locksmith_client_last_error(c)) > 0);
    CHECK_RC(locksmith_client_read(c, &s), -ENOENT);
    CHECK(s == NULL);
    CHECK_STR(locksmith_client_api(c), "v2");
    CHECK_RC(locksmith_client_new(&v3), 0);
    CHECK_RC(locksmith_client_set(v3, "endpoint", endpoint), 0);
    CHECK_RC(locksmith_client_set(v3, "group", group), 0);
    CHECK_RC(locksmith_client_set(v3, "etcd-api", "v3"), 0);
    CHECK_RC(locksmith_client_read(v3, &s), -ENOENT);
    CHECK_RC(locksmith_client_read(v3, &s), -ENOENT);
    CHECK(s == NULL);

    /* An existing key: the document, as stored now (also another client's writes). */
    CHECK_RC(locksmith_client_get(c, &s), 0);
    s = locksmith_semaphore_free(s);
    CHECK_RC(locksmith_client_read(c, &s), 0);
    CHECK_RC(locksmith_semaphore_to_json(s, &json), 0);
    CHECK_STR(json, FRESH_JSON);
    free(json);
    s = locksmith_semaphore_free(s);
    CHECK_RC(locksmith_client_new(&other), 0);
    CHECK_RC(locksmith_client_set(other, "endpoint", endpoint), 0);
    CHECK_RC(locksmith_client_set(other, "group", group), 0);
    CHECK_RC(locksmith_client_lock(other, "reader-node"), 0);
    CHECK_RC(locksmith_client_read(c, &s), 0);
    CHECK_RC(locksmith_semaphore_is_holder(s, "reader-node"), 1);
    s = locksmith_semaphore_free(s);
    CHECK_RC(locksmith_client_unlock(other, "reader-node"), 0);
    CHECK_RC(locksmith_client_read(c, &s), 0);
    CHECK_RC(locksmith_semaphore_holder_count(s), 0);
    s = locksmith_semaphore_free(s);
    /* The v3 store is still empty; after a v3 get, read finds its document. */
    CHECK_RC(locksmith_client_read(v3, &s), -ENOENT);
    CHECK_RC(locksmith_client_get(v3, &s), 0);
    s = locksmith_semaphore_free(s);
    CHECK_RC(locksmith_client_read(v3, &s), 0);
    CHECK_RC(locksmith_semaphore_to_json(s, &json), 0);
    CHECK_STR(json, FRESH_JSON);
    free(json);
    s = locksmith_semaphore_free(s);
    CHECK_STR(locksmith_client_api(v3), "v3");

    /* A stored value that is not a semaphore: -EBADMSG, and it stays as it is. */
    char *key = NULL;
    CHECK_RC(locksmith_group_key(group, &key), 0);
    CHECK(etcd_put_v2(endpoint, key, "not-a-semaphore") == 200);
    CHECK_RC(locksmith_client_read(c, &s), -EBADMSG);
    CHECK(strstr(locksmith_client_last_error(c), key) != NULL);
    CHECK(s == NULL);
    CHECK_RC(locksmith_client_read(c, &s), -EBADMSG);
    free(key);
    locksmith_client_free(other);
    locksmith_client_free(v3);
    locksmith_client_free(c);
}

static void test_client_no_environment(const char *endpoint, const char *root) {
    locksmith_client *c = NULL, *plain = NULL;
    locksmith_semaphore *s = NULL;
    char group[64], path[4096], system_id[33];

    CHECK_RC(locksmith_client_new_with_flags(0, NULL), -EINVAL);
    CHECK_RC(locksmith_client_new_with_flags(LOCKSMITH_NO_ENVIRONMENT, NULL), -EINVAL);
    CHECK_RC(locksmith_client_new_with_flags(UINT64_C(1) << 1, &c), -EINVAL);
    CHECK(strstr(locksmith_last_error(), "flags") != NULL);
    CHECK_RC(locksmith_client_new_with_flags(UINT64_MAX, &c), -EINVAL);
    CHECK_RC(locksmith_client_new_with_flags(LOCKSMITH_NO_ENVIRONMENT | (UINT64_C(1) << 63), &c), -EINVAL);
    CHECK(c == NULL);

    /* NULL id: the machine id under "/" for the no-environment client, under $LOCKSMITH_ROOT
     * for the others. */
    snprintf(path, sizeof path, "%s/etc/machine-id", root);
    write_file(path, "0123456789abcdef0123456789abcdef\n");
    setenv("LOCKSMITH_ROOT", root, 1);
    snprintf(group, sizeof group, "c-api-noenv-%ld", (long)getpid());
    CHECK_RC(locksmith_client_new_with_flags(LOCKSMITH_NO_ENVIRONMENT, &c), 0);
    CHECK_RC(locksmith_client_set(c, "endpoint", endpoint), 0);
    CHECK_RC(locksmith_client_set(c, "group", group), 0);
    CHECK_RC(locksmith_client_set_max(c, 3, NULL), 0);
    CHECK_RC(locksmith_client_new(&plain), 0);
    CHECK_RC(locksmith_client_set(plain, "endpoint", endpoint), 0);
    CHECK_RC(locksmith_client_set(plain, "group", group), 0);
    CHECK_RC(locksmith_client_lock(plain, NULL), 0);

    int have = system_machine_id(system_id);
    int r = locksmith_client_lock(c, NULL);
    CHECK_RC(locksmith_client_read(c, &s), 0);
    CHECK_RC(locksmith_semaphore_is_holder(s, "0123456789abcdef0123456789abcdef"), 1);
    if (have == 1) {
        CHECK_RC(r, 0);
        CHECK_RC(locksmith_semaphore_is_holder(s, system_id), 1);
        CHECK_RC(locksmith_semaphore_holder_count(s), 2);
        CHECK_RC(locksmith_client_unlock(c, NULL), 0);
    } else {
        CHECK_RC(r, have == 0 ? -ENOENT : -EBADMSG);
        CHECK(strstr(locksmith_client_last_error(c), "/etc/machine-id") != NULL);
        CHECK_RC(locksmith_semaphore_holder_count(s), 1);
    }
    s = locksmith_semaphore_free(s);
    CHECK_RC(locksmith_client_unlock(plain, NULL), 0);
    CHECK_RC(locksmith_client_read(c, &s), 0);
    CHECK_RC(locksmith_semaphore_holder_count(s), 0);
    s = locksmith_semaphore_free(s);
    unsetenv("LOCKSMITH_ROOT");
    locksmith_client_free(plain);
    locksmith_client_free(c);
}

static void test_client_deadline(const char *endpoint) {
    locksmith_client *c = NULL;
    locksmith_semaphore *s = NULL;
    char group[64];
    int64_t before = -1, after = -1;
    int old = -1;

    CHECK_RC(locksmith_client_set_deadline(NULL, 0), -EINVAL);
    CHECK_RC(locksmith_client_set_deadline(NULL, now_usec() + 1000000), -EINVAL);

    /* A deadline in the past: every call fails at once, sending nothing. */
    snprintf(group, sizeof group, "c-api-deadline-%ld", (long)getpid());
    CHECK_RC(locksmith_client_new(&c), 0);
    CHECK_RC(locksmith_client_set(c, "endpoint", endpoint), 0);
    CHECK_RC(locksmith_client_set(c, "group", group), 0);
    CHECK_RC(locksmith_client_set_deadline(c, now_usec() + 60 * 1000000u), 0); /* a minute: plenty */
    CHECK_RC(locksmith_client_get(c, &s), 0);
    s = locksmith_semaphore_free(s);
    CHECK_RC(locksmith_client_stats(c, &before, NULL), 0);
    CHECK(before >= 1);
    CHECK_RC(locksmith_client_set_deadline(c, now_usec() - 1000), 0);
    CHECK_RC(locksmith_client_get(c, &s), -ETIMEDOUT);
    CHECK(s == NULL);
    CHECK(strlen(locksmith_client_last_error(c)) > 0);
    CHECK_RC(locksmith_client_read(c, &s), -ETIMEDOUT);
    CHECK_RC(locksmith_client_lock(c, "late"), -ETIMEDOUT);
    CHECK_RC(locksmith_client_unlock(c, "late"), -ETIMEDOUT);
    CHECK_RC(locksmith_client_set_max(c, 5, &old), -ETIMEDOUT);
    CHECK(old == -1);
    CHECK_RC(locksmith_client_wait(c, 200), -ETIMEDOUT); /* not 0, "no change yet": callers loop on that */
    CHECK_RC(locksmith_client_set_deadline(c, 1), 0); /* 1 µs after boot */
    CHECK_RC(locksmith_client_read(c, &s), -ETIMEDOUT);
    CHECK_RC(locksmith_client_stats(c, &after, NULL), 0);
    CHECK(after == before);
    /* It outlives a change of options (which makes a new connection). */
    CHECK_RC(locksmith_client_set(c, "timeout", "3s"), 0);
    CHECK_RC(locksmith_client_get(c, &s), -ETIMEDOUT);
    CHECK_RC(locksmith_client_stats(c, &after, NULL), 0);
    CHECK(after == 0);
    /* 0 takes the deadline away. */
    CHECK_RC(locksmith_client_set_deadline(c, 0), 0);
    CHECK_RC(locksmith_client_read(c, &s), 0);
    CHECK_RC(locksmith_semaphore_holder_count(s), 0);
    s = locksmith_semaphore_free(s);
    CHECK_RC(locksmith_client_stats(c, &after, NULL), 0);
    CHECK(after == 1);
    /* A deadline that comes during a wait ends it with -ETIMEDOUT, at the deadline. */
    uint64_t start = now_usec();
    CHECK_RC(locksmith_client_set_deadline(c, start + 300000), 0);
    CHECK_RC(locksmith_client_wait(c, 5000), -ETIMEDOUT);
    CHECK(now_usec() - start < 2300000);
    c = locksmith_client_free(c);

    /* Endpoints that accept and never answer, with a per-request timeout of 10 s: the deadline,
     * a few hundred ms ahead, ends the call (failover to the second endpoint included). */
    int port1 = 0, port2 = 0;
    int silent1 = listen_silent(&port1), silent2 = listen_silent(&port2);
    char url[128];
    for (int endpoints = 1; endpoints <= 2; endpoints++) {
        CHECK_RC(locksmith_client_new(&c), 0);
        snprintf(url, sizeof url, "http://127.0.0.1:%d", port1);
        CHECK_RC(locksmith_client_set(c, "endpoint", url), 0);
        if (endpoints == 2) {
            snprintf(url, sizeof url, "http://127.0.0.1:%d", port2);
            CHECK_RC(locksmith_client_set(c, "endpoint", url), 0);
        }
        CHECK_RC(locksmith_client_set(c, "timeout", "10s"), 0);
        uint64_t start = now_usec(), deadline = start + 400000;
        CHECK_RC(locksmith_client_set_deadline(c, deadline), 0);
        CHECK_RC(locksmith_client_lock(c, "node"), -ETIMEDOUT);
        uint64_t end = now_usec();
        /* Not before the deadline (libcurl counts whole ms), and not long after it (valgrind
         * slows everything down: 2 s of slack, still far below the 10 s timeout). */
        CHECK(end + 2000 >= deadline);
        CHECK(end < deadline + 2000000);
        if (end >= deadline + 2000000 || end + 2000 < deadline)
            fprintf(stderr, "      the call took %lld ms, the deadline was 400 ms ahead\n", (long long)(end - start) / 1000);
        CHECK_RC(locksmith_client_read(c, &s), -ETIMEDOUT); /* and now it has passed */
        CHECK(now_usec() - end < 200000);
        c = locksmith_client_free(c);
    }
    close(silent1);
    close(silent2);
}

static void test_client_proxy(const char *endpoint) {
    locksmith_client *c = NULL;
    locksmith_semaphore *s = NULL;
    char proxy[128], request[4096];
    int port = 0;

    CHECK_RC(locksmith_client_new(&c), 0);
    CHECK_RC(locksmith_client_set(c, "proxy", ""), 0);
    CHECK_RC(locksmith_client_set(c, "proxy", "http://127.0.0.1:1"), 0);
    CHECK_RC(locksmith_client_set(c, "proxy", "https://proxy.example:3128"), 0);
    CHECK_RC(locksmith_client_set(c, "proxy", "ftp://x"), -EINVAL);
    CHECK(strstr(locksmith_client_last_error(c), "proxy") != NULL);
    CHECK_RC(locksmith_client_set(c, "proxy", "127.0.0.1:3128"), -EINVAL);
    CHECK_RC(locksmith_client_set(c, "proxy", "http://proxy\n.example"), -EINVAL);
    CHECK_RC(locksmith_client_set(c, "proxy", NULL), -EINVAL);
    c = locksmith_client_free(c);

    /* A proxy that we control (it never answers): a request for a non-loopback endpoint goes
     * to it, as a proxy request naming the endpoint's URL. */
    int listener = listen_silent(&port);
    snprintf(proxy, sizeof proxy, "http://127.0.0.1:%d", port);
    for (int flags = 0; flags <= 1; flags++) {
        CHECK_RC(locksmith_client_new_with_flags(flags ? LOCKSMITH_NO_ENVIRONMENT : 0, &c), 0);
        CHECK_RC(locksmith_client_set(c, "endpoint", "http://etcd.invalid:2379"), 0);
        CHECK_RC(locksmith_client_set(c, "proxy", proxy), 0);
        CHECK_RC(locksmith_client_set(c, "timeout", "500ms"), 0);
        CHECK_RC(locksmith_client_get(c, &s), -ETIMEDOUT);
        take_request(listener, request, sizeof request, 2000);
        CHECK(starts_with(request, "GET http://etcd.invalid:2379/v2/keys/coreos.com/updateengine/rebootlock/semaphore"));
        if (!starts_with(request, "GET http://etcd.invalid:2379/"))
            fprintf(stderr, "      the proxy saw: \"%.80s\"\n", request);
        c = locksmith_client_free(c);
    }

    /* Loopback endpoints never go through a proxy. */
    CHECK_RC(locksmith_client_new(&c), 0);
    CHECK_RC(locksmith_client_set(c, "endpoint", endpoint), 0);
    CHECK_RC(locksmith_client_set(c, "proxy", proxy), 0);
    CHECK_RC(locksmith_client_read(c, &s), -ENOENT);
    CHECK_STR(take_request(listener, request, sizeof request, 0), "");
    c = locksmith_client_free(c);

    /* The environment's http_proxy: used by a plain client, ignored with LOCKSMITH_NO_ENVIRONMENT
     * and when the proxy option is "". */
    setenv("http_proxy", proxy, 1);
    CHECK_RC(locksmith_client_new(&c), 0);
    CHECK_RC(locksmith_client_set(c, "endpoint", "http://etcd.invalid:2379"), 0);
    CHECK_RC(locksmith_client_set(c, "timeout", "500ms"), 0);
    CHECK_RC(locksmith_client_get(c, &s), -ETIMEDOUT);
    CHECK(starts_with(take_request(listener, request, sizeof request, 2000), "GET http://etcd.invalid:2379/"));
    CHECK_RC(locksmith_client_set(c, "proxy", ""), 0);
    CHECK(locksmith_client_get(c, &s) < 0); /* etcd.invalid does not resolve */
    CHECK_STR(take_request(listener, request, sizeof request, 200), "");
    c = locksmith_client_free(c);
    CHECK_RC(locksmith_client_new_with_flags(LOCKSMITH_NO_ENVIRONMENT, &c), 0);
    CHECK_RC(locksmith_client_set(c, "endpoint", "http://etcd.invalid:2379"), 0);
    CHECK_RC(locksmith_client_set(c, "timeout", "500ms"), 0);
    int r = locksmith_client_get(c, &s);
    CHECK(r == -ECONNREFUSED || r == -ETIMEDOUT);
    CHECK(strstr(locksmith_client_last_error(c), "etcd.invalid") != NULL);
    CHECK_STR(take_request(listener, request, sizeof request, 200), "");
    CHECK(s == NULL);
    c = locksmith_client_free(c);
    unsetenv("http_proxy");
    close(listener);
}

int main(int argc, char **argv) {
    if (argc != 4) {
        fprintf(stderr, "usage: %s WINDOW_TSV ROOT_DIR ETCD_ENDPOINT\n", argv[0]);
        return 2;
    }
    /* The _at functions take absolute roots only. */
    char *root = realpath(argv[2], NULL);
    if (!root) {
        perror(argv[2]);
        return 2;
    }
    setenv("TZ", "America/Los_Angeles", 1);
    tzset();
    test_general();
    test_semaphore();
    test_window(argv[1]);
    test_node(root);
    test_config(root);
    test_client(argv[3], root);
    test_config_load_at(root);
    test_machine_id_at(root);
    test_client_read(argv[3]);
    test_client_no_environment(argv[3], root);
    test_client_deadline(argv[3]);
    test_client_proxy(argv[3]);
    free(root);
    printf("C API: %d passed, %d failed\n", passed, failed);
    return failed ? 1 : 0;
}
