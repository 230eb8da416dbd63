/* locksmith-run: a cluster-wide flock(1). Takes a slot of a group's reboot semaphore in etcd
 * (waiting for one with etcd's watch, up to --timeout), runs a command, and gives the slot back
 * when the command ends, whatever its exit status, also when locksmith-run is interrupted
 * (SIGINT and SIGTERM are passed on to the command first).
 *
 *   locksmith-run [options] -- COMMAND [ARGS...]
 *
 * Its etcd settings follow the library's one rule, as locksmithctl's do: each comes from its flag,
 * else LOCKSMITHCTL_<OPTION>, else the daemon's LOCKSMITHD_<OPTION> from the node's configuration
 * (locksmith_client_load_settings), so on a node a job uses the etcd its daemon uses.
 *
 * It waits for a slot in the group's fair queue (locksmith_client_acquire): turns come in the order
 * runs started, and a waiting run sends nothing but one watch (and renews its queue entry 20 s
 * before queue-ttl runs out). A signal cancels the wait through locksmith_client_cancel()
 * (async-signal-safe), so SIGINT, SIGTERM or SIGHUP end it at once.
 *
 * The holder id is "<machine-id>/locksmith-run" unless --id says otherwise: never the plain
 * machine id, which is locksmithd's. The daemon gives back a slot held under the machine id when
 * it starts and takes one under it as its own reboot lock, so sharing it would let a daemon restart
 * free a running job's slot, or the daemon reboot under a running job. Two default runs on one
 * machine share the id and so wait for each other (see take_slot).
 *
 * A password given with --etcd-password is overwritten with '*' in argv once read (what
 * /proc/PID/cmdline shows), and the command starts with only descriptors 0, 1 and 2 open: not the
 * etcd connections, libcurl's internal descriptors or anything else locksmith-run inherited.
 *
 * Exit status: the command's (128+N if a signal N ended it; 127 if it cannot be found, 126 if it
 * cannot be run); 75 (EX_TEMPFAIL) if no slot could be had within --timeout; 1 for other errors
 * before the command ran; 2 for a bad command line; 128+N if signal N came while waiting.
 * Built on liblocksmith (pkg-config locksmith). */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <locksmith.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define EXIT_NO_SLOT 75
#define DEFAULT_ID_SUFFIX "/locksmith-run"

/* How long one wait for a slot may last without --timeout. After each, the slot is asked for
 * again with a fresh read, so nothing rests on a single watch for longer than this. */
#define WAIT_SLICE_MS 60000

static volatile sig_atomic_t stop_signal;
/* The client, for the signal handler: cancelling a wait is all it does with it. */
static locksmith_client *volatile signal_client;

static void on_signal(int sig) {
    stop_signal = sig;
    if (signal_client) locksmith_client_cancel(signal_client, 1); /* async-signal-safe: sets a flag */
}

static void usage(FILE *f) {
    fputs("Usage: locksmith-run [options] -- COMMAND [ARGS...]\n"
          "\n"
          "Takes a slot of a group's reboot semaphore in etcd, runs COMMAND, and gives the slot back\n"
          "when COMMAND ends. A cluster-wide flock(1): at most the semaphore's max of such commands\n"
          "run at once across all machines.\n"
          "\n"
          "Options (etcd settings as locksmithctl's: each from its flag, else LOCKSMITHCTL_<OPTION>,\n"
          "else the daemon's LOCKSMITHD_<OPTION> from update.conf):\n"
          "  --endpoint URL           etcd endpoint (repeat, or comma-separated)\n"
          "  --group GROUP            the group whose semaphore to use\n"
          "  --etcd-cafile FILE, --etcd-certfile FILE, --etcd-keyfile FILE\n"
          "  --etcd-username USER, --etcd-password PASSWORD, --etcd-password-file FILE\n"
          "                           (prefer the file or LOCKSMITHCTL_ETCD_PASSWORD: a password\n"
          "                           argument is hidden once read, but visible until then)\n"
          "  --etcd-api v2|v3|auto    etcd API (default auto)\n"
          "  --request-timeout DURATION  timeout of each request to etcd (default 5s)\n"
          "  --proxy URL              http://, https:// or socks5:// proxy for etcd (\"\" for none)\n"
          "  --queue-ttl DURATION     how long a dead waiter's queue entry holds up others (default 60s)\n"
          "  --fleetlock-url URL      take the slot through this FleetLock server instead of etcd\n"
          "                           (its locks are recursive: jobs that may run at once need\n"
          "                           distinct --id values)\n"
          "  --id ID                  the holder id (default: MACHINE-ID/locksmith-run, which is\n"
          "                           not locksmithd's id: the daemon never takes it for its own)\n"
          "  --timeout DURATION       how long to wait for a slot (default: forever)\n"
          "  --help\n"
          "\n"
          "Exit status: COMMAND's (128+N if signal N ended it, 127 if not found); 75 if no slot\n"
          "was free within --timeout; 1 for other errors; 2 for a bad command line.\n"
          "\n"
          "SIGINT, SIGTERM and SIGHUP are passed on to COMMAND; the slot is given back when it ends.\n"
          "A slot already held under the same id (another locksmith-run with that id) is waited\n"
          "for, never shared. locksmithd holds its reboot lock under the plain machine id and\n"
          "gives that slot back whenever it starts, so do not give that as --id (a warning says\n"
          "so). Errors reaching etcd are retried for up to --timeout (one minute without it).\n"
          "COMMAND starts with only standard input, output and error open.\n"
          "\n"
          "Example:\n"
          "  locksmith-run --group=db-maintenance --timeout=10m -- /usr/local/bin/compact-db\n",
          f);
}

static long long now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1000LL + ts.tv_nsec / 1000000;
}

static int fail(locksmith_client *c, const char *what) {
    fprintf(stderr, "locksmith-run: %s: %s\n", what, c ? locksmith_client_last_error(c) : locksmith_last_error());
    return 1;
}

/* Errors that pass: etcd restarting, a leader election, a lost compare-and-swap race. */
static int transient(int r) {
    return r == -ECONNREFUSED || r == -ETIMEDOUT || r == -EAGAIN || r == -EPROTO || r == -EIO;
}

/* The default holder id, "<machine-id>/locksmith-run" (malloc()ed), or NULL with a message. */
static char *default_id(void) {
    char *machine = NULL, *id = NULL;
    int r = locksmith_machine_id(&machine);
    if (r < 0) {
        fprintf(stderr, "locksmith-run: cannot read the machine id (give --id): %s\n", locksmith_last_error());
        return NULL;
    }
    size_t n = strlen(machine);
    if ((id = malloc(n + sizeof DEFAULT_ID_SUFFIX))) {
        memcpy(id, machine, n);
        memcpy(id + n, DEFAULT_ID_SUFFIX, sizeof DEFAULT_ID_SUFFIX);
    } else {
        perror("locksmith-run");
    }
    locksmith_free(machine);
    return id;
}

/* In the child before exec: closes every descriptor from 3 up, so the command gets none of the
 * etcd connections, libcurl's internal ones, or whatever locksmith-run inherited without
 * close-on-exec. Only async-signal-safe calls: the library may have threads. */
static void close_inherited_descriptors(void) {
#if defined(SYS_close_range)
    if (syscall(SYS_close_range, 3u, ~0u, 0u) == 0) return; /* Linux 5.9+ */
#endif
    /* Older kernels: list /proc/self/fd with getdents64 (opendir would allocate). Closing while
     * listing may skip entries, so list again until a pass closes nothing. */
    int dir = open("/proc/self/fd", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dir >= 0) {
        for (int closed = 1; closed;) {
            char buffer[4096];
            long n;
            closed = 0;
            lseek(dir, 0, SEEK_SET);
            while ((n = syscall(SYS_getdents64, dir, buffer, sizeof buffer)) > 0) {
                for (long at = 0; at < n;) {
                    /* struct linux_dirent64: d_ino (8), d_off (8), d_reclen (2), d_type (1), d_name */
                    unsigned short length;
                    memcpy(&length, buffer + at + 16, sizeof length);
                    const char *name = buffer + at + 19;
                    int fd = 0;
                    for (; *name >= '0' && *name <= '9'; name++) fd = fd * 10 + (*name - '0');
                    if (*name == '\0' && name != buffer + at + 19 && fd >= 3 && fd != dir && close(fd) == 0) closed = 1;
                    at += length;
                }
            }
        }
        close(dir);
        return;
    }
    /* No /proc: every descriptor the limit allows. */
    struct rlimit limit;
    int last = getrlimit(RLIMIT_NOFILE, &limit) == 0 && limit.rlim_cur != RLIM_INFINITY && limit.rlim_cur < 65536
                   ? (int)limit.rlim_cur : 65536;
    for (int fd = 3; fd < last; fd++) close(fd);
}

/* The place in the queue, said on stderr when it changes while waiting: "waiting for a slot:
 * 3rd in line". Nothing is said by a run that finds a free slot at once. */
static int said_place = 0, last_place = -1;
static int say_place(int ahead, void *userdata) {
    (void)userdata;
    if (ahead < 0 || ahead == last_place || (ahead == 0 && !said_place)) return 0;
    last_place = ahead;
    int n = ahead + 1;
    const char *suffix = (n % 100 >= 11 && n % 100 <= 13) ? "th" : n % 10 == 1 ? "st" : n % 10 == 2 ? "nd" : n % 10 == 3 ? "rd" : "th";
    if (n == 1) fprintf(stderr, "locksmith-run: waiting for a slot: first in line\n");
    else fprintf(stderr, "locksmith-run: waiting for a slot: %d%s in line\n", n, suffix);
    said_place = 1;
    return 0;
}

/* Takes a slot for id in turn, waiting in the group's queue (locksmith_client_acquire: one watch on
 * the waiter ahead, so a release wakes one waiter) until wait_ns passes (< 0: no limit). Returns
 * 0 with the slot held, or the exit status to end with.
 *
 * -EEXIST (id already holds a slot) is not taken as success: the holder is someone else with
 * the same id (another locksmith-run on this machine, or a run given the same --id elsewhere),
 * and running now would exceed max and give back a slot that is not ours. So it waits for a
 * change of the semaphore and queues again. The exception: after a request whose outcome is
 * unknown (it timed out or the connection broke), the slot may be ours from that request, and
 * -EEXIST then means it is. Transient errors are retried until the timeout, or for a minute when
 * there is none. */
/* "No free slot within the timeout": says which timeout, and why when the library says more. */
static int no_slot(locksmith_client *c, int64_t wait_ns) {
    char *timeout = NULL;
    const char *why = locksmith_client_last_error(c);
    if (locksmith_duration_format(wait_ns, &timeout) < 0) timeout = NULL;
    fprintf(stderr, "locksmith-run: no free slot within the timeout of %s%s%s\n", timeout ? timeout : "--timeout",
            why && *why ? ": " : "", why && *why ? why : "");
    locksmith_free(timeout);
    return EXIT_NO_SLOT;
}

static int take_slot(locksmith_client *c, const char *id, int64_t wait_ns) {
    long long deadline = wait_ns >= 0 ? now_ms() + wait_ns / 1000000 : -1;
    long long failing_since = -1;
    int unknown_outcome = 0, said_exists = 0;
    for (;;) {
        long long now = now_ms();
        long long left = deadline < 0 ? -1 : deadline > now ? deadline - now : 0;
        int r = locksmith_client_acquire(c, id, left, say_place, NULL);
        if (r == 0 || (r == -EEXIST && unknown_outcome)) return 0;
        if (stop_signal) return 128 + stop_signal;
        if (r == 1) {
            return no_slot(c, wait_ns);
        }
        now = now_ms();
        if (transient(r)) {
            if (r != -EAGAIN) unknown_outcome = 1; /* a lock request may have reached etcd */
            if (failing_since < 0) failing_since = now;
            long long limit = deadline >= 0 ? deadline : failing_since + 60000;
            if (now >= limit) return fail(c, "cannot take a slot");
            fprintf(stderr, "locksmith-run: cannot take a slot, retrying: %s\n", locksmith_client_last_error(c));
            struct timespec pause = {1, 0};
            nanosleep(&pause, NULL);
            if (stop_signal) return 128 + stop_signal;
            continue;
        }
        failing_since = -1;
        if (r != -EEXIST) return fail(c, "cannot take a slot");
        if (!said_exists) {
            fprintf(stderr, "locksmith-run: %s already holds a slot (another run with the same id); waiting for it to be given back\n", id);
            said_exists = 1;
        }
        left = deadline < 0 ? WAIT_SLICE_MS : deadline - now;
        if (left <= 0) {
            return no_slot(c, wait_ns);
        }
        /* One watch: a signal cancels it (-ECANCELED) within a second. */
        r = locksmith_client_wait(c, left);
        if (stop_signal) return 128 + stop_signal;
        if (r < 0 && !transient(r)) return fail(c, "cannot wait for a slot");
    }
}

/* The flags of the etcd settings are the library's client options (locksmith_client_option_name),
 * so they are locksmithctl's; the client's "timeout" is --request-timeout here, since --timeout
 * is how long to wait for a slot. */
#define MAX_CLIENT_OPTIONS 32
enum { OPT_ID = 'i', OPT_TIMEOUT = 't', OPT_HELP = 'h', OPT_CLIENT = 256 };

static const char *flag_name(const char *option) {
    return strcmp(option, "timeout") == 0 ? "request-timeout" : option;
}

int main(int argc, char **argv) {
    struct option options[MAX_CLIENT_OPTIONS + 4] = {
        {"id", required_argument, 0, OPT_ID}, {"timeout", required_argument, 0, OPT_TIMEOUT},
        {"help", no_argument, 0, OPT_HELP},
    };
    const char *names[MAX_CLIENT_OPTIONS] = {0};
    locksmith_client *c = NULL;
    locksmith_config *conf = NULL;
    char *id = NULL, *own_id = NULL, *password = NULL;
    const char *password_option = NULL;
    int64_t wait_ns = -1;
    int opt, r, n_options = 3;

    for (int i = 0; i < MAX_CLIENT_OPTIONS && (names[i] = locksmith_client_option_name(i)); i++)
        options[n_options++] = (struct option){flag_name(names[i]), required_argument, 0, OPT_CLIENT + i};

    if (locksmith_client_new(&c) < 0) return fail(NULL, "cannot make an etcd client");
    /* The flags first: what they set, the environment and the configuration leave alone (so the
     * first --endpoint replaces LOCKSMITHCTL_ENDPOINT rather than adding to it).
     * getopt_long_only: -endpoint=URL works as well as --endpoint=URL, as with locksmithctl. */
    while ((opt = getopt_long_only(argc, argv, "+h", options, NULL)) != -1) {
        switch (opt) {
        case OPT_HELP: usage(stdout); locksmith_client_free(c); return 0;
        case OPT_ID: id = optarg; break;
        case OPT_TIMEOUT:
            if (locksmith_duration_parse(optarg, &wait_ns) < 0 || wait_ns < 0) {
                fprintf(stderr, "locksmith-run: invalid --timeout \"%s\": %s\n", optarg, locksmith_last_error());
                locksmith_client_free(c);
                return 2;
            }
            break;
        default: {
            if (opt < OPT_CLIENT || opt >= OPT_CLIENT + MAX_CLIENT_OPTIONS || !names[opt - OPT_CLIENT]) {
                usage(stderr);
                locksmith_client_free(c);
                return 2;
            }
            const char *name = names[opt - OPT_CLIENT];
            if (strcmp(name, "etcd-password") == 0 || strcmp(name, "etcd-password-file") == 0) {
                /* Set after the loop (the last one given wins). */
                if (password) explicit_bzero(password, strlen(password));
                free(password);
                if (!(password = strdup(optarg))) {
                    perror("locksmith-run");
                    locksmith_client_free(c);
                    return 1;
                }
                password_option = name;
                r = 0;
            } else {
                r = locksmith_client_set(c, name, optarg);
            }
            /* The password is copied: hide it from the process list. optarg points into the argv
             * strings (after "=", or the next argument), which is what /proc/PID/cmdline shows. */
            if (strcmp(name, "etcd-password") == 0) memset(optarg, '*', strlen(optarg));
            if (r < 0) {
                fprintf(stderr, "locksmith-run: --%s: %s\n", flag_name(name), locksmith_client_last_error(c));
                locksmith_client_free(c);
                return r == -EINVAL ? 2 : 1;
            }
        }
        }
    }
    /* Only the last password flag is set; the library then takes neither password setting from
     * the variables (it resolves the two as one). */
    if (password_option) {
        r = locksmith_client_set(c, password_option, password);
        explicit_bzero(password, strlen(password));
        free(password);
        if (r < 0) {
            fprintf(stderr, "locksmith-run: --%s: %s\n", password_option, locksmith_client_last_error(c));
            locksmith_client_free(c);
            return r == -EINVAL ? 2 : 1;
        }
    }
    if (optind >= argc) {
        fputs("locksmith-run: no command given\n", stderr);
        usage(stderr);
        locksmith_client_free(c);
        return 2;
    }

    /* Then the library's rule for the rest: LOCKSMITHCTL_<OPTION>, else the daemon's
     * LOCKSMITHD_<OPTION> (update.conf under $LOCKSMITH_ROOT, and the environment). Without a
     * readable configuration the flags and LOCKSMITHCTL_* still work, as with locksmithctl. */
    if (locksmith_config_load(&conf) < 0)
        fprintf(stderr, "locksmith-run: warning: the daemon's LOCKSMITHD_* settings are not used: %s\n", locksmith_last_error());
    r = locksmith_client_load_settings(c, "LOCKSMITHCTL", conf);
    conf = locksmith_config_free(conf);
    if (r < 0) {
        fprintf(stderr, "locksmith-run: bad setting: %s\n", locksmith_client_last_error(c)); /* names the variable */
        locksmith_client_free(c);
        return 1;
    }
    for (int i = 0, n = locksmith_client_warning_count(c); i < n; i++)
        fprintf(stderr, "locksmith-run: warning: %s\n", locksmith_client_warning(c, i));

    if (!id && !(id = own_id = default_id())) {
        locksmith_client_free(c);
        return 1;
    }
    if (!own_id) {
        /* The daemon gives back the machine id's slot at every start (the original's rule): a job
         * holding it could lose it under its feet. */
        char *machine = NULL;
        if (locksmith_machine_id(&machine) >= 0 && strcmp(machine, id) == 0)
            fprintf(stderr, "locksmith-run: warning: --id %s is this machine's id: locksmithd gives that slot back whenever it "
                            "starts (it means \"this machine is rebooting\"); the default id, %s%s, is the job's own\n",
                    id, machine, DEFAULT_ID_SUFFIX);
        locksmith_free(machine);
    }

    signal_client = c;
    struct sigaction sa = {0};
    sa.sa_handler = on_signal;
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGHUP, &sa, NULL);

    r = take_slot(c, id, wait_ns);

    /* From here on the signals are taken with sigwaitinfo(): none can slip in between a check and
     * a wait, and each one is passed on to the command. */
    sigset_t handled, previous;
    sigemptyset(&handled);
    sigaddset(&handled, SIGINT);
    sigaddset(&handled, SIGTERM);
    sigaddset(&handled, SIGHUP);
    sigaddset(&handled, SIGCHLD);
    sigprocmask(SIG_BLOCK, &handled, &previous);
    /* The handler no longer runs, so the client may be freed; a signal that came while the slot
     * was being taken cancelled the client, which must still be able to give the slot back. */
    signal_client = NULL;
    locksmith_client_cancel(c, 0);
    if (r != 0) {
        locksmith_client_free(c);
        free(own_id);
        return r;
    }

    int code;
    pid_t child = stop_signal ? -1 : fork();
    if (stop_signal) {
        code = 128 + stop_signal; /* interrupted while the slot was being taken */
    } else if (child < 0) {
        perror("locksmith-run: fork");
        code = 1;
    } else if (child == 0) {
        signal(SIGINT, SIG_DFL);
        signal(SIGTERM, SIG_DFL);
        signal(SIGHUP, SIG_DFL);
        sigprocmask(SIG_SETMASK, &previous, NULL);
        close_inherited_descriptors();
        execvp(argv[optind], argv + optind);
        fprintf(stderr, "locksmith-run: cannot run %s: %s\n", argv[optind], strerror(errno));
        _exit(errno == ENOENT ? 127 : 126);
    } else {
        int status = 0;
        for (;;) {
            pid_t done = waitpid(child, &status, WNOHANG);
            if (done == child || (done < 0 && errno != EINTR)) break;
            int sig = sigwaitinfo(&handled, NULL);
            if (sig == SIGINT || sig == SIGTERM || sig == SIGHUP) kill(child, sig);
        }
        code = WIFEXITED(status) ? WEXITSTATUS(status) : WIFSIGNALED(status) ? 128 + WTERMSIG(status) : 1;
    }

    /* Give the slot back, also after a failure or a signal; retry a few times. */
    for (int attempt = 0; attempt < 5; attempt++) {
        r = locksmith_client_unlock(c, id);
        if (r >= 0 || r == -ENOENT) break;
        fprintf(stderr, "locksmith-run: cannot give the slot back: %s\n", locksmith_client_last_error(c));
        sleep(1u << attempt);
    }
    if (r < 0 && r != -ENOENT) {
        fprintf(stderr, "locksmith-run: the slot of %s is still held: give it back with `locksmithctl unlock %s`\n", id, id);
        code = code ? code : 1;
    }
    locksmith_client_free(c);
    free(own_id);
    return code;
}
