/* locksmith-fleetlockd: a FleetLock server on locksmith's semaphores.
 *
 * Serves the FleetLock protocol v1 of Fedora CoreOS's Zincati (POST /v1/pre-reboot and
 * POST /v1/steady-state) at the root of each --listen address, on the same semaphore documents and
 * keys as locksmithd: FleetLock group "default" is locksmith's default semaphore, any other group
 * the locksmith group of that name. So machines running locksmithd (or the original locksmith) and
 * machines running Zincati share one max per group.
 *
 *   locksmith-fleetlockd [--listen ADDR:PORT]... [--threads N] [--tls-cert FILE --tls-key FILE]
 *                        [--tls-client-ca FILE] [--group NAME]... [--all-groups] [--group-secrets FILE]
 *                        [--connections-per-address N] [etcd options as locksmithctl's]
 *
 * HTTP is libmicrohttpd's (a thread pool per listener). The requests for one group that arrive
 * while its semaphore is being written wait for the next write and go in it together
 * (locksmith_client_apply): one compare-and-swap answers a whole burst, so throughput is not
 * bounded by one write per request on one etcd key. Every request body is bounded (4 KiB), every
 * request has 10 s from its connection's start (or the answer before it) to its last byte,
 * connections are capped in all and per address, so a bad or slow client costs nothing lasting. Pre-reboot is recursive (a holder asking again gets 200) and steady-state
 * idempotent (a non-holder gets 200); a compare-and-swap lost to another writer is retried, so a
 * refusal always means the slots are taken. Errors carry FleetLock's {"kind","value"} body.
 *
 * FleetLock has no authentication, and whoever reaches the server has its etcd trust over the
 * groups it serves (docs/security.md, issue 26): it serves only the groups named (default: the
 * default group), a secret per group in the base URL's path selects the group
 * (--group-secrets), and with --tls-client-ca a client certificate must name the id.
 *
 * Its etcd settings follow the library's one rule, as locksmithctl's do: each from its flag, else
 * LOCKSMITHCTL_<OPTION>, else the daemon's LOCKSMITHD_<OPTION> from update.conf.
 *
 * Built on liblocksmith (pkg-config locksmith), libmicrohttpd, json-c and libsystemd (sd_notify). */
#define _GNU_SOURCE
#include <errno.h>
#include <getopt.h>
#include <gnutls/gnutls.h>
#include <gnutls/x509.h>
#include <json-c/json.h>
#include <locksmith.h>
#include <malloc.h>
#include <microhttpd.h>
#include <netdb.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <systemd/sd-daemon.h>
#include <time.h>
#include <unistd.h>

#define DEFAULT_LISTEN "127.0.0.1:3333"
#define MAX_LISTEN 16
#define MAX_BODY 4096           /* FleetLock bodies are well under 1 KiB */
#define MAX_ID 255              /* a locksmith holder id */
#define MAX_GROUP 128
#define CONNECTION_TIMEOUT_S 30 /* libmicrohttpd's idle timeout; REQUEST_TIME_S closes them sooner */
#define REQUEST_TIME_S 10       /* from a connection's start (or its last answer) to a whole request */
#define CONNECTION_LIMIT 2048   /* per listener; the unit's LimitNOFILE leaves room for two */
#define CONNECTION_MEMORY 4096  /* per connection: a FleetLock request's headers are under 1 KiB */
#define PER_ADDRESS_DEFAULT 64  /* connections from one address; a NAT in front of a fleet needs more */
#define MIN_SECRET 16
#define MAX_SECRET 128
#define MAX_SERVED 256
#define TLS_PRIORITIES "NORMAL:-VERS-ALL:+VERS-TLS1.3:+VERS-TLS1.2"
#define CONFLICT_RETRIES 50     /* compare-and-swap rounds lost to other writers before giving up */

enum { OPT_LISTEN = 1000, OPT_THREADS, OPT_TLS_CERT, OPT_TLS_KEY, OPT_TLS_CLIENT_CA, OPT_GROUP, OPT_ALL_GROUPS,
       OPT_GROUP_SECRETS, OPT_PER_ADDRESS, OPT_HELP, OPT_VERSION, OPT_CLIENT };
#define MAX_CLIENT_OPTIONS 32

/* The etcd settings given as flags, applied to each worker's client. */
static struct { const char *name; char *value; } settings[MAX_CLIENT_OPTIONS];
static int n_settings;
static locksmith_config *node_config;

/* The client of /health and /metrics (the default group), made on first use, one caller at a time. */
static pthread_mutex_t admin_lock = PTHREAD_MUTEX_INITIALIZER;
static locksmith_client *admin;

/* Counts for /metrics, by endpoint and result. */
enum { EP_PRE, EP_STEADY, EP_COUNT };
enum { RES_OK, RES_BAD, RES_REFUSED, RES_ERROR, RES_COUNT };
static const char *endpoint_names[EP_COUNT] = {"pre-reboot", "steady-state"};
static const char *result_names[RES_COUNT] = {"ok", "bad_request", "slots_taken", "error"};
static atomic_llong counts[EP_COUNT][RES_COUNT];
static atomic_llong etcd_calls, etcd_micros, conflict_rounds, overdue_closed;

/* The groups served (FleetLock names: "default" for the default group) and their secrets; every
 * group that has a semaphore with --all-groups. */
static struct served {
    char group[MAX_GROUP + 1];
    char secret[MAX_SECRET + 1];
    size_t secret_len;
} served[MAX_SERVED];
static int n_served, all_groups, with_secrets, with_client_ca;

/* The last thing etcd said that went wrong, for the log and /metrics: clients get a generic text. */
static pthread_mutex_t etcd_error_lock = PTHREAD_MUTEX_INITIALIZER;
static char etcd_error[600];
static long long etcd_error_at;
static atomic_llong etcd_errors;

static atomic_int stopping;  /* set by main once a signal has ended its loop; read by the writers and workers */

static void usage(FILE *f) {
    fputs("Usage: locksmith-fleetlockd [options]\n"
          "\n"
          "Serves the FleetLock protocol (Fedora CoreOS's Zincati: POST /v1/pre-reboot and\n"
          "POST /v1/steady-state) on locksmith's reboot semaphores in etcd: FleetLock group\n"
          "\"default\" is locksmith's default semaphore, any other group the locksmith group of that\n"
          "name. Machines running locksmithd and machines running Zincati share one max per group.\n"
          "\n"
          "Options:\n"
          "  --listen ADDR:PORT       where to serve (default " DEFAULT_LISTEN "; repeat for more;\n"
          "                           [::1]:3333 for IPv6, 0.0.0.0:3333 for every IPv4 address)\n"
          "  --threads N              worker threads per listener (default 32, 1 to 256): they\n"
          "                           read and answer requests; one waiting for etcd holds none\n"
          "  --tls-cert FILE, --tls-key FILE\n"
          "                           serve HTTPS with this certificate chain and key (PEM);\n"
          "                           TLS 1.2 and 1.3 only\n"
          "  --tls-client-ca FILE     require a client certificate signed by these CAs (PEM) whose\n"
          "                           CN or a DNS name is client_params.id, or its start before\n"
          "                           a \"/\" (a machine's certificate covers MACHINE-ID/locksmith-run)\n"
          "  --group NAME             serve this FleetLock group (repeat for more; a group other\n"
          "                           than default needs a semaphore: locksmithctl -group NAME\n"
          "                           set-max N). Without --group: only the default group\n"
          "  --all-groups             serve every group that has a semaphore (a trusted network)\n"
          "  --group-secrets FILE     lines \"GROUP SECRET\": each group is served at base URL\n"
          "                           https://HOST:PORT/SECRET/ only (16 to 128 of A-Z a-z 0-9 . _ ~ -)\n"
          "  --connections-per-address N\n"
          "                           connections from one address (default 64, 1 to 2048)\n"
          "  --help, --version\n"
          "\n"
          "etcd options, as locksmithctl's (each from its flag, else LOCKSMITHCTL_<OPTION>, else the\n"
          "daemon's LOCKSMITHD_<OPTION> from update.conf):\n"
          "  --endpoint URL, --etcd-cafile FILE, --etcd-certfile FILE, --etcd-keyfile FILE,\n"
          "  --etcd-username USER, --etcd-password-file FILE, --etcd-api v2|v3|auto,\n"
          "  --request-timeout DURATION, --proxy URL\n"
          "\n"
          "Also: GET /health (200 when etcd answers, else 503) and GET /metrics (Prometheus text).\n"
          "Beyond loopback, serve with TLS and --group-secrets or --tls-client-ca: whoever reaches\n"
          "it can take and free the slots of the groups it serves.\n"
          "Errors answer with FleetLock's body {\"kind\": ..., \"value\": ...}.\n",
          f);
}

static long long now_us(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static const char *flag_name(const char *option) {
    return strcmp(option, "timeout") == 0 ? "request-timeout" : option;
}

/* A client with the flags' settings and the library's rule for the rest; NULL (logged) if not. */
static locksmith_client *make_client(void) {
    locksmith_client *c = NULL;
    if (locksmith_client_new(&c) < 0) {
        fprintf(stderr, "locksmith-fleetlockd: cannot make an etcd client: %s\n", locksmith_last_error());
        return NULL;
    }
    for (int i = 0; i < n_settings; i++)
        if (locksmith_client_set(c, settings[i].name, settings[i].value) < 0) {
            fprintf(stderr, "locksmith-fleetlockd: --%s: %s\n", flag_name(settings[i].name), locksmith_client_last_error(c));
            return locksmith_client_free(c);
        }
    if (locksmith_client_load_settings(c, "LOCKSMITHCTL", node_config) < 0) {
        fprintf(stderr, "locksmith-fleetlockd: bad setting: %s\n", locksmith_client_last_error(c));
        return locksmith_client_free(c);
    }
    return c;
}

/* text as a JSON string, quotes included, for log lines: an id or a group with a newline or an
 * escape sequence cannot forge a line or drive a terminal. Cut to fit size. */
static const char *quoted(const char *text, char *buf, size_t size) {
    json_object *s = json_object_new_string(text);
    snprintf(buf, size, "%s", s ? json_object_to_json_string_ext(s, JSON_C_TO_STRING_PLAIN) : "\"?\"");
    json_object_put(s);
    return buf;
}

/* What etcd said when it failed, kept for the operator (/metrics) and logged when it changes (a
 * health check every few seconds would otherwise repeat it); clients get ETCD_FAILED. */
#define ETCD_FAILED "etcd is out of reach or refused the server; see the server's log"
static void etcd_failed(const char *detail, int log) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    etcd_errors++;
    pthread_mutex_lock(&etcd_error_lock);
    int changed = strcmp(etcd_error, detail) != 0;
    snprintf(etcd_error, sizeof etcd_error, "%s", detail);
    etcd_error_at = ts.tv_sec;
    pthread_mutex_unlock(&etcd_error_lock);
    if (changed && log) fprintf(stderr, "locksmith-fleetlockd: etcd: %s\n", detail);
}

/* ---- connections: each request's reading time is bounded ---------------------------------- */

/* libmicrohttpd's timeout counts idle time only: a client sending a header line every few seconds
 * would hold its connection for ever. So each connection has a deadline, REQUEST_TIME_S from its
 * start or from its last answer, for its whole next request; while a request is being answered
 * it has none. Once a second, overdue connections are shut down (shutdown, not close: the
 * descriptor stays libmicrohttpd's, which sees the end and closes it; the entry goes before it does). */
struct watched {
    struct watched *prev, *next;
    int fd;
    long long deadline_us;  /* 0 while a request is being answered */
    struct verified *verified;  /* the client certificate found trusted on this connection */
};

/* A client certificate verified on a connection, and its names (CN and DNS names, each ended by
 * a NUL): the next requests on the connection match ids against them without verifying the chain
 * again (the signatures, the ASN.1: 40 % of the server's time with --tls-client-ca). Kept for
 * VERIFIED_S at most, and only for the same certificate, byte for byte. Used by the connection's
 * own thread only (one request at a time on a connection). */
#define VERIFIED_S 60
#define MAX_NAMES 32
struct verified {
    long long until_us;
    size_t der_size, names_size;
    unsigned char *der;
    char names[MAX_NAMES * (MAX_ID + 1)];
};
static struct watched watched = {&watched, &watched, -1, 0, NULL};
static pthread_mutex_t watched_lock = PTHREAD_MUTEX_INITIALIZER;

static void notify_connection(void *cls, struct MHD_Connection *connection, void **context, enum MHD_ConnectionNotificationCode code) {
    (void)cls;
    struct watched *w = *context;
    if (code == MHD_CONNECTION_NOTIFY_STARTED) {
        const union MHD_ConnectionInfo *info = MHD_get_connection_info(connection, MHD_CONNECTION_INFO_CONNECTION_FD);
        if (!info || !(w = calloc(1, sizeof *w))) return;  /* unwatched: the idle timeout still holds */
        w->fd = info->connect_fd;
        w->deadline_us = now_us() + REQUEST_TIME_S * 1000000LL;
        pthread_mutex_lock(&watched_lock);
        w->next = watched.next;
        w->prev = &watched;
        watched.next->prev = w;
        watched.next = w;
        pthread_mutex_unlock(&watched_lock);
        *context = w;
    } else if (w) {
        pthread_mutex_lock(&watched_lock);
        w->prev->next = w->next;
        w->next->prev = w->prev;
        pthread_mutex_unlock(&watched_lock);
        if (w->verified) free(w->verified->der);
        free(w->verified);
        free(w);
        *context = NULL;
    }
}

/* The connection's next deadline: none (0) while its request is answered, else REQUEST_TIME_S on. */
static void set_deadline(struct MHD_Connection *connection, int reading) {
    const union MHD_ConnectionInfo *info = MHD_get_connection_info(connection, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
    struct watched *w = info ? info->socket_context : NULL;
    if (!w) return;
    pthread_mutex_lock(&watched_lock);
    w->deadline_us = reading ? now_us() + REQUEST_TIME_S * 1000000LL : 0;
    pthread_mutex_unlock(&watched_lock);
}

static void close_overdue(void) {
    long long now = now_us();
    pthread_mutex_lock(&watched_lock);
    for (struct watched *w = watched.next; w != &watched; w = w->next)
        if (w->deadline_us && now > w->deadline_us) {
            shutdown(w->fd, SHUT_RDWR);
            w->deadline_us = 0;
            overdue_closed++;
        }
    pthread_mutex_unlock(&watched_lock);
}

/* ---- answers ------------------------------------------------------------------------------- */

static enum MHD_Result answer(struct MHD_Connection *connection, unsigned status, const char *body, const char *type) {
    set_deadline(connection, 0);
    struct MHD_Response *response = MHD_create_response_from_buffer(strlen(body), (void *)body, MHD_RESPMEM_MUST_COPY);
    if (!response) return MHD_NO;
    MHD_add_response_header(response, MHD_HTTP_HEADER_CONTENT_TYPE, type);
    MHD_add_response_header(response, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
    if (status == MHD_HTTP_METHOD_NOT_ALLOWED) MHD_add_response_header(response, MHD_HTTP_HEADER_ALLOW, "POST");
    enum MHD_Result r = MHD_queue_response(connection, status, response);
    MHD_destroy_response(response);
    return r;
}

/* FleetLock's error body: {"kind": KIND, "value": TEXT}. */
static enum MHD_Result refuse(struct MHD_Connection *connection, unsigned status, const char *kind, const char *text) {
    json_object *o = json_object_new_object();
    json_object_object_add(o, "kind", json_object_new_string(kind));
    json_object_object_add(o, "value", json_object_new_string(text));
    char *body = strdup(json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN));
    json_object_put(o);
    if (!body) return MHD_NO;
    size_t n = strlen(body);
    char *line = realloc(body, n + 2);
    if (!line) { free(body); return MHD_NO; }
    line[n] = '\n';
    line[n + 1] = 0;
    enum MHD_Result r = answer(connection, status, line, "application/json");
    free(line);
    return r;
}

/* ---- one write for many requests ------------------------------------------------------------ */

/* A take or give-back waiting for its group's next write. */
struct change {
    const char *id;
    int give_back;
    int done;
    int result;      /* 0 or a negative errno, as locksmith_client_lock / _unlock */
    int bad_group;   /* the group's name was refused (result -EINVAL) */
    char text[600];  /* why, when result < 0 */
    struct MHD_Connection *connection;  /* suspended while it waits */
    int suspended;
};

/* A group's waiting changes, written by the group's writer thread: each write is one for all that
 * wait, with the group's client, which only the writer uses. So a burst of requests for one group
 * costs one compare-and-swap, not one each. No request holds a worker thread while it waits: its
 * connection is suspended (libmicrohttpd) and resumed when the write ends, so a worker's other
 * connections go on meanwhile. (When a waiting request blocked its worker, at 50 connections on
 * 32 workers p99 was 22-50 ms against 12-23 ms with a worker for each connection, and connections
 * that libmicrohttpd had given to one worker were written one at a time.) The writer is started
 * by the first request and ends after WRITER_IDLE_S without one; if it cannot be started, the
 * request's own worker writes (the batch, then the rest as they come: no request is left). */
#define MAX_BATCH 1024
#define MAX_GROUPS 4096
struct group_queue {
    char name[MAX_GROUP + 1];
    pthread_mutex_t lock;
    struct change *waiting[MAX_BATCH];
    int n_waiting;
    int writing;  /* the writer (or a worker in its place) has the queue */
    int in_write; /* requests of the batch being written (0: none; until their connections are resumed) */
    pthread_cond_t work;  /* the writer waits on it for changes */
    long long last_write_end;  /* now_us() when the last write ended */
    locksmith_client *client;
};
static struct group_queue *queues[MAX_GROUPS];
static int n_queues;
static pthread_mutex_t queues_lock = PTHREAD_MUTEX_INITIALIZER;
static atomic_llong batches, batched_changes;

/* How long a leader that comes right after the group's last write (within this time of its end)
 * waits before it takes the batch: under a steady stream the answers of one write come back as
 * new requests a moment later, and a write is the costly part (etcd's consensus and disk); a
 * request that finds the group idle is written at once. 0.5 ms: at 10 connections batches of
 * 4.6 → 8.5 requests, 3.1–3.7 → 4.3–5.0 thousand requests/s and p99 7.8–9.8 → 5.4–6.7 ms
 * (issue 29, docs/benchmarks.md). */
#define GATHER_US 500

/* The group's queue: NULL if it has none yet and create is 0 (or none can be made). */
static struct group_queue *queue_for(const char *group, int create) {
    struct group_queue *q = NULL;
    pthread_mutex_lock(&queues_lock);
    for (int i = 0; i < n_queues && !q; i++)
        if (strcmp(queues[i]->name, group) == 0) q = queues[i];
    if (!q && create && n_queues < MAX_GROUPS && (q = calloc(1, sizeof *q))) {
        snprintf(q->name, sizeof q->name, "%s", group);
        pthread_mutex_init(&q->lock, NULL);
        pthread_cond_init(&q->work, NULL);
        queues[n_queues++] = q;
    }
    pthread_mutex_unlock(&queues_lock);
    return q;
}

/* The leader's write of a batch: every change gets its result and, for a refusal, its text. */
static void write_batch(struct group_queue *q, struct change **batch, int n) {
    const char *holders[MAX_BATCH];
    int give_back[MAX_BATCH], results[MAX_BATCH];
    if (!q->client) {
        q->client = make_client();
        if (q->client && locksmith_client_set(q->client, "group", q->name) < 0) {
            for (int i = 0; i < n; i++) {
                batch[i]->result = -EINVAL;
                batch[i]->bad_group = 1;
                snprintf(batch[i]->text, sizeof batch[i]->text, "group \"%s\": %s", q->name, locksmith_client_last_error(q->client));
            }
            q->client = locksmith_client_free(q->client);
            return;
        }
    }
    if (!q->client) {
        for (int i = 0; i < n; i++) {
            batch[i]->result = -ENOMEM;
            snprintf(batch[i]->text, sizeof batch[i]->text, "the server cannot make an etcd client (see its log)");
        }
        return;
    }
    for (int i = 0; i < n; i++) {
        holders[i] = batch[i]->id;
        give_back[i] = batch[i]->give_back;
    }
    int r;
    /* A compare-and-swap lost to other writers (clients that are not this server) is no refusal:
     * try again (the library already retries a few rounds with a fresh read each). */
    for (int round = 0;; round++) {
        long long t0 = now_us();
        r = locksmith_client_apply(q->client, n, holders, give_back, results);
        etcd_calls++;
        etcd_micros += now_us() - t0;
        if (r != -EAGAIN || round >= CONFLICT_RETRIES || stopping) break;
        conflict_rounds++;
        struct timespec pause = {0, (long)(rand() % 20 + 1) * 1000000L};
        nanosleep(&pause, NULL);
    }
    batches++;
    batched_changes += n;
    char why[512] = "";
    if (r < 0) snprintf(why, sizeof why, "%s (%s)", locksmith_client_last_error(q->client), strerror(-r));
    locksmith_semaphore *seen = NULL;
    int max = -1;
    if (locksmith_client_last_seen(q->client, &seen) < 0 || locksmith_semaphore_get_max(seen, &max) < 0) max = -1;
    const char *shown = *q->name ? q->name : "default";
    for (int i = 0; i < n; i++) {
        struct change *c = batch[i];
        c->result = r < 0 ? r : results[i];
        /* Recursive: the library says "no free slot" before "already holds" (as the original),
         * so a holder asking again when the group is full is a holder all the same. */
        if (c->result == -EBUSY && seen && locksmith_semaphore_is_holder(seen, c->id) == 1) c->result = -EEXIST;
        if (r < 0)
            snprintf(c->text, sizeof c->text, "%s", why);
        else if (c->result == -EBUSY && max >= 0)
            snprintf(c->text, sizeof c->text, "every reboot slot of group \"%s\" is taken (max %d)", shown, max);
        else if (c->result == -EBUSY)
            snprintf(c->text, sizeof c->text, "every reboot slot of group \"%s\" is taken", shown);
        else if (c->result == -EINVAL)
            snprintf(c->text, sizeof c->text, "client_params.id is not a valid holder id (at most 255 bytes, no control characters)");
    }
    locksmith_semaphore_free(seen);
}

/* Whether a locksmith group has a semaphore in etcd (1, 0, or a negative errno with why): only
 * those are served, besides the default semaphore (made on first use, as locksmithd does), so
 * that a client cannot make the server create keys in etcd, or queues and etcd connections in
 * itself, for any name it makes up. Asked only for groups without a queue yet (a group served
 * once is known): the groups are listed (one listing at a time; a listing that began after the
 * request arrived answers it too), so made-up names cost etcd at most one listing in flight. */
static int group_exists(const char *group, char *why, size_t size) {
    static locksmith_groups *known;
    static long long listed_at;  /* when the listing in known began */
    if (!*group) return 1;
    long long asked = now_us();
    pthread_mutex_lock(&admin_lock);
    int r = 0;
    if (!known || listed_at < asked) {
        locksmith_groups *fresh = NULL;
        long long began = now_us();
        if (!admin) admin = make_client();
        r = admin ? locksmith_client_groups(admin, &fresh) : -ENOMEM;
        if (r >= 0) {
            locksmith_groups_free(known);
            known = fresh;
            listed_at = began;
        } else {
            snprintf(why, size, "cannot list the groups in etcd: %s", admin ? locksmith_client_last_error(admin) : "no client (see the log)");
        }
    }
    if (r >= 0) {
        r = 0;
        for (int i = 0, n = locksmith_groups_count(known); i < n && !r; i++)
            r = strcmp(locksmith_groups_name(known, i), group) == 0;
    }
    pthread_mutex_unlock(&admin_lock);
    return r;
}

#define WRITER_IDLE_S 10

/* One write for every change waiting (the caller holds q->lock, and it is held again on return);
 * resumes their connections. */
static void write_waiting(struct group_queue *q) {
    if (now_us() - q->last_write_end < GATHER_US) {
        pthread_mutex_unlock(&q->lock);
        struct timespec pause = {0, GATHER_US * 1000L};
        nanosleep(&pause, NULL);
        pthread_mutex_lock(&q->lock);
    }
    struct change *batch[MAX_BATCH];
    int n = q->n_waiting;
    memcpy(batch, q->waiting, (size_t)n * sizeof *batch);
    q->n_waiting = 0;
    q->in_write = n;
    pthread_mutex_unlock(&q->lock);
    write_batch(q, batch, n);
    /* Once done is set and its connection resumed, a change may be answered and freed at any
     * moment by its connection's thread: only the connections are kept. */
    struct MHD_Connection *resume[MAX_BATCH];
    int n_resume = 0;
    pthread_mutex_lock(&q->lock);
    for (int i = 0; i < n; i++) {
        batch[i]->done = 1;
        if (batch[i]->suspended) resume[n_resume++] = batch[i]->connection;
    }
    q->last_write_end = now_us();
    pthread_mutex_unlock(&q->lock);
    for (int i = 0; i < n_resume; i++) MHD_resume_connection(resume[i]);
    pthread_mutex_lock(&q->lock);
    q->in_write = 0;
}

/* The group's writer: writes while changes wait; ends after WRITER_IDLE_S without any. */
static void *writer(void *arg) {
    struct group_queue *q = arg;
    pthread_mutex_lock(&q->lock);
    for (;;) {
        if (q->n_waiting > 0) {
            write_waiting(q);
            continue;
        }
        if (stopping) break;
        struct timespec until;
        clock_gettime(CLOCK_REALTIME, &until);
        until.tv_sec += WRITER_IDLE_S;
        if (pthread_cond_timedwait(&q->work, &q->lock, &until) == ETIMEDOUT && q->n_waiting == 0) break;
    }
    q->writing = 0;
    pthread_mutex_unlock(&q->lock);
    return NULL;
}

/* Queues change for its group's next write: 1 when its connection is suspended until it is
 * written, 0 when it is written already (no writer thread could be started: this worker wrote),
 * or a negative errno: -ESHUTDOWN the server is stopping, -EAGAIN too many changes wait, -ENOMEM
 * no queue. */
static int enqueue(struct group_queue *q, struct change *change) {
    if (!q) return -ENOMEM;
    pthread_mutex_lock(&q->lock);
    if (stopping || q->n_waiting == MAX_BATCH) {
        pthread_mutex_unlock(&q->lock);
        return stopping ? -ESHUTDOWN : -EAGAIN;
    }
    q->waiting[q->n_waiting++] = change;
    if (!q->writing) {
        pthread_attr_t attr;
        pthread_t thread;
        pthread_attr_init(&attr);
        pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
        if (pthread_create(&thread, &attr, writer, q) == 0) {
            q->writing = 1;
        } else {
            /* This worker writes in the writer's place, until nothing waits. */
            q->writing = 1;
            while (q->n_waiting > 0) write_waiting(q);
            q->writing = 0;
            pthread_mutex_unlock(&q->lock);
            pthread_attr_destroy(&attr);
            return 0;
        }
        pthread_attr_destroy(&attr);
    } else {
        pthread_cond_signal(&q->work);
    }
    /* Suspended under the lock: the write that resumes it cannot end before. */
    MHD_suspend_connection(change->connection);
    change->suspended = 1;
    pthread_mutex_unlock(&q->lock);
    return 1;
}

/* Requests waiting for their group's write or in it, in every group: what stopping waits to see
 * at 0, and a gauge of /metrics. */
static long waiting_requests(void) {
    long waiting = 0;
    pthread_mutex_lock(&queues_lock);
    for (int i = 0; i < n_queues; i++) {
        pthread_mutex_lock(&queues[i]->lock);
        waiting += queues[i]->n_waiting + queues[i]->in_write;
        pthread_mutex_unlock(&queues[i]->lock);
    }
    pthread_mutex_unlock(&queues_lock);
    return waiting;
}

/* ---- FleetLock ----------------------------------------------------------------------------- */

/* The request body as it arrives, bounded, and the secret its path gave. */
struct request {
    char *body;
    size_t size;
    int oversized;
    int refused;  /* answered from its headers: its body is not read */
    char secret[MAX_SECRET + 1];
    /* Once queued for a write: the change, its endpoint and group, and the parsed body they point into. */
    int queued, endpoint;
    struct group_queue *queue;
    const char *group;
    json_object *root;
    struct change change;
};

/* A FleetLock group name by the library's one rule, the FleetLock client's too
 * (locksmith_fleetlock_group_check: 1 to MAX_GROUP bytes of a-z A-Z 0-9 . -, not "." or ".."). */
static int valid_group(const char *g) {
    return locksmith_fleetlock_group_check(g) == 0;
}

/* The id and group of a FleetLock body, or a refusal text. */
static const char *client_params(const struct request *rq, json_object **root, const char **id, const char **group) {
    if (!rq->body || rq->size == 0) return "the request has no body: want {\"client_params\": {\"id\": ..., \"group\": ...}}";
    json_tokener *tok = json_tokener_new_ex(16);
    if (!tok) return "out of memory";
    *root = json_tokener_parse_ex(tok, rq->body, (int)rq->size);
    enum json_tokener_error err = json_tokener_get_error(tok);
    size_t used = json_tokener_get_parse_end(tok);
    json_tokener_free(tok);
    if (!*root || err != json_tokener_success) return "the body is not JSON";
    for (size_t i = used; i < rq->size; i++)
        if (!strchr(" \t\r\n", rq->body[i])) return "the body has more than one JSON value";
    json_object *params = NULL, *v = NULL;
    if (!json_object_is_type(*root, json_type_object) || !json_object_object_get_ex(*root, "client_params", &params) ||
        !json_object_is_type(params, json_type_object))
        return "the body has no client_params object";
    if (!json_object_object_get_ex(params, "id", &v) || !json_object_is_type(v, json_type_string))
        return "client_params.id is missing or not a string";
    *id = json_object_get_string(v);
    if (!**id) return "client_params.id is empty";
    if (strlen(*id) != (size_t)json_object_get_string_len(v)) return "client_params.id has a NUL character";
    if (strlen(*id) > MAX_ID) return "client_params.id is longer than 255 bytes";
    if (!json_object_object_get_ex(params, "group", &v) || !json_object_is_type(v, json_type_string))
        return "client_params.group is missing or not a string";
    *group = json_object_get_string(v);
    if (!**group) return "client_params.group is empty";
    return NULL;
}

/* The group whose secret is given, or NULL. Every secret is compared whole, whatever matches:
 * the time taken says nothing about how much of one was right. */
static const char *group_of_secret(const char *given) {
    size_t n = strlen(given);
    const char *found = NULL;
    for (int i = 0; i < n_served; i++) {
        unsigned diff = n != served[i].secret_len;
        for (size_t k = 0; k < served[i].secret_len; k++)
            diff |= (unsigned char)served[i].secret[k] ^ (unsigned char)(k < n ? given[k] : 0);
        if (diff == 0) found = served[i].group;
    }
    return found;
}

/* Whether name, a name of the client's certificate, covers id: the same, or id's start before a
 * "/" (a machine's certificate covers MACHINE-ID/locksmith-run, its jobs' ids). */
static int name_covers(const char *name, size_t n, const char *id) {
    return n > 0 && strlen(name) == n && strncmp(id, name, n) == 0 && (id[n] == 0 || id[n] == '/');
}

/* The names of a trusted certificate (CN, then DNS names) into v->names; names too long for an id
 * cannot cover one and are left out. */
static void certificate_names(const gnutls_datum_t *der, struct verified *v) {
    v->names_size = 0;
    gnutls_x509_crt_t crt;
    if (gnutls_x509_crt_init(&crt) < 0) return;
    if (gnutls_x509_crt_import(crt, der, GNUTLS_X509_FMT_DER) >= 0) {
        char name[MAX_ID + 2];
        size_t n = sizeof name - 1;
        int count = 0;
        if (gnutls_x509_crt_get_dn_by_oid(crt, GNUTLS_OID_X520_COMMON_NAME, 0, 0, name, &n) == 0 && n > 0 && n <= MAX_ID) {
            memcpy(v->names, name, n);
            v->names[n] = 0;
            v->names_size = n + 1;
            count++;
        }
        for (unsigned seq = 0; count < MAX_NAMES; seq++) {
            n = sizeof name - 1;
            int type = gnutls_x509_crt_get_subject_alt_name(crt, seq, name, &n, NULL);
            if (type == GNUTLS_E_REQUESTED_DATA_NOT_AVAILABLE) break;
            if (type != GNUTLS_SAN_DNSNAME || n == 0 || n > MAX_ID || strnlen(name, n) != n) continue;
            memcpy(v->names + v->names_size, name, n);
            v->names[v->names_size + n] = 0;
            v->names_size += n + 1;
            count++;
        }
    }
    gnutls_x509_crt_deinit(crt);
}

/* NULL if the client's verified certificate names id (its CN or a DNS name), else why not. */
static const char *certificate_refusal(struct MHD_Connection *connection, const char *id, char *why, size_t size) {
    const union MHD_ConnectionInfo *info = MHD_get_connection_info(connection, MHD_CONNECTION_INFO_GNUTLS_SESSION);
    gnutls_session_t session = info ? (gnutls_session_t)info->tls_session : NULL;
    unsigned count = 0, status = 0;
    const gnutls_datum_t *chain = session ? gnutls_certificate_get_peers(session, &count) : NULL;
    if (!chain || count == 0) return "this server requires a client certificate (signed by a CA of its --tls-client-ca)";
    info = MHD_get_connection_info(connection, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
    struct watched *w = info ? info->socket_context : NULL;
    struct verified *v = w ? w->verified : NULL, fallback;
    long long now = now_us();
    if (!v || now >= v->until_us || v->der_size != chain[0].size || memcmp(v->der, chain[0].data, chain[0].size) != 0) {
        if (gnutls_certificate_verify_peers2(session, &status) < 0 || status != 0) {
            gnutls_datum_t text = {0};
            gnutls_certificate_verification_status_print(status, GNUTLS_CRT_X509, &text, 0);
            snprintf(why, size, "the client certificate is not trusted: %s", text.data ? (char *)text.data : "verification failed");
            gnutls_free(text.data);
            if (v) v->until_us = 0;
            return why;
        }
        /* Kept on the connection when it has an entry and memory allows; else used once. */
        if (w && !v && (v = calloc(1, sizeof *v))) w->verified = v;
        if (!v) v = &fallback;
        unsigned char *der = v == &fallback ? NULL : realloc(v->der, chain[0].size ? chain[0].size : 1);
        if (der) {
            memcpy(der, chain[0].data, chain[0].size);
            v->der = der;
            v->der_size = chain[0].size;
            v->until_us = now + VERIFIED_S * 1000000LL;
        } else if (v != &fallback) {
            v->until_us = 0;  /* not kept: verified again next time */
        }
        certificate_names(&chain[0], v);
    }
    int covered = 0;
    for (size_t at = 0; at < v->names_size && !covered; at += strlen(v->names + at) + 1)
        covered = name_covers(v->names + at, strlen(v->names + at), id);
    if (covered) return NULL;
    char shown[2 * MAX_ID + 8];
    snprintf(why, size, "client_params.id %s is not a name of the client certificate (its CN or a DNS name, or one of them "
             "followed by /...)", quoted(id, shown, sizeof shown));
    return why;
}

/* The same answer for a wrong secret, a missing one, and another group's: it says nothing about
 * which groups or secrets exist. */
#define NOT_HERE "no FleetLock group at this base URL: check the URL (and its secret) and client_params.group"

/* Whether the request may not touch group (1: its refusal is queued, and *r is what to return), or 0. */
static int refused_here(struct MHD_Connection *connection, int endpoint, const struct request *rq, const char *id,
                        const char *group, enum MHD_Result *r) {
    char why[800];
    if (with_secrets) {
        const char *own = group_of_secret(rq->secret);
        if (!own || strcmp(own, group) != 0) {
            counts[endpoint][RES_BAD]++;
            *r = refuse(connection, MHD_HTTP_NOT_FOUND, "invalid_client_identity", NOT_HERE);
            return 1;
        }
    } else if (!all_groups) {
        int known = 0;
        for (int i = 0; i < n_served && !known; i++) known = strcmp(served[i].group, group) == 0;
        if (!known) {
            counts[endpoint][RES_BAD]++;
            *r = refuse(connection, MHD_HTTP_FORBIDDEN, "unknown_group", "this server does not serve the group in client_params.group");
            return 1;
        }
    }
    const char *no = with_client_ca ? certificate_refusal(connection, id, why, sizeof why) : NULL;
    if (no) {
        counts[endpoint][RES_BAD]++;
        *r = refuse(connection, MHD_HTTP_FORBIDDEN, "invalid_client_identity", no);
        return 1;
    }
    return 0;
}

static enum MHD_Result written(struct MHD_Connection *connection, struct request *rq);

static enum MHD_Result fleetlock(struct MHD_Connection *connection, int endpoint, struct request *rq) {
    const char *guard = MHD_lookup_connection_value(connection, MHD_HEADER_KIND, "fleet-lock-protocol");
    if (!guard || strcmp(guard, "true") != 0) {
        counts[endpoint][RES_BAD]++;
        return refuse(connection, MHD_HTTP_BAD_REQUEST, "invalid_client_identity",
                      "the header fleet-lock-protocol: true is missing (FleetLock requires it)");
    }
    if (rq->oversized) {
        counts[endpoint][RES_BAD]++;
        return refuse(connection, MHD_HTTP_CONTENT_TOO_LARGE, "invalid_client_identity", "the body is larger than 4 KiB");
    }
    json_object *root = NULL;
    const char *id = NULL, *group = NULL;
    const char *why = client_params(rq, &root, &id, &group);
    if (why) {
        json_object_put(root);
        counts[endpoint][RES_BAD]++;
        return refuse(connection, MHD_HTTP_BAD_REQUEST, "invalid_client_identity", why);
    }
    if (!valid_group(group)) {
        json_object_put(root);
        counts[endpoint][RES_BAD]++;
        return refuse(connection, MHD_HTTP_BAD_REQUEST, "unknown_group",
                      "client_params.group must be 1 to 128 of the characters a-z A-Z 0-9 . - (and not . or ..)");
    }
    enum MHD_Result refusal;
    if (refused_here(connection, endpoint, rq, id, group, &refusal)) {
        json_object_put(root);
        return refusal;
    }
    const char *name = strcmp(group, "default") == 0 ? "" : group;
    char reason[600];
    struct group_queue *q = queue_for(name, 0);
    int exists = q ? 1 : group_exists(name, reason, sizeof reason);
    if (exists == 0 && endpoint == EP_STEADY) {
        /* No semaphore, so no slot held: nothing to give back. */
        json_object_put(root);
        counts[endpoint][RES_OK]++;
        return answer(connection, MHD_HTTP_OK, "{}\n", "application/json");
    }
    if (exists == 0) {
        snprintf(reason, sizeof reason, "group \"%s\" has no reboot semaphore in etcd: create it with locksmithctl -group %s set-max N", group, group);
        json_object_put(root);
        counts[endpoint][RES_BAD]++;
        return refuse(connection, MHD_HTTP_BAD_REQUEST, "unknown_group", reason);
    }
    if (exists < 0) {
        json_object_put(root);
        counts[endpoint][RES_ERROR]++;
        etcd_failed(reason, 1);
        return refuse(connection, MHD_HTTP_SERVICE_UNAVAILABLE, endpoint == EP_PRE ? "failed_lock" : "failed_unlock", ETCD_FAILED);
    }
    /* The change and what it points into live with the request until its answer (finished()). */
    rq->queued = 1;
    rq->endpoint = endpoint;
    rq->root = root;
    rq->group = group;
    rq->queue = q ? q : queue_for(name, 1);
    rq->change = (struct change){.id = id, .give_back = endpoint == EP_STEADY, .connection = connection};
    int queued = enqueue(rq->queue, &rq->change);
    if (queued == 1) return MHD_YES;  /* resumed when written */
    if (queued < 0) {
        rq->change.result = queued;
        rq->change.done = 1;
        if (queued == -ENOMEM)
            snprintf(rq->change.text, sizeof rq->change.text, "the server serves at most %d groups", MAX_GROUPS);
        else if (queued == -EAGAIN)
            snprintf(rq->change.text, sizeof rq->change.text, "more than %d requests wait for this group's next write", MAX_BATCH);
        else
            snprintf(rq->change.text, sizeof rq->change.text, "the server is stopping");
    }
    return written(connection, rq);
}

/* The answer to a request whose change is written (or refused before it was queued). */
static enum MHD_Result written(struct MHD_Connection *connection, struct request *rq) {
    int endpoint = rq->endpoint, r = rq->change.result;
    const char *text = rq->change.text, *id = rq->change.id, *group = rq->group;
    if (r == -EINVAL && rq->change.bad_group) {
        counts[endpoint][RES_BAD]++;
        return refuse(connection, MHD_HTTP_BAD_REQUEST, "unknown_group", text);
    }
    if (r == 0 || (endpoint == EP_PRE && r == -EEXIST) || (endpoint == EP_STEADY && r == -ENOENT)) {
        counts[endpoint][RES_OK]++;
        return answer(connection, MHD_HTTP_OK, "{}\n", "application/json");
    }
    if (r == -EINVAL) {
        counts[endpoint][RES_BAD]++;
        return refuse(connection, MHD_HTTP_BAD_REQUEST, "invalid_client_identity", text);
    }
    if (r == -EBUSY) {
        counts[endpoint][RES_REFUSED]++;
        return refuse(connection, MHD_HTTP_INTERNAL_SERVER_ERROR, "failed_lock", text);
    }
    if (r == -ESHUTDOWN || r == -EAGAIN) {
        counts[endpoint][RES_ERROR]++;
        return refuse(connection, MHD_HTTP_SERVICE_UNAVAILABLE, endpoint == EP_PRE ? "failed_lock" : "failed_unlock", text);
    }
    char id_shown[2 * MAX_ID + 8], group_shown[2 * MAX_GROUP + 8];
    fprintf(stderr, "locksmith-fleetlockd: %s %s (group %s): %s\n", endpoint_names[endpoint], quoted(id, id_shown, sizeof id_shown),
            quoted(group, group_shown, sizeof group_shown), text);
    /* What etcd said stays with the operator; a stored value that is not a semaphore names its key. */
    if (r != -EBADMSG) {
        etcd_failed(text, 0);
        text = ETCD_FAILED;
    }
    counts[endpoint][RES_ERROR]++;
    /* A stored value that is not a semaphore is reported, never overwritten. etcd out of reach is
     * 503: the change may have been made without its answer arriving (a client takes the slot as
     * perhaps held); a plain refusal (all slots taken) stays airlock's 500. */
    unsigned status = r == -ECONNREFUSED || r == -ETIMEDOUT ? MHD_HTTP_SERVICE_UNAVAILABLE : MHD_HTTP_INTERNAL_SERVER_ERROR;
    return refuse(connection, status,
                  r == -EBADMSG ? "failed_sem_init" : endpoint == EP_PRE ? "failed_lock" : "failed_unlock", text);
}

/* ---- health and metrics -------------------------------------------------------------------- */

static enum MHD_Result health(struct MHD_Connection *connection) {
    char text[600] = "";
    pthread_mutex_lock(&admin_lock);
    if (!admin) admin = make_client();
    locksmith_groups *g = NULL;
    /* Listing the groups asks etcd without creating anything. */
    int r = admin ? locksmith_client_groups(admin, &g) : -ENOMEM;
    if (r < 0) snprintf(text, sizeof text, "%s", admin ? locksmith_client_last_error(admin) : "cannot make an etcd client");
    pthread_mutex_unlock(&admin_lock);
    locksmith_groups_free(g);
    if (r < 0) {
        etcd_failed(text, 1);
        return answer(connection, MHD_HTTP_SERVICE_UNAVAILABLE, ETCD_FAILED "\n", "text/plain; charset=utf-8");
    }
    return answer(connection, MHD_HTTP_OK, "ok\n", "text/plain; charset=utf-8");
}

/* A Prometheus label value: backslash, double quote and newline escaped. */
static void label(FILE *out, const char *value) {
    for (; *value; value++) {
        if (*value == '\\' || *value == '"') fputc('\\', out);
        if (*value == '\n') { fputs("\\n", out); continue; }
        fputc(*value, out);
    }
}

static enum MHD_Result metrics(struct MHD_Connection *connection) {
    char *body = NULL;
    size_t size = 0;
    FILE *out = open_memstream(&body, &size);
    if (!out) return MHD_NO;
    fputs("# HELP locksmith_fleetlock_requests_total FleetLock requests answered, by endpoint and result.\n"
          "# TYPE locksmith_fleetlock_requests_total counter\n", out);
    for (int e = 0; e < EP_COUNT; e++)
        for (int r = 0; r < RES_COUNT; r++)
            fprintf(out, "locksmith_fleetlock_requests_total{endpoint=\"%s\",result=\"%s\"} %lld\n", endpoint_names[e],
                    result_names[r], (long long)counts[e][r]);
    fprintf(out, "# HELP locksmith_fleetlock_etcd_seconds Time spent in etcd operations (lock, unlock).\n"
                 "# TYPE locksmith_fleetlock_etcd_seconds summary\n"
                 "locksmith_fleetlock_etcd_seconds_sum %.6f\nlocksmith_fleetlock_etcd_seconds_count %lld\n"
                 "# HELP locksmith_fleetlock_conflict_retries_total Operations tried again after losing a compare-and-swap.\n"
                 "# TYPE locksmith_fleetlock_conflict_retries_total counter\n"
                 "locksmith_fleetlock_conflict_retries_total %lld\n"
                 "# HELP locksmith_fleetlock_writes_total Writes of a group's semaphore, each for a batch of requests.\n"
                 "# TYPE locksmith_fleetlock_writes_total counter\nlocksmith_fleetlock_writes_total %lld\n"
                 "# HELP locksmith_fleetlock_batched_requests_total Requests answered through those writes.\n"
                 "# TYPE locksmith_fleetlock_batched_requests_total counter\nlocksmith_fleetlock_batched_requests_total %lld\n"
                 "# HELP locksmith_fleetlock_waiting_requests Requests waiting for their group's write, or in it.\n"
                 "# TYPE locksmith_fleetlock_waiting_requests gauge\nlocksmith_fleetlock_waiting_requests %ld\n",
            (double)etcd_micros / 1e6, (long long)etcd_calls, (long long)conflict_rounds, (long long)batches, (long long)batched_changes,
            waiting_requests());
    /* The slots of every group, read now (a listing that creates nothing). */
    locksmith_groups *g = NULL;
    pthread_mutex_lock(&admin_lock);
    if (!admin) admin = make_client();
    int up = admin && locksmith_client_groups(admin, &g) >= 0;
    char why[600] = "";
    if (!up) snprintf(why, sizeof why, "%s", admin ? locksmith_client_last_error(admin) : "cannot make an etcd client");
    pthread_mutex_unlock(&admin_lock);
    if (!up) etcd_failed(why, 1);
    fprintf(out, "# HELP locksmith_fleetlock_etcd_up Whether etcd answered the listing of the groups for this scrape.\n"
                 "# TYPE locksmith_fleetlock_etcd_up gauge\nlocksmith_fleetlock_etcd_up %d\n"
                 "# HELP locksmith_fleetlock_etcd_errors_total etcd operations that failed (clients are told only that etcd failed).\n"
                 "# TYPE locksmith_fleetlock_etcd_errors_total counter\nlocksmith_fleetlock_etcd_errors_total %lld\n"
                 "# HELP locksmith_fleetlock_overdue_connections_total Connections closed for not sending a whole request within %d s.\n"
                 "# TYPE locksmith_fleetlock_overdue_connections_total counter\nlocksmith_fleetlock_overdue_connections_total %lld\n",
            up, (long long)etcd_errors, REQUEST_TIME_S, (long long)overdue_closed);
    pthread_mutex_lock(&etcd_error_lock);
    if (etcd_error_at) {
        fputs("# HELP locksmith_fleetlock_etcd_last_error The last etcd failure (label error), at this Unix time.\n"
              "# TYPE locksmith_fleetlock_etcd_last_error gauge\nlocksmith_fleetlock_etcd_last_error{error=\"", out);
        label(out, etcd_error);
        fprintf(out, "\"} %lld\n", etcd_error_at);
    }
    pthread_mutex_unlock(&etcd_error_lock);
    if (up) {
        fputs("# HELP locksmith_fleetlock_slots Reboot slots by group (FleetLock group default is locksmith's default group \"\").\n"
              "# TYPE locksmith_fleetlock_slots gauge\n", out);
        for (int i = 0, n = locksmith_groups_count(g); i < n; i++) {
            const locksmith_semaphore *s = locksmith_groups_semaphore(g, i);
            int max = 0, free_slots = 0;
            if (!s || locksmith_semaphore_get_max(s, &max) < 0 || locksmith_semaphore_get_available(s, &free_slots) < 0) continue;
            const char *name = locksmith_groups_name(g, i);
            static const char *states[3] = {"max", "free", "held"};
            int values[3] = {max, free_slots, locksmith_semaphore_holder_count(s)};
            for (int k = 0; k < 3; k++) {
                fputs("locksmith_fleetlock_slots{group=\"", out);
                label(out, *name ? name : "default");
                fprintf(out, "\",state=\"%s\"} %d\n", states[k], values[k]);
            }
        }
    }
    locksmith_groups_free(g);
    if (fclose(out) != 0) {
        free(body);
        return MHD_NO;
    }
    enum MHD_Result r = answer(connection, MHD_HTTP_OK, body, "text/plain; version=0.0.4; charset=utf-8");
    free(body);
    return r;
}

/* ---- the HTTP handler ---------------------------------------------------------------------- */

/* The FleetLock call a path names (EP_PRE, EP_STEADY, or -1): /v1/CALL at the root, or with
 * --group-secrets /SECRET/v1/CALL (the secret is copied to secret; "" when the path has none, or
 * none that could be one, which no group's secret matches). */
static int endpoint_of(const char *url, char *secret) {
    static const char *calls[EP_COUNT] = {"/v1/pre-reboot", "/v1/steady-state"};
    size_t n = strlen(url);
    *secret = 0;
    for (int e = 0; e < EP_COUNT; e++) {
        size_t c = strlen(calls[e]);
        if (n < c || strcmp(url + n - c, calls[e]) != 0) continue;
        size_t p = n - c;
        if (p == 0) return e;
        if (!with_secrets) return -1;
        if (url[0] == '/' && p - 1 <= MAX_SECRET && !memchr(url + 1, '/', p - 1)) {
            memcpy(secret, url + 1, p - 1);
            secret[p - 1] = 0;
        }
        return e;
    }
    return -1;
}

static enum MHD_Result count_framing(void *cls, enum MHD_ValueKind kind, const char *key, const char *value) {
    (void)kind;
    (void)value;
    int *n = cls;
    if (strcasecmp(key, MHD_HTTP_HEADER_CONTENT_LENGTH) == 0) n[0]++;
    if (strcasecmp(key, MHD_HTTP_HEADER_TRANSFER_ENCODING) == 0) n[1]++;
    return MHD_YES;
}

/* Why a request's length is ambiguous, or NULL: two lengths, or a length and chunks, are read one
 * way here and perhaps another by a proxy in front (request smuggling). */
static const char *ambiguous_framing(struct MHD_Connection *connection) {
    int n[2] = {0, 0};
    MHD_get_connection_values(connection, MHD_HEADER_KIND, count_framing, n);
    if (n[0] > 1) return "the request has more than one Content-Length header";
    if (n[1] > 1) return "the request has more than one Transfer-Encoding header";
    if (n[0] && n[1]) return "the request has both Content-Length and Transfer-Encoding: its length is ambiguous";
    return NULL;
}

static enum MHD_Result handle(void *cls, struct MHD_Connection *connection, const char *url, const char *method,
                              const char *version, const char *upload, size_t *upload_size, void **state) {
    (void)cls;
    (void)version;
    char secret[MAX_SECRET + 1];
    int endpoint = endpoint_of(url, secret);
    int fleetlock_call = endpoint >= 0 && strcmp(method, MHD_HTTP_METHOD_POST) == 0;
    struct request *rq = *state;
    if (!rq) {
        /* The first call: only the headers are in. */
        if (!(rq = calloc(1, sizeof *rq))) return MHD_NO;
        *state = rq;
        const char *ambiguous = ambiguous_framing(connection);
        if (ambiguous) {
            rq->refused = 1;
            return refuse(connection, MHD_HTTP_BAD_REQUEST, "invalid_client_identity", ambiguous);
        }
        if (fleetlock_call) {
            memcpy(rq->secret, secret, sizeof rq->secret);
            return MHD_YES;
        }
    }
    if (rq->refused) {
        *upload_size = 0;
        return MHD_YES;
    }
    if (rq->queued) {
        /* Resumed: its change is written. */
        if (!rq->change.done) return MHD_YES;  /* (never: resumed only when done) */
        return written(connection, rq);
    }
    if (fleetlock_call) {
        if (*upload_size) {
            if (!rq->oversized && rq->size + *upload_size <= MAX_BODY) {
                char *grown = realloc(rq->body, rq->size + *upload_size + 1);
                if (!grown) return MHD_NO;
                memcpy(grown + rq->size, upload, *upload_size);
                rq->size += *upload_size;
                grown[rq->size] = 0;
                rq->body = grown;
            } else {
                /* Read and dropped: the answer says why once the body is in. */
                rq->oversized = 1;
                free(rq->body);
                rq->body = NULL;
                rq->size = 0;
            }
            *upload_size = 0;
            return MHD_YES;
        }
        set_deadline(connection, 0);  /* the whole request is in: its answer may wait for etcd */
        return fleetlock(connection, endpoint, rq);
    }
    if (*upload_size) {
        *upload_size = 0;  /* a body on another request is read and dropped */
        return MHD_YES;
    }
    if (endpoint >= 0) return refuse(connection, MHD_HTTP_METHOD_NOT_ALLOWED, "invalid_client_identity", "FleetLock requests are POST");
    if (strcmp(method, MHD_HTTP_METHOD_GET) == 0 && strcmp(url, "/health") == 0) return health(connection);
    if (strcmp(method, MHD_HTTP_METHOD_GET) == 0 && strcmp(url, "/metrics") == 0) return metrics(connection);
    return answer(connection, MHD_HTTP_NOT_FOUND, "not found: FleetLock is POST /v1/pre-reboot and POST /v1/steady-state\n",
                  "text/plain; charset=utf-8");
}

static void finished(void *cls, struct MHD_Connection *connection, void **state, enum MHD_RequestTerminationCode why) {
    (void)cls;
    (void)why;
    set_deadline(connection, 1);  /* the next request on the connection has its own time */
    struct request *rq = *state;
    if (rq) {
        json_object_put(rq->root);
        free(rq->body);
        free(rq);
        *state = NULL;
    }
}

/* libmicrohttpd has a line for every connection a client drops or the sweep shuts down: clients
 * could fill the journal with them. At most MHD_LINES a minute, then how many were left out. */
#define MHD_LINES 10
static pthread_mutex_t mhd_log_lock = PTHREAD_MUTEX_INITIALIZER;
static long long mhd_log_minute;
static int mhd_log_said, mhd_log_dropped;

/* Starts a new minute if this is one, saying how many lines the last left out. Under mhd_log_lock. */
static void mhd_log_roll(void) {
    long long minute = now_us() / 60000000;
    if (minute == mhd_log_minute) return;
    if (mhd_log_dropped)
        fprintf(stderr, "locksmith-fleetlockd: libmicrohttpd: %d more messages in the last minute were left out\n", mhd_log_dropped);
    mhd_log_minute = minute;
    mhd_log_said = mhd_log_dropped = 0;
}

static void log_mhd(void *cls, const char *format, va_list ap) {
    (void)cls;
    pthread_mutex_lock(&mhd_log_lock);
    mhd_log_roll();
    if (mhd_log_said < MHD_LINES) {
        mhd_log_said++;
        fputs("locksmith-fleetlockd: libmicrohttpd: ", stderr);
        vfprintf(stderr, format, ap);
    } else {
        mhd_log_dropped++;
    }
    pthread_mutex_unlock(&mhd_log_lock);
}

/* Gives back the pages of the file mappings (program, libraries) that start-up touched and the
 * requests do not use: the kernel reads back what is used again (MADV_PAGEOUT, Linux 5.4+;
 * elsewhere nothing happens). Pages other processes map too stay where they are; of code
 * (libcrypto, gnutls, libc: 8 MB of the server's resident pages on a machine where other
 * processes map them), the server lets go of its own mappings (MADV_DONTNEED: the next use maps
 * the page again from the page cache). Only code, which is never written: on data MADV_DONTNEED
 * would throw away what was written. */
static void page_out_code(void) {
    FILE *maps = fopen("/proc/self/maps", "re");
    if (!maps) return;
    char line[512];
    while (fgets(line, sizeof line, maps)) {
        unsigned long start, end;
        char perms[8];
        int path = 0;
        if (sscanf(line, "%lx-%lx %7s %*s %*s %*s %n", &start, &end, perms, &path) < 3 || path == 0 || line[path] != '/') continue;
        if (strcmp(perms, "r-xp") && strcmp(perms, "r--p") && strcmp(perms, "rw-p")) continue;
        madvise((void *)start, end - start, 21 /* MADV_PAGEOUT */);
        if (strcmp(perms, "r-xp") == 0) madvise((void *)start, end - start, MADV_DONTNEED);
    }
    fclose(maps);
}

/* ---- start-up ------------------------------------------------------------------------------ */

/* ADDR:PORT as a socket address ([::1]:3333 for IPv6). 0, or -1 with a message. */
static int parse_listen(const char *text, struct sockaddr_storage *addr, socklen_t *len) {
    char host[256];
    const char *colon = strrchr(text, ':');
    if (!colon || colon == text || !colon[1] || (size_t)(colon - text) >= sizeof host) {
        fprintf(stderr, "locksmith-fleetlockd: --listen \"%s\": want ADDR:PORT, such as 127.0.0.1:3333 or [::1]:3333\n", text);
        return -1;
    }
    memcpy(host, text, (size_t)(colon - text));
    host[colon - text] = 0;
    char *h = host;
    if (h[0] == '[') {
        size_t n = strlen(h);
        if (n < 3 || h[n - 1] != ']') {
            fprintf(stderr, "locksmith-fleetlockd: --listen \"%s\": an IPv6 address goes in brackets: [::1]:3333\n", text);
            return -1;
        }
        h[n - 1] = 0;
        h++;
    }
    char *end = NULL;
    long port = strtol(colon + 1, &end, 10);
    if (*end || port < 1 || port > 65535) {
        fprintf(stderr, "locksmith-fleetlockd: --listen \"%s\": the port must be 1 to 65535\n", text);
        return -1;
    }
    struct addrinfo hints = {.ai_flags = AI_NUMERICSERV | AI_PASSIVE, .ai_socktype = SOCK_STREAM}, *found = NULL;
    int r = getaddrinfo(h, colon + 1, &hints, &found);
    if (r != 0 || !found) {
        fprintf(stderr, "locksmith-fleetlockd: --listen \"%s\": %s\n", text, gai_strerror(r));
        return -1;
    }
    memcpy(addr, found->ai_addr, found->ai_addrlen);
    *len = found->ai_addrlen;
    freeaddrinfo(found);
    return 0;
}

static char *read_file(const char *path, const char *what) {
    FILE *f = fopen(path, "re");
    if (!f) {
        fprintf(stderr, "locksmith-fleetlockd: %s %s: %s\n", what, path, strerror(errno));
        return NULL;
    }
    char *data = malloc(1 << 20);
    size_t n = data ? fread(data, 1, (1 << 20) - 1, f) : 0;
    int bad = !data || ferror(f) || !feof(f);
    fclose(f);
    if (bad || n == 0) {
        fprintf(stderr, "locksmith-fleetlockd: %s %s: %s\n", what, path, !data ? "out of memory" : n == 0 ? "empty" : "larger than 1 MiB or unreadable");
        free(data);
        return NULL;
    }
    data[n] = 0;
    return data;
}

/* Adds group to the groups served (once); 0, or -1 when there are too many. */
static int serve(const char *group) {
    for (int i = 0; i < n_served; i++)
        if (strcmp(served[i].group, group) == 0) return 0;
    if (n_served == MAX_SERVED) return -1;
    snprintf(served[n_served++].group, sizeof served[0].group, "%s", group);
    return 0;
}

static int secret_char(char ch) {
    return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') || ch == '.' || ch == '_' || ch == '~' || ch == '-';
}

/* Reads --group-secrets: lines "GROUP SECRET", blank lines and # comments; each group is served
 * with its secret. 0, or -1 with a message naming the file and line. */
static int load_secrets(const char *path) {
    char *text = read_file(path, "--group-secrets");
    if (!text) return -1;
    struct stat st;
    if (stat(path, &st) == 0 && (st.st_mode & S_IROTH))
        fprintf(stderr, "locksmith-fleetlockd: warning: --group-secrets %s: every user can read it (mode %04o): chmod o-r it\n", path,
                (unsigned)(st.st_mode & 07777));
    int line_no = 0, bad = 0;
    char *save = NULL;
    for (char *line = text, *next; line && !bad; line = next) {
        next = strchr(line, '\n');
        if (next) *next++ = 0;
        line_no++;
        char *group = strtok_r(line, " \t\r", &save), *secret = group ? strtok_r(NULL, " \t\r", &save) : NULL;
        if (!group || group[0] == '#') continue;
        const char *why = NULL;
        if (!secret || strtok_r(NULL, " \t\r", &save)) why = "want a line GROUP SECRET";
        else if (!valid_group(group)) why = "the group must be 1 to 128 of a-z A-Z 0-9 . - (default: the default group)";
        else if (strlen(secret) < MIN_SECRET || strlen(secret) > MAX_SECRET) why = "a secret is at least 16 and at most 128 characters";
        for (const char *c = secret; !why && *c; c++)
            if (!secret_char(*c)) why = "a secret is made of A-Z a-z 0-9 . _ ~ - (it goes in a URL's path as it is)";
        for (int i = 0; !why && i < n_served; i++) {
            if (strcmp(served[i].group, group) == 0) why = "the group is named twice";
            else if (strcmp(served[i].secret, secret) == 0) why = "two groups have the same secret";
        }
        if (!why && serve(group) < 0) why = "too many groups";
        if (why) {
            fprintf(stderr, "locksmith-fleetlockd: --group-secrets %s:%d: %s\n", path, line_no, why);
            bad = 1;
            break;
        }
        struct served *s = &served[n_served - 1];
        snprintf(s->secret, sizeof s->secret, "%s", secret);
        s->secret_len = strlen(secret);
    }
    explicit_bzero(text, strlen(text) + 1);
    free(text);
    if (!bad && n_served == 0) {
        fprintf(stderr, "locksmith-fleetlockd: --group-secrets %s names no group (want lines GROUP SECRET)\n", path);
        bad = 1;
    }
    return bad ? -1 : 0;
}

/* Whether a listening address is this machine's loopback (only local users reach it). */
static int loopback(const struct sockaddr_storage *a) {
    if (a->ss_family == AF_INET) return (ntohl(((const struct sockaddr_in *)a)->sin_addr.s_addr) >> 24) == 127;
    if (a->ss_family == AF_INET6) {
        const struct in6_addr *x = &((const struct sockaddr_in6 *)a)->sin6_addr;
        return IN6_IS_ADDR_LOOPBACK(x) || (IN6_IS_ADDR_V4MAPPED(x) && x->s6_addr[12] == 127);
    }
    return 0;
}

int main(int argc, char **argv) {
    struct option options[MAX_CLIENT_OPTIONS + 8] = {
        {"listen", required_argument, 0, OPT_LISTEN}, {"threads", required_argument, 0, OPT_THREADS},
        {"tls-cert", required_argument, 0, OPT_TLS_CERT}, {"tls-key", required_argument, 0, OPT_TLS_KEY},
        {"tls-client-ca", required_argument, 0, OPT_TLS_CLIENT_CA}, {"group", required_argument, 0, OPT_GROUP},
        {"all-groups", no_argument, 0, OPT_ALL_GROUPS}, {"group-secrets", required_argument, 0, OPT_GROUP_SECRETS},
        {"connections-per-address", required_argument, 0, OPT_PER_ADDRESS},
        {"help", no_argument, 0, OPT_HELP}, {"version", no_argument, 0, OPT_VERSION},
    };
    const char *names[MAX_CLIENT_OPTIONS] = {0};
    const char *listen[MAX_LISTEN];
    const char *cert_path = NULL, *key_path = NULL, *client_ca_path = NULL, *secrets_path = NULL;
    const char *groups[MAX_SERVED];
    int n_listen = 0, threads = 32, per_address = PER_ADDRESS_DEFAULT, n_groups = 0, n_options = 11, opt;

    /* One malloc arena for all threads: the workers' allocations are small and short, and an
     * arena per thread would keep megabytes resident after a burst of load. */
    mallopt(M_ARENA_MAX, 1);
    for (int i = 0; i < MAX_CLIENT_OPTIONS && (names[i] = locksmith_client_option_name(i)); i++)
        options[n_options++] = (struct option){flag_name(names[i]), required_argument, 0, OPT_CLIENT + i};
    while ((opt = getopt_long_only(argc, argv, "h", options, NULL)) != -1) {
        switch (opt) {
        case OPT_HELP: usage(stdout); return 0;
        case OPT_VERSION: printf("locksmith-fleetlockd %s\n", locksmith_version()); return 0;
        case OPT_LISTEN:
            if (n_listen == MAX_LISTEN) {
                fprintf(stderr, "locksmith-fleetlockd: at most %d --listen addresses\n", MAX_LISTEN);
                return 2;
            }
            listen[n_listen++] = optarg;
            break;
        case OPT_THREADS:
        case OPT_PER_ADDRESS: {
            char *end = NULL;
            long n = strtol(optarg, &end, 10), most = opt == OPT_THREADS ? 256 : CONNECTION_LIMIT;
            if (!*optarg || *end || n < 1 || n > most) {
                fprintf(stderr, "locksmith-fleetlockd: --%s \"%s\": want 1 to %ld\n", opt == OPT_THREADS ? "threads" : "connections-per-address",
                        optarg, most);
                return 2;
            }
            *(opt == OPT_THREADS ? &threads : &per_address) = (int)n;
            break;
        }
        case OPT_TLS_CERT: cert_path = optarg; break;
        case OPT_TLS_KEY: key_path = optarg; break;
        case OPT_TLS_CLIENT_CA: client_ca_path = optarg; break;
        case OPT_GROUP_SECRETS: secrets_path = optarg; break;
        case OPT_ALL_GROUPS: all_groups = 1; break;
        case OPT_GROUP:
            if (!valid_group(optarg)) {
                fprintf(stderr, "locksmith-fleetlockd: --group \"%s\": a FleetLock group is 1 to 128 of a-z A-Z 0-9 . - "
                                "(default: the default group)\n", optarg);
                return 2;
            }
            if (n_groups == MAX_SERVED) {
                fprintf(stderr, "locksmith-fleetlockd: at most %d --group names\n", MAX_SERVED);
                return 2;
            }
            groups[n_groups++] = optarg;
            break;
        default: {
            if (opt < OPT_CLIENT || opt >= OPT_CLIENT + MAX_CLIENT_OPTIONS || !names[opt - OPT_CLIENT]) {
                usage(stderr);
                return 2;
            }
            const char *name = names[opt - OPT_CLIENT];
            if (strcmp(name, "etcd-password") == 0) {
                fputs("locksmith-fleetlockd: --etcd-password would show the password in the process list: "
                      "use --etcd-password-file or LOCKSMITHCTL_ETCD_PASSWORD\n", stderr);
                return 2;
            }
            if (n_settings == MAX_CLIENT_OPTIONS) {
                fputs("locksmith-fleetlockd: too many etcd options\n", stderr);
                return 2;
            }
            /* A bad value is a bad command line: said now, with the flag's name. */
            locksmith_client *probe = NULL;
            int bad = locksmith_client_new(&probe) < 0 ? -ENOMEM : locksmith_client_set(probe, name, optarg);
            if (bad < 0) {
                fprintf(stderr, "locksmith-fleetlockd: --%s: %s\n", flag_name(name),
                        probe ? locksmith_client_last_error(probe) : locksmith_last_error());
                locksmith_client_free(probe);
                return bad == -EINVAL ? 2 : 1;
            }
            locksmith_client_free(probe);
            settings[n_settings].name = name;
            settings[n_settings++].value = optarg;
        }
        }
    }
    if (optind < argc) {
        fprintf(stderr, "locksmith-fleetlockd: unexpected argument \"%s\" (see --help)\n", argv[optind]);
        return 2;
    }
    if (!cert_path != !key_path) {
        fputs("locksmith-fleetlockd: --tls-cert and --tls-key go together\n", stderr);
        return 2;
    }
    if (client_ca_path && !cert_path) {
        fputs("locksmith-fleetlockd: --tls-client-ca needs --tls-cert and --tls-key (client certificates are a TLS matter)\n", stderr);
        return 2;
    }
    if (all_groups && (n_groups || secrets_path)) {
        fputs("locksmith-fleetlockd: --all-groups serves every group: it goes with neither --group nor --group-secrets\n", stderr);
        return 2;
    }
    if (n_listen == 0) listen[n_listen++] = DEFAULT_LISTEN;
    struct sockaddr_storage addrs[MAX_LISTEN];
    socklen_t lens[MAX_LISTEN];
    for (int i = 0; i < n_listen; i++)
        if (parse_listen(listen[i], &addrs[i], &lens[i]) < 0) return 2;

    if (locksmith_config_load(&node_config) < 0)
        fprintf(stderr, "locksmith-fleetlockd: warning: the daemon's LOCKSMITHD_* settings are not used: %s\n", locksmith_last_error());
    /* One client now: a bad setting stops the server before it listens, and its warnings are said once. */
    locksmith_client *first = make_client();
    if (!first) return 1;
    if (locksmith_client_prepare(first) < 0) {
        fprintf(stderr, "locksmith-fleetlockd: %s\n", locksmith_client_last_error(first));
        locksmith_client_free(first);
        return 1;
    }
    for (int i = 0, n = locksmith_client_warning_count(first); i < n; i++)
        fprintf(stderr, "locksmith-fleetlockd: warning: %s\n", locksmith_client_warning(first, i));
    locksmith_client_free(first);

    if (secrets_path) {
        if (load_secrets(secrets_path) < 0) return 1;
        with_secrets = 1;
        /* A group named on the command line must have a secret: else it would be served nowhere. */
        for (int i = 0; i < n_groups; i++) {
            int found = 0;
            for (int k = 0; k < n_served && !found; k++) found = strcmp(served[k].group, groups[i]) == 0;
            if (!found) {
                fprintf(stderr, "locksmith-fleetlockd: --group %s has no secret in --group-secrets %s\n", groups[i], secrets_path);
                return 2;
            }
        }
    } else {
        for (int i = 0; i < n_groups; i++) serve(groups[i]);
        if (!all_groups && n_groups == 0) serve("default");
    }
    char *cert = NULL, *key = NULL, *client_ca = NULL;
    if (cert_path && (!(cert = read_file(cert_path, "--tls-cert")) || !(key = read_file(key_path, "--tls-key")) ||
                      (client_ca_path && !(client_ca = read_file(client_ca_path, "--tls-client-ca"))))) {
        free(cert);
        free(key);
        return 1;
    }
    with_client_ca = client_ca != NULL;
    for (int i = 0; i < n_listen; i++)
        if (!loopback(&addrs[i]) && !(cert && (with_secrets || with_client_ca))) {
            fprintf(stderr, "locksmith-fleetlockd: warning: %s: anyone who can reach it can take and free the reboot slots of the "
                            "groups it serves: give it TLS and --group-secrets or --tls-client-ca (locksmith-fleetlockd(8))\n", listen[i]);
            break;
        }
    /* As many descriptors as its connections need (the unit sets both limits). */
    struct rlimit files;
    if (getrlimit(RLIMIT_NOFILE, &files) == 0 && files.rlim_cur < files.rlim_max) {
        files.rlim_cur = files.rlim_max;
        setrlimit(RLIMIT_NOFILE, &files);
    }
    sigset_t signals;
    sigemptyset(&signals);
    sigaddset(&signals, SIGINT);
    sigaddset(&signals, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &signals, NULL);  /* the workers inherit it; main waits for them */
    signal(SIGPIPE, SIG_IGN);

    struct MHD_Daemon *daemons[MAX_LISTEN] = {0};
    for (int i = 0; i < n_listen; i++) {
        unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL | MHD_USE_ERROR_LOG | MHD_ALLOW_SUSPEND_RESUME |
                         (addrs[i].ss_family == AF_INET6 ? MHD_USE_IPv6 : 0) | (cert ? MHD_USE_TLS : 0);
        /* TLS settings only with a certificate (libmicrohttpd refuses them without MHD_USE_TLS); a
         * trust list makes it ask for the client's certificate, checked in refused_here. */
        struct MHD_OptionItem tls[] = {{MHD_OPTION_HTTPS_MEM_CERT, 0, cert}, {MHD_OPTION_HTTPS_MEM_KEY, 0, key},
                                       {MHD_OPTION_HTTPS_PRIORITIES, 0, TLS_PRIORITIES},
                                       {client_ca ? MHD_OPTION_HTTPS_MEM_TRUST : MHD_OPTION_END, 0, client_ca},
                                       {MHD_OPTION_END, 0, NULL}};
        daemons[i] = MHD_start_daemon(flags, 0, NULL, NULL, handle, NULL, MHD_OPTION_EXTERNAL_LOGGER, log_mhd, NULL,
                                      MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&addrs[i], MHD_OPTION_THREAD_POOL_SIZE, (unsigned)threads,
                                      MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)CONNECTION_TIMEOUT_S,
                                      MHD_OPTION_CONNECTION_LIMIT, (unsigned)CONNECTION_LIMIT,
                                      MHD_OPTION_PER_IP_CONNECTION_LIMIT, (unsigned)per_address,
                                      MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)CONNECTION_MEMORY,
                                      MHD_OPTION_NOTIFY_COMPLETED, finished, NULL,
                                      MHD_OPTION_NOTIFY_CONNECTION, notify_connection, NULL,
                                      MHD_OPTION_ARRAY, cert ? tls : &tls[4], MHD_OPTION_END);
        if (!daemons[i]) {
            fprintf(stderr, "locksmith-fleetlockd: cannot listen on %s (in use, or not an address of this machine?)\n", listen[i]);
            for (int j = 0; j < i; j++) MHD_stop_daemon(daemons[j]);
            return 1;
        }
        fprintf(stderr, "locksmith-fleetlockd: serving FleetLock on %s://%s/\n", cert ? "https" : "http", listen[i]);
    }
    page_out_code();
    sd_notify(0, "READY=1\nSTATUS=serving FleetLock");

    /* Until a signal: every second, overdue connections are closed; once a burst of requests is
     * over (some since the last look, none in the last 5 s), hand back what it left: the heap it
     * freed (glibc keeps it otherwise) and the code pages it read in, as at start-up. The
     * server's size after a load is then its size at rest; the next burst reads back the code it
     * uses from the page cache. */
    long long seen = 0, trimmed = 0;
    for (int tick = 1;; tick++) {
        struct timespec every = {1, 0};
        if (sigtimedwait(&signals, NULL, &every) >= 0) break;
        close_overdue();
        pthread_mutex_lock(&mhd_log_lock);
        mhd_log_roll();
        pthread_mutex_unlock(&mhd_log_lock);
        if (tick % 5) continue;
        long long now = 0;
        for (int e = 0; e < EP_COUNT; e++)
            for (int r = 0; r < RES_COUNT; r++) now += counts[e][r];
        if (now == seen && now != trimmed) {
            malloc_trim(0);
            page_out_code();
            trimmed = now;
        }
        seen = now;
    }
    stopping = 1;
    sd_notify(0, "STOPPING=1");
    /* The writes under way end and answer their requests (no new request is queued now), so that
     * no connection is left suspended when the daemons stop. Bounded by the etcd client's own
     * timeouts; a second's polls are nothing beside them. */
    for (int waited = 0; waiting_requests() > 0 && waited < 120000; waited += 10) {
        struct timespec pause = {0, 10 * 1000000L};
        nanosleep(&pause, NULL);
    }
    for (int i = 0; i < n_listen; i++) MHD_stop_daemon(daemons[i]);
    for (int i = 0; i < n_queues; i++) locksmith_client_free(queues[i]->client);
    locksmith_client_free(admin);
    locksmith_config_free(node_config);
    if (key) explicit_bzero(key, strlen(key));
    free(cert);
    free(key);
    free(client_ca);
    return 0;
}
