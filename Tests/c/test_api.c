/* Exercises every function of include/locksmith.h through the installed library, including
 * NULL and invalid arguments. Built with `pkg-config --cflags --libs locksmith` and run under
 * valgrind by tools/test-abi.
 *
 * usage: test_api WINDOW_TSV ROOT_DIR ETCD_ENDPOINT
 *   WINDOW_TSV     the window test vectors (evaluated with TZ=America/Los_Angeles)
 *   ROOT_DIR       an empty scratch directory used as LOCKSMITH_ROOT
 *   ETCD_ENDPOINT  a running etcd (v2 enabled) for the client functions
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
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

int main(int argc, char **argv) {
    if (argc != 4) {
        fprintf(stderr, "usage: %s WINDOW_TSV ROOT_DIR ETCD_ENDPOINT\n", argv[0]);
        return 2;
    }
    setenv("TZ", "America/Los_Angeles", 1);
    tzset();
    test_general();
    test_semaphore();
    test_window(argv[1]);
    test_node(argv[2]);
    test_config(argv[2]);
    test_client(argv[3], argv[2]);
    printf("C API: %d passed, %d failed\n", passed, failed);
    return failed ? 1 : 0;
}
