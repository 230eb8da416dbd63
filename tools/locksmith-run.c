/* locksmith-run: a cluster-wide flock(1). Takes a slot of a group's reboot semaphore in etcd
 * (waiting for one with etcd's watch, up to --timeout), runs a command, and gives the slot back
 * when the command ends, whatever its exit status, also when locksmith-run is interrupted
 * (SIGINT and SIGTERM are passed on to the command first).
 *
 *   locksmith-run [options] -- COMMAND [ARGS...]
 *
 * Exit status: the command's (128+N if a signal N ended it); 75 (EX_TEMPFAIL) if no slot could
 * be had within --timeout; 1 for other errors before the command ran; 2 for a bad command line.
 * Built on liblocksmith (pkg-config locksmith). */
#define _GNU_SOURCE
#include <errno.h>
#include <getopt.h>
#include <locksmith.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define EXIT_NO_SLOT 75

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
          "  --etcd-api v2|v3|auto    etcd API (default auto)\n"
          "  --request-timeout DURATION  timeout of each request to etcd (default 5s)\n"
          "  --id ID                  the holder id (default: this machine's id)\n"
          "  --timeout DURATION       how long to wait for a slot (default: forever)\n"
          "  --help\n"
          "\n"
          "Exit status: COMMAND's (128+N if signal N ended it); 75 if no slot was free within\n"
          "--timeout; 1 for other errors; 2 for a bad command line.\n"
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
    char *id = NULL;
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
            if ((r = locksmith_client_set(c, names[opt], optarg)) < 0) {
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

    struct sigaction sa = {0};
    sa.sa_handler = on_signal;
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);

    /* Take a slot, waiting with the watch. */
    long long deadline = wait_ns >= 0 ? now_ms() + wait_ns / 1000000 : -1;
    for (;;) {
        r = locksmith_client_lock(c, id);
        if (r >= 0 || r == -EEXIST) break;
        if (r != -EBUSY) return fail(c, "cannot take a slot");
        long long left = deadline < 0 ? 60000 : deadline - now_ms();
        if (left <= 0) {
            fprintf(stderr, "locksmith-run: no free slot within the timeout (%s)\n", locksmith_client_last_error(c));
            return EXIT_NO_SLOT;
        }
        if (stop_signal) return 128 + stop_signal;
        if (locksmith_client_wait(c, left < 1000 ? left : 1000) < 0 && !stop_signal) return fail(c, "cannot wait for a slot");
        if (stop_signal) return 128 + stop_signal;
    }

    pid_t child = fork();
    if (child < 0) {
        perror("locksmith-run: fork");
        locksmith_client_unlock(c, id);
        return 1;
    }
    if (child == 0) {
        signal(SIGINT, SIG_DFL);
        signal(SIGTERM, SIG_DFL);
        execvp(argv[optind], argv + optind);
        fprintf(stderr, "locksmith-run: cannot run %s: %s\n", argv[optind], strerror(errno));
        _exit(127);
    }
    int status = 0, forwarded = 0;
    while (waitpid(child, &status, 0) < 0) {
        if (errno != EINTR) break;
        if (stop_signal && !forwarded) {
            kill(child, stop_signal);
            forwarded = 1;
        }
    }
    int code = WIFEXITED(status) ? WEXITSTATUS(status) : WIFSIGNALED(status) ? 128 + WTERMSIG(status) : 1;

    /* Give the slot back, also after a failure or a signal; retry a few times. */
    for (int attempt = 0; attempt < 5; attempt++) {
        r = locksmith_client_unlock(c, id);
        if (r >= 0 || r == -ENOENT) break;
        fprintf(stderr, "locksmith-run: cannot give the slot back: %s\n", locksmith_client_last_error(c));
        sleep(1u << attempt);
    }
    if (r < 0 && r != -ENOENT) code = code ? code : 1;
    locksmith_client_free(c);
    return code;
}
