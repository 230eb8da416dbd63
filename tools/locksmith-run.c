/* locksmith-run: a cluster-wide flock(1). Takes a slot of a group's reboot semaphore in etcd
 * (waiting for one with etcd's watch, up to --timeout), runs a command, and gives the slot back
 * when the command ends, whatever its exit status, also when locksmith-run is interrupted
 * (SIGINT and SIGTERM are passed on to the command first).
 *
 *   locksmith-run [options] -- COMMAND [ARGS...]
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

static volatile sig_atomic_t stop_signal;

static void on_signal(int sig) { stop_signal = sig; }

static void usage(FILE *f) {
    fputs("Usage: locksmith-run [options] -- COMMAND [ARGS...]\n"
          "\n"
          "Takes a slot of a group's reboot semaphore in etcd, runs COMMAND, and gives the slot back\n"
          "when COMMAND ends. A cluster-wide flock(1): at most the semaphore's max of such commands\n"
          "run at once across all machines.\n"
          "\n"
          "Options (etcd settings as locksmithctl's, also from LOCKSMITHCTL_<OPTION>):\n"
          "  --endpoint URL           etcd endpoint (repeat, or comma-separated)\n"
          "  --group GROUP            the group whose semaphore to use\n"
          "  --etcd-cafile FILE, --etcd-certfile FILE, --etcd-keyfile FILE\n"
          "  --etcd-username USER, --etcd-password PASSWORD, --etcd-password-file FILE\n"
          "                           (prefer the file or LOCKSMITHCTL_ETCD_PASSWORD: a password\n"
          "                           argument is hidden once read, but visible until then)\n"
          "  --etcd-api v2|v3|auto    etcd API (default auto)\n"
          "  --request-timeout DURATION  timeout of each request to etcd (default 5s)\n"
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
          "for, never shared. locksmithd holds its reboot lock under the plain machine id, so do\n"
          "not give that as --id. Errors reaching etcd are retried for up to --timeout (one\n"
          "minute without it). COMMAND starts with only standard input, output and error open.\n"
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

/* Whether etcd lists id as a holder. */
static int holds(locksmith_client *c, const char *id) {
    locksmith_semaphore *s = NULL;
    int listed = 0;
    if (locksmith_client_get(c, &s) >= 0) listed = locksmith_semaphore_is_holder(s, id) > 0;
    locksmith_semaphore_free(s);
    return listed;
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

/* Takes a slot for id, waiting for one with the watch until wait_ns passes (< 0: no limit).
 * Returns 0 with the slot held, or the exit status to end with.
 *
 * -EEXIST (id already holds a slot) is not taken as success: the holder is someone else with
 * the same id (another locksmith-run on this machine, or a run given the same --id elsewhere),
 * and running now would exceed max and give back a slot that is not ours. So it waits, as for
 * a busy semaphore. The exception: after a request whose outcome is unknown (it timed out or
 * the connection broke), the slot may be ours from that request, and -EEXIST, or -EBUSY with id
 * listed (a full semaphore is reported before "holder exists"), then means it is.
 * Transient errors are retried until the timeout, or for a minute when there is none. */
static int take_slot(locksmith_client *c, const char *id, int64_t wait_ns) {
    long long deadline = wait_ns >= 0 ? now_ms() + wait_ns / 1000000 : -1;
    long long failing_since = -1;
    int unknown_outcome = 0, said_exists = 0;
    for (;;) {
        int r = locksmith_client_lock(c, id);
        if (r >= 0 || (r == -EEXIST && unknown_outcome)) return 0;
        if (r == -EBUSY && unknown_outcome && holds(c, id)) return 0; /* full, and one of the slots is ours */
        if (stop_signal) return 128 + stop_signal;
        long long now = now_ms();
        if (transient(r)) {
            if (r != -EAGAIN) unknown_outcome = 1; /* the request may have reached etcd */
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
        if (r == -EEXIST && !said_exists) {
            fprintf(stderr, "locksmith-run: %s already holds a slot (another run with the same id); waiting for it to be given back\n", id);
            said_exists = 1;
        } else if (r != -EBUSY && r != -EEXIST) {
            return fail(c, "cannot take a slot");
        }
        long long left = deadline < 0 ? 60000 : deadline - now;
        if (left <= 0) {
            fprintf(stderr, "locksmith-run: no free slot within the timeout (%s)\n", locksmith_client_last_error(c));
            return EXIT_NO_SLOT;
        }
        r = locksmith_client_wait(c, left < 1000 ? left : 1000);
        if (stop_signal) return 128 + stop_signal;
        if (r < 0 && !transient(r)) return fail(c, "cannot wait for a slot");
        if (r < 0) {
            /* Retried like a failed lock; said once per new reason, not every second. */
            static char said[512];
            const char *why = locksmith_client_last_error(c);
            if (strncmp(said, why, sizeof said - 1) != 0) {
                fprintf(stderr, "locksmith-run: cannot wait for a slot, retrying: %s\n", why);
                snprintf(said, sizeof said, "%s", why);
            }
        }
    }
}

int main(int argc, char **argv) {
    static const struct option options[] = {
        {"endpoint", required_argument, 0, 'e'}, {"group", required_argument, 0, 'g'},
        {"etcd-cafile", required_argument, 0, 'C'}, {"etcd-certfile", required_argument, 0, 'R'},
        {"etcd-keyfile", required_argument, 0, 'K'}, {"etcd-username", required_argument, 0, 'u'},
        {"etcd-password", required_argument, 0, 'p'}, {"etcd-password-file", required_argument, 0, 'P'},
        {"etcd-api", required_argument, 0, 'a'}, {"request-timeout", required_argument, 0, 'r'},
        {"id", required_argument, 0, 'i'}, {"timeout", required_argument, 0, 't'},
        {"help", no_argument, 0, 'h'}, {0, 0, 0, 0},
    };
    static const char *const names[128] = {
        ['e'] = "endpoint", ['g'] = "group", ['C'] = "etcd-cafile", ['R'] = "etcd-certfile",
        ['K'] = "etcd-keyfile", ['u'] = "etcd-username", ['p'] = "etcd-password",
        ['P'] = "etcd-password-file", ['a'] = "etcd-api", ['r'] = "timeout",
    };
    locksmith_client *c = NULL;
    char *id = NULL, *own_id = NULL;
    int64_t wait_ns = -1;
    int opt, endpoints_given = 0, r;

    if (locksmith_client_new(&c) < 0) return fail(NULL, "cannot make an etcd client");
    if (locksmith_client_load_env(c, "LOCKSMITHCTL") < 0) return fail(c, "bad setting in the environment");
    /* getopt_long_only: -endpoint=URL works as well as --endpoint=URL, as with locksmithctl. */
    while ((opt = getopt_long_only(argc, argv, "+h", options, NULL)) != -1) {
        switch (opt) {
        case 'h': usage(stdout); return 0;
        case 'i': id = optarg; break;
        case 't':
            if (locksmith_duration_parse(optarg, &wait_ns) < 0 || wait_ns < 0) {
                fprintf(stderr, "locksmith-run: invalid --timeout \"%s\": %s\n", optarg, locksmith_last_error());
                return 2;
            }
            break;
        case 'e':
            /* The first --endpoint replaces what the environment said; later ones add. */
            if (!endpoints_given++) locksmith_client_set(c, "endpoint", "");
            /* fall through */
        case 'g': case 'C': case 'R': case 'K': case 'u': case 'p': case 'P': case 'a': case 'r':
            r = locksmith_client_set(c, names[opt], optarg);
            /* The client has its copy: hide the password from the process list. optarg points
             * into the argv strings (after "=", or the next argument), which is what
             * /proc/PID/cmdline shows. */
            if (opt == 'p') memset(optarg, '*', strlen(optarg));
            if (r < 0) {
                fprintf(stderr, "locksmith-run: --%s: %s\n", names[opt], locksmith_client_last_error(c));
                return r == -EINVAL ? 2 : 1;
            }
            break;
        default: usage(stderr); return 2;
        }
    }
    if (optind >= argc) {
        fputs("locksmith-run: no command given\n", stderr);
        usage(stderr);
        return 2;
    }

    if (!id && !(id = own_id = default_id())) {
        locksmith_client_free(c);
        return 1;
    }

    struct sigaction sa = {0};
    sa.sa_handler = on_signal;
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGHUP, &sa, NULL);

    r = take_slot(c, id, wait_ns);
    if (r != 0) {
        locksmith_client_free(c);
        free(own_id);
        return r;
    }

    /* From here on the signals are taken with sigwaitinfo(): none can slip in between a check and
     * a wait, and each one is passed on to the command. */
    sigset_t handled, previous;
    sigemptyset(&handled);
    sigaddset(&handled, SIGINT);
    sigaddset(&handled, SIGTERM);
    sigaddset(&handled, SIGHUP);
    sigaddset(&handled, SIGCHLD);
    sigprocmask(SIG_BLOCK, &handled, &previous);

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
