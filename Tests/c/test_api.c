/* Exercises every function of include/locksmith.h through the installed library, including
 * NULL and invalid arguments, and the functions of version node LOCKSMITH_2 (explicit roots, no
 * environment, deadlines, reads that never write, the proxy option; and what programs need:
 * settings resolution and display, warnings, tracing, cancelling from another thread and from a
 * signal handler, the last document seen, group listings, keys and groups, the daemon's settings
 * and the reboot-slot record). Built with
 * `pkg-config --cflags --libs locksmith` and run under valgrind by Tests/harness/test-abi.
 *
 * usage: test_api WINDOW_TSV ROOT_DIR ETCD_ENDPOINT
 *   WINDOW_TSV     the window test vectors (evaluated with TZ=America/Los_Angeles)
 *   ROOT_DIR       an empty scratch directory used as LOCKSMITH_ROOT
 *   ETCD_ENDPOINT  a running etcd (v2 enabled) for the client functions
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
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

/* A function that hands out a malloc()ed string: 0 and want, or (want NULL) -EINVAL and nothing.
 * Frees what it got. */
static void check_made(int r, char *got, const char *want, const char *what, int line) {
    check_rc(r, want ? 0 : -EINVAL, what, line);
    if (want) check_str(got, want, what, line);
    else check(got == NULL, what, "test_api.c", line);
    free(got);
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

    /* The compile-time version is the library's (this test is built against the library's own
     * header). */
    char num[64];
    CHECK_STR(v, LOCKSMITH_VERSION);
    snprintf(num, sizeof num, "%d.%d.%d", LOCKSMITH_VERSION_MAJOR, LOCKSMITH_VERSION_MINOR, LOCKSMITH_VERSION_PATCH);
    CHECK_STR(v, num);
    CHECK(LOCKSMITH_VERSION_NUM == ((LOCKSMITH_VERSION_MAJOR << 16) | (LOCKSMITH_VERSION_MINOR << 8) | LOCKSMITH_VERSION_PATCH));
    CHECK(LOCKSMITH_VERSION_AT_LEAST(0, 10, 0));
    CHECK(LOCKSMITH_VERSION_AT_LEAST(LOCKSMITH_VERSION_MAJOR, LOCKSMITH_VERSION_MINOR, LOCKSMITH_VERSION_PATCH));
    CHECK(!LOCKSMITH_VERSION_AT_LEAST(LOCKSMITH_VERSION_MAJOR, LOCKSMITH_VERSION_MINOR, LOCKSMITH_VERSION_PATCH + 1));

    /* Accessors fail one way, and say why. */
    CHECK(locksmith_semaphore_holder(NULL, 0) == NULL);
    CHECK(strstr(locksmith_last_error(), "s is NULL") != NULL);
    CHECK(locksmith_holder_records_since(NULL, 0) == -1);
    CHECK(strstr(locksmith_last_error(), "r is NULL") != NULL);

    /* FleetLock group names: the one rule of the client and the server (LOCKSMITH_5). */
    static const char *const groups_ok[] = {"default", "web-1", "a.b", "...", "A9"};
    static const char *const groups_bad[] = {"", ".", "..", "web_1", "a/b", "a b", "grüne"};
    char long_group[130];
    for (size_t i = 0; i < sizeof groups_ok / sizeof groups_ok[0]; i++) CHECK_RC(locksmith_fleetlock_group_check(groups_ok[i]), 0);
    for (size_t i = 0; i < sizeof groups_bad / sizeof groups_bad[0]; i++) CHECK_RC(locksmith_fleetlock_group_check(groups_bad[i]), -EINVAL);
    CHECK(strstr(locksmith_last_error(), "FleetLock groups are ASCII letters, digits") != NULL);
    CHECK_RC(locksmith_fleetlock_group_check(NULL), -EINVAL);
    memset(long_group, 'g', 128);
    long_group[128] = 0;
    CHECK_RC(locksmith_fleetlock_group_check(long_group), 0);
    long_group[128] = 'g';
    long_group[129] = 0;
    CHECK_RC(locksmith_fleetlock_group_check(long_group), -EINVAL);

    /* An option's variable (LOCKSMITH_5). */
    static const struct { const char *prefix, *option, *want; } variables[] = {
        {"LOCKSMITHD", "etcd-api", "LOCKSMITHD_ETCD_API"},
        {"LOCKSMITHCTL", "etcd-password-file", "LOCKSMITHCTL_ETCD_PASSWORD_FILE"},
        {"LOCKSMITHD", "no-such-option", NULL},
        {"locksmithd", "group", NULL},
        {NULL, "group", NULL},
        {"LOCKSMITHD", NULL, NULL},
    };
    for (size_t i = 0; i < sizeof variables / sizeof variables[0]; i++) {
        char *variable = NULL;
        int r = locksmith_client_option_variable(variables[i].prefix, variables[i].option, &variable);
        check_made(r, variable, variables[i].want, "locksmith_client_option_variable", __LINE__);
    }
    CHECK_RC(locksmith_client_option_variable("LOCKSMITHD", "group", NULL), -EINVAL);

    /* The settings files, in their order (LOCKSMITH_5). */
    CHECK_STR(locksmith_config_file(0), "/usr/share/coreos/update.conf");
    CHECK_STR(locksmith_config_file(3), "/etc/flatcar/update.conf");
    CHECK_STR(locksmith_config_file(4), "/etc/default/locksmithd");
    CHECK(locksmith_config_file(5) == NULL);
    CHECK(locksmith_config_file(-1) == NULL);

    /* A path under a root (LOCKSMITH_5). */
    static const struct { const char *root, *path, *want; } paths[] = {
        {"/srv/node", "/etc/machine-id", "/srv/node/etc/machine-id"},
        {"/srv/node/", "/etc/machine-id", "/srv/node/etc/machine-id"},
        {NULL, "/etc/machine-id", "/etc/machine-id"},
        {"/", "/etc/machine-id", "/etc/machine-id"},
        {"relative", "/etc/machine-id", NULL},
        {"/srv", "etc/machine-id", NULL},
        {"/srv", NULL, NULL},
    };
    for (size_t i = 0; i < sizeof paths / sizeof paths[0]; i++) {
        char *path = NULL;
        int r = locksmith_root_path(paths[i].root, paths[i].path, &path);
        check_made(r, path, paths[i].want, "locksmith_root_path", __LINE__);
    }
    CHECK_RC(locksmith_root_path("/srv", "/x", NULL), -EINVAL);

    /* Times for people (LOCKSMITH_5). */
    char *when = NULL;
    CHECK_RC(locksmith_time_format(1764452103, "%Y-%m-%dT%H:%M:%SZ", 1, &when), 0);
    CHECK_STR(when, "2025-11-29T21:35:03Z");
    free(when);
    when = NULL;
    CHECK_RC(locksmith_time_format(0, NULL, 1, &when), 0);
    CHECK_STR(when, "Thu 1970-01-01 00:00 GMT");
    free(when);
    when = NULL;
    CHECK_RC(locksmith_time_format(0, "%H", 0, NULL), -EINVAL);
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
    /* the line each assignment starts on (LOCKSMITH_3) */
    CHECK_RC(locksmith_config_line(c, "A"), 2);
    CHECK_RC(locksmith_config_line(c, "C"), 4);
    CHECK_RC(locksmith_config_line(c, "D"), -ENOENT);
    CHECK_RC(locksmith_config_line(c, NULL), -EINVAL);
    CHECK_RC(locksmith_config_line(NULL, "A"), -EINVAL);
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

/* ---- Version 2, continued: what a program built on the library needs ------------------------- */

/* A pointer no call may write through when it returns 0 without a value. */
#define SENTINEL_PTR ((char *)(uintptr_t)0x5a5a5a5a)

/* Unsets every variable the settings tests below use, so that each starts from nothing. */
static void clear_settings_environment(void) {
    static const char *names[] = {"LOCKSMITH_ROOT", "LOCKSMITHCTL_ENDPOINT", "LOCKSMITHCTL_GROUP", "LOCKSMITHCTL_TIMEOUT",
                                  "LOCKSMITHCTL_ETCD_API", "LOCKSMITHCTL_PROXY", "LOCKSMITHCTL_ETCD_PASSWORD",
                                  "LOCKSMITHD_GROUP", "LOCKSMITHD_TIMEOUT", "LOCKSMITHD_ENDPOINT", "LOCKSMITHD_ETCD_API",
                                  "LOCKSMITHD_ETCD_PASSWORD"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        unsetenv(names[i]);
}

/* The index of client option name, or -1. */
static int option_index(const char *name) {
    for (int i = 0; locksmith_client_option_name(i); i++)
        if (strcmp(locksmith_client_option_name(i), name) == 0)
            return i;
    return -1;
}

/* locksmith_client_setting(c, option name): its return code, with the value and origin copied
 * into the buffers ("" when not given). */
static int setting_of(locksmith_client *c, const char *name, char value[256], char origin[256]) {
    const char *v = NULL, *o = NULL;
    value[0] = origin[0] = 0;
    int r = locksmith_client_setting(c, option_index(name), &v, &o);
    if (r == 0) {
        snprintf(value, 256, "%s", v ? v : "(null)");
        snprintf(origin, 256, "%s", o ? o : "(null)");
    }
    return r;
}

static void test_text_helpers(const char *root) {
    char *s = NULL;

    /* locksmith_root: $LOCKSMITH_ROOT when set and not empty, else "/". */
    CHECK_RC(locksmith_root(NULL), -EINVAL);
    unsetenv("LOCKSMITH_ROOT");
    CHECK_RC(locksmith_root(&s), 0);
    CHECK_STR(s, "/");
    free(s);
    setenv("LOCKSMITH_ROOT", "", 1);
    CHECK_RC(locksmith_root(&s), 0);
    CHECK_STR(s, "/");
    free(s);
    setenv("LOCKSMITH_ROOT", root, 1);
    CHECK_RC(locksmith_root(&s), 0);
    CHECK_STR(s, root);
    free(s);
    unsetenv("LOCKSMITH_ROOT");

    /* locksmith_duration_format: Go's time.Duration.String(). */
    static const struct {
        int64_t ns;
        const char *text;
    } durations[] = {
        {0, "0s"}, {1, "1ns"}, {1500, "1.5µs"}, {1500000, "1.5ms"}, {300000000, "300ms"}, {1500000000, "1.5s"},
        {60000000000LL, "1m0s"}, {3600000000000LL, "1h0m0s"}, {5400000000000LL, "1h30m0s"}, {-2000000000LL, "-2s"},
        {90061000000000LL, "25h1m1s"}, {INT64_MAX, "2562047h47m16.854775807s"}, {INT64_MIN, "-2562047h47m16.854775808s"},
    };
    for (size_t i = 0; i < sizeof durations / sizeof durations[0]; i++) {
        s = NULL;
        CHECK_RC(locksmith_duration_format(durations[i].ns, &s), 0);
        CHECK_STR(s, durations[i].text);
        /* and back, where Go's syntax can say it */
        int64_t back = 0;
        if (durations[i].ns != INT64_MIN) {
            CHECK_RC(locksmith_duration_parse(s, &back), 0);
            CHECK(back == durations[i].ns);
        }
        free(s);
    }
    CHECK_RC(locksmith_duration_format(1, NULL), -EINVAL);

    /* locksmith_json_quote: as Go's encoder quotes strings. */
    static const struct {
        const char *text, *json;
    } quotes[] = {
        {"", "\"\""},
        {"plain text", "\"plain text\""},
        {"a\"b\\c", "\"a\\\"b\\\\c\""},
        {"<a href=\"x\">&</a>", "\"\\u003ca href=\\\"x\\\"\\u003e\\u0026\\u003c/a\\u003e\""},
        {"\n\r\t\x01\x1f", "\"\\n\\r\\t\\u0001\\u001f\""},
        {"\xc3\xa9", "\"\xc3\xa9\""},
        {"\xe2\x80\xa8\xe2\x80\xa9", "\"\\u2028\\u2029\""},
        {"a\xff" "b", "\"a\\ufffdb\""},
        {"\xc0\xaf", "\"\\ufffd\\ufffd\""},
    };
    for (size_t i = 0; i < sizeof quotes / sizeof quotes[0]; i++) {
        s = NULL;
        CHECK_RC(locksmith_json_quote(quotes[i].text, &s), 0);
        CHECK_STR(s, quotes[i].json);
        free(s);
    }
    s = NULL;
    CHECK_RC(locksmith_json_quote(NULL, &s), -EINVAL);
    CHECK_RC(locksmith_json_quote("x", NULL), -EINVAL);
    CHECK(s == NULL);

    /* locksmith_key_group: the inverse of locksmith_group_key. */
    static const char *groups[] = {"", "web", "prod/database", "a b", "x+y%z", "\xc3\xa9t\xc3\xa9", "tab\there"};
    for (size_t i = 0; i < sizeof groups / sizeof groups[0]; i++) {
        char *key = NULL, *group = NULL;
        CHECK_RC(locksmith_group_key(groups[i], &key), 0);
        CHECK_RC(locksmith_key_group(key, &group), 0);
        CHECK_STR(group, groups[i]);
        free(key);
        free(group);
    }
    s = NULL;
    CHECK_RC(locksmith_key_group(LOCKSMITH_DEFAULT_KEY, NULL), -EINVAL);
    CHECK_RC(locksmith_key_group(NULL, &s), -EINVAL);
    CHECK_RC(locksmith_key_group("", &s), -EINVAL);
    CHECK_RC(locksmith_key_group(LOCKSMITH_KEY_PREFIX, &s), -EINVAL);
    CHECK_RC(locksmith_key_group(LOCKSMITH_KEY_PREFIX "/groups//semaphore", &s), -EINVAL);
    CHECK_RC(locksmith_key_group(LOCKSMITH_KEY_PREFIX "/groups/a/other", &s), -EINVAL);
    CHECK_RC(locksmith_key_group(LOCKSMITH_KEY_PREFIX "/groups/%zz/semaphore", &s), -EINVAL);
    CHECK_RC(locksmith_key_group("other/prefix/semaphore", &s), -EINVAL);
    CHECK(strstr(locksmith_last_error(), "other/prefix/semaphore") != NULL);
    CHECK(s == NULL);

    /* locksmith_client_option_name: the names locksmith_client_set takes, in help order. */
    static const char *names[] = {"endpoint", "group", "etcd-cafile", "etcd-certfile", "etcd-keyfile", "etcd-username",
                                  "etcd-password", "etcd-password-file", "etcd-api", "timeout", "proxy", "queue-ttl",
                                  "fleetlock-url"};
    int n = 0;
    while (locksmith_client_option_name(n))
        n++;
    CHECK(n == (int)(sizeof names / sizeof names[0]));
    for (int i = 0; i < n && i < (int)(sizeof names / sizeof names[0]); i++)
        CHECK_STR(locksmith_client_option_name(i), names[i]);
    CHECK(locksmith_client_option_name(0) == locksmith_client_option_name(0)); /* static */
    CHECK(locksmith_client_option_name(-1) == NULL);
    CHECK(locksmith_client_option_name(n) == NULL);
    CHECK(locksmith_client_option_name(INT32_MAX) == NULL);
    /* locksmith_client_option_help: a value name and a description for each, static. */
    for (int i = 0; i < n; i++) {
        const char *value_name = NULL, *description = NULL;
        CHECK(locksmith_client_option_help(i, &value_name, &description) == 0);
        CHECK(value_name && *value_name && description && strlen(description) > 10);
        const char *again = NULL;
        CHECK(locksmith_client_option_help(i, NULL, &again) == 0 && again == description);
    }
    {
        const char *value_name = NULL;
        CHECK(locksmith_client_option_help(2, &value_name, NULL) == 0);
        CHECK_STR(value_name, "FILE"); /* etcd-cafile */
        const char *untouched = "sentinel";
        CHECK(locksmith_client_option_help(n, &untouched, NULL) == -EINVAL);
        CHECK(locksmith_client_option_help(-1, &untouched, NULL) == -EINVAL);
        CHECK_STR(untouched, "sentinel");
    }
    /* every name is an option locksmith_client_set knows */
    locksmith_client *c = NULL;
    CHECK_RC(locksmith_client_new(&c), 0);
    for (int i = 0; i < n; i++) {
        const char *value = strcmp(names[i], "etcd-api") == 0 ? "v3" : strcmp(names[i], "timeout") == 0 ? "3s"
                            : strcmp(names[i], "queue-ttl") == 0 ? "30s" : "";
        CHECK_RC(locksmith_client_set(c, locksmith_client_option_name(i), value), 0);
    }
    locksmith_client_free(c);

    /* locksmith_config_warning_*: the lines that were skipped, with their file and line. */
    locksmith_config *conf = NULL;
    CHECK_RC(locksmith_config_warning_count(NULL), -EINVAL);
    CHECK(locksmith_config_warning(NULL, 0) == NULL);
    CHECK_RC(locksmith_config_parse("A=1\nB=2\n", "/etc/coreos/update.conf", &conf), 0);
    CHECK_RC(locksmith_config_warning_count(conf), 0);
    CHECK(locksmith_config_warning(conf, 0) == NULL);
    conf = locksmith_config_free(conf);
    CHECK_RC(locksmith_config_parse("A=1\nnot an assignment\n# a comment\nB=2\nalso wrong\n", "/etc/coreos/update.conf", &conf), 0);
    CHECK_RC(locksmith_config_warning_count(conf), 2);
    const char *w0 = locksmith_config_warning(conf, 0), *w1 = locksmith_config_warning(conf, 1);
    CHECK(w0 && strstr(w0, "/etc/coreos/update.conf") && strstr(w0, "line 2") && strstr(w0, "not an assignment"));
    CHECK(w1 && strstr(w1, "line 5") && strstr(w1, "also wrong"));
    CHECK(locksmith_config_warning(conf, 0) == w0);
    CHECK(locksmith_config_warning(conf, 2) == NULL);
    CHECK(locksmith_config_warning(conf, -1) == NULL);
    CHECK(locksmith_config_warning(conf, INT32_MIN) == NULL);
    conf = locksmith_config_free(conf);
    /* from the files of a root, each warning naming its file */
    char dir[2048], path[4096];
    snprintf(dir, sizeof dir, "%s/warn-root", root);
    make_dirs(dir, "etc/coreos");
    snprintf(path, sizeof path, "%s/etc/coreos/update.conf", dir);
    write_file(path, "GROUP=x\n}garbage{\n");
    CHECK_RC(locksmith_config_load_at(dir, LOCKSMITH_NO_ENVIRONMENT, &conf), 0);
    CHECK_RC(locksmith_config_warning_count(conf), 1);
    CHECK(locksmith_config_warning(conf, 0) && strstr(locksmith_config_warning(conf, 0), path) &&
          strstr(locksmith_config_warning(conf, 0), "line 2"));
    conf = locksmith_config_free(conf);
}

static void test_load_settings(const char *endpoint, const char *root) {
    locksmith_client *c = NULL;
    locksmith_config *conf = NULL;
    locksmith_semaphore *s = NULL;
    char value[256], origin[256], group[64], text[1024];
    const char *v = NULL, *o = NULL;

    clear_settings_environment();
    snprintf(group, sizeof group, "c-api-settings-%ld", (long)getpid());
    snprintf(text, sizeof text,
             "LOCKSMITHD_ENDPOINT=%s\nLOCKSMITHD_GROUP=from-conf\nLOCKSMITHD_TIMEOUT=3s\nLOCKSMITHD_ETCD_API=v2\n"
             "LOCKSMITHD_ETCD_USERNAME=root\nLOCKSMITHD_ETCD_PASSWORD=conf-s3cret\n",
             endpoint);
    CHECK_RC(locksmith_config_parse(text, "/etc/coreos/update.conf", &conf), 0);

    /* Bad arguments. */
    CHECK_RC(locksmith_client_new(&c), 0);
    CHECK_RC(locksmith_client_load_settings(NULL, "LOCKSMITHCTL", conf), -EINVAL);
    static const char *bad_prefixes[] = {"", "locksmithctl", "LOCKSMITH-CTL", "LOCKSMITH CTL", "LOCKSMITHCTL_\n", "\xff"};
    for (size_t i = 0; i < sizeof bad_prefixes / sizeof bad_prefixes[0]; i++) {
        CHECK_RC(locksmith_client_load_settings(c, bad_prefixes[i], conf), -EINVAL);
        CHECK(strstr(locksmith_client_last_error(c), "prefix") != NULL);
    }
    CHECK_RC(locksmith_client_load_settings(c, NULL, conf), -EINVAL);
    char long_prefix[200];
    memset(long_prefix, 'A', sizeof long_prefix - 1);
    long_prefix[sizeof long_prefix - 1] = 0;
    CHECK_RC(locksmith_client_load_settings(c, long_prefix, conf), -EINVAL);
    /* nothing was set by the refused calls */
    for (int i = 0; locksmith_client_option_name(i); i++)
        CHECK_RC(locksmith_client_setting(c, i, &v, &o), -ENOENT);
    c = locksmith_client_free(c);

    /* The order: locksmith_client_set, then LOCKSMITHCTL_X, then LOCKSMITHD_X of the config. */
    setenv("LOCKSMITHCTL_GROUP", "from-environment", 1);
    setenv("LOCKSMITHCTL_TIMEOUT", "4s", 1);
    setenv("LOCKSMITHD_ETCD_API", "v3", 1); /* the daemon's variable is read from conf, not from here */
    CHECK_RC(locksmith_client_new(&c), 0);
    CHECK_RC(locksmith_client_set(c, "group", group), 0);
    /* endpoint, timeout (environment), etcd-api, etcd-username, etcd-password (config) */
    CHECK_RC(locksmith_client_load_settings(c, "LOCKSMITHCTL", conf), 5);
    CHECK(locksmith_client_last_error_option(c) == NULL);
    CHECK_RC(setting_of(c, "group", value, origin), 0);
    CHECK_STR(value, group);
    CHECK_STR(origin, "");
    CHECK_RC(setting_of(c, "timeout", value, origin), 0);
    CHECK_STR(value, "4s");
    CHECK_STR(origin, "LOCKSMITHCTL_TIMEOUT");
    CHECK_RC(setting_of(c, "etcd-api", value, origin), 0);
    CHECK_STR(value, "v2");
    CHECK_STR(origin, "LOCKSMITHD_ETCD_API in /etc/coreos/update.conf");
    CHECK_RC(setting_of(c, "endpoint", value, origin), 0);
    CHECK_STR(value, endpoint);
    CHECK_STR(origin, "LOCKSMITHD_ENDPOINT in /etc/coreos/update.conf");
    CHECK_RC(setting_of(c, "etcd-username", value, origin), 0);
    CHECK_STR(value, "root");
    CHECK_RC(setting_of(c, "etcd-password", value, origin), 0);
    CHECK_STR(value, "(hidden)");
    CHECK_STR(origin, "LOCKSMITHD_ETCD_PASSWORD in /etc/coreos/update.conf");
    CHECK_RC(setting_of(c, "etcd-cafile", value, origin), -ENOENT);
    CHECK_RC(setting_of(c, "proxy", value, origin), -ENOENT);
    /* the password appears nowhere the client shows */
    for (int i = 0; locksmith_client_option_name(i); i++) {
        if (locksmith_client_setting(c, i, &v, &o) == 0)
            CHECK(strstr(v, "s3cret") == NULL && strstr(o, "s3cret") == NULL);
    }
    /* Either out-pointer may be NULL; a borrowed string stays the same until the next call. */
    CHECK_RC(locksmith_client_setting(c, option_index("group"), NULL, NULL), 0);
    CHECK_RC(locksmith_client_setting(c, option_index("group"), &v, NULL), 0);
    const char *again = NULL;
    CHECK_RC(locksmith_client_setting(c, option_index("group"), &again, NULL), 0);
    CHECK(v == again);
    CHECK_RC(locksmith_client_setting(c, -1, &v, &o), -EINVAL);
    CHECK_RC(locksmith_client_setting(c, 13, &v, &o), -EINVAL);
    CHECK_RC(locksmith_client_setting(NULL, 0, &v, &o), -EINVAL);
    /* LOCKSMITH_4: the same settings for a child, with the real values (the password too). */
    char **env = NULL;
    int n_env = locksmith_client_environment(c, "LOCKSMITHCTL", &env);
    CHECK(n_env == 6 && env != NULL && env[n_env] == NULL);
    int saw_password = 0, saw_group = 0;
    for (int i = 0; env && env[i]; i++) {
        saw_password += strcmp(env[i], "LOCKSMITHCTL_ETCD_PASSWORD=conf-s3cret") == 0;
        saw_group += strncmp(env[i], "LOCKSMITHCTL_GROUP=", 19) == 0 && strcmp(env[i] + 19, group) == 0;
        CHECK(strstr(env[i], "(hidden)") == NULL);
    }
    CHECK(saw_password == 1 && saw_group == 1);
    CHECK(locksmith_strv_free(env) == NULL);
    CHECK(locksmith_strv_free(NULL) == NULL);
    env = (char **)SENTINEL_PTR;
    CHECK_RC(locksmith_client_environment(c, "NOT-A-PREFIX", &env), -EINVAL);
    CHECK_RC(locksmith_client_environment(c, "", &env), -EINVAL);
    CHECK_RC(locksmith_client_environment(NULL, "X", &env), -EINVAL);
    CHECK_RC(locksmith_client_environment(c, "X", NULL), -EINVAL);
    CHECK(env == (char **)SENTINEL_PTR);
    /* The settings are the client's: a request goes to the endpoint of the config, in the
     * group given with locksmith_client_set. */
    char *key = NULL;
    CHECK_RC(locksmith_group_key(group, &key), 0);
    CHECK_STR(locksmith_client_key(c), key);
    free(key);
    CHECK_RC(locksmith_client_get(c, &s), 0);
    s = locksmith_semaphore_free(s);
    CHECK_STR(locksmith_client_endpoint(c), endpoint);
    CHECK_STR(locksmith_client_api(c), "v2");
    c = locksmith_client_free(c);

    /* With nothing set by the program, the environment wins over the config. */
    CHECK_RC(locksmith_client_new(&c), 0);
    CHECK_RC(locksmith_client_load_settings(c, "LOCKSMITHCTL", conf), 6);
    CHECK_RC(setting_of(c, "group", value, origin), 0);
    CHECK_STR(value, "from-environment");
    CHECK_STR(origin, "LOCKSMITHCTL_GROUP");
    c = locksmith_client_free(c);

    /* A client made with LOCKSMITH_NO_ENVIRONMENT skips the environment: the config alone. */
    CHECK_RC(locksmith_client_new_with_flags(LOCKSMITH_NO_ENVIRONMENT, &c), 0);
    CHECK_RC(locksmith_client_load_settings(c, "LOCKSMITHCTL", conf), 6);
    CHECK_RC(setting_of(c, "group", value, origin), 0);
    CHECK_STR(value, "from-conf");
    CHECK_STR(origin, "LOCKSMITHD_GROUP in /etc/coreos/update.conf");
    CHECK_RC(setting_of(c, "timeout", value, origin), 0);
    CHECK_STR(value, "3s");
    c = locksmith_client_free(c);

    /* No config: the environment alone; nothing at all: 0, and the defaults. */
    CHECK_RC(locksmith_client_new(&c), 0);
    CHECK_RC(locksmith_client_load_settings(c, "LOCKSMITHCTL", NULL), 2);
    CHECK_RC(setting_of(c, "etcd-api", value, origin), -ENOENT);
    c = locksmith_client_free(c);
    CHECK_RC(locksmith_client_new_with_flags(LOCKSMITH_NO_ENVIRONMENT, &c), 0);
    CHECK_RC(locksmith_client_load_settings(c, "LOCKSMITHCTL", NULL), 0);
    for (int i = 0; locksmith_client_option_name(i); i++)
        CHECK_RC(locksmith_client_setting(c, i, &v, &o), -ENOENT);
    c = locksmith_client_free(c);
    conf = locksmith_config_free(conf);

    /* A config loaded with the environment: the daemon's variable from there, said so. */
    clear_settings_environment();
    char dir[2048], path[4096];
    snprintf(dir, sizeof dir, "%s/settings-root", root);
    make_dirs(dir, "etc/coreos");
    snprintf(path, sizeof path, "%s/etc/coreos/update.conf", dir);
    write_file(path, "LOCKSMITHD_GROUP=file-group\nLOCKSMITHD_ETCD_API=v3\n");
    setenv("LOCKSMITHD_GROUP", "daemon-environment", 1);
    CHECK_RC(locksmith_config_load_at(dir, 0, &conf), 0);
    CHECK_RC(locksmith_client_new_with_flags(LOCKSMITH_NO_ENVIRONMENT, &c), 0);
    CHECK_RC(locksmith_client_load_settings(c, "LOCKSMITHCTL", conf), 2);
    CHECK_RC(setting_of(c, "group", value, origin), 0);
    CHECK_STR(value, "daemon-environment");
    CHECK_STR(origin, "LOCKSMITHD_GROUP in the environment");
    CHECK_RC(setting_of(c, "etcd-api", value, origin), 0);
    char want[4200];
    snprintf(want, sizeof want, "LOCKSMITHD_ETCD_API in %s", path);
    CHECK_STR(origin, want);
    c = locksmith_client_free(c);
    conf = locksmith_config_free(conf);
    unsetenv("LOCKSMITHD_GROUP");

    /* A bad value from the environment names the variable; from a config, also the file; the
     * option is locksmith_client_last_error_option(). */
    setenv("LOCKSMITHCTL_TIMEOUT", "forever", 1);
    CHECK_RC(locksmith_client_new(&c), 0);
    CHECK_RC(locksmith_client_load_settings(c, "LOCKSMITHCTL", NULL), -EINVAL);
    CHECK(strstr(locksmith_client_last_error(c), "LOCKSMITHCTL_TIMEOUT") != NULL);
    CHECK(strstr(locksmith_client_last_error(c), "forever") != NULL);
    CHECK_STR(locksmith_client_last_error_option(c), "timeout");
    c = locksmith_client_free(c);
    unsetenv("LOCKSMITHCTL_TIMEOUT");
    CHECK_RC(locksmith_config_parse("LOCKSMITHD_ETCD_API=v9\n", "/etc/flatcar/update.conf", &conf), 0);
    CHECK_RC(locksmith_client_new(&c), 0);
    CHECK_RC(locksmith_client_load_settings(c, "LOCKSMITHCTL", conf), -EINVAL);
    CHECK(strstr(locksmith_client_last_error(c), "LOCKSMITHD_ETCD_API") != NULL);
    CHECK(strstr(locksmith_client_last_error(c), "/etc/flatcar/update.conf") != NULL);
    CHECK(strstr(locksmith_last_error(), "LOCKSMITHD_ETCD_API") != NULL);
    CHECK_STR(locksmith_client_last_error_option(c), "etcd-api");
    /* the program's own value wins, so the bad one is never read */
    CHECK_RC(locksmith_client_set(c, "etcd-api", "v2"), 0);
    CHECK(locksmith_client_last_error_option(c) == NULL);
    CHECK_RC(locksmith_client_load_settings(c, "LOCKSMITHCTL", conf), 0);
    c = locksmith_client_free(c);
    conf = locksmith_config_free(conf);
    /* an endpoint with credentials is refused, and the message does not show them */
    CHECK_RC(locksmith_config_parse("LOCKSMITHD_ENDPOINT=http://user:s3cret@127.0.0.1:2379\n", "/etc/coreos/update.conf", &conf), 0);
    CHECK_RC(locksmith_client_new(&c), 0);
    CHECK_RC(locksmith_client_load_settings(c, "LOCKSMITHCTL", conf), -EINVAL);
    CHECK(strstr(locksmith_client_last_error(c), "LOCKSMITHD_ENDPOINT") != NULL);
    CHECK(strstr(locksmith_client_last_error(c), "s3cret") == NULL);
    CHECK_STR(locksmith_client_last_error_option(c), "endpoint");
    c = locksmith_client_free(c);
    conf = locksmith_config_free(conf);

    /* What locksmith_client_setting shows: credentials in a proxy URL masked, control characters
     * quoted, the password file named but not its content. */
    CHECK_RC(locksmith_client_new(&c), 0);
    CHECK_RC(locksmith_client_set(c, "proxy", "http://user:s3cret@proxy.example:3128"), 0);
    CHECK_RC(setting_of(c, "proxy", value, origin), 0);
    CHECK_STR(value, "http://***@proxy.example:3128");
    CHECK_STR(origin, "");
    CHECK_RC(locksmith_client_set(c, "etcd-password", "s3cret"), 0);
    CHECK_RC(setting_of(c, "etcd-password", value, origin), 0);
    CHECK_STR(value, "(hidden)");
    CHECK_RC(locksmith_client_set(c, "group", "tab\there"), 0);
    CHECK_RC(setting_of(c, "group", value, origin), 0);
    CHECK_STR(value, "\"tab\\there\"");
    CHECK_RC(locksmith_client_set(c, "timeout", "1500ms"), 0);
    CHECK_RC(setting_of(c, "timeout", value, origin), 0);
    CHECK_STR(value, "1.5s");
    CHECK_RC(locksmith_client_set(c, "endpoint", "http://127.0.0.1:1,https://10.0.0.1:2379/"), 0);
    CHECK_RC(setting_of(c, "endpoint", value, origin), 0);
    CHECK_STR(value, "http://127.0.0.1:1,https://10.0.0.1:2379");
    c = locksmith_client_free(c);
    setenv("LOCKSMITHCTL_PROXY", "socks5h://u:s3cret@proxy.example:1080", 1);
    CHECK_RC(locksmith_client_new(&c), 0);
    CHECK_RC(locksmith_client_load_settings(c, "LOCKSMITHCTL", NULL), 1);
    CHECK_RC(setting_of(c, "proxy", value, origin), 0);
    CHECK_STR(value, "socks5h://***@proxy.example:1080");
    CHECK_STR(origin, "LOCKSMITHCTL_PROXY");
    c = locksmith_client_free(c);
    unsetenv("LOCKSMITHCTL_PROXY");
    clear_settings_environment();
}

static void test_client_warnings_and_key(const char *root) {
    locksmith_client *c = NULL;
    locksmith_config *conf = NULL;
    char path[4096], dir[2048], value[256], origin[256], *key = NULL;

    CHECK_RC(locksmith_client_warning_count(NULL), -EINVAL);
    CHECK(locksmith_client_warning(NULL, 0) == NULL);
    CHECK(locksmith_client_last_error_option(NULL) == NULL);
    CHECK(locksmith_client_key(NULL) == NULL);

    CHECK_RC(locksmith_client_new(&c), 0);
    CHECK_RC(locksmith_client_warning_count(c), 0);
    CHECK(locksmith_client_warning(c, 0) == NULL);
    /* A password file every user can read: a warning naming it; one only root reads: none. */
    snprintf(path, sizeof path, "%s/etcd-password", root);
    write_file(path, "file-s3cret\nsecond line\n");
    chmod(path, 0644);
    CHECK_RC(locksmith_client_set(c, "etcd-password-file", path), 0);
    CHECK_RC(locksmith_client_warning_count(c), 1);
    const char *w = locksmith_client_warning(c, 0);
    CHECK(w && strstr(w, path) && strstr(w, "644") && !strstr(w, "s3cret"));
    CHECK(locksmith_client_warning(c, 1) == NULL);
    CHECK(locksmith_client_warning(c, -1) == NULL);
    CHECK_RC(setting_of(c, "etcd-password-file", value, origin), 0);
    CHECK_STR(value, path);
    c = locksmith_client_free(c);
    chmod(path, 0600);
    CHECK_RC(locksmith_client_new(&c), 0);
    CHECK_RC(locksmith_client_set(c, "etcd-password-file", path), 0);
    CHECK_RC(locksmith_client_warning_count(c), 0);
    c = locksmith_client_free(c);

    /* A password in an update.conf every user can read: a warning from load_settings. */
    snprintf(dir, sizeof dir, "%s/password-root", root);
    make_dirs(dir, "etc/coreos");
    snprintf(path, sizeof path, "%s/etc/coreos/update.conf", dir);
    write_file(path, "LOCKSMITHD_ETCD_PASSWORD=conf-s3cret\n");
    chmod(path, 0644);
    CHECK_RC(locksmith_config_load_at(dir, LOCKSMITH_NO_ENVIRONMENT, &conf), 0);
    CHECK_RC(locksmith_client_new_with_flags(LOCKSMITH_NO_ENVIRONMENT, &c), 0);
    CHECK_RC(locksmith_client_load_settings(c, "LOCKSMITHCTL", conf), 1);
    CHECK_RC(locksmith_client_warning_count(c), 1);
    w = locksmith_client_warning(c, 0);
    CHECK(w && strstr(w, path) && strstr(w, "LOCKSMITHD_ETCD_PASSWORD") && !strstr(w, "s3cret"));
    c = locksmith_client_free(c);
    conf = locksmith_config_free(conf);
    chmod(path, 0600);
    CHECK_RC(locksmith_config_load_at(dir, LOCKSMITH_NO_ENVIRONMENT, &conf), 0);
    CHECK_RC(locksmith_client_new_with_flags(LOCKSMITH_NO_ENVIRONMENT, &c), 0);
    CHECK_RC(locksmith_client_load_settings(c, "LOCKSMITHCTL", conf), 1);
    CHECK_RC(locksmith_client_warning_count(c), 0);
    c = locksmith_client_free(c);
    conf = locksmith_config_free(conf);

    /* locksmith_client_prepare: ready without a request; the error the first request would
     * have had. */
    int64_t requests = -1;
    CHECK_RC(locksmith_client_prepare(NULL), -EINVAL);
    CHECK_RC(locksmith_client_new(&c), 0);
    CHECK_RC(locksmith_client_set(c, "endpoint", "http://127.0.0.1:9"), 0);
    CHECK_RC(locksmith_client_prepare(c), 0);
    CHECK_RC(locksmith_client_prepare(c), 0);
    CHECK_RC(locksmith_client_stats(c, &requests, NULL), 0);
    CHECK(requests == 0);
    CHECK(locksmith_client_api(c) == NULL);
    c = locksmith_client_free(c);

    /* locksmith_client_last_error_option: the option of the last failure, NULL otherwise. */
    CHECK_RC(locksmith_client_new(&c), 0);
    CHECK(locksmith_client_last_error_option(c) == NULL);
    CHECK_RC(locksmith_client_set(c, "etcd-api", "v4"), -EINVAL);
    CHECK_STR(locksmith_client_last_error_option(c), "etcd-api");
    CHECK(strstr(locksmith_client_last_error(c), "etcd-api") != NULL);
    CHECK_RC(locksmith_client_set(c, "timeout", "2h"), -EINVAL);
    CHECK_STR(locksmith_client_last_error_option(c), "timeout");
    CHECK_RC(locksmith_client_set(c, "etcd-cafile", "/nonexistent/ca.pem"), -EINVAL);
    CHECK_STR(locksmith_client_last_error_option(c), "etcd-cafile");
    CHECK_RC(locksmith_client_set(c, "no-such-option", "x"), -EINVAL);
    CHECK(locksmith_client_last_error_option(c) == NULL);
    CHECK_RC(locksmith_client_set(c, "endpoint", "http://127.0.0.1:9"), 0);
    CHECK_RC(locksmith_client_set(c, "etcd-api", "v4"), -EINVAL);
    CHECK_RC(locksmith_client_set(c, "timeout", "200ms"), 0);
    CHECK(locksmith_client_last_error_option(c) == NULL); /* a success clears it */
    CHECK_RC(locksmith_client_lock(c, "x"), -ECONNREFUSED);
    CHECK(locksmith_client_last_error_option(c) == NULL); /* no option was at fault */

    /* locksmith_client_key: the group's key, following the group option. */
    CHECK_STR(locksmith_client_key(c), LOCKSMITH_DEFAULT_KEY);
    CHECK(locksmith_client_key(c) == locksmith_client_key(c));
    CHECK_RC(locksmith_client_set(c, "group", "prod/database"), 0);
    CHECK_RC(locksmith_group_key("prod/database", &key), 0);
    CHECK_STR(locksmith_client_key(c), key);
    free(key);
    CHECK_RC(locksmith_client_set(c, "group", ""), 0);
    CHECK_STR(locksmith_client_key(c), LOCKSMITH_DEFAULT_KEY);
    c = locksmith_client_free(c);
}

/* Trace lines as a callback collects them. */
struct trace_log {
    int lines;
    int bad; /* lines with a password, or not one request's line */
    char last[512];
};

static void collect_trace(const char *line, void *userdata) {
    struct trace_log *log = userdata;
    log->lines++;
    snprintf(log->last, sizeof log->last, "%s", line ? line : "(null)");
    if (!line || strstr(line, "s3cret") || strchr(line, '\n') ||
        !(starts_with(line, "GET ") || starts_with(line, "PUT ") || starts_with(line, "POST ") || starts_with(line, "DELETE ")))
        log->bad++;
}

static void test_client_trace(const char *endpoint) {
    locksmith_client *c = NULL;
    locksmith_semaphore *s = NULL;
    struct trace_log log = {0, 0, ""}, other = {0, 0, ""};
    char group[64];
    int64_t requests = 0;

    CHECK_RC(locksmith_client_set_trace(NULL, collect_trace, &log), -EINVAL);
    CHECK_RC(locksmith_client_set_trace(NULL, NULL, NULL), -EINVAL);
    snprintf(group, sizeof group, "c-api-trace-%ld", (long)getpid());
    for (int v3 = 0; v3 <= 1; v3++) {
        memset(&log, 0, sizeof log);
        CHECK_RC(locksmith_client_new(&c), 0);
        CHECK_RC(locksmith_client_set_trace(c, collect_trace, &log), 0);
        CHECK_RC(locksmith_client_set(c, "endpoint", endpoint), 0);
        CHECK_RC(locksmith_client_set(c, "group", group), 0);
        CHECK_RC(locksmith_client_set(c, "etcd-api", v3 ? "v3" : "v2"), 0);
        if (!v3) { /* etcd has no authentication on: v2 sends it and etcd ignores it */
            CHECK_RC(locksmith_client_set(c, "etcd-username", "root"), 0);
            CHECK_RC(locksmith_client_set(c, "etcd-password", "s3cret"), 0);
        }
        CHECK(log.lines == 0); /* setting options sends nothing */
        CHECK_RC(locksmith_client_get(c, &s), 0);
        s = locksmith_semaphore_free(s);
        CHECK_RC(locksmith_client_lock(c, "tracer"), 0);
        CHECK_RC(locksmith_client_lock(c, "tracer2"), -EBUSY);
        CHECK_RC(locksmith_client_unlock(c, "tracer"), 0);
        CHECK_RC(locksmith_client_stats(c, &requests, NULL), 0);
        CHECK(requests >= 4);
        CHECK(log.lines == requests); /* one line per request */
        CHECK(log.bad == 0);
        CHECK(strstr(log.last, endpoint) != NULL);
        if (log.bad || log.lines != requests)
            fprintf(stderr, "      %d trace lines for %lld requests, %d bad; the last: %s\n", log.lines,
                    (long long)requests, log.bad, log.last);
        /* A failing request is traced too, with its error. */
        int before = log.lines;
        CHECK_RC(locksmith_client_set(c, "endpoint", ""), 0);
        CHECK_RC(locksmith_client_set(c, "endpoint", "http://127.0.0.1:9"), 0);
        CHECK_RC(locksmith_client_set(c, "timeout", "500ms"), 0);
        CHECK_RC(locksmith_client_get(c, &s), -ECONNREFUSED);
        CHECK(log.lines == before + 1);
        CHECK(strstr(log.last, "127.0.0.1:9") != NULL);
        /* Another callback takes over; NULL turns it off. */
        CHECK_RC(locksmith_client_set_trace(c, collect_trace, &other), 0);
        CHECK_RC(locksmith_client_get(c, &s), -ECONNREFUSED);
        CHECK(log.lines == before + 1);
        CHECK(other.lines == 1);
        CHECK_RC(locksmith_client_set_trace(c, NULL, &other), 0);
        CHECK_RC(locksmith_client_get(c, &s), -ECONNREFUSED);
        CHECK(other.lines == 1);
        CHECK(log.lines == before + 1);
        memset(&other, 0, sizeof other);
        c = locksmith_client_free(c);
    }
}

/* The cancelling side of test_client_cancel: after a pause, cancels the client and notes when. */
struct canceller {
    locksmith_client *c;
    unsigned delay_us;
    uint64_t at;
    int rc;
};

static void *cancel_later(void *arg) {
    struct canceller *k = arg;
    usleep(k->delay_us);
    k->at = now_usec();
    k->rc = locksmith_client_cancel(k->c, 1);
    return NULL;
}

static locksmith_client *volatile signal_client;
static volatile sig_atomic_t signal_result = 1;

static void cancel_on_signal(int signal) {
    (void)signal;
    signal_result = locksmith_client_cancel(signal_client, 1);
}

static void test_client_cancel(const char *endpoint) {
    locksmith_client *c = NULL;
    locksmith_semaphore *s = NULL;
    char group[64];
    int64_t before = -1, after = -1;

    CHECK_RC(locksmith_client_cancel(NULL, 1), -EINVAL);
    CHECK_RC(locksmith_client_cancel(NULL, 0), -EINVAL);
    snprintf(group, sizeof group, "c-api-cancel-%ld", (long)getpid());
    CHECK_RC(locksmith_client_new(&c), 0);
    CHECK_RC(locksmith_client_set(c, "endpoint", endpoint), 0);
    CHECK_RC(locksmith_client_set(c, "group", group), 0);
    CHECK_RC(locksmith_client_get(c, &s), 0);
    s = locksmith_semaphore_free(s);

    /* From a second thread, while the first waits (30 s): the wait ends within about a second. */
    struct canceller k = {c, 300000, 0, -1};
    pthread_t thread;
    uint64_t start = now_usec();
    CHECK(pthread_create(&thread, NULL, cancel_later, &k) == 0);
    int r = locksmith_client_wait(c, 30000);
    uint64_t end = now_usec();
    pthread_join(thread, NULL);
    CHECK_RC(r, -ECANCELED);
    CHECK_RC(k.rc, 0);
    /* the message says what happened (not libcurl's "Callback aborted") */
    CHECK(strstr(locksmith_client_last_error(c), "cancel") != NULL);
    if (!strstr(locksmith_client_last_error(c), "cancel"))
        fprintf(stderr, "      the cancelled wait's message: \"%s\"\n", locksmith_client_last_error(c));
    CHECK(k.at > start && end >= k.at && end - k.at < 1500000);
    if (end - k.at >= 1500000 || end < k.at)
        fprintf(stderr, "      the wait ended %lld ms after the cancel\n", ((long long)end - (long long)k.at) / 1000);

    /* Every later call fails at once, sending nothing. */
    CHECK_RC(locksmith_client_stats(c, &before, NULL), 0);
    start = now_usec();
    CHECK_RC(locksmith_client_get(c, &s), -ECANCELED);
    CHECK(s == NULL);
    CHECK_RC(locksmith_client_read(c, &s), -ECANCELED);
    CHECK_RC(locksmith_client_lock(c, "cancelled"), -ECANCELED);
    CHECK_RC(locksmith_client_unlock(c, "cancelled"), -ECANCELED);
    CHECK_RC(locksmith_client_set_max(c, 3, NULL), -ECANCELED);
    CHECK_RC(locksmith_client_wait(c, 30000), -ECANCELED);
    locksmith_groups *g = NULL;
    CHECK_RC(locksmith_client_groups(c, &g), -ECANCELED);
    CHECK(g == NULL);
    CHECK(now_usec() - start < 1000000);
    CHECK_RC(locksmith_client_stats(c, &after, NULL), 0);
    CHECK(after == before);
    /* It outlives a change of options (a new connection). */
    CHECK_RC(locksmith_client_set(c, "timeout", "3s"), 0);
    CHECK_RC(locksmith_client_get(c, &s), -ECANCELED);
    CHECK_RC(locksmith_client_stats(c, &after, NULL), 0);
    CHECK(after == 0);
    /* cancel(c, 0): calls work again. */
    CHECK_RC(locksmith_client_cancel(c, 0), 0);
    CHECK_RC(locksmith_client_get(c, &s), 0);
    CHECK_RC(locksmith_semaphore_holder_count(s), 0);
    s = locksmith_semaphore_free(s);
    CHECK_RC(locksmith_client_lock(c, "after-cancel"), 0);
    CHECK_RC(locksmith_client_unlock(c, "after-cancel"), 0);
    CHECK_RC(locksmith_client_wait(c, 100), 0);
    /* Cancelling twice, and un-cancelling what is not cancelled, are fine. */
    CHECK_RC(locksmith_client_cancel(c, 0), 0);
    CHECK_RC(locksmith_client_cancel(c, 5), 0);
    CHECK_RC(locksmith_client_cancel(c, 1), 0);
    CHECK_RC(locksmith_client_read(c, &s), -ECANCELED);
    CHECK_RC(locksmith_client_cancel(c, 0), 0);

    /* From a signal handler: SIGALRM a second into a 30 s wait. Whether the signal comes
     * before the wait begins (a slow machine) or during it, the wait returns -ECANCELED. */
    struct sigaction action, old;
    memset(&action, 0, sizeof action);
    action.sa_handler = cancel_on_signal;
    sigemptyset(&action.sa_mask);
    sigaction(SIGALRM, &action, &old);
    signal_client = c;
    signal_result = 1;
    start = now_usec();
    alarm(1);
    r = locksmith_client_wait(c, 30000);
    end = now_usec();
    alarm(0);
    sigaction(SIGALRM, &old, NULL);
    CHECK_RC(r, -ECANCELED);
    CHECK(signal_result == 0);
    CHECK(end - start < 3000000);
    if (end - start >= 3000000)
        fprintf(stderr, "      the wait ended %lld ms after it began (SIGALRM after 1000 ms)\n", (long long)(end - start) / 1000);
    CHECK_RC(locksmith_client_cancel(c, 0), 0);
    CHECK_RC(locksmith_client_read(c, &s), 0);
    s = locksmith_semaphore_free(s);

    /* A client cancelled before its first request never makes one. */
    locksmith_client *fresh = NULL;
    CHECK_RC(locksmith_client_new(&fresh), 0);
    CHECK_RC(locksmith_client_set(fresh, "endpoint", endpoint), 0);
    CHECK_RC(locksmith_client_cancel(fresh, 1), 0);
    CHECK_RC(locksmith_client_get(fresh, &s), -ECANCELED);
    CHECK_RC(locksmith_client_stats(fresh, &after, NULL), 0);
    CHECK(after == 0);
    locksmith_client_free(fresh);
    locksmith_client_free(c);
}

/* Stores value at key through etcd's v3 JSON gateway with a bare HTTP request. Returns the
 * HTTP status. */
static int etcd_put_v3(const char *endpoint, const char *key, const char *value) {
    static const char b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    char encoded[2][1024], body[2200], request[3000], answer[512] = "";
    const char *plain[2] = {key, value};
    for (int f = 0; f < 2; f++) {
        const unsigned char *p = (const unsigned char *)plain[f];
        size_t n = strlen(plain[f]), o = 0;
        for (size_t i = 0; i < n; i += 3) {
            unsigned v = (unsigned)p[i] << 16 | (i + 1 < n ? (unsigned)p[i + 1] << 8 : 0) | (i + 2 < n ? p[i + 2] : 0);
            encoded[f][o++] = b64[v >> 18 & 63];
            encoded[f][o++] = b64[v >> 12 & 63];
            encoded[f][o++] = i + 1 < n ? b64[v >> 6 & 63] : '=';
            encoded[f][o++] = i + 2 < n ? b64[v & 63] : '=';
        }
        encoded[f][o] = 0;
    }
    snprintf(body, sizeof body, "{\"key\":\"%s\",\"value\":\"%s\"}", encoded[0], encoded[1]);
    struct sockaddr_in a;
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
                     "POST /v3/kv/put HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                     "Content-Length: %zu\r\nConnection: close\r\n\r\n%s",
                     strlen(body), body);
    if (write(fd, request, (size_t)n) == n && read(fd, answer, sizeof answer - 1) > 0)
        sscanf(answer, "HTTP/1.1 %d", &status);
    close(fd);
    return status;
}

static void test_client_last_seen(const char *endpoint) {
    locksmith_client *c = NULL, *other = NULL;
    locksmith_semaphore *s = NULL;
    char group[64], *json = NULL, *key = NULL;

    CHECK_RC(locksmith_client_last_seen(NULL, &s), -EINVAL);
    snprintf(group, sizeof group, "c-api-seen-%ld", (long)getpid());
    CHECK_RC(locksmith_client_new(&c), 0);
    CHECK_RC(locksmith_client_set(c, "endpoint", endpoint), 0);
    CHECK_RC(locksmith_client_set(c, "group", group), 0);
    CHECK_RC(locksmith_client_last_seen(c, NULL), -EINVAL);
    /* Before any request: nothing seen, and nothing is asked of etcd. */
    CHECK_RC(locksmith_client_last_seen(c, &s), -ENOENT);
    CHECK(s == NULL);
    CHECK(strlen(locksmith_client_last_error(c)) > 0);
    int64_t requests = -1;
    CHECK_RC(locksmith_client_stats(c, &requests, NULL), 0);
    CHECK(requests == 0);
    /* A read that finds nothing: still nothing seen. */
    CHECK_RC(locksmith_client_read(c, &s), -ENOENT);
    CHECK_RC(locksmith_client_last_seen(c, &s), -ENOENT);

    /* After a get: the document it got, without a request; a new object each time. */
    CHECK_RC(locksmith_client_get(c, &s), 0);
    s = locksmith_semaphore_free(s);
    CHECK_RC(locksmith_client_stats(c, &requests, NULL), 0);
    CHECK_RC(locksmith_client_last_seen(c, &s), 0);
    CHECK_RC(locksmith_semaphore_to_json(s, &json), 0);
    CHECK_STR(json, FRESH_JSON);
    free(json);
    /* it is the caller's: changing it changes nothing the client has */
    CHECK_RC(locksmith_semaphore_lock(s, "local-only"), 0);
    s = locksmith_semaphore_free(s);
    CHECK_RC(locksmith_client_last_seen(c, &s), 0);
    CHECK_RC(locksmith_semaphore_holder_count(s), 0);
    s = locksmith_semaphore_free(s);
    int64_t now_requests = -1;
    CHECK_RC(locksmith_client_stats(c, &now_requests, NULL), 0);
    CHECK(now_requests == requests);

    /* After its own write; after a refused change, the document that refused it. */
    CHECK_RC(locksmith_client_lock(c, "seen-a"), 0);
    CHECK_RC(locksmith_client_last_seen(c, &s), 0);
    CHECK_RC(locksmith_semaphore_is_holder(s, "seen-a"), 1);
    s = locksmith_semaphore_free(s);
    CHECK_RC(locksmith_client_new(&other), 0);
    CHECK_RC(locksmith_client_set(other, "endpoint", endpoint), 0);
    CHECK_RC(locksmith_client_set(other, "group", group), 0);
    CHECK_RC(locksmith_client_set_max(other, 2, NULL), 0);
    CHECK_RC(locksmith_client_lock(other, "seen-b"), 0);
    CHECK_RC(locksmith_client_last_seen(c, &s), 0); /* c has not seen that yet */
    CHECK_RC(locksmith_semaphore_holder_count(s), 1);
    s = locksmith_semaphore_free(s);
    /* (a refusal from what c saw within the last second is reported without reading again:
     * wait until that is older) */
    usleep(1100000);
    CHECK_RC(locksmith_client_lock(c, "seen-c"), -EBUSY);
    CHECK_RC(locksmith_client_last_seen(c, &s), 0);
    CHECK_RC(locksmith_semaphore_is_holder(s, "seen-b"), 1);
    CHECK_RC(locksmith_semaphore_holder_count(s), 2);
    s = locksmith_semaphore_free(s);
    /* after a watch event */
    CHECK_RC(locksmith_client_unlock(other, "seen-b"), 0);
    CHECK_RC(locksmith_client_wait(c, 5000), 1);
    CHECK_RC(locksmith_client_last_seen(c, &s), 0);
    CHECK_RC(locksmith_semaphore_is_holder(s, "seen-b"), 0);
    s = locksmith_semaphore_free(s);
    CHECK_RC(locksmith_client_unlock(c, "seen-a"), 0);

    /* A stored value that is not a semaphore: -EBADMSG, also for what was last seen. */
    CHECK_RC(locksmith_group_key(group, &key), 0);
    CHECK(etcd_put_v2(endpoint, key, "not-a-semaphore") == 200);
    CHECK_RC(locksmith_client_get(c, &s), -EBADMSG);
    CHECK_RC(locksmith_client_last_seen(c, &s), -EBADMSG);
    CHECK(s == NULL);
    CHECK(strlen(locksmith_client_last_error(c)) > 0);
    free(key);
    locksmith_client_free(other);
    locksmith_client_free(c);
}

/* The index of group name in g, or -1. */
static int group_index(const locksmith_groups *g, const char *name) {
    for (int i = 0; i < locksmith_groups_count(g); i++)
        if (strcmp(locksmith_groups_name(g, i), name) == 0)
            return i;
    return -1;
}

/* Holder records: written by lock, removed by unlock, beside the document (which stays as the
 * original writes it). */
static void test_holder_records(const char *endpoint) {
    locksmith_client *c = NULL;
    locksmith_holder_records *r = NULL;
    locksmith_semaphore *s = NULL;
    char group[96], *json = NULL, host[256] = "";

    CHECK_RC(locksmith_client_holder_records(NULL, &r), -EINVAL);
    CHECK_RC(locksmith_client_unlock_record(NULL, "x", 1), -EINVAL);
    CHECK(locksmith_holder_records_key(NULL, 0) == NULL);
    CHECK(locksmith_holder_records_revision(NULL, 0) == -1);
    CHECK_RC(locksmith_holder_records_ignored(NULL, 0), -EINVAL);
    CHECK_RC(locksmith_holder_records_count(NULL), -EINVAL);
    CHECK(locksmith_holder_records_id(NULL, 0) == NULL);
    CHECK(locksmith_holder_records_since(NULL, 0) == -1);
    CHECK(locksmith_holder_records_host(NULL, 0) == NULL);
    CHECK(locksmith_holder_records_free(NULL) == NULL);
    gethostname(host, sizeof host - 1);

    for (int v3 = 0; v3 <= 1; v3++) {
        snprintf(group, sizeof group, "c-api-records-%ld-%d", (long)getpid(), v3);
        CHECK_RC(locksmith_client_new(&c), 0);
        CHECK_RC(locksmith_client_set(c, "endpoint", endpoint), 0);
        CHECK_RC(locksmith_client_set(c, "etcd-api", v3 ? "v3" : "v2"), 0);
        CHECK_RC(locksmith_client_set(c, "group", group), 0);
        CHECK_RC(locksmith_client_holder_records(c, NULL), -EINVAL);
        CHECK_RC(locksmith_client_holder_records(c, &r), 0); /* nothing yet, and nothing created */
        CHECK_RC(locksmith_holder_records_count(r), 0);
        CHECK(locksmith_holder_records_id(r, 0) == NULL);
        r = locksmith_holder_records_free(r);
        CHECK_RC(locksmith_client_set_max(c, 2, NULL), 0);
        int64_t before = (int64_t)time(NULL);
        CHECK_RC(locksmith_client_lock(c, "z-second"), 0);
        CHECK_RC(locksmith_client_lock(c, "a-first"), 0);
        CHECK_RC(locksmith_client_lock(c, "not-taken"), -EBUSY); /* a refused lock records nothing */
        CHECK_RC(locksmith_client_holder_records(c, &r), 0);
        CHECK_RC(locksmith_holder_records_count(r), 2);
        CHECK_STR(locksmith_holder_records_id(r, 0), "a-first");
        CHECK_STR(locksmith_holder_records_id(r, 1), "z-second");
        CHECK(locksmith_holder_records_since(r, 0) >= before - 1 && locksmith_holder_records_since(r, 0) <= (int64_t)time(NULL) + 1);
        CHECK_STR(locksmith_holder_records_host(r, 1), host);
        CHECK(locksmith_holder_records_id(r, 2) == NULL && locksmith_holder_records_id(r, -1) == NULL);
        CHECK(locksmith_holder_records_since(r, 2) == -1);
        /* LOCKSMITH_4: each record's key and revision; a holding is released only as read. */
        int64_t first = locksmith_holder_records_revision(r, 0);
        CHECK(first > 0 && locksmith_holder_records_revision(r, 2) == -1);
        CHECK(strstr(locksmith_holder_records_key(r, 0), ".holders/a-first") != NULL);
        CHECK(locksmith_holder_records_key(r, 2) == NULL);
        CHECK_RC(locksmith_holder_records_ignored(r, 0), 0);
        r = locksmith_holder_records_free(r);
        CHECK_RC(locksmith_client_unlock(c, "a-first"), 0); /* given back and taken again */
        CHECK_RC(locksmith_client_lock(c, "a-first"), 0);
        CHECK_RC(locksmith_client_unlock_record(c, "a-first", first), -ESTALE);
        CHECK(strstr(locksmith_client_last_error(c), "took one again") != NULL);
        CHECK_RC(locksmith_client_unlock_record(c, "a-first", 0), -EINVAL);
        CHECK_RC(locksmith_client_unlock_record(c, "never-held", first), -ENOENT);
        CHECK_RC(locksmith_client_holder_records(c, &r), 0);
        CHECK(locksmith_holder_records_revision(r, 0) > first);
        CHECK_RC(locksmith_client_unlock_record(c, "a-first", locksmith_holder_records_revision(r, 0)), 0);
        CHECK_RC(locksmith_client_lock(c, "a-first"), 0);
        r = locksmith_holder_records_free(r);
        CHECK_RC(locksmith_client_get(c, &s), 0);
        CHECK_RC(locksmith_semaphore_to_json(s, &json), 0);
        CHECK_STR(json, "{\"semaphore\":0,\"max\":2,\"holders\":[\"a-first\",\"z-second\"]}");
        free(json);
        s = locksmith_semaphore_free(s);
        CHECK_RC(locksmith_client_unlock(c, "a-first"), 0);
        CHECK_RC(locksmith_client_holder_records(c, &r), 0);
        CHECK_RC(locksmith_holder_records_count(r), 1);
        CHECK_STR(locksmith_holder_records_id(r, 0), "z-second");
        r = locksmith_holder_records_free(r);
        c = locksmith_client_free(c);
    }
}

/* The fair queue: a free slot at once, a turn in order behind a holder, a timeout, the listing. */
static int progress_calls, progress_last = -1;
static int note_progress(int ahead, void *userdata) {
    progress_calls++;
    progress_last = ahead;
    CHECK(userdata == &progress_calls);
    return 0;
}
static int decline(int ahead, void *userdata) {
    (void)userdata;
    return ahead == 0;
}

/* The fleetlock-url option: its checks, and what a FleetLock client cannot do (answered before
 * any request: the URL names a port nothing listens on). */
static void test_fleetlock_option(void) {
    locksmith_client *c = NULL;
    locksmith_semaphore *s = NULL;
    int old_max = 0;

    CHECK_RC(locksmith_client_new(&c), 0);
    CHECK_RC(locksmith_client_set(c, "fleetlock-url", "ftp://example.com/"), -EINVAL);
    CHECK(strstr(locksmith_client_last_error(c), "fleetlock-url \"ftp://example.com/\" has no http:// or https:// scheme") != NULL);
    CHECK_RC(locksmith_client_set(c, "fleetlock-url", "http://user:pw@example.com/"), -EINVAL);
    CHECK(strstr(locksmith_client_last_error(c), "pw") == NULL);
    CHECK_RC(locksmith_client_set(c, "fleetlock-url", "http://127.0.0.1:9/base/"), 0);
    CHECK_RC(locksmith_client_get(c, &s), -EOPNOTSUPP);
    CHECK(strstr(locksmith_client_last_error(c), "is a FleetLock server (fleetlock-url)") != NULL);
    CHECK_RC(locksmith_client_read(c, &s), -EOPNOTSUPP);
    CHECK_RC(locksmith_client_set_max(c, 3, &old_max), -EOPNOTSUPP);
    CHECK_RC(locksmith_client_lock(c, "node-a"), -ECONNREFUSED);
    CHECK(strstr(locksmith_client_last_error(c), "the FleetLock server http://127.0.0.1:9/base/ did not answer pre-reboot") != NULL);
    CHECK_RC(locksmith_client_unlock(c, "node-a"), -ECONNREFUSED);
    /* FleetLock has no watch: a wait sleeps its time and reports no change. */
    CHECK_RC(locksmith_client_wait(c, 50), 0);
    /* A group FleetLock cannot name is refused before any request. */
    CHECK_RC(locksmith_client_set(c, "group", "web_1"), 0);
    CHECK_RC(locksmith_client_lock(c, "node-a"), -EINVAL);
    CHECK(strstr(locksmith_client_last_error(c), "FleetLock groups are ASCII letters, digits") != NULL);
    /* "" goes back to etcd. */
    CHECK_RC(locksmith_client_set(c, "fleetlock-url", ""), 0);
    CHECK_RC(locksmith_client_set(c, "endpoint", "http://127.0.0.1:9"), 0);
    CHECK_RC(locksmith_client_set(c, "group", ""), 0);
    CHECK_RC(locksmith_client_read(c, &s), -ECONNREFUSED);
    locksmith_client_free(c);
}

/* Many takes and give-backs in one write (locksmith_client_apply), v2 and v3. */
static void test_apply(const char *endpoint) {
    locksmith_client *c = NULL;
    locksmith_semaphore *s = NULL;
    char group[96];
    const char *holders[4] = {"a", "b", "c", "a"};
    int give_back[4] = {0, 0, 1, 0}, results[4] = {9, 9, 9, 9};

    CHECK_RC(locksmith_client_apply(NULL, 1, holders, give_back, results), -EINVAL);
    for (int v3 = 0; v3 <= 1; v3++) {
        snprintf(group, sizeof group, "c-api-apply-%ld-%d", (long)getpid(), v3);
        CHECK_RC(locksmith_client_new(&c), 0);
        CHECK_RC(locksmith_client_set(c, "endpoint", endpoint), 0);
        CHECK_RC(locksmith_client_set(c, "etcd-api", v3 ? "v3" : "v2"), 0);
        CHECK_RC(locksmith_client_set(c, "group", group), 0);
        CHECK_RC(locksmith_client_apply(c, 0, holders, give_back, results), -EINVAL);
        CHECK_RC(locksmith_client_apply(c, 1025, holders, give_back, results), -EINVAL);
        CHECK_RC(locksmith_client_apply(c, 1, NULL, give_back, results), -EINVAL);
        CHECK_RC(locksmith_client_apply(c, 1, holders, NULL, results), -EINVAL);
        CHECK_RC(locksmith_client_apply(c, 1, holders, give_back, NULL), -EINVAL);
        /* max 1: a takes the slot, b finds none, c holds none, a again is already a holder (the
         * semaphore is full, so "no free slot" comes first, as for locksmith_client_lock). */
        CHECK_RC(locksmith_client_apply(c, 4, holders, give_back, results), 1);
        CHECK(results[0] == 0 && results[1] == -EBUSY && results[2] == -ENOENT && results[3] == -EBUSY);
        CHECK_RC(locksmith_client_get(c, &s), 0);
        CHECK_RC(locksmith_semaphore_is_holder(s, "a"), 1);
        CHECK_RC(locksmith_semaphore_holder_count(s), 1);
        s = locksmith_semaphore_free(s);
        /* Nothing to change: no write, every refusal said. */
        CHECK_RC(locksmith_client_apply(c, 1, &holders[1], &give_back[1], results), 0);
        CHECK(results[0] == -EBUSY);
        /* a gives back and b takes, in that order, in one write. */
        const char *swap[2] = {"a", "b"};
        int swap_back[2] = {1, 0};
        CHECK_RC(locksmith_client_apply(c, 2, swap, swap_back, results), 2);
        CHECK(results[0] == 0 && results[1] == 0);
        CHECK_RC(locksmith_client_get(c, &s), 0);
        CHECK_RC(locksmith_semaphore_is_holder(s, "b"), 1);
        CHECK_RC(locksmith_semaphore_holder_count(s), 1);
        s = locksmith_semaphore_free(s);
        /* The same holder twice in one batch (a take and its give-back): one holder record. */
        const char *twice[2] = {"b", "b"};
        int twice_back[2] = {1, 0};
        CHECK_RC(locksmith_client_apply(c, 2, twice, twice_back, results), 2);
        /* Ids that are not valid are refused each on its own, and alone they send nothing. */
        const char *bad[2] = {"", "b"};
        int bad_back[2] = {0, 1};
        CHECK_RC(locksmith_client_apply(c, 2, bad, bad_back, results), 1);
        CHECK(results[0] == -EINVAL && results[1] == 0);
        CHECK_RC(locksmith_client_apply(c, 1, bad, bad_back, results), 0);
        CHECK(results[0] == -EINVAL);
        c = locksmith_client_free(c);
    }
}

static void test_queue(const char *endpoint) {
    locksmith_client *c = NULL, *holder = NULL;
    locksmith_holder_records *r = NULL;
    char group[96];

    CHECK_RC(locksmith_client_acquire(NULL, "x", 0, NULL, NULL), -EINVAL);
    CHECK_RC(locksmith_client_queue(NULL, &r), -EINVAL);
    for (int v3 = 0; v3 <= 1; v3++) {
        snprintf(group, sizeof group, "c-api-queue-%ld-%d", (long)getpid(), v3);
        CHECK_RC(locksmith_client_new(&c), 0);
        CHECK_RC(locksmith_client_new(&holder), 0);
        locksmith_client *both[2] = {c, holder};
        for (int i = 0; i < 2; i++) {
            CHECK_RC(locksmith_client_set(both[i], "endpoint", endpoint), 0);
            CHECK_RC(locksmith_client_set(both[i], "etcd-api", v3 ? "v3" : "v2"), 0);
            CHECK_RC(locksmith_client_set(both[i], "group", group), 0);
        }
        CHECK_RC(locksmith_client_acquire(c, NULL, 0, NULL, NULL), -EINVAL);
        CHECK_RC(locksmith_client_acquire(c, "", 0, NULL, NULL), -EINVAL);
        CHECK_RC(locksmith_client_queue(c, NULL), -EINVAL);
        /* A free slot: taken at once, the waiter told it is at the head. */
        progress_calls = 0;
        CHECK_RC(locksmith_client_acquire(c, "first", 5000, note_progress, &progress_calls), 0);
        CHECK(progress_calls == 1 && progress_last == 0);
        CHECK_RC(locksmith_client_acquire(c, "first", 5000, NULL, NULL), -EEXIST);
        /* Full: a timeout is 1, not an error, and leaves nothing in the queue. */
        CHECK_RC(locksmith_client_acquire(holder, "second", 300, NULL, NULL), 1);
        CHECK_RC(locksmith_client_queue(holder, &r), 0);
        CHECK_RC(locksmith_holder_records_count(r), 0);
        r = locksmith_holder_records_free(r);
        CHECK_RC(locksmith_client_unlock(c, "first"), 0);
        /* Declined at the head (with a slot free, so the attempt comes): no slot, no entry left. */
        CHECK_RC(locksmith_client_acquire(holder, "declining", 5000, decline, NULL), 2);
        CHECK_RC(locksmith_client_queue(holder, &r), 0);
        CHECK_RC(locksmith_holder_records_count(r), 0);
        r = locksmith_holder_records_free(r);
        CHECK_RC(locksmith_client_acquire(holder, "second", -1, NULL, NULL), 0);
        CHECK_RC(locksmith_client_unlock(holder, "second"), 0);
        /* Entries no waiter made (security issue 26, item 5): one without a lease or TTL, one
         * that is not an entry. The listing shows them marked; a waiter skips them. */
        char key[256], planted[300];
        snprintf(key, sizeof key, "coreos.com/updateengine/rebootlock/groups/%s/semaphore.queue/", group);
        snprintf(planted, sizeof planted, "%s0000000000000001", key);
        int put = (v3 ? etcd_put_v3 : etcd_put_v2)(endpoint, planted, "{\"id\":\"planted\",\"since\":1700000000}");
        CHECK(put == 200 || put == 201); /* (v2 answers 201 Created) */
        snprintf(planted, sizeof planted, "%s0000000000000002", key);
        put = (v3 ? etcd_put_v3 : etcd_put_v2)(endpoint, planted, "garbage");
        CHECK(put == 200 || put == 201);
        CHECK_RC(locksmith_client_queue(c, &r), 0);
        CHECK_RC(locksmith_holder_records_count(r), 0);
        r = locksmith_holder_records_free(r);
        CHECK_RC(locksmith_client_queue_all(c, NULL), -EINVAL);
        CHECK_RC(locksmith_client_queue_all(c, &r), 0);
        CHECK_RC(locksmith_holder_records_count(r), 2);
        CHECK_STR(locksmith_holder_records_id(r, 0), "planted");
        CHECK_RC(locksmith_holder_records_ignored(r, 0), LOCKSMITH_QUEUE_NEVER_EXPIRES);
        CHECK(locksmith_holder_records_since(r, 0) == 1700000000);
        CHECK_STR(locksmith_holder_records_id(r, 1), "");
        CHECK_RC(locksmith_holder_records_ignored(r, 1), LOCKSMITH_QUEUE_UNREADABLE);
        CHECK_STR(locksmith_holder_records_key(r, 1), planted);
        CHECK_RC(locksmith_holder_records_ignored(r, 2), -EINVAL);
        r = locksmith_holder_records_free(r);
        /* All of it in one read (LOCKSMITH_6): v3 in one request, v2 in three; the same lists. */
        {
            locksmith_semaphore *s = NULL, *got = NULL;
            locksmith_holder_records *records = NULL, *queue = NULL, *alone = NULL;
            char *json = NULL, *json_got = NULL;
            int64_t before = 0, after = 0;
            CHECK_RC(locksmith_client_get_all(c, NULL, &records, &queue), -EINVAL);
            CHECK_RC(locksmith_client_get_all(c, &s, NULL, &queue), -EINVAL);
            CHECK_RC(locksmith_client_get_all(c, &s, &records, NULL), -EINVAL);
            CHECK(s == NULL && records == NULL && queue == NULL);
            CHECK_RC(locksmith_client_lock(c, "status-holder"), 0);
            CHECK_RC(locksmith_client_stats(c, &before, NULL), 0);
            CHECK_RC(locksmith_client_get_all(c, &s, &records, &queue), 0);
            CHECK_RC(locksmith_client_stats(c, &after, NULL), 0);
            CHECK(after - before == (v3 ? 1 : 3));
            CHECK_RC(locksmith_client_get(c, &got), 0);
            CHECK_RC(locksmith_semaphore_to_json(s, &json), 0);
            CHECK_RC(locksmith_semaphore_to_json(got, &json_got), 0);
            CHECK_STR(json, json_got);
            CHECK_RC(locksmith_client_holder_records(c, &alone), 0);
            CHECK_RC(locksmith_holder_records_count(records), locksmith_holder_records_count(alone));
            for (int i = 0; i < locksmith_holder_records_count(alone); i++) {
                CHECK_STR(locksmith_holder_records_id(records, i), locksmith_holder_records_id(alone, i));
                CHECK_STR(locksmith_holder_records_key(records, i), locksmith_holder_records_key(alone, i));
                CHECK(locksmith_holder_records_revision(records, i) == locksmith_holder_records_revision(alone, i));
            }
            CHECK(locksmith_holder_records_count(records) >= 1);
            alone = locksmith_holder_records_free(alone);
            CHECK_RC(locksmith_holder_records_count(queue), 2);
            CHECK_STR(locksmith_holder_records_id(queue, 0), "planted");
            CHECK_RC(locksmith_holder_records_ignored(queue, 0), LOCKSMITH_QUEUE_NEVER_EXPIRES);
            CHECK_RC(locksmith_holder_records_ignored(queue, 1), LOCKSMITH_QUEUE_UNREADABLE);
            CHECK_STR(locksmith_holder_records_key(queue, 1), planted);
            CHECK_RC(locksmith_client_unlock(c, "status-holder"), 0);
            free(json);
            free(json_got);
            s = locksmith_semaphore_free(s);
            got = locksmith_semaphore_free(got);
            records = locksmith_holder_records_free(records);
            queue = locksmith_holder_records_free(queue);
        }
        CHECK_RC(locksmith_client_acquire(holder, "behind-planted", 5000, NULL, NULL), 0);
        CHECK_RC(locksmith_client_unlock(holder, "behind-planted"), 0);
        c = locksmith_client_free(c);
        holder = locksmith_client_free(holder);
    }
    /* The option that bounds a dead waiter's entry. */
    CHECK_RC(locksmith_client_new(&c), 0);
    CHECK_RC(locksmith_client_set(c, "queue-ttl", "10s"), 0);
    CHECK_RC(locksmith_client_set(c, "queue-ttl", "1s"), -EINVAL);
    CHECK_RC(locksmith_client_set(c, "queue-ttl", "2h"), -EINVAL);
    c = locksmith_client_free(c);
}

static void test_client_groups(const char *endpoint) {
    locksmith_client *c = NULL;
    locksmith_groups *g = NULL;
    locksmith_semaphore *s = NULL;
    char names[4][96], *key = NULL, *json = NULL;

    CHECK_RC(locksmith_client_groups(NULL, &g), -EINVAL);
    CHECK_RC(locksmith_groups_count(NULL), -EINVAL);
    CHECK(locksmith_groups_name(NULL, 0) == NULL);
    CHECK(locksmith_groups_key(NULL, 0) == NULL);
    CHECK(locksmith_groups_semaphore(NULL, 0) == NULL);
    CHECK(locksmith_groups_error(NULL, 0) == NULL);
    CHECK(locksmith_groups_free(NULL) == NULL);

    for (int v3 = 0; v3 <= 1; v3++) {
        /* Groups of this run: b (max 3), a/slash (a holder), "sp ace" (corrupt), and the default. */
        snprintf(names[0], sizeof names[0], "c-api-groups-%ld-b", (long)getpid());
        snprintf(names[1], sizeof names[1], "c-api-groups-%ld-a/slash", (long)getpid());
        snprintf(names[2], sizeof names[2], "c-api-groups-%ld-sp ace", (long)getpid());
        snprintf(names[3], sizeof names[3], "c-api-groups-%ld-not-created", (long)getpid());
        CHECK_RC(locksmith_client_new(&c), 0);
        CHECK_RC(locksmith_client_set(c, "endpoint", endpoint), 0);
        CHECK_RC(locksmith_client_set(c, "etcd-api", v3 ? "v3" : "v2"), 0);
        CHECK_RC(locksmith_client_groups(c, NULL), -EINVAL);
        CHECK_RC(locksmith_client_get(c, &s), 0); /* the default group */
        s = locksmith_semaphore_free(s);
        CHECK_RC(locksmith_client_set(c, "group", names[0]), 0);
        CHECK_RC(locksmith_client_set_max(c, 3, NULL), 0);
        CHECK_RC(locksmith_client_set(c, "group", names[1]), 0);
        CHECK_RC(locksmith_client_lock(c, "holder-1"), 0);
        CHECK_RC(locksmith_group_key(names[2], &key), 0);
        int status = v3 ? etcd_put_v3(endpoint, key, "{\"max\":\"corrupt\"}") : etcd_put_v2(endpoint, key, "not-json");
        CHECK(status == 200 || status == 201);
        free(key);

        int64_t before = 0, after = 0;
        CHECK_RC(locksmith_client_stats(c, &before, NULL), 0);
        CHECK_RC(locksmith_client_groups(c, &g), 0);
        CHECK_RC(locksmith_client_stats(c, &after, NULL), 0);
        CHECK(after == before + 1); /* one request */
        int n = locksmith_groups_count(g);
        CHECK(n >= 4);
        /* sorted by name, the default group ("") first */
        CHECK_STR(locksmith_groups_name(g, 0), "");
        CHECK_STR(locksmith_groups_key(g, 0), LOCKSMITH_DEFAULT_KEY);
        for (int i = 1; i < n; i++)
            CHECK(strcmp(locksmith_groups_name(g, i - 1), locksmith_groups_name(g, i)) < 0);
        int b = group_index(g, names[0]), a = group_index(g, names[1]), bad = group_index(g, names[2]);
        CHECK(a >= 0 && b >= 0 && bad >= 0 && a < b && b < bad);
        CHECK(group_index(g, names[3]) == -1);
        if (a >= 0 && b >= 0 && bad >= 0) {
            const locksmith_semaphore *sem = locksmith_groups_semaphore(g, b);
            int max = 0;
            CHECK(sem != NULL);
            CHECK_RC(locksmith_semaphore_get_max(sem, &max), 0);
            CHECK(max == 3);
            CHECK(locksmith_groups_error(g, b) == NULL);
            CHECK(locksmith_groups_semaphore(g, b) == sem); /* the same borrowed object */
            sem = locksmith_groups_semaphore(g, a);
            CHECK_RC(locksmith_semaphore_is_holder(sem, "holder-1"), 1);
            CHECK_RC(locksmith_semaphore_to_json(sem, &json), 0);
            CHECK_STR(json, "{\"semaphore\":0,\"max\":1,\"holders\":[\"holder-1\"]}");
            free(json);
            CHECK_RC(locksmith_group_key(names[1], &key), 0);
            CHECK_STR(locksmith_groups_key(g, a), key);
            free(key);
            /* the corrupt one: no semaphore, an error that names its key */
            CHECK(locksmith_groups_semaphore(g, bad) == NULL);
            CHECK_RC(locksmith_group_key(names[2], &key), 0);
            CHECK(locksmith_groups_error(g, bad) != NULL && strstr(locksmith_groups_error(g, bad), key) != NULL);
            CHECK_STR(locksmith_groups_key(g, bad), key);
            free(key);
        }
        CHECK(locksmith_groups_name(g, n) == NULL);
        CHECK(locksmith_groups_key(g, -1) == NULL);
        CHECK(locksmith_groups_semaphore(g, n) == NULL);
        CHECK(locksmith_groups_error(g, INT32_MAX) == NULL);
        CHECK(locksmith_groups_name(g, INT32_MIN) == NULL);
        /* Listing created nothing. */
        CHECK_RC(locksmith_client_set(c, "group", names[3]), 0);
        CHECK_RC(locksmith_client_read(c, &s), -ENOENT);
        /* The listing outlives the client, and a second listing is separate. */
        locksmith_client_free(c);
        CHECK(locksmith_groups_count(g) == n);
        CHECK_STR(locksmith_groups_name(g, 0), "");
        CHECK(locksmith_groups_free(g) == NULL);
    }

    /* A key stored with another escaping of the same group name: the listing's key is the
     * key the value is stored at. */
    CHECK_RC(locksmith_client_new(&c), 0);
    CHECK_RC(locksmith_client_set(c, "endpoint", endpoint), 0);
    CHECK_RC(locksmith_client_set(c, "etcd-api", "v2"), 0);
    char odd[256], odd_path[256], name[96];
    snprintf(name, sizeof name, "c-api-groups-%ld-odd esc", (long)getpid());
    snprintf(odd, sizeof odd, LOCKSMITH_KEY_PREFIX "/groups/c-api-groups-%ld-odd%%20esc/semaphore", (long)getpid());
    /* the key in a URL path: its '%' escaped */
    snprintf(odd_path, sizeof odd_path, LOCKSMITH_KEY_PREFIX "/groups/c-api-groups-%ld-odd%%2520esc/semaphore", (long)getpid());
    int status = etcd_put_v2(endpoint, odd_path, FRESH_JSON);
    CHECK(status == 201);
    CHECK_RC(locksmith_client_groups(c, &g), 0);
    int i = group_index(g, name);
    CHECK(i >= 0);
    if (i >= 0) {
        CHECK_STR(locksmith_groups_key(g, i), odd);
    }
    locksmith_groups_free(g);
    locksmith_client_free(c);
}

/* Windows in a named zone: Berlin's spring-forward, the zone's own abbreviations, errors. */
static void test_window_zones(void) {
    locksmith_window *w = NULL;
    int64_t start = 0, end = 0, seconds = 0;
    char *text = NULL;
    CHECK_RC(locksmith_window_set_zone(NULL, "Europe/Berlin"), -EINVAL);
    CHECK(locksmith_window_zone(NULL) == NULL);
    CHECK_RC(locksmith_window_format_time(NULL, 0, &text), -EINVAL);
    CHECK_RC(locksmith_window_parse("02:30", "1h", &w), 0);
    CHECK(locksmith_window_zone(w) == NULL);
    CHECK_RC(locksmith_window_format_time(w, 0, NULL), -EINVAL);
    CHECK_RC(locksmith_window_set_zone(w, "../etc/passwd"), -EINVAL);
    CHECK_RC(locksmith_window_set_zone(w, "/usr/share/zoneinfo/UTC"), -EINVAL);
    CHECK_RC(locksmith_window_set_zone(w, "Europe/No_Such_City"), -ENOENT);
    CHECK(strstr(locksmith_last_error(), "Europe/No_Such_City") != NULL);
    CHECK(locksmith_window_zone(w) == NULL); /* unchanged by a failure */
    CHECK_RC(locksmith_window_set_zone(w, "Europe/Berlin"), 0);
    CHECK_STR(locksmith_window_zone(w), "Europe/Berlin");
    /* 2021-03-27 12:00 UTC: the next 02:30 in Berlin does not exist; it opens at 03:30 CEST. */
    CHECK_RC(locksmith_window_next(w, 1616846400, &start, &end), 0);
    CHECK(start == 1616895000 && end == 1616898600);
    CHECK_RC(locksmith_window_format_time(w, start, &text), 0);
    CHECK_STR(text, "Sun 2021-03-28 03:30 CEST");
    free(text);
    CHECK_RC(locksmith_window_format_time(w, 1609459200, &text), 0); /* 2021-01-01 00:00 UTC */
    CHECK_STR(text, "Fri 2021-01-01 01:00 CET");
    free(text);
    /* 2021-10-31 (fall back): 02:30 exists twice; the first, CEST, is the opening. */
    CHECK_RC(locksmith_window_next(w, 1635595200, &start, &end), 0);
    CHECK(start == 1635640200);
    /* The same window in another zone opens at another instant. */
    CHECK_RC(locksmith_window_set_zone(w, "Asia/Kolkata"), 0);
    CHECK_RC(locksmith_window_seconds_to_start(w, 1609459200, &seconds), 0); /* 05:30 IST */
    CHECK(seconds == 21 * 3600);
    CHECK_RC(locksmith_window_format_time(w, 1609459200, &text), 0);
    CHECK_STR(text, "Fri 2021-01-01 05:30 IST");
    free(text);
    /* Back to local time (Los Angeles in these tests). */
    CHECK_RC(locksmith_window_set_zone(w, ""), 0);
    CHECK(locksmith_window_zone(w) == NULL);
    CHECK_RC(locksmith_window_format_time(w, 1609459200, &text), 0);
    CHECK_STR(text, "Thu 2020-12-31 16:00 PST");
    free(text);
    CHECK_RC(locksmith_window_set_zone(w, "UTC"), 0);
    CHECK_RC(locksmith_window_set_zone(w, NULL), 0);
    CHECK(locksmith_window_zone(w) == NULL);
    w = locksmith_window_free(w);

    /* From the daemon's settings. */
    locksmith_config *conf = NULL;
    locksmith_daemon_settings *d = NULL;
    CHECK_RC(locksmith_config_parse("REBOOT_WINDOW_START=02:30\nREBOOT_WINDOW_LENGTH=1h\nLOCKSMITHD_REBOOT_WINDOW_TZ=Europe/Berlin\n",
                                    "/etc/coreos/update.conf", &conf), 0);
    CHECK_RC(locksmith_daemon_settings_load(conf, NULL, &d), 0);
    CHECK_STR(locksmith_window_zone(locksmith_daemon_settings_window(d)), "Europe/Berlin");
    CHECK_STR(locksmith_daemon_settings_window_source(d, 2),
              "LOCKSMITHD_REBOOT_WINDOW_TZ=\"Europe/Berlin\" (from /etc/coreos/update.conf)");
    CHECK_RC(locksmith_window_next(locksmith_daemon_settings_window(d), 1616846400, &start, &end), 0);
    CHECK(start == 1616895000);
    d = locksmith_daemon_settings_free(d);
    conf = locksmith_config_free(conf);
    CHECK_RC(locksmith_config_parse("REBOOT_WINDOW_START=02:30\nREBOOT_WINDOW_LENGTH=1h\n", NULL, &conf), 0);
    CHECK_RC(locksmith_daemon_settings_load(conf, NULL, &d), 0);
    CHECK(locksmith_window_zone(locksmith_daemon_settings_window(d)) == NULL);
    CHECK(locksmith_daemon_settings_window_source(d, 2) == NULL);
    d = locksmith_daemon_settings_free(d);
    conf = locksmith_config_free(conf);
    /* A zone without a window is a warning; a bad zone an error naming the setting. */
    CHECK_RC(locksmith_config_parse("LOCKSMITHD_REBOOT_WINDOW_TZ=UTC\n", NULL, &conf), 0);
    CHECK_RC(locksmith_daemon_settings_load(conf, NULL, &d), 0);
    CHECK_RC(locksmith_daemon_settings_warning_count(d), 1);
    CHECK(strstr(locksmith_daemon_settings_warning(d, 0), "no reboot window is set") != NULL);
    d = locksmith_daemon_settings_free(d);
    conf = locksmith_config_free(conf);
    CHECK_RC(locksmith_config_parse("REBOOT_WINDOW_START=02:30\nREBOOT_WINDOW_LENGTH=1h\nLOCKSMITHD_REBOOT_WINDOW_TZ=Nowhere/Atlantis\n",
                                    "/etc/flatcar/update.conf", &conf), 0);
    CHECK_RC(locksmith_daemon_settings_load(conf, NULL, &d), -EINVAL);
    CHECK(strstr(locksmith_last_error(), "LOCKSMITHD_REBOOT_WINDOW_TZ=\"Nowhere/Atlantis\" (from /etc/flatcar/update.conf)") != NULL);
    conf = locksmith_config_free(conf);
}

static void test_daemon_settings(const char *endpoint, const char *root) {
    locksmith_config *conf = NULL;
    locksmith_daemon_settings *d = NULL, *unmade = NULL;
    locksmith_client *c = NULL;
    char *start = NULL, *length = NULL, value[256], origin[256], text[2100];

    clear_settings_environment();
    /* NULL handles */
    CHECK_RC(locksmith_daemon_settings_load(NULL, NULL, &d), -EINVAL);
    CHECK(locksmith_daemon_settings_strategy(NULL) == NULL);
    CHECK(locksmith_daemon_settings_window(NULL) == NULL);
    CHECK(locksmith_daemon_settings_broadcast_delay(NULL) == -1);
    CHECK(locksmith_daemon_settings_slot_wait(NULL) == NULL);
    CHECK(locksmith_daemon_settings_utmp(NULL) == NULL);
    CHECK(locksmith_daemon_settings_group(NULL) == NULL);
    CHECK(locksmith_daemon_settings_window_source(NULL, 0) == NULL);
    CHECK_RC(locksmith_daemon_settings_warning_count(NULL), -EINVAL);
    CHECK(locksmith_daemon_settings_warning(NULL, 0) == NULL);
    CHECK_RC(locksmith_daemon_settings_new_client(NULL, 0, &c), -EINVAL);
    CHECK(locksmith_daemon_settings_reboot_source(NULL) == NULL);
    CHECK(locksmith_daemon_settings_reboot_source_argument(NULL) == NULL);
    CHECK(locksmith_daemon_settings_reboot_check_interval(NULL) == -1);
    CHECK(locksmith_daemon_settings_hook_timeout(NULL) == -1);
    CHECK(locksmith_daemon_settings_hooks_directory(NULL) == NULL);
    CHECK(locksmith_daemon_settings_metrics_file(NULL) == NULL);
    CHECK(locksmith_daemon_settings_free(NULL) == NULL);

    /* An empty configuration: the defaults. */
    CHECK_RC(locksmith_config_parse("", "/etc/coreos/update.conf", &conf), 0);
    CHECK_RC(locksmith_daemon_settings_load(conf, NULL, NULL), -EINVAL);
    CHECK_RC(locksmith_daemon_settings_load(conf, "relative", &d), -EINVAL);
    CHECK_RC(locksmith_daemon_settings_load(conf, "", &d), -EINVAL);
    CHECK(d == NULL);
    CHECK_RC(locksmith_daemon_settings_load(conf, NULL, &d), 0);
    CHECK_STR(locksmith_daemon_settings_strategy(d), "reboot");
    CHECK(locksmith_daemon_settings_window(d) == NULL);
    CHECK(locksmith_daemon_settings_window_source(d, 0) == NULL);
    CHECK(locksmith_daemon_settings_window_source(d, 1) == NULL);
    CHECK(locksmith_daemon_settings_broadcast_delay(d) == INT64_C(300000000000));
    CHECK_STR(locksmith_daemon_settings_slot_wait(d), "watch");
    CHECK_STR(locksmith_daemon_settings_utmp(d), "/var/run/utmp");
    CHECK_STR(locksmith_daemon_settings_group(d), "");
    CHECK_RC(locksmith_daemon_settings_warning_count(d), 0);
    CHECK(locksmith_daemon_settings_warning(d, 0) == NULL);
    CHECK_STR(locksmith_daemon_settings_reboot_source(d), "auto");
    CHECK_STR(locksmith_daemon_settings_reboot_source_argument(d), "/run/reboot-required");
    CHECK(locksmith_daemon_settings_reboot_check_interval(d) == INT64_C(3600000000000));
    CHECK(locksmith_daemon_settings_hook_timeout(d) == INT64_C(600000000000));
    CHECK_STR(locksmith_daemon_settings_hooks_directory(d), "/etc/locksmith");
    CHECK(locksmith_daemon_settings_metrics_file(d) == NULL);
    /* Every setting by name (LOCKSMITH_5), the same values. */
    {
        static const struct { const char *name, *value; } defaults[] = {
            {"strategy", "reboot"}, {"window-start", NULL}, {"window-length", NULL}, {"window-zone", NULL},
            {"broadcast-delay", "5m0s"}, {"slot-wait", "watch"}, {"utmp", "/var/run/utmp"}, {"group", ""},
            {"reboot-source", "auto"}, {"reboot-source-argument", "/run/reboot-required"},
            {"reboot-check-interval", "1h0m0s"}, {"hook-timeout", "10m0s"}, {"hooks-directory", "/etc/locksmith"},
            {"metrics-file", NULL}, {"fleetlock-id", NULL},
        };
        size_t n = sizeof defaults / sizeof defaults[0];
        for (size_t i = 0; i < n; i++) {
            const char *got = NULL;
            CHECK_STR(locksmith_daemon_settings_name((int)i), defaults[i].name);
            CHECK_RC(locksmith_daemon_settings_get(d, defaults[i].name, &got), defaults[i].value ? 0 : -ENOENT);
            if (defaults[i].value) CHECK_STR(got, defaults[i].value);
            else CHECK(got == NULL);
        }
        const char *got = NULL;
        CHECK(locksmith_daemon_settings_name((int)n) == NULL);
        CHECK(locksmith_daemon_settings_name(-1) == NULL);
        CHECK_RC(locksmith_daemon_settings_get(d, "no-such-setting", &got), -EINVAL);
        CHECK_RC(locksmith_daemon_settings_get(NULL, "strategy", &got), -EINVAL);
        CHECK_RC(locksmith_daemon_settings_get(d, NULL, &got), -EINVAL);
        CHECK_RC(locksmith_daemon_settings_get(d, "strategy", NULL), -EINVAL);
        CHECK(got == NULL);
    }
    d = locksmith_daemon_settings_free(d);
    conf = locksmith_config_free(conf);

    /* The reboot sources, hooks and metrics file, under a root. */
    char want[4200];
    static const struct {
        const char *text, *kind, *argument; /* argument: after the root, "" for none */
        int under_root;
    } sources[] = {
        {"LOCKSMITHD_REBOOT_SOURCE=auto\n", "auto", "/run/reboot-required", 1},
        {"LOCKSMITHD_REBOOT_SOURCE=update-engine\n", "update-engine", "", 0},
        {"LOCKSMITHD_REBOOT_SOURCE=file\n", "file", "/run/reboot-required", 1},
        {"LOCKSMITHD_REBOOT_SOURCE=file:/var/lib/x/needed\n", "file", "/var/lib/x/needed", 1},
        {"LOCKSMITHD_REBOOT_SOURCE=command:needs-restarting -r\n", "command", "needs-restarting -r", 0},
        {"LOCKSMITHD_REBOOT_SOURCE=command:a\tb\n", "command", "a\tb", 0},
    };
    for (size_t i = 0; i < sizeof sources / sizeof sources[0]; i++) {
        CHECK_RC(locksmith_config_parse(sources[i].text, NULL, &conf), 0);
        CHECK_RC(locksmith_daemon_settings_load(conf, "/srv/node", &d), 0);
        CHECK_STR(locksmith_daemon_settings_reboot_source(d), sources[i].kind);
        snprintf(want, sizeof want, "%s%s", sources[i].under_root ? "/srv/node" : "", sources[i].argument);
        CHECK_STR(locksmith_daemon_settings_reboot_source_argument(d), want);
        d = locksmith_daemon_settings_free(d);
        conf = locksmith_config_free(conf);
    }
    CHECK_RC(locksmith_config_parse("LOCKSMITHD_REBOOT_CHECK_INTERVAL=90s\nLOCKSMITHD_HOOK_TIMEOUT=1m30s\n"
                                    "LOCKSMITHD_METRICS_FILE=/var/lib/node_exporter/locksmith.prom\n", NULL, &conf), 0);
    CHECK_RC(locksmith_daemon_settings_load(conf, "/srv/node/", &d), 0);
    CHECK(locksmith_daemon_settings_reboot_check_interval(d) == INT64_C(90000000000));
    CHECK(locksmith_daemon_settings_hook_timeout(d) == INT64_C(90000000000));
    CHECK_STR(locksmith_daemon_settings_hooks_directory(d), "/srv/node/etc/locksmith");
    CHECK_STR(locksmith_daemon_settings_metrics_file(d), "/srv/node/var/lib/node_exporter/locksmith.prom");
    d = locksmith_daemon_settings_free(d);
    conf = locksmith_config_free(conf);

    /* Everything set, best-effort read as etcd-lock with a warning, the window from a prefixed
     * and an unprefixed name, utmp under a root, the etcd settings for a client. */
    char dir[2048];
    snprintf(dir, sizeof dir, "%s/daemon-root", root);
    snprintf(text, sizeof text,
             "REBOOT_STRATEGY=best-effort\nLOCKSMITHD_REBOOT_WINDOW_START=thu 23:00\nREBOOT_WINDOW_LENGTH=1h30m\n"
             "LOCKSMITHD_REBOOT_BROADCAST_DELAY=90s\nLOCKSMITHD_SLOT_WAIT=poll\nLOCKSMITHD_UTMP=/run/utmp\n"
             "LOCKSMITHD_GROUP=c-api-daemon-%ld\nLOCKSMITHD_ENDPOINT=%s\nLOCKSMITHD_TIMEOUT=2s\nno assignment here\n",
             (long)getpid(), endpoint);
    setenv("LOCKSMITHCTL_GROUP", "not-the-daemons", 1);
    setenv("LOCKSMITHD_GROUP", "not-from-the-environment", 1); /* only conf counts */
    CHECK_RC(locksmith_config_parse(text, "/etc/coreos/update.conf", &conf), 0);
    CHECK_RC(locksmith_daemon_settings_load(conf, dir, &d), 0);
    CHECK_STR(locksmith_daemon_settings_strategy(d), "etcd-lock");
    const locksmith_window *w = locksmith_daemon_settings_window(d);
    CHECK(w != NULL);
    CHECK(locksmith_daemon_settings_window(d) == w);
    CHECK_RC(locksmith_window_to_string(w, &start, &length), 0);
    CHECK_STR(start, "Thu 23:00");
    CHECK_STR(length, "1h30m0s");
    free(start);
    free(length);
    int64_t seconds = 0;
    CHECK_RC(locksmith_window_seconds_to_start(w, 1432191600, &seconds), 0); /* Thu 00:00 PDT */
    CHECK(seconds == 23 * 3600);
    CHECK_STR(locksmith_daemon_settings_window_source(d, 0),
              "LOCKSMITHD_REBOOT_WINDOW_START=\"thu 23:00\" (from /etc/coreos/update.conf)");
    CHECK_STR(locksmith_daemon_settings_window_source(d, 1), "REBOOT_WINDOW_LENGTH=\"1h30m\" (from /etc/coreos/update.conf)");
    CHECK(locksmith_daemon_settings_window_source(d, 2) == NULL);
    CHECK(locksmith_daemon_settings_window_source(d, -1) == NULL);
    CHECK(locksmith_daemon_settings_broadcast_delay(d) == INT64_C(90000000000));
    CHECK_STR(locksmith_daemon_settings_slot_wait(d), "poll");
    snprintf(want, sizeof want, "%s/run/utmp", dir);
    CHECK_STR(locksmith_daemon_settings_utmp(d), want);
    snprintf(want, sizeof want, "c-api-daemon-%ld", (long)getpid());
    CHECK_STR(locksmith_daemon_settings_group(d), want);
    int warnings = locksmith_daemon_settings_warning_count(d);
    CHECK(warnings == 2);
    int deprecated = 0, skipped = 0;
    for (int i = 0; i < warnings; i++) {
        const char *text_i = locksmith_daemon_settings_warning(d, i);
        if (text_i && strstr(text_i, "best-effort") && strstr(text_i, "etcd-lock") && strstr(text_i, "REBOOT_STRATEGY"))
            deprecated++;
        if (text_i && strstr(text_i, "no assignment here") && strstr(text_i, "/etc/coreos/update.conf"))
            skipped++;
    }
    CHECK(deprecated == 1 && skipped == 1);
    CHECK(locksmith_daemon_settings_warning(d, warnings) == NULL);
    CHECK(locksmith_daemon_settings_warning(d, -1) == NULL);

    /* new_client: the daemon's group, endpoint and timeout, said where they came from. */
    CHECK_RC(locksmith_daemon_settings_new_client(d, 0, NULL), -EINVAL);
    CHECK_RC(locksmith_daemon_settings_new_client(d, UINT64_C(1) << 1, &c), -EINVAL);
    CHECK(c == NULL);
    CHECK_RC(locksmith_daemon_settings_new_client(d, 0, &c), 0);
    char *key = NULL;
    CHECK_RC(locksmith_group_key(want, &key), 0);
    CHECK_STR(locksmith_client_key(c), key);
    free(key);
    CHECK_RC(setting_of(c, "group", value, origin), 0);
    CHECK_STR(value, want);
    CHECK_STR(origin, "LOCKSMITHD_GROUP in /etc/coreos/update.conf");
    CHECK_RC(setting_of(c, "timeout", value, origin), 0);
    CHECK_STR(value, "2s");
    locksmith_semaphore *s = NULL;
    CHECK_RC(locksmith_client_get(c, &s), 0);
    s = locksmith_semaphore_free(s);
    CHECK_STR(locksmith_client_endpoint(c), endpoint);
    /* the program may still override it */
    CHECK_RC(locksmith_client_set(c, "group", "overridden"), 0);
    CHECK_RC(setting_of(c, "group", value, origin), 0);
    CHECK_STR(origin, "");
    c = locksmith_client_free(c);
    CHECK_RC(locksmith_daemon_settings_new_client(d, LOCKSMITH_NO_ENVIRONMENT, &c), 0);
    CHECK_RC(setting_of(c, "group", value, origin), 0);
    CHECK_STR(value, want);
    c = locksmith_client_free(c);
    /* the settings outlive their config */
    conf = locksmith_config_free(conf);
    CHECK_STR(locksmith_daemon_settings_strategy(d), "etcd-lock");
    d = locksmith_daemon_settings_free(d);
    unsetenv("LOCKSMITHCTL_GROUP");
    unsetenv("LOCKSMITHD_GROUP");

    /* A root with a trailing slash; the strategies. */
    snprintf(text, sizeof text, "%s/", dir);
    static const char *strategies[] = {"etcd-lock", "reboot", "off"};
    for (size_t i = 0; i < 3; i++) {
        char line[128];
        snprintf(line, sizeof line, "REBOOT_STRATEGY=%s\n", strategies[i]);
        CHECK_RC(locksmith_config_parse(line, NULL, &conf), 0);
        CHECK_RC(locksmith_daemon_settings_load(conf, text, &d), 0);
        CHECK_STR(locksmith_daemon_settings_strategy(d), strategies[i]);
        snprintf(want, sizeof want, "%s/var/run/utmp", dir);
        CHECK_STR(locksmith_daemon_settings_utmp(d), want);
        CHECK_RC(locksmith_daemon_settings_warning_count(d), 0);
        d = locksmith_daemon_settings_free(d);
        conf = locksmith_config_free(conf);
    }

    /* Bad and half-set values: -EINVAL, the message naming the variable and the file. */
    static const struct {
        const char *text, *variable;
    } bad[] = {
        {"REBOOT_STRATEGY=sometimes\n", "REBOOT_STRATEGY"},
        {"LOCKSMITHD_REBOOT_WINDOW_START=Thu 23:00\n", "LOCKSMITHD_REBOOT_WINDOW_START"},
        {"REBOOT_WINDOW_LENGTH=1h\n", "REBOOT_WINDOW_LENGTH"},
        {"LOCKSMITHD_REBOOT_WINDOW_START=Thx 23:00\nLOCKSMITHD_REBOOT_WINDOW_LENGTH=1h\n", "LOCKSMITHD_REBOOT_WINDOW_START"},
        {"LOCKSMITHD_REBOOT_WINDOW_START=Thu 23:00\nLOCKSMITHD_REBOOT_WINDOW_LENGTH=forever\n", "LOCKSMITHD_REBOOT_WINDOW_LENGTH"},
        {"LOCKSMITHD_REBOOT_BROADCAST_DELAY=soon\n", "LOCKSMITHD_REBOOT_BROADCAST_DELAY"},
        {"LOCKSMITHD_REBOOT_BROADCAST_DELAY=-1s\n", "LOCKSMITHD_REBOOT_BROADCAST_DELAY"},
        {"LOCKSMITHD_SLOT_WAIT=sometimes\n", "LOCKSMITHD_SLOT_WAIT"},
        {"LOCKSMITHD_ETCD_API=v9\n", "LOCKSMITHD_ETCD_API"},
        {"LOCKSMITHD_TIMEOUT=2h\n", "LOCKSMITHD_TIMEOUT"},
        {"LOCKSMITHD_ENDPOINT=127.0.0.1:2379\n", "LOCKSMITHD_ENDPOINT"},
        {"LOCKSMITHD_REBOOT_SOURCE=sometimes\n", "LOCKSMITHD_REBOOT_SOURCE"},
        {"LOCKSMITHD_REBOOT_SOURCE=file:run/x\n", "LOCKSMITHD_REBOOT_SOURCE"},
        {"LOCKSMITHD_REBOOT_SOURCE=file:/run/../etc/shadow\n", "LOCKSMITHD_REBOOT_SOURCE"},
        {"LOCKSMITHD_REBOOT_SOURCE=file:/run/\n", "LOCKSMITHD_REBOOT_SOURCE"},
        {"LOCKSMITHD_REBOOT_SOURCE=command: \n", "LOCKSMITHD_REBOOT_SOURCE"},
        {"LOCKSMITHD_REBOOT_SOURCE=command:a\x01b\n", "LOCKSMITHD_REBOOT_SOURCE"},
        {"LOCKSMITHD_REBOOT_CHECK_INTERVAL=500ms\n", "LOCKSMITHD_REBOOT_CHECK_INTERVAL"},
        {"LOCKSMITHD_REBOOT_CHECK_INTERVAL=hourly\n", "LOCKSMITHD_REBOOT_CHECK_INTERVAL"},
        {"LOCKSMITHD_HOOK_TIMEOUT=0s\n", "LOCKSMITHD_HOOK_TIMEOUT"},
        {"LOCKSMITHD_METRICS_FILE=metrics.prom\n", "LOCKSMITHD_METRICS_FILE"},
        {"LOCKSMITHD_METRICS_FILE=/var/lib/../../etc/passwd\n", "LOCKSMITHD_METRICS_FILE"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        CHECK_RC(locksmith_config_parse(bad[i].text, "/etc/flatcar/update.conf", &conf), 0);
        unmade = NULL;
        int r = locksmith_daemon_settings_load(conf, NULL, &unmade);
        CHECK_RC(r, -EINVAL);
        CHECK(unmade == NULL);
        const char *message = locksmith_last_error();
        if (!strstr(message, bad[i].variable) || !strstr(message, "/etc/flatcar/update.conf")) {
            failed++;
            fprintf(stderr, "test_api.c:%d: FAILED: for %s the message does not name %s and the file: %s\n", __LINE__,
                    bad[i].variable, bad[i].variable, message);
        } else {
            passed++;
        }
        conf = locksmith_config_free(conf);
    }

    /* From the files of a root: a password in a file every user can read is warned about. */
    char path[4096];
    snprintf(dir, sizeof dir, "%s/daemon-password-root", root);
    make_dirs(dir, "etc/flatcar");
    snprintf(path, sizeof path, "%s/etc/flatcar/update.conf", dir);
    write_file(path, "REBOOT_STRATEGY=etcd-lock\nLOCKSMITHD_ETCD_PASSWORD=conf-s3cret\n");
    chmod(path, 0644);
    CHECK_RC(locksmith_config_load_at(dir, LOCKSMITH_NO_ENVIRONMENT, &conf), 0);
    CHECK_RC(locksmith_daemon_settings_load(conf, dir, &d), 0);
    CHECK_RC(locksmith_daemon_settings_warning_count(d), 1);
    const char *pw = locksmith_daemon_settings_warning(d, 0);
    CHECK(pw && strstr(pw, path) && !strstr(pw, "s3cret"));
    CHECK_RC(locksmith_daemon_settings_new_client(d, 0, &c), 0);
    CHECK_RC(setting_of(c, "etcd-password", value, origin), 0);
    CHECK_STR(value, "(hidden)");
    snprintf(want, sizeof want, "LOCKSMITHD_ETCD_PASSWORD in %s", path);
    CHECK_STR(origin, want);
    c = locksmith_client_free(c);
    d = locksmith_daemon_settings_free(d);
    conf = locksmith_config_free(conf);
    clear_settings_environment();
}

/* locksmith_slot_record_read(root) in a child process that must finish within seconds: its
 * result, or 1000 if it had to be killed (it blocked), 1001 if it crashed. */
static int slot_record_read_in_time(const char *root, int seconds) {
    fflush(NULL);
    pid_t pid = fork();
    if (pid < 0) {
        perror("fork");
        exit(2);
    }
    if (pid == 0) {
        int r = locksmith_slot_record_read(root, NULL, NULL);
        _exit(r < 0 ? -r : 200 + r);
    }
    int status = 0;
    for (int waited = 0; waited < seconds * 10; waited++) {
        if (waitpid(pid, &status, WNOHANG) == pid) {
            if (!WIFEXITED(status))
                return 1001;
            int code = WEXITSTATUS(status);
            return code >= 200 ? code - 200 : -code;
        }
        usleep(100000);
    }
    kill(pid, SIGKILL);
    waitpid(pid, &status, 0);
    return 1000;
}

static void test_slot_record(const char *scratch) {
    char root[2048], file[4096], target[4096], *key = NULL, *id = NULL, *group_key = NULL;
    struct stat st;

    snprintf(root, sizeof root, "%s/slot-root", scratch);
    mkdir(root, 0755);
    snprintf(file, sizeof file, "%s/var/lib/locksmith/reboot-slot", root);

    /* No record (not even the directory): -ENOENT. */
    CHECK_RC(locksmith_slot_record_read(root, &key, &id), -ENOENT);
    CHECK(key == NULL && id == NULL);

    /* Round trips: held (the directory is made), not held, held again. */
    CHECK_RC(locksmith_slot_record_write(root, LOCKSMITH_DEFAULT_KEY, "0123456789abcdef0123456789abcdef"), 0);
    CHECK(lstat(file, &st) == 0 && S_ISREG(st.st_mode) && (st.st_mode & 0777) == 0644);
    CHECK_RC(locksmith_slot_record_read(root, &key, &id), 1);
    CHECK_STR(key, LOCKSMITH_DEFAULT_KEY);
    CHECK_STR(id, "0123456789abcdef0123456789abcdef");
    free(key);
    free(id);
    key = id = NULL;
    CHECK_RC(locksmith_slot_record_read(root, NULL, NULL), 1);
    CHECK_RC(locksmith_slot_record_read(root, &key, NULL), 1);
    CHECK_STR(key, LOCKSMITH_DEFAULT_KEY);
    free(key);
    key = NULL;
    CHECK_RC(locksmith_slot_record_write(root, NULL, NULL), 0);
    key = id = SENTINEL_PTR;
    CHECK_RC(locksmith_slot_record_read(root, &key, &id), 0);
    CHECK(key == SENTINEL_PTR && id == SENTINEL_PTR);
    key = id = NULL;
    CHECK_RC(locksmith_group_key("prod/database", &group_key), 0);
    static const char *ids[] = {"node-1", "0123456789abcdef0123456789abcdef/locksmith-run", "a b", "q\"uote", "s'q",
                                "#hash", "x #c", "$HOME", "a=b", "\xc3\xa9", "  lead", "trail  ", "back\\slash",
                                "end\\", "\\n"};
    for (size_t i = 0; i < sizeof ids / sizeof ids[0]; i++) {
        int w = locksmith_slot_record_write(root, group_key, ids[i]);
        int r = locksmith_slot_record_read(root, &key, &id);
        /* every id the write takes reads back as it was */
        if (w != 0 || r != 1 || !key || strcmp(key, group_key) != 0 || !id || strcmp(id, ids[i]) != 0) {
            failed++;
            fprintf(stderr, "test_api.c:%d: FAILED: slot record of id \"%s\": write %d, read %d gave \"%s\"\n", __LINE__,
                    ids[i], w, r, id ? id : "(null)");
        } else {
            passed++;
        }
        free(key);
        free(id);
        key = id = NULL;
    }
    /* Keys: as locksmith_group_key() makes them; anything else is refused or reads back. */
    static const char *keys[] = {
        LOCKSMITH_KEY_PREFIX "/groups/a\nID=evil\nX=/semaphore",
        LOCKSMITH_KEY_PREFIX "/groups/a\\/semaphore",
        LOCKSMITH_KEY_PREFIX "/groups/ lead/semaphore",
    };
    for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++) {
        CHECK_RC(locksmith_slot_record_write(root, group_key, "node-1"), 0);
        int w = locksmith_slot_record_write(root, keys[i], "node-1");
        int r = locksmith_slot_record_read(root, &key, &id);
        if (w == 0 ? (r != 1 || strcmp(key, keys[i]) != 0) : (w != -EINVAL || r != 1 || strcmp(key, group_key) != 0)) {
            failed++;
            fprintf(stderr, "test_api.c:%d: FAILED: slot record of key \"%s\": write %d, read %d gave \"%s\"\n", __LINE__,
                    keys[i], w, r, key ? key : "(null)");
        } else {
            passed++;
        }
        free(key);
        free(id);
        key = id = NULL;
    }

    /* Bad arguments: -EINVAL, the record unchanged. */
    CHECK_RC(locksmith_slot_record_write(root, group_key, "node-1"), 0);
    CHECK_RC(locksmith_slot_record_write(root, group_key, NULL), -EINVAL);
    CHECK_RC(locksmith_slot_record_write(root, NULL, "node-1"), -EINVAL);
    CHECK_RC(locksmith_slot_record_write(root, "not/a/semaphore/key", "node-1"), -EINVAL);
    CHECK_RC(locksmith_slot_record_write(root, LOCKSMITH_KEY_PREFIX "/groups/%zz/semaphore", "node-1"), -EINVAL);
    CHECK_RC(locksmith_slot_record_write(root, group_key, ""), -EINVAL);
    CHECK_RC(locksmith_slot_record_write(root, group_key, "line\nbreak"), -EINVAL);
    CHECK_RC(locksmith_slot_record_write(root, group_key, "\xff"), -EINVAL);
    CHECK_RC(locksmith_slot_record_write("relative", group_key, "node-1"), -EINVAL);
    CHECK_RC(locksmith_slot_record_write("", NULL, NULL), -EINVAL);
    CHECK_RC(locksmith_slot_record_read("relative", &key, &id), -EINVAL);
    CHECK(key == NULL && id == NULL);
    CHECK_RC(locksmith_slot_record_read(root, &key, &id), 1);
    CHECK_STR(id, "node-1");
    free(key);
    free(id);
    key = id = NULL;

    /* Files that are not records: -EBADMSG, the message naming the file. */
    static const char *not_records[] = {"garbage\n", "", "HELD=maybe\n", "HELD=yes\n", "HELD=yes\nKEY=" LOCKSMITH_DEFAULT_KEY "\n",
                                        "HELD=yes\nKEY=elsewhere\nID=node-1\n", "HELD=yes\nKEY=" LOCKSMITH_DEFAULT_KEY "\nID=\n",
                                        "HELD=\xff\n"};
    for (size_t i = 0; i < sizeof not_records / sizeof not_records[0]; i++) {
        write_file(file, not_records[i]);
        CHECK_RC(locksmith_slot_record_read(root, &key, &id), -EBADMSG);
        CHECK(strstr(locksmith_last_error(), file) != NULL);
        CHECK(key == NULL && id == NULL);
    }
    /* hand-written records in the file's syntax are read */
    write_file(file, "# comment\nHELD=\"yes\"\nKEY='" LOCKSMITH_DEFAULT_KEY "'\nID=node-2\n");
    CHECK_RC(locksmith_slot_record_read(root, &key, &id), 1);
    CHECK_STR(id, "node-2");
    free(key);
    free(id);
    key = id = NULL;
    write_file(file, "HELD=no\n");
    CHECK_RC(locksmith_slot_record_read(root, NULL, NULL), 0);
    /* too large */
    {
        FILE *f = fopen(file, "w");
        fputs("HELD=no\n", f);
        for (int i = 0; i < 2000; i++)
            fputs("# padding padding padding padding padding\n", f);
        fclose(f);
        CHECK_RC(locksmith_slot_record_read(root, NULL, NULL), -EBADMSG);
    }

    /* A symbolic link in place of the file is never followed: reading refuses it (though its
     * target is a valid record), writing replaces the link and leaves the target alone. */
    snprintf(target, sizeof target, "%s/slot-target", scratch);
    write_file(target, "HELD=yes\nKEY=" LOCKSMITH_DEFAULT_KEY "\nID=through-the-link\n");
    unlink(file);
    CHECK(symlink(target, file) == 0);
    CHECK_RC(locksmith_slot_record_read(root, &key, &id), -EBADMSG);
    CHECK(key == NULL && id == NULL);
    CHECK_RC(locksmith_slot_record_write(root, NULL, NULL), 0);
    CHECK(lstat(file, &st) == 0 && S_ISREG(st.st_mode));
    CHECK_RC(locksmith_slot_record_read(root, NULL, NULL), 0);
    CHECK_RC(locksmith_slot_record_read(scratch, NULL, NULL), -ENOENT); /* no record there */
    {
        char buf[256] = "";
        FILE *f = fopen(target, "r");
        size_t n = f ? fread(buf, 1, sizeof buf - 1, f) : 0;
        if (f)
            fclose(f);
        buf[n] = 0;
        CHECK(strstr(buf, "ID=through-the-link") != NULL);
    }
    /* a dangling link: not followed either (no file made at its target) */
    unlink(file);
    snprintf(target, sizeof target, "%s/slot-target-missing", scratch);
    CHECK(symlink(target, file) == 0);
    CHECK_RC(locksmith_slot_record_read(root, NULL, NULL), -EBADMSG);
    CHECK_RC(locksmith_slot_record_write(root, LOCKSMITH_DEFAULT_KEY, "node-3"), 0);
    CHECK(access(target, F_OK) != 0);
    CHECK(lstat(file, &st) == 0 && S_ISREG(st.st_mode));

    /* A directory or a FIFO in place of the file: not a record, and reading does not block. */
    unlink(file);
    CHECK(mkdir(file, 0755) == 0);
    CHECK_RC(locksmith_slot_record_read(root, NULL, NULL), -EBADMSG);
    CHECK(locksmith_slot_record_write(root, NULL, NULL) < 0);
    rmdir(file);
    CHECK(mkfifo(file, 0644) == 0);
    int r = slot_record_read_in_time(root, 5);
    CHECK_RC(r, -EBADMSG);
    if (r == 1000)
        fprintf(stderr, "      locksmith_slot_record_read() blocked on a FIFO at %s\n", file);
    unlink(file);
    free(group_key);
}

/* LOCKSMITH_3: locksmithd's files under /run. The state text as the daemon writes it, read back
 * with the checks (owner and mode, symbolic links, size) and the liveness from the daemon's write
 * lock (an flock or a read lock, which any reader can take, does not count). */
static void test_daemon_files(const char *scratch) {
    char root[2048], dir[3072], file[4096], *text = NULL, *key = NULL;
    locksmith_config *conf = (locksmith_config *)SENTINEL_PTR;
    const char *value = NULL, *origin = NULL;
    int64_t modified = -1;

    snprintf(root, sizeof root, "%s/run-files-root", scratch);
    mkdir(root, 0755);
    snprintf(dir, sizeof dir, "%s/run", root);
    mkdir(dir, 0755);
    snprintf(dir, sizeof dir, "%s/run/locksmith", root);
    mkdir(dir, 0755);
    snprintf(file, sizeof file, "%s/state", dir);
    CHECK_RC(locksmith_daemon_file_read(root, LOCKSMITH_STATE_PATH, &conf, &modified), -ENOENT);
    CHECK(conf == (locksmith_config *)SENTINEL_PTR && modified == -1);

    CHECK_RC(locksmith_group_key("web", &key), 0);
    CHECK_RC(locksmith_daemon_state_text("etcd-lock", "rebooting", 1764000000, key, "node \"1\"", 1764000100, &text), 0);
    CHECK(text && strstr(text, "STATE=rebooting\nSTATE_SINCE=1764000000\nSLOT_HELD=yes\nSLOT_GROUP=\"web\"\n"));
    FILE *f = fopen(file, "w");
    CHECK(f != NULL);
    if (f) {
        fputs(text ? text : "", f);
        fclose(f);
    }
    free(text);
    text = NULL;
    CHECK_RC(locksmith_daemon_file_read(root, LOCKSMITH_STATE_PATH, &conf, &modified), 0); /* nobody holds it */
    CHECK(modified > 1700000000);
    CHECK_RC(locksmith_config_get(conf, "SLOT_ID", &value, &origin), 0);
    CHECK_STR(value, "node \"1\"");
    CHECK_STR(origin, file);
    CHECK_RC(locksmith_config_get(conf, "SLOT_SINCE", &value, NULL), 0);
    CHECK_STR(value, "1764000100");
    conf = locksmith_config_free(conf);
    int fd = open(file, O_RDONLY | O_CLOEXEC);
    struct flock read_lock = {.l_type = F_RDLCK, .l_whence = SEEK_SET};
    CHECK(fd >= 0 && flock(fd, LOCK_EX) == 0 && fcntl(fd, F_OFD_SETLK, &read_lock) == 0);
    CHECK_RC(locksmith_daemon_file_read(root, LOCKSMITH_STATE_PATH, &conf, NULL), 0); /* what any reader could do */
    conf = locksmith_config_free(conf);
    close(fd);
    fd = open(file, O_RDWR | O_CLOEXEC);
    struct flock write_lock = {.l_type = F_WRLCK, .l_whence = SEEK_SET};
    CHECK(fd >= 0 && fcntl(fd, F_OFD_SETLK, &write_lock) == 0);
    CHECK_RC(locksmith_daemon_file_read(root, LOCKSMITH_STATE_PATH, &conf, NULL), 1); /* a running daemon's */
    conf = locksmith_config_free(conf);
    close(fd);

    /* Files others could have written, links and oversized files are refused. */
    chmod(file, 0620);
    CHECK_RC(locksmith_daemon_file_read(root, LOCKSMITH_STATE_PATH, &conf, NULL), -EACCES);
    CHECK(strstr(locksmith_last_error(), "writable by nobody else") != NULL);
    chmod(file, 0644);
    CHECK(chown(file, 65534, 65534) == 0);
    CHECK_RC(locksmith_daemon_file_read(root, LOCKSMITH_STATE_PATH, &conf, NULL), -EACCES);
    unlink(file);
    CHECK(symlink("/etc/hostname", file) == 0);
    CHECK_RC(locksmith_daemon_file_read(root, LOCKSMITH_STATE_PATH, &conf, NULL), -EACCES);
    unlink(file);
    f = fopen(file, "w");
    for (int i = 0; f && i < 5000; i++) fputc('#', f);
    if (f) fclose(f);
    CHECK_RC(locksmith_daemon_file_read(root, LOCKSMITH_STATE_PATH, &conf, NULL), -ERANGE);
    unlink(file);
    CHECK(conf == NULL);

    /* The state text checks what it is given. */
    CHECK_RC(locksmith_daemon_state_text("etcd-lock", "running", 1, NULL, NULL, -1, &text), 0);
    CHECK(text && strstr(text, "SLOT_HELD=no\n") != NULL && strstr(text, "SLOT_GROUP") == NULL);
    free(text);
    text = SENTINEL_PTR;
    CHECK_RC(locksmith_daemon_state_text("etcd-lock", "running\nSLOT_HELD=yes", 1, NULL, NULL, -1, &text), -EINVAL);
    CHECK_RC(locksmith_daemon_state_text("etcd-lock", "running", 1, "not-a-key", "id", -1, &text), -EINVAL);
    CHECK_RC(locksmith_daemon_state_text("etcd-lock", "running", 1, key, NULL, -1, &text), -EINVAL);
    CHECK_RC(locksmith_daemon_state_text("etcd-lock", "running", 1, key, "", -1, &text), -EINVAL);
    CHECK(text == SENTINEL_PTR);
    free(key);
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
    /* After test_client_proxy, which needs the default group's key to be missing. */
    test_text_helpers(root);
    test_load_settings(argv[3], root);
    test_client_warnings_and_key(root);
    test_client_trace(argv[3]);
    test_client_cancel(argv[3]);
    test_client_last_seen(argv[3]);
    test_holder_records(argv[3]);
    test_queue(argv[3]);
    test_apply(argv[3]);
    test_fleetlock_option();
    test_client_groups(argv[3]);
    test_window_zones();
    test_daemon_settings(argv[3], root);
    test_slot_record(root);
    test_daemon_files(root);
    free(root);
    printf("C API: %d passed, %d failed\n", passed, failed);
    return failed ? 1 : 0;
}
