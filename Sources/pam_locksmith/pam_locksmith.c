/* pam_locksmith: a PAM session module that tells people who log in when this machine is about to
 * reboot. At session open it reads what the running locksmithd says in its state file,
 * /run/locksmith/state (STATE reboot-planned or rebooting and since when, and whether the daemon
 * holds its group's reboot lock), else in coordinator.conf (a daemon that keeps no state file:
 * the state only, dated by the file's mtime), and says what it found with pam_info. By default
 * (lock=auto) that is all: a login never waits for etcd. With lock=always it asks etcd instead
 * whether this machine holds the lock. With `deny`, sessions of users other than root are refused
 * while the machine is rebooting.
 *
 * Failure policy: an error inside the module (a bad option, an unreadable file, etcd down or
 * slow, the library failing) is logged with pam_syslog and the session goes on: the module only
 * ever refuses a session for `deny` while a running locksmithd says the machine is rebooting.
 * With lock=always, all the etcd work of one session open ends at one deadline (timeout=, 1s by
 * default), whatever etcd answers; the lock is only read, never created.
 *
 * Nothing comes from the process environment: under su or sudo (or a stack they include) the
 * module runs as root with its caller's environment. The etcd settings follow the library's one
 * rule (locksmith_client_load_settings): each is the module's option, else the daemon's
 * LOCKSMITHD_<OPTION> from the root-owned update.conf files under root= (else "/"); the client and
 * the configuration are made with LOCKSMITH_NO_ENVIRONMENT, so no variable (LOCKSMITHCTL_*,
 * LOCKSMITHD_*, proxies) counts, and the module calls neither getenv nor setenv.
 *
 *   session optional pam_locksmith.so [deny] [debug] [nolock|lock=auto|always|never] [root=DIR]
 *       [endpoint=URL[,URL]] [group=G] [api=v2|v3|auto] [cafile=F] [certfile=F] [keyfile=F]
 *       [username=U] [password_file=F] [proxy=URL] [timeout=DURATION]
 *
 * See docs/pam.md. Built on liblocksmith (pkg-config locksmith). Only the pam_sm_* functions are
 * exported: everything else here is static. */
#define _GNU_SOURCE
#include <errno.h>
#include <locksmith.h>
#include <pwd.h>
#include <security/pam_ext.h>
#include <security/pam_modules.h>
#include <security/pam_modutil.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

/* The whole etcd work of a session open, in nanoseconds (1s). */
#define DEFAULT_TIMEOUT_NS INT64_C(1000000000)

enum lock_mode { LOCK_AUTO, LOCK_ALWAYS, LOCK_NEVER };

/* The module's etcd options and the client options they set. Where each setting comes from when
 * no option gives it is the library's rule, not the module's. There is no password option: files
 * in /etc/pam.d are world-readable (the daemon's own setting still applies). */
static const struct {
    const char *option;
    const char *client;
} etcd_options[] = {
    {"endpoint", "endpoint"},
    {"group", "group"},
    {"api", "etcd-api"},
    {"cafile", "etcd-cafile"},
    {"certfile", "etcd-certfile"},
    {"keyfile", "etcd-keyfile"},
    {"username", "etcd-username"},
    {"password_file", "etcd-password-file"},
    {"proxy", "proxy"},
};
#define N_ETCD_OPTIONS (sizeof etcd_options / sizeof etcd_options[0])

struct options {
    int deny, debug;
    enum lock_mode lock;
    const char *root;     /* root=, else "/" (never $LOCKSMITH_ROOT) */
    int64_t timeout_ns;   /* the budget of all the etcd work of one session open */
    const char *etcd[N_ETCD_OPTIONS];
};

enum state { STATE_NONE, STATE_OTHER, STATE_PLANNED, STATE_REBOOTING };

/* What the running locksmithd says about this machine: its state file, else (a daemon that keeps
 * none, such as the original) coordinator.conf. */
struct local {
    enum state state;
    time_t since;          /* when the daemon entered the state */
    int slot;              /* 1: the daemon holds a slot, 0: it does not, -1: not known */
    char group[256];       /* with slot 1: the slot's group ("" the default group) */
    time_t slot_since;     /* with slot 1: when it was taken; 0 if not known */
    int uncertain;         /* whether a running daemon wrote it could not be told (fcntl failed) */
};

/* Option values point into argv, which PAM keeps for the life of the handle. Bad options are
 * logged and skipped. */
static void parse_options(pam_handle_t *pamh, int argc, const char **argv, struct options *o) {
    memset(o, 0, sizeof *o);
    o->lock = LOCK_AUTO;
    o->root = "/";
    o->timeout_ns = DEFAULT_TIMEOUT_NS;
    for (int i = 0; i < argc; i++) {
        const char *arg = argv[i], *eq = strchr(arg, '=');
        size_t name_len = eq ? (size_t)(eq - arg) : strlen(arg);
        const char *value = eq ? eq + 1 : NULL;
        int known = 0;
#define IS(name) (name_len == strlen(name) && strncmp(arg, name, name_len) == 0)
        if (!value && IS("deny")) {
            o->deny = known = 1;
        } else if (!value && IS("debug")) {
            o->debug = known = 1;
        } else if (!value && IS("nolock")) {
            o->lock = LOCK_NEVER, known = 1;
        } else if (value && IS("lock")) {
            if (strcmp(value, "auto") == 0) o->lock = LOCK_AUTO, known = 1;
            else if (strcmp(value, "always") == 0) o->lock = LOCK_ALWAYS, known = 1;
            else if (strcmp(value, "never") == 0) o->lock = LOCK_NEVER, known = 1;
        } else if (value && IS("root")) {
            if (value[0] == '/') o->root = value, known = 1;
        } else if (value && IS("timeout")) {
            int64_t ns;
            if (locksmith_duration_parse(value, &ns) >= 0 && ns > 0) o->timeout_ns = ns, known = 1;
        } else if (value) {
            for (size_t s = 0; s < N_ETCD_OPTIONS; s++)
                if (IS(etcd_options[s].option)) o->etcd[s] = value, known = 1;
        }
#undef IS
        if (!known) pam_syslog(pamh, LOG_ERR, "ignoring bad option \"%s\" (see docs/pam.md)", arg);
    }
}

/* A whole number of Unix seconds from a KEY=value, or 0. */
static time_t config_time(const locksmith_config *conf, const char *key) {
    const char *value;
    if (locksmith_config_get(conf, key, &value, NULL) < 0) return 0;
    char *end;
    errno = 0;
    long long t = strtoll(value, &end, 10);
    return errno || end == value || *end || t <= 0 ? 0 : (time_t)t;
}

/* Reads one of the daemon's files under the root with the library's checks (root's, writable by
 * nobody else, small, and whether a running daemon holds its write lock). Returns the file's values,
 * or NULL: no file (*missing set), a file left by a daemon that stopped, or one that cannot be
 * used (logged). */
static locksmith_config *read_daemon_file(pam_handle_t *pamh, const struct options *o, const char *path, int64_t *mtime,
                                          int *missing, int *uncertain) {
    locksmith_config *conf = NULL;
    int r = locksmith_daemon_file_read(o->root, path, &conf, mtime);
    *missing = r == -ENOENT;
    if (r < 0) {
        if (r != -ENOENT) pam_syslog(pamh, LOG_ERR, "%s", locksmith_last_error());
        return NULL;
    }
    if (r == 0) {
        if (o->debug) pam_syslog(pamh, LOG_DEBUG, "%s is not locked: locksmithd is not running; ignoring its state", path);
        locksmith_config_free(conf);
        return NULL;
    }
    /* Told to users, never acted on: a file that may be left over does not refuse sessions. */
    if (r == 2) {
        pam_syslog(pamh, LOG_WARNING, "cannot tell whether locksmithd holds %s (fcntl failed): showing it, never refusing a session for it",
                   path);
        *uncertain = 1;
    }
    return conf;
}

/* What the running daemon says: its state file, else coordinator.conf. Nothing here asks etcd. */
static void read_local(pam_handle_t *pamh, const struct options *o, struct local *l) {
    memset(l, 0, sizeof *l);
    l->state = STATE_NONE;
    l->slot = -1;
    int64_t mtime = 0;
    int missing = 0, from_state_file = 1;
    locksmith_config *conf = read_daemon_file(pamh, o, LOCKSMITH_STATE_PATH, &mtime, &missing, &l->uncertain);
    if (!conf && missing) {
        from_state_file = 0;
        conf = read_daemon_file(pamh, o, LOCKSMITH_COORDINATOR_PATH, &mtime, &missing, &l->uncertain);
    }
    if (!conf) return;
    const char *state = NULL, *held = NULL, *group = NULL;
    if (locksmith_config_get(conf, "STATE", &state, NULL) >= 0) {
        if (strcmp(state, "reboot-planned") == 0) l->state = STATE_PLANNED;
        else if (strcmp(state, "rebooting") == 0) l->state = STATE_REBOOTING;
        else l->state = STATE_OTHER;
    }
    /* coordinator.conf is dated by its mtime (the daemon replaces it at each change). */
    l->since = from_state_file ? config_time(conf, "STATE_SINCE") : (time_t)mtime;
    if (!l->since) l->since = (time_t)mtime;
    if (from_state_file && locksmith_config_get(conf, "SLOT_HELD", &held, NULL) >= 0) {
        if (strcmp(held, "no") == 0) {
            l->slot = 0;
        } else if (strcmp(held, "yes") == 0 && locksmith_config_get(conf, "SLOT_GROUP", &group, NULL) >= 0 &&
                   strlen(group) < sizeof l->group) {
            l->slot = 1;
            memcpy(l->group, group, strlen(group) + 1);
            l->slot_since = config_time(conf, "SLOT_SINCE");
        }
    }
    if (o->debug)
        pam_syslog(pamh, LOG_DEBUG, "%s: STATE=%s SLOT_HELD=%s", from_state_file ? LOCKSMITH_STATE_PATH : LOCKSMITH_COORDINATOR_PATH,
                   state ? state : "(none)", held ? held : "(not known)");
    locksmith_config_free(conf);
}

/* "Thu 2024-05-02 10:31:05 UTC, 5 minutes ago" in the local time zone. */
static void describe_time(time_t t, char *out, size_t size) {
    struct tm tm;
    char when[64] = "";
    if (!localtime_r(&t, &tm) || strftime(when, sizeof when, "%a %Y-%m-%d %H:%M:%S %Z", &tm) == 0)
        snprintf(when, sizeof when, "%lld", (long long)t);
    long long ago = (long long)(time(NULL) - t);
    if (ago < 0) snprintf(out, size, "%s", when);
    else if (ago < 120) snprintf(out, size, "%s, %lld second%s ago", when, ago, ago == 1 ? "" : "s");
    else if (ago < 7200) snprintf(out, size, "%s, %lld minutes ago", when, ago / 60);
    else if (ago < 2 * 86400) snprintf(out, size, "%s, %lld hours ago", when, ago / 3600);
    else snprintf(out, size, "%s, %lld days ago", when, ago / 86400);
}

/* CLOCK_MONOTONIC in microseconds, the clock of locksmith_client_set_deadline(). */
static uint64_t now_usec(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

static long long ms_since(uint64_t start_usec) {
    return (long long)((now_usec() - start_usec) / 1000u);
}

/* Gives the client its settings: the module's options, then the library's rule for the rest (the
 * daemon's LOCKSMITHD_<OPTION> from the update.conf files in conf; nothing from the environment:
 * the client was made with LOCKSMITH_NO_ENVIRONMENT and conf loaded without it). The per-request
 * timeout is the module's budget, so the daemon's LOCKSMITHD_TIMEOUT never makes a login wait.
 * Returns 0, or -1 with the bad setting logged by name and origin and the library's reason (which
 * never shows a password); the module never logs a value itself. */
static int configure_client(pam_handle_t *pamh, const struct options *o, locksmith_client *client,
                            const locksmith_config *conf) {
    for (size_t s = 0; s < N_ETCD_OPTIONS; s++) {
        /* password_file= decides the password alone: the library then takes neither password
         * setting from the configuration (it resolves the two as one). */
        if (o->etcd[s] && locksmith_client_set(client, etcd_options[s].client, o->etcd[s]) < 0) {
            pam_syslog(pamh, LOG_ERR, "bad etcd setting %s (from the module's options): %s; not asking etcd",
                       etcd_options[s].option, locksmith_client_last_error(client));
            return -1;
        }
    }
    char *timeout = NULL;
    int64_t request_ns = o->timeout_ns < INT64_C(3600000000000) ? o->timeout_ns : INT64_C(3600000000000);
    if (request_ns < INT64_C(1000000)) request_ns = INT64_C(1000000); /* the client's range: 1ms to 1h */
    if (locksmith_duration_format(request_ns, &timeout) < 0 || locksmith_client_set(client, "timeout", timeout) < 0) {
        pam_syslog(pamh, LOG_ERR, "cannot set the etcd request timeout: %s; not asking etcd", locksmith_client_last_error(client));
        free(timeout);
        return -1;
    }
    free(timeout);
    if (locksmith_client_load_settings(client, "LOCKSMITHCTL", conf) < 0) {
        /* The only place left is conf (the client reads no environment), so the option names
         * the variable, and conf the file it is in. */
        const char *option = locksmith_client_last_error_option(client), *value, *origin = NULL;
        char *variable = NULL; /* the daemon's variable, by the library's rule (LOCKSMITHD_ETCD_API) */
        if (!option || locksmith_client_option_variable("LOCKSMITHD", option, &variable) < 0) variable = NULL;
        if (!variable || !conf || locksmith_config_get(conf, variable, &value, &origin) < 0) origin = "the node's configuration";
        pam_syslog(pamh, LOG_ERR, "bad etcd setting %s (from %s): %s; not asking etcd", variable ? variable : "a setting", origin,
                   locksmith_client_last_error(client));
        free(variable);
        return -1;
    }
    for (int i = 0, n = locksmith_client_warning_count(client); i < n; i++)
        pam_syslog(pamh, LOG_WARNING, "%s", locksmith_client_warning(client, i));
    if (o->debug) {
        /* As the library shows them: passwords hidden, credentials in URLs masked. */
        const char *name, *value, *origin;
        for (int i = 0; (name = locksmith_client_option_name(i)); i++)
            if (locksmith_client_setting(client, i, &value, &origin) >= 0 && (*origin || strcmp(name, "etcd-password") != 0))
                pam_syslog(pamh, LOG_DEBUG, "etcd setting %s = %s (from %s)", name, value, *origin ? origin : "the module's options");
    }
    return 0;
}

/* Asks etcd whether this machine holds its group's reboot lock, by deadline (CLOCK_MONOTONIC
 * microseconds), which ends every request and retry. Returns 1 held, 0 not held (also when the
 * group has no semaphore: the key is only read, never created), or -1 when the check was skipped
 * or failed (logged). *ret_group gets the group (malloc()ed) when the answer is 1. */
static int check_lock(pam_handle_t *pamh, const struct options *o, uint64_t deadline,
                      char **ret_group) {
    locksmith_config *conf = NULL;
    locksmith_client *client = NULL;
    locksmith_semaphore *sem = NULL;
    char *id = NULL, *group = NULL;
    int result = -1, r;

    /* The update.conf files under the root, without the environment's LOCKSMITHD_* or
     * REBOOT_STRATEGY: those are the caller's under su or sudo. */
    if (locksmith_config_load_at(o->root, LOCKSMITH_NO_ENVIRONMENT, &conf) < 0)
        pam_syslog(pamh, LOG_ERR, "cannot read the node's configuration: %s", locksmith_last_error());
    if ((r = locksmith_machine_id_at(o->root, &id)) < 0) {
        pam_syslog(pamh, LOG_ERR, "cannot read the machine id: %s", locksmith_last_error());
        goto done;
    }
    /* No proxy variables, no LOCKSMITH_ROOT: the client reads nothing from the environment. */
    if ((r = locksmith_client_new_with_flags(LOCKSMITH_NO_ENVIRONMENT, &client)) < 0) {
        pam_syslog(pamh, LOG_ERR, "cannot make an etcd client: %s", locksmith_last_error());
        goto done;
    }
    locksmith_client_set_deadline(client, deadline);
    if (configure_client(pamh, o, client, conf) < 0) goto done;
    /* The group, for the messages: as the client has it (borrowed until its next call: copied);
     * unset is the default group. */
    const char *setting = NULL;
    for (int i = 0; locksmith_client_option_name(i); i++) {
        if (strcmp(locksmith_client_option_name(i), "group") != 0) continue;
        if (locksmith_client_setting(client, i, &setting, NULL) < 0) setting = NULL;
        break;
    }
    if (!(group = strdup(setting ? setting : ""))) goto done;
    uint64_t start = now_usec();
    r = locksmith_client_read(client, &sem);
    if (r == -ENOENT) {
        /* The group has no semaphore yet, so nobody holds its lock. */
        if (o->debug)
            pam_syslog(pamh, LOG_DEBUG, "etcd %s (%s, %lld ms): no semaphore at the key: machine %s does not hold the reboot lock of group \"%s\"",
                       locksmith_client_endpoint(client) ? locksmith_client_endpoint(client) : "?",
                       locksmith_client_api(client) ? locksmith_client_api(client) : "?", ms_since(start), id, group);
        result = 0;
        goto done;
    }
    if (r < 0) {
        pam_syslog(pamh, LOG_WARNING, "cannot read the reboot lock of group \"%s\" from etcd (%lld ms): %s", group,
                   ms_since(start), locksmith_client_last_error(client));
        goto done;
    }
    r = locksmith_semaphore_is_holder(sem, id);
    if (o->debug)
        pam_syslog(pamh, LOG_DEBUG, "etcd %s (%s, %lld ms): machine %s %s the reboot lock of group \"%s\"",
                   locksmith_client_endpoint(client), locksmith_client_api(client), ms_since(start), id,
                   r > 0 ? "holds" : "does not hold", group);
    if (r < 0) goto done;
    if (r > 0) *ret_group = group, group = NULL;
    result = r > 0;
done:
    locksmith_semaphore_free(sem);
    locksmith_client_free(client);
    locksmith_config_free(conf);
    free(group);
    free(id);
    return result;
}

/* 1 if the session's user is root (uid 0), 0 if not, -1 if there is no user. */
static int user_is_root(pam_handle_t *pamh, const char **ret_user) {
    const void *item = NULL;
    *ret_user = "(unknown)";
    if (pam_get_item(pamh, PAM_USER, &item) != PAM_SUCCESS || !item) return -1;
    *ret_user = item;
    /* An unknown user is not root: root is always in /etc/passwd. */
    struct passwd *pw = pam_modutil_getpwnam(pamh, item);
    return pw && pw->pw_uid == 0;
}

static void quote_group(const char *group, char *out, size_t size) {
    if (*group) snprintf(out, size, "group \"%s\"", group);
    else snprintf(out, size, "the default group");
}

PAM_EXTERN int pam_sm_open_session(pam_handle_t *pamh, int flags, int argc, const char **argv) {
    /* timeout= bounds the whole session open: one deadline, taken now, for all the etcd work. */
    uint64_t start = now_usec();
    struct options o;
    struct local l;
    char since[128] = "", slot_since[128] = "";
    parse_options(pamh, argc, argv, &o);
    uint64_t deadline = start + (uint64_t)(o.timeout_ns / 1000);
    read_local(pamh, &o, &l);
    if (l.state == STATE_PLANNED || l.state == STATE_REBOOTING) describe_time(l.since, since, sizeof since);

    if (l.state == STATE_REBOOTING && o.deny) {
        const char *user;
        int root = user_is_root(pamh, &user);
        if (root < 0) {
            pam_syslog(pamh, LOG_ERR, "no user name: not refusing the session");
        } else if (!root && l.uncertain) {
            pam_syslog(pamh, LOG_WARNING, "not refusing the session of %s: whether the machine is rebooting is not known", user);
        } else if (!root) {
            pam_syslog(pamh, LOG_NOTICE, "refusing the session of %s: the machine is rebooting (since %s)", user, since);
            if (!(flags & PAM_SILENT))
                pam_error(pamh, "This machine is rebooting (since %s). Only root may log in until it is back.", since);
            return PAM_PERM_DENIED;
        }
    }

    /* Whether this machine holds its group's reboot lock: by default what the daemon's state file
     * says (the slot it took), never etcd; etcd only with lock=always. */
    char *group = NULL;
    int held = -1;
    if (o.lock == LOCK_ALWAYS) {
        held = check_lock(pamh, &o, deadline, &group);
    } else if (o.lock == LOCK_AUTO) {
        held = l.slot;
        if (held > 0 && !(group = strdup(l.group))) held = -1;
        if (held > 0 && l.slot_since) describe_time(l.slot_since, slot_since, sizeof slot_since);
        if (held < 0 && o.debug)
            pam_syslog(pamh, LOG_DEBUG, "no state file from a running locksmithd: not telling about the reboot lock (lock=always asks etcd)");
    }
    if (!(flags & PAM_SILENT)) {
        if (l.state == STATE_REBOOTING)
            pam_info(pamh, "This machine is rebooting (since %s).", since);
        else if (l.state == STATE_PLANNED)
            pam_info(pamh, "A reboot of this machine is planned (since %s), to finish an update.", since);
        if (held > 0) {
            char which[320], when[160] = "";
            quote_group(group, which, sizeof which);
            if (slot_since[0]) snprintf(when, sizeof when, " (since %s)", slot_since);
            if (l.state == STATE_PLANNED)
                pam_info(pamh, "This machine holds the reboot lock of %s%s: it may reboot at any moment.", which, when);
            else
                pam_info(pamh, "This machine holds the reboot lock of %s%s.", which, when);
        }
    }
    free(group);
    return PAM_SUCCESS;
}

PAM_EXTERN int pam_sm_close_session(pam_handle_t *pamh, int flags, int argc, const char **argv) {
    (void)pamh, (void)flags, (void)argc, (void)argv;
    return PAM_SUCCESS;
}

/* The module has nothing to say about authentication, accounts or passwords. These exist so that
 * a line put in the wrong stack by mistake is ignored instead of failing to load. */
PAM_EXTERN int pam_sm_authenticate(pam_handle_t *pamh, int flags, int argc, const char **argv) {
    (void)pamh, (void)flags, (void)argc, (void)argv;
    return PAM_IGNORE;
}

PAM_EXTERN int pam_sm_setcred(pam_handle_t *pamh, int flags, int argc, const char **argv) {
    (void)pamh, (void)flags, (void)argc, (void)argv;
    return PAM_IGNORE;
}

PAM_EXTERN int pam_sm_acct_mgmt(pam_handle_t *pamh, int flags, int argc, const char **argv) {
    (void)pamh, (void)flags, (void)argc, (void)argv;
    return PAM_IGNORE;
}

PAM_EXTERN int pam_sm_chauthtok(pam_handle_t *pamh, int flags, int argc, const char **argv) {
    (void)pamh, (void)flags, (void)argc, (void)argv;
    return PAM_IGNORE;
}
