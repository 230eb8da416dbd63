/* SPDX-License-Identifier: Apache-2.0 */
/*
 * locksmith.h: the C API of liblocksmith, the cluster reboot lock of locksmith-swift.
 *
 * The header is ordered by object: the library itself, values (durations, JSON), this node,
 * then one section per object (semaphore, window, config, client, groups, holder records, daemon
 * settings, the reboot-slot record, locksmithd's files), each function once. The comment of each
 * function ends with the version node that added it ([LOCKSMITH_1] ... [LOCKSMITH_6]); a node's
 * functions are listed exactly in the linker's version script, and a node never changes once
 * released (LOCKSMITH_1 and _2: 0.7.0, _3: 0.8.0, _4: 0.9.0, _5: 0.10.0, _6: 0.11.0).
 *
 * Conventions (the same for every function):
 *   - Fallible functions return int: >= 0 on success, a negative errno on failure, so that
 *     strerror(-r) explains it. -EINVAL always means a bad argument (NULL where a value is
 *     required, a number out of range, a string that is not valid UTF-8 or is too long).
 *   - NULL is never undefined behaviour: a NULL object or a NULL required argument is -EINVAL
 *     (or the accessor's failure value, below), never a crash. So no function is declared
 *     nonnull: the compiler would be free to drop the checks that keep this promise.
 *   - Accessors, the functions that return the value asked for rather than a status, fail one way:
 *     with NULL if they return a pointer, -1 if they return a time or a duration (int64_t), a
 *     negative errno if they return an int (a count, a yes/no); locksmith_last_error() then says
 *     why (since 0.10.0). Newer accessors return an int status and write the value to a ret_*
 *     parameter, like every other fallible function.
 *   - Out-parameters come last and are named ret_*; they are written only on success.
 *   - LOCKSMITH_WARN_UNUSED marks the functions whose result is the point of the call: accessors,
 *     and the functions that hand their result out through required ret_* parameters (which are
 *     not written on failure, so a caller that ignores the status may read what was never set).
 *   - Every _new/_parse/_load has a _free that accepts NULL and returns NULL:
 *         s = locksmith_semaphore_free(s);
 *   - Strings returned through char **ret_* are malloc()ed: free them with free(3), or with
 *     locksmith_free() from languages that cannot call free. "const char *" results are
 *     borrowed: valid until the object they came from is changed or freed.
 *   - Times are Unix seconds (int64_t).
 *   - The library never logs, never exits, never changes the process's signal handling.
 *   - Threads: functions that take no object are thread-safe. An object belongs to one thread at
 *     a time; different objects may be used on different threads at once.
 *   - After a failure, locksmith_last_error() returns a message for people, naming the input
 *     that was wrong.
 *
 * Errors the semaphore functions return:
 *   -EBADMSG  a stored value that is not a semaphore document
 *   -EBUSY    no free slot          -EEXIST  already a holder      -ENOENT  not a holder
 *   -ERANGE   a count that would not fit an int
 */
#ifndef LOCKSMITH_H
#define LOCKSMITH_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ---- Versions ---------------------------------------------------------------------------------
 * The version of this header, for checks at compile time (as libcurl's LIBCURL_VERSION_NUM):
 *     #if LOCKSMITH_VERSION_NUM >= 0x000a00    (0.10.0: locksmith_daemon_settings_get, ...)
 * The library a program runs with may be newer: locksmith_version() says which it is. A test
 * checks that the two agree for the library built with this header. */
#define LOCKSMITH_VERSION "0.11.0"
#define LOCKSMITH_VERSION_MAJOR 0
#define LOCKSMITH_VERSION_MINOR 11
#define LOCKSMITH_VERSION_PATCH 0
/* 0xXXYYZZ: major, minor and patch, one byte each. */
#define LOCKSMITH_VERSION_NUM 0x000b00
/* Whether this header is of version x.y.z or later. */
#define LOCKSMITH_VERSION_AT_LEAST(x, y, z) (LOCKSMITH_VERSION_NUM >= (((x) << 16) | ((y) << 8) | (z)))

#if defined(__GNUC__) || defined(__clang__)
#define LOCKSMITH_WARN_UNUSED __attribute__((warn_unused_result))
#else
#define LOCKSMITH_WARN_UNUSED
#endif

/* The default group's etcd key; a group G lives at LOCKSMITH_KEY_PREFIX "/groups/" escape(G)
 * "/semaphore" (see locksmith_group_key()). */
#define LOCKSMITH_KEY_PREFIX "coreos.com/updateengine/rebootlock"
#define LOCKSMITH_DEFAULT_KEY LOCKSMITH_KEY_PREFIX "/semaphore"

/* A flag: read nothing from the process environment. For callers that must not let the process
 * environment steer them: a PAM module runs inside su or sudo with its caller's environment, a
 * daemon with its unit's. Under secure execution (setuid or setgid programs, AT_SECURE) the
 * library ignores the environment everywhere, as if LOCKSMITH_NO_ENVIRONMENT were given to every
 * call. */
#define LOCKSMITH_NO_ENVIRONMENT (UINT64_C(1) << 0)

/* The objects (opaque; each has its _free). */
typedef struct locksmith_semaphore locksmith_semaphore;
typedef struct locksmith_window locksmith_window;
typedef struct locksmith_config locksmith_config;
typedef struct locksmith_client locksmith_client;
typedef struct locksmith_groups locksmith_groups;
typedef struct locksmith_holder_records locksmith_holder_records;
typedef struct locksmith_daemon_settings locksmith_daemon_settings;

/* ---- The library ------------------------------------------------------------------------------ */

/* The library's version, e.g. "0.11.0". A static string: never free it. [LOCKSMITH_1] */
LOCKSMITH_WARN_UNUSED const char *locksmith_version(void);

/* Frees memory the library returned through a char **ret_* parameter (the same as free(3), for
 * callers such as Python's ctypes that cannot reach the C library's free). NULL is fine.
 * [LOCKSMITH_1] */
void locksmith_free(void *p);

/* Frees a NULL-terminated array of malloc()ed strings (as locksmith_client_environment hands
 * out) and each string in it. NULL is fine. Returns NULL. [LOCKSMITH_4] */
char **locksmith_strv_free(char **strv);

/* A message describing the last failure of a locksmith_* call on the calling thread, or "" if
 * there was none. Borrowed: valid until the next locksmith_* call on this thread. Thread-safe.
 * [LOCKSMITH_1] */
LOCKSMITH_WARN_UNUSED const char *locksmith_last_error(void);

/* ---- Values: durations, backoff, JSON, times ------------------------------------------------- */

/* Parses a duration in Go syntax ("1h30m", "300ms", "-2s") into nanoseconds.
 * Returns 0; -EINVAL if text is NULL or not a duration (or overflows 64 bits). Thread-safe.
 * [LOCKSMITH_1] */
LOCKSMITH_WARN_UNUSED int locksmith_duration_parse(const char *text, int64_t *ret_nanoseconds);

/* Formats nanoseconds as Go's time.Duration prints them: "1h30m0s", "1.5s", "300ms", "0s".
 * *ret is malloc()ed. Returns 0, or -EINVAL if ret is NULL. Thread-safe. [LOCKSMITH_2] */
LOCKSMITH_WARN_UNUSED int locksmith_duration_format(int64_t nanoseconds, char **ret);

/* The wait before retry number attempt (0 for the first): 5 s doubling to at most 300 s.
 * Returns 0; -EINVAL if attempt < 0 or ret_seconds is NULL. Thread-safe. [LOCKSMITH_1] */
LOCKSMITH_WARN_UNUSED int locksmith_backoff_delay(int attempt, int64_t *ret_seconds);

/* text as a JSON string, quotes included, escaped as the original's Go encoder escaped it (", \\,
 * control characters, and <, >, & as \u003c, \u003e, \u0026; invalid UTF-8 as \ufffd): for
 * programs that print JSON. *ret is malloc()ed. Returns 0, or -EINVAL. Thread-safe.
 * [LOCKSMITH_2] */
LOCKSMITH_WARN_UNUSED int locksmith_json_quote(const char *text, char **ret);

/* Unix time t for people, by strftime(3) format (NULL: "%a %Y-%m-%d %H:%M %Z", as in
 * "Thu 2026-11-26 23:00 CET"; at most 256 bytes), in the local time zone (TZ) or, with utc
 * non-zero, in UTC: the one rule for times the programs show (a window in a named zone formats
 * with locksmith_window_format_time). *ret is malloc()ed; it is the number t itself when the
 * time cannot be shown (out of the C library's range, or longer than 255 bytes). Returns 0, or
 * -EINVAL. Thread-safe. [LOCKSMITH_5] */
LOCKSMITH_WARN_UNUSED int locksmith_time_format(int64_t t, const char *format, int utc, char **ret);

/* ---- This node and its groups -----------------------------------------------------------------
 * System paths are read under the root named by the environment variable LOCKSMITH_ROOT when it
 * is set and not empty (for tests and containers), else under "/". The *_at functions take the
 * root as an argument instead (an absolute directory; NULL is "/"; LOCKSMITH_ROOT is not
 * consulted). */

/* The root that system paths are read under by default: $LOCKSMITH_ROOT when it is set and not
 * empty (never under secure execution), else "/". *ret is malloc()ed. Returns 0, or -EINVAL.
 * [LOCKSMITH_2] */
LOCKSMITH_WARN_UNUSED int locksmith_root(char **ret);

/* path (absolute) under root (an absolute directory; NULL or "/" is the system itself): the rule
 * by which every system path is read under LOCKSMITH_ROOT ("/srv/node" and "/etc/machine-id"
 * give "/srv/node/etc/machine-id"). *ret is malloc()ed. Returns 0, or -EINVAL for a NULL path or
 * ret, or a root or path that is not absolute. Thread-safe. [LOCKSMITH_5] */
LOCKSMITH_WARN_UNUSED int locksmith_root_path(const char *root, const char *path, char **ret);

/* This machine's id: /etc/machine-id, trimmed, checked to be 32 lower-case hex digits.
 * Returns 0; -EINVAL if ret_id is NULL; -ENOENT if the file is missing; -EBADMSG if it holds no
 * valid id; another -errno if it cannot be read. *ret_id is malloc()ed. [LOCKSMITH_1] */
LOCKSMITH_WARN_UNUSED int locksmith_machine_id(char **ret_id);

/* This machine's id, as locksmith_machine_id(), read from root's /etc/machine-id (root an
 * absolute directory; NULL is "/"; LOCKSMITH_ROOT is not consulted). Returns 0; -EINVAL if root
 * is not absolute or ret_id is NULL; the errors of locksmith_machine_id() otherwise.
 * [LOCKSMITH_2] */
LOCKSMITH_WARN_UNUSED int locksmith_machine_id_at(const char *root, char **ret_id);

/* The etcd key of group's semaphore: LOCKSMITH_DEFAULT_KEY for NULL or "", otherwise
 * LOCKSMITH_KEY_PREFIX "/groups/<group, escaped as Go's url.QueryEscape>/semaphore" (so
 * "prod/database" -> ".../groups/prod%2Fdatabase/semaphore", a space -> "+").
 * Returns 0; -EINVAL if ret_key is NULL or group is not UTF-8 or longer than 255 bytes.
 * *ret_key is malloc()ed. [LOCKSMITH_1] */
LOCKSMITH_WARN_UNUSED int locksmith_group_key(const char *group, char **ret_key);

/* The group whose semaphore lives at key: the inverse of locksmith_group_key() ("" for
 * LOCKSMITH_DEFAULT_KEY). *ret_group is malloc()ed. Returns 0; -EINVAL if key is not a semaphore
 * key of the reboot lock. [LOCKSMITH_2] */
LOCKSMITH_WARN_UNUSED int locksmith_key_group(const char *key, char **ret_group);

/* Whether group can be named to a FleetLock server: the one rule of the FleetLock client (the
 * fleetlock-url option) and of locksmith-fleetlockd. 1 to 128 bytes of ASCII letters, digits, '.'
 * and '-', and not "." or "..": FleetLock's ^[a-zA-Z0-9.-]+$, bounded as the server bounds it
 * (a longer name is refused there), and without the two names that a path segment of an etcd v2
 * key would read as this directory or the one above. The FleetLock client names the default group
 * "default", so "" is no FleetLock group here. Returns 0 when group is one; -EINVAL when it is
 * not (locksmith_last_error() says why) or group is NULL. Thread-safe. [LOCKSMITH_5] */
LOCKSMITH_WARN_UNUSED int locksmith_fleetlock_group_check(const char *group);

/* ---- The semaphore document: locksmith_semaphore -----------------------------------------------
 * The JSON value stored at a group's key: {"semaphore":1,"max":1,"holders":null}. These functions
 * change the document in memory only; storing it is the client's job. */

/* Creates the document a fresh key gets: one free slot of one, holders null.
 * Returns 0, or -EINVAL if ret is NULL. The caller frees *ret with locksmith_semaphore_free().
 * [LOCKSMITH_1] */
LOCKSMITH_WARN_UNUSED int locksmith_semaphore_new(locksmith_semaphore **ret);

/* Parses a stored document. Missing or null fields read as 0 / no holders; unknown fields are
 * kept and written back by locksmith_semaphore_to_json(). Returns 0; -EINVAL if json or ret is
 * NULL; -EBADMSG if json is not a semaphore document (not JSON, not an object, a field of the
 * wrong type or out of range, a holder listed twice, larger than 128 KiB); the message of
 * locksmith_last_error() says which and quotes the start of the value. [LOCKSMITH_1] */
LOCKSMITH_WARN_UNUSED int locksmith_semaphore_parse(const char *json, locksmith_semaphore **ret);

/* Serializes the document byte-compatibly with the original locksmith: fields semaphore, max,
 * holders (null or a sorted array), then unknown fields; no spaces.
 * Returns 0, or -EINVAL. *ret_json is malloc()ed; the caller frees it. [LOCKSMITH_1] */
LOCKSMITH_WARN_UNUSED int locksmith_semaphore_to_json(const locksmith_semaphore *s, char **ret_json);

/* Takes a slot for holder (a non-empty id of at most 255 bytes, no control characters).
 * Returns 0; -EBUSY if no slot is free (checked first, as the original did); -EEXIST if holder
 * already holds a slot; -EINVAL for a bad argument. The document is unchanged on failure.
 * [LOCKSMITH_1] */
int locksmith_semaphore_lock(locksmith_semaphore *s, const char *holder);

/* Gives back holder's slot. Returns 0; -ENOENT if holder holds none; -EINVAL. [LOCKSMITH_1] */
int locksmith_semaphore_unlock(locksmith_semaphore *s, const char *holder);

/* Sets the maximum number of holders. Free slots change by the difference and holders are kept,
 * so a max below the number of holders leaves the free count negative; 0 pauses the group.
 * Returns 0 and the previous max in *ret_old_max (if not NULL); -EINVAL if max < 0; -ERANGE if
 * the free count would not fit an int. [LOCKSMITH_1] */
int locksmith_semaphore_set_max(locksmith_semaphore *s, int max, int *ret_old_max);

/* The number of free slots (negative when max was lowered below the holders).
 * Returns 0, or -EINVAL. [LOCKSMITH_1] */
LOCKSMITH_WARN_UNUSED int locksmith_semaphore_get_available(const locksmith_semaphore *s, int *ret);

/* The maximum number of holders. Returns 0, or -EINVAL. [LOCKSMITH_1] */
LOCKSMITH_WARN_UNUSED int locksmith_semaphore_get_max(const locksmith_semaphore *s, int *ret);

/* The number of holders (>= 0), or -EINVAL if s is NULL. [LOCKSMITH_1] */
LOCKSMITH_WARN_UNUSED int locksmith_semaphore_holder_count(const locksmith_semaphore *s);

/* Holder number i (0-based, in stored order). Borrowed; NULL if s is NULL or i out of range.
 * [LOCKSMITH_1] */
LOCKSMITH_WARN_UNUSED const char *locksmith_semaphore_holder(const locksmith_semaphore *s, int i);

/* Whether holder holds a slot: 1 yes, 0 no, -EINVAL for a bad argument. [LOCKSMITH_1] */
LOCKSMITH_WARN_UNUSED int locksmith_semaphore_is_holder(const locksmith_semaphore *s, const char *holder);

/* Frees s. Accepts NULL; returns NULL. [LOCKSMITH_1] */
locksmith_semaphore *locksmith_semaphore_free(locksmith_semaphore *s);

/* ---- Reboot windows: locksmith_window ----------------------------------------------------------
 * start "HH:MM" (daily) or "Day HH:MM" (weekly, Sun..Sat in any case, weeks start on Sunday);
 * length in Go duration syntax ("1h30m", "45m", "1.5h"; units ns us µs ms s m h). Windows are
 * evaluated in the process's local time zone (TZ honoured), or in a named IANA zone given with
 * locksmith_window_set_zone: they open at that wall-clock time every day or week, also on days
 * when clocks change. */

/* Parses a window. Returns 0; -EINVAL if an argument is NULL or the window does not parse (bad
 * day, hour > 23, minute > 59, a bare day, extra fields, a bad or negative length, a length not
 * shorter than the day or week it repeats in). [LOCKSMITH_1] */
LOCKSMITH_WARN_UNUSED int locksmith_window_parse(const char *start, const char *length, locksmith_window **ret);

/* Reads w in IANA time zone `zone` ("Europe/Berlin", from /usr/share/zoneinfo) from now on;
 * NULL or "" for the local time zone again. The process's TZ is left alone. Returns 0; -EINVAL
 * for a NULL w or a name that is not a zone name (absolute, "..", other characters); -ENOENT if
 * there is no such zone; -EBADMSG if its file is not a valid zone file. On failure w is unchanged.
 * [LOCKSMITH_2] */
int locksmith_window_set_zone(locksmith_window *w, const char *zone);

/* The zone w is read in, or NULL for local time (or a NULL w). Borrowed: valid until the zone
 * changes or w is freed. [LOCKSMITH_2] */
LOCKSMITH_WARN_UNUSED const char *locksmith_window_zone(const locksmith_window *w);

/* Seconds from now until the window opens: > 0 before it, <= 0 inside it (minus how far in; the
 * closing edge counts as inside). Returns 0; -EINVAL for NULL arguments; -ERANGE if now is
 * outside the years 1 to 9999. [LOCKSMITH_1] */
LOCKSMITH_WARN_UNUSED int locksmith_window_seconds_to_start(const locksmith_window *w, int64_t now, int64_t *ret_seconds);

/* The window that contains now, or else the next one: its opening and closing times.
 * ret_end may be NULL. Returns 0; -EINVAL; -ERANGE as above. [LOCKSMITH_1] */
LOCKSMITH_WARN_UNUSED int locksmith_window_next(const locksmith_window *w, int64_t now, int64_t *ret_start, int64_t *ret_end);

/* The window as text, normalized: start "Thu 23:00" or "02:33" and length "1h30m0s".
 * Both strings are malloc()ed; either pointer may be NULL if not wanted. Returns 0, or -EINVAL.
 * [LOCKSMITH_1] */
LOCKSMITH_WARN_UNUSED int locksmith_window_to_string(const locksmith_window *w, char **ret_start, char **ret_length);

/* Unix time t on w's clock, for people: "Thu 2026-11-26 23:00 CET" (malloc()ed). Returns 0, or
 * -EINVAL. [LOCKSMITH_2] */
LOCKSMITH_WARN_UNUSED int locksmith_window_format_time(const locksmith_window *w, int64_t t, char **ret);

/* Frees w. Accepts NULL; returns NULL. [LOCKSMITH_1] */
locksmith_window *locksmith_window_free(locksmith_window *w);

/* ---- Configuration: locksmith_config -----------------------------------------------------------
 * KEY=VALUE settings read the way systemd reads an EnvironmentFile= (comments, quotes, escapes,
 * line continuations). */

/* Loads this node's configuration: /usr/share/coreos/update.conf, /usr/share/flatcar/update.conf,
 * /etc/coreos/update.conf, /etc/flatcar/update.conf and /etc/default/locksmithd (the Debian
 * unit's; those that exist, under the root; later files win), then the process environment,
 * which wins over every file.
 * Returns 0; -EINVAL if ret is NULL; -EBADMSG if a file is not UTF-8 text; another -errno if a
 * file exists but cannot be read (locksmith_last_error() names it). [LOCKSMITH_1] */
LOCKSMITH_WARN_UNUSED int locksmith_config_load(locksmith_config **ret);

/* Settings file number i of those locksmith_config_load() reads, in their order (later files
 * win): "/usr/share/coreos/update.conf", ..., "/etc/default/locksmithd"; NULL past the last.
 * Paths on the system itself (read them under a root with locksmith_root_path). A static string.
 * Thread-safe. [LOCKSMITH_5] */
LOCKSMITH_WARN_UNUSED const char *locksmith_config_file(int i);

/* Loads the configuration as locksmith_config_load() does, with the update.conf files read under
 * root (an absolute directory; NULL is "/"; LOCKSMITH_ROOT is not consulted), and with flags
 * LOCKSMITH_NO_ENVIRONMENT the process environment is not merged: the settings come from the
 * files alone. Returns 0; -EINVAL if ret is NULL, root is not absolute, or flags has unknown bits;
 * the errors of locksmith_config_load() otherwise. [LOCKSMITH_2] */
LOCKSMITH_WARN_UNUSED int locksmith_config_load_at(const char *root, uint64_t flags, locksmith_config **ret);

/* Parses one text in EnvironmentFile syntax; origin (may be NULL: "<text>") is what
 * locksmith_config_get() reports as the source. Lines that are not assignments are skipped.
 * Returns 0, or -EINVAL. [LOCKSMITH_1] */
LOCKSMITH_WARN_UNUSED int locksmith_config_parse(const char *text, const char *origin, locksmith_config **ret);

/* The value of key, and where it came from (a file path, or "environment"); ret_origin may be
 * NULL. Both borrowed. A variable of the environment with the very value a file gives keeps the
 * file as its origin (as under systemd, whose EnvironmentFile= puts the file's values in the
 * daemon's environment). Returns 0; -ENOENT if nothing sets key; -EINVAL. [LOCKSMITH_1] */
LOCKSMITH_WARN_UNUSED int locksmith_config_get(const locksmith_config *c, const char *key, const char **ret_value, const char **ret_origin);

/* The line of its file on which the assignment of key that c holds starts (1 for the first line),
 * to point at a bad setting (`locksmithctl check`); 0 when it came from the environment (not equal
 * to the file's value, see locksmith_config_get) or a text without lines. Returns the line,
 * -ENOENT when nothing sets key, or -EINVAL. [LOCKSMITH_3] */
LOCKSMITH_WARN_UNUSED int locksmith_config_line(const locksmith_config *c, const char *key);

/* The number of lines of update.conf files that were skipped (not assignments), or -EINVAL.
 * [LOCKSMITH_2] */
LOCKSMITH_WARN_UNUSED int locksmith_config_warning_count(const locksmith_config *c);

/* Skipped line number i, naming its file and line. Borrowed: valid until c is freed; NULL out of
 * range or if c is NULL. [LOCKSMITH_2] */
LOCKSMITH_WARN_UNUSED const char *locksmith_config_warning(const locksmith_config *c, int i);

/* Frees c. Accepts NULL; returns NULL. [LOCKSMITH_1] */
locksmith_config *locksmith_config_free(locksmith_config *c);

/* ---- The etcd lock client: locksmith_client ----------------------------------------------------
 * Reads and changes one group's semaphore in etcd: v2 keys API or v3 JSON gateway, compare-and-
 * swap retried with fresh data when another writer wins (bounded), failover between endpoints.
 * A client belongs to one thread at a time; it keeps one connection open between calls.
 * Errors of the client functions, besides -EINVAL and those of the semaphore functions:
 *   -EBADMSG       the stored value is not a semaphore document (it is never overwritten)
 *   -ECONNREFUSED  no endpoint could be reached (the message names each endpoint and why)
 *   -ETIMEDOUT     every endpoint timed out
 *   -EACCES        etcd refused the credentials, or a TLS file cannot be read
 *   -EAGAIN        compare-and-swap lost to other writers too many times
 *   -EPROTO        an answer that is not what the etcd protocol allows
 * After a failure, locksmith_client_last_error() says what happened.
 * A lock or unlock that fails with -ECONNREFUSED or -ETIMEDOUT may still have been applied (the
 * request can reach etcd and its answer be lost); the client then forgets what it knew, and its
 * next call reads etcd first. A caller that must know reads with locksmith_client_get(). */

/* -- Making a client, and its options -- */

/* Creates a client with the defaults: endpoints http://127.0.0.1:2379 and http://127.0.0.1:4001,
 * the default group, etcd-api auto, timeout 5s. Returns 0, -EINVAL, or -ENOMEM. [LOCKSMITH_1] */
LOCKSMITH_WARN_UNUSED int locksmith_client_new(locksmith_client **ret);

/* Creates a client as locksmith_client_new() does. With flags LOCKSMITH_NO_ENVIRONMENT it reads
 * nothing from the process environment by itself: no proxy variables (http_proxy, https_proxy,
 * all_proxy, no_proxy and their upper-case forms; a proxy only through the "proxy" option), and
 * an id of NULL means the machine id under "/", not under $LOCKSMITH_ROOT. An explicit
 * locksmith_client_load_env() still reads the variables it is asked for (except under secure
 * execution). Returns 0; -EINVAL if ret is NULL or flags has unknown bits; -ENOMEM.
 * [LOCKSMITH_2] */
LOCKSMITH_WARN_UNUSED int locksmith_client_new_with_flags(uint64_t flags, locksmith_client **ret);

/* Sets an option, named like the command-line flags:
 *   endpoint            a URL with http:// or https://, or a comma-separated list; each call adds
 *                       to the list (replacing the defaults); "" goes back to the defaults
 *   group               the group ("" is the default group)
 *   etcd-cafile         CA certificate file: verify the server against it
 *   etcd-certfile       client certificate file (with etcd-keyfile)
 *   etcd-keyfile        client key file
 *   etcd-username       user for etcd authentication (v2: basic auth; v3: a token)
 *   etcd-password       its password (never shown in messages)
 *   etcd-password-file  a file whose first line is the password
 *   etcd-api            v2, v3 or auto (v2 when the cluster serves it, else v3)
 *   timeout             per-request timeout, a Go duration from 1ms to 1h (default 5s)
 *   proxy               (LOCKSMITH_2) an http://, https://, socks5:// or socks5h:// proxy for
 *                       requests to etcd; "" for none. Unset, the proxy variables of the environment apply as libcurl
 *                       reads them (never for loopback endpoints), unless the client was made
 *                       with LOCKSMITH_NO_ENVIRONMENT
 *   queue-ttl           (LOCKSMITH_2) how long a dead waiter's queue entry lasts (see acquire)
 *   fleetlock-url       (LOCKSMITH_2) the base URL (before /v1/) of a FleetLock server to take
 *                       and give back slots through instead of etcd: lock is its pre-reboot
 *                       call, unlock its steady-state call (which succeeds for a non-holder
 *                       too), acquire polls pre-reboot with the backoff of
 *                       locksmith_backoff_delay, wait sleeps its whole timeout and returns 0;
 *                       every other operation fails with -EOPNOTSUPP. The group is sent as
 *                       the FleetLock group ("" as "default"; only ASCII letters, digits, '.'
 *                       and '-'). The TLS files and proxy apply to it; etcd credentials are
 *                       never sent. "" goes back to etcd
 *   wait-errors         "fail": locksmith_client_wait returns the -errno of a request with no answer at once ("retry": default)
 * Set options before the first request. Returns 0; -EINVAL for an unknown option or a bad value
 * (the message names it); -EACCES if a file cannot be read for lack of permission. [LOCKSMITH_1] */
int locksmith_client_set(locksmith_client *c, const char *option, const char *value);

/* Sets every option whose variable <PREFIX>_<OPTION> (upper case, '-' as '_', e.g.
 * LOCKSMITHCTL_ETCD_CAFILE) is set and not empty in the environment. Returns the number of
 * options set (>= 0), or the error of the first bad value (naming the variable). [LOCKSMITH_1] */
int locksmith_client_load_env(locksmith_client *c, const char *prefix);

/* Resolves every client option the program has not set itself (with locksmith_client_set): from
 * the variable <prefix>_<OPTION> of the environment (e.g. LOCKSMITHCTL_GROUP; not with a client
 * made with LOCKSMITH_NO_ENVIRONMENT, nor under secure execution), else from the daemon's
 * setting LOCKSMITHD_<OPTION> in conf (update.conf files, and the environment if conf was loaded
 * with it; conf may be NULL). This is the one rule every program follows, so that on a node
 * `locksmithctl status` looks at the semaphore its daemon uses. Returns the number of options set
 * from these places (>= 0), or the error of the first bad value (-EINVAL, naming the variable
 * and where it came from). [LOCKSMITH_2] */
int locksmith_client_load_settings(locksmith_client *c, const char *prefix, const locksmith_config *conf);

/* The name of client option number i, in the order help texts list them ("endpoint", "group",
 * ..., "proxy"); NULL past the last. A static string. Thread-safe. [LOCKSMITH_2] */
LOCKSMITH_WARN_UNUSED const char *locksmith_client_option_name(int i);

/* What client option number i takes and does, for help texts: *ret_value_name ("URL", "FILE",
 * "DURATION", ...) and *ret_description (a sentence). Static strings; either pointer may be NULL.
 * Returns 0, or -EINVAL if i is out of range. Thread-safe. [LOCKSMITH_2] */
LOCKSMITH_WARN_UNUSED int locksmith_client_option_help(int i, const char **ret_value_name, const char **ret_description);

/* The environment variable of client option `option` (one of locksmith_client_option_name's)
 * for programs whose variables begin with prefix: <prefix>_<OPTION>, '-' as '_' ("LOCKSMITHD"
 * and "etcd-api" give LOCKSMITHD_ETCD_API): the names locksmith_client_load_settings reads, and
 * locksmith_client_environment writes. *ret is malloc()ed. Returns 0; -EINVAL for a NULL
 * argument, an option that is no client option, or a prefix that is not 1 to 64 upper-case
 * letters, digits and _. Thread-safe. [LOCKSMITH_5] */
LOCKSMITH_WARN_UNUSED int locksmith_client_option_variable(const char *prefix, const char *option, char **ret);

/* Option number i (as locksmith_client_option_name) as the client has it, for -debug output:
 * *ret_value (passwords as "(hidden)", credentials in URLs as "***") and *ret_origin, where it came
 * from: "" for locksmith_client_set, else the variable, e.g. "LOCKSMITHD_GROUP in
 * /etc/coreos/update.conf". Either pointer may be NULL. Borrowed, valid until the next call on c.
 * Returns 0; -ENOENT if the option is not set (its default applies); -EINVAL. [LOCKSMITH_2] */
LOCKSMITH_WARN_UNUSED int locksmith_client_setting(locksmith_client *c, int i, const char **ret_value, const char **ret_origin);

/* The options c has set (those locksmith_client_setting lists), as the environment of a program
 * that is to use the same ones, such as a hook that runs locksmithctl: one "PREFIX_OPTION=value"
 * string each (prefix as in locksmith_client_load_settings, e.g. "LOCKSMITHCTL":
 * LOCKSMITHCTL_ETCD_CAFILE=...), in option order, with the real values rather than the shown
 * ones. A password read from a file is passed as the file (LOCKSMITHCTL_ETCD_PASSWORD_FILE), a
 * password given as such as itself; empty values are left out. *ret_strv is a NULL-terminated
 * malloc()ed array of malloc()ed strings: free it with locksmith_strv_free(). Returns the number
 * of strings; -EINVAL for a NULL argument or a prefix that is not 1 to 64 upper-case letters,
 * digits and _; -ENOMEM. [LOCKSMITH_4] */
LOCKSMITH_WARN_UNUSED int locksmith_client_environment(locksmith_client *c, const char *prefix, char ***ret_strv);

/* The number of warnings about the client's settings (a password file every user can read, ...),
 * or -EINVAL. The library never logs: the program shows them. [LOCKSMITH_2] */
LOCKSMITH_WARN_UNUSED int locksmith_client_warning_count(const locksmith_client *c);

/* Warning number i. Borrowed, valid until the next call on c; NULL out of range or if c is NULL.
 * [LOCKSMITH_2] */
LOCKSMITH_WARN_UNUSED const char *locksmith_client_warning(const locksmith_client *c, int i);

/* Ends every request of the client at an absolute CLOCK_MONOTONIC time in microseconds (0: no
 * deadline, the default). Each request's timeout is cut to what is left; once the deadline has
 * passed, calls fail with -ETIMEDOUT without sending anything. Retries (lost compare-and-swap,
 * failover between endpoints) stop at the deadline too, so it bounds the whole work of a caller,
 * such as a login, whatever the server answers. Returns 0, or -EINVAL if c is NULL.
 * [LOCKSMITH_2] */
int locksmith_client_set_deadline(locksmith_client *c, uint64_t usec);

/* A trace callback: one line per HTTP request, and the caller's userdata. */
typedef void (*locksmith_trace_function)(const char *line, void *userdata);

/* Calls f(line, userdata) once per HTTP request of c, with the method, URL, status or error and
 * the time taken (never a password), on the thread making the request; NULL f turns it off.
 * Returns 0, or -EINVAL if c is NULL. [LOCKSMITH_2] */
int locksmith_client_set_trace(locksmith_client *c, locksmith_trace_function f, void *userdata);

/* Makes the client ready now, as its first request would, without sending anything: loads
 * libcurl (it is loaded on first use) and applies the options. Returns 0, or the error the first
 * request would have had (-ELIBACC if libcurl cannot be loaded, with the reason). [LOCKSMITH_2] */
int locksmith_client_prepare(locksmith_client *c);

/* Cancels (cancel != 0) the client's wait in progress, which returns -ECANCELED within about a
 * second, and makes every later call on c fail with -ECANCELED before sending anything, until
 * called again with cancel == 0. Another request in progress runs to its answer or timeout. Any
 * thread may call it, also a signal handler (it only sets a flag). Returns 0, or -EINVAL.
 * [LOCKSMITH_2] */
int locksmith_client_cancel(locksmith_client *c, int cancel);

/* -- The group's semaphore -- */

/* The etcd key of the client's group's semaphore. Borrowed, valid until the next call on c;
 * NULL if c is NULL or its group is not valid. [LOCKSMITH_2] */
LOCKSMITH_WARN_UNUSED const char *locksmith_client_key(locksmith_client *c);

/* Reads the group's semaphore (creating the key with {"semaphore":1,"max":1,"holders":null} if
 * it is missing). *ret is freed with locksmith_semaphore_free(). [LOCKSMITH_1] */
LOCKSMITH_WARN_UNUSED int locksmith_client_get(locksmith_client *c, locksmith_semaphore **ret);

/* Reads the group's semaphore without ever writing: -ENOENT if etcd has no value at the key
 * (locksmith_client_get() would create it). Otherwise as locksmith_client_get(). [LOCKSMITH_2] */
LOCKSMITH_WARN_UNUSED int locksmith_client_read(locksmith_client *c, locksmith_semaphore **ret);

/* The newest semaphore the client has seen (its last read, write, refused change or watch event),
 * without asking etcd: *ret is a new object (free it). -ENOENT if it has seen none; -EBADMSG if
 * what it saw is not a semaphore document. [LOCKSMITH_2] */
LOCKSMITH_WARN_UNUSED int locksmith_client_last_seen(locksmith_client *c, locksmith_semaphore **ret);

/* Takes a slot for id (NULL: this machine's id). -EBUSY no free slot; -EEXIST already holds.
 * [LOCKSMITH_1] */
int locksmith_client_lock(locksmith_client *c, const char *id);

/* Gives back id's slot (NULL: this machine's id). -ENOENT if id holds none. [LOCKSMITH_1] */
int locksmith_client_unlock(locksmith_client *c, const char *id);

/* Gives back id's slot only if its holder record is still the one read at revision
 * (locksmith_holder_records_revision of locksmith_client_holder_records): a holder that gave
 * its slot back and took one again since the record was read keeps its new slot. For releasing
 * a slot by its record's age (`locksmithctl unlock --older-than`). v3 makes the record's
 * revision a condition of the write; v2 reads the record after the semaphore and writes over
 * the semaphore as read. Returns 0; -ESTALE if the record changed or is gone (nothing was given
 * back); -ENOENT if id holds no slot; -EINVAL for a bad id or a revision <= 0; the errors of
 * locksmith_client_unlock otherwise. [LOCKSMITH_4] */
int locksmith_client_unlock_record(locksmith_client *c, const char *id, int64_t revision);

/* Takes and gives back slots for n holders (1 to 1024) in one compare-and-swap of the group's
 * semaphore: holders[i] takes a slot when give_back[i] is 0, gives one back otherwise. The
 * changes are applied in order, each to the document as the ones before it left it, and
 * ret_results[i] receives what that change alone would have returned from locksmith_client_lock
 * or _unlock: 0, -EBUSY, -EEXIST, -ENOENT or -EINVAL. The document is written once if any change
 * was made (with the holder records), not at all if none was; a write lost to another writer is
 * retried with the fresh document, every result computed again. For a server that answers many
 * machines at once (locksmith-fleetlockd): one write for a whole burst of requests.
 * Returns the number of changes made (>= 0), or an error of the whole batch as
 * locksmith_client_lock (then ret_results is not set; after -ECONNREFUSED or -ETIMEDOUT the write
 * may still have been applied). [LOCKSMITH_2] */
LOCKSMITH_WARN_UNUSED int locksmith_client_apply(locksmith_client *c, int n, const char **holders, const int *give_back, int *ret_results);

/* Sets the group's maximum; the previous one in *ret_old_max (may be NULL). -EINVAL if max < 0.
 * [LOCKSMITH_1] */
int locksmith_client_set_max(locksmith_client *c, int max, int *ret_old_max);

/* Blocks until the semaphore changes after this client's last read or write (or, if there was
 * none, after a read it makes now), or timeout_ms pass. Returns 1 if it changed (read it again),
 * 0 on timeout, or a negative errno. Uses etcd's watch, so a freed slot is seen at once.
 * [LOCKSMITH_1] */
int locksmith_client_wait(locksmith_client *c, int64_t timeout_ms);

/* -- The fair queue -- */

/* What locksmith_client_acquire() tells its caller while it waits (see there): the number of
 * waiters ahead, 0 before an attempt to take a slot, -1 while it goes on waiting. Returns 0 to go
 * on, non-zero to decline the slot. */
typedef int (*locksmith_progress_function)(int ahead, void *userdata);

/* Waits in the group's queue and takes a slot for holder when its turn comes: the fair way to
 * wait for a slot. The client joins the queue beside the semaphore (<semaphore key>.queue/), waits
 * for the waiter just ahead of it to go (one etcd watch; a release wakes one waiter, not all),
 * and at the head of the queue takes the next free slot (a waiter behind others takes one at once
 * when more slots are free than waiters are ahead of it, so that each of them still finds one,
 * as when many join together). Waiters get their slots in the order they joined (with max above
 * 1, within max places); clients that do not queue (the original locksmith, locksmith_client_lock) may
 * take a free slot before the head, never more than max. The entry lives as long as the client
 * renews it (20 s before the queue-ttl option runs out, and at least every third of it; default
 * 60 s, so every 40 s): a waiter that dies holds up those behind it for at most queue-ttl.
 *
 * progress (may be NULL) is called on this thread: with the number of waiters ahead each time it
 * changes; with 0 before each attempt to take a slot (made only when one may be free for this
 * waiter); and with -1 when it goes on waiting (at the head with the semaphore full, where
 * locksmith_client_last_seen() says why, and after each renewal of the entry, as a heartbeat:
 * every 40 s with the default queue-ttl, every third of a queue-ttl of 30 s or less).
 * It returns 0 to go on, or non-zero to decline: the wait then ends without a slot (a caller's
 * last check before taking one, such as locksmithd's pre-lock hooks).
 *
 * timeout_ms < 0 waits without limit. locksmith_client_cancel() from another thread ends the
 * wait (-ECANCELED). Returns 0 once the slot is taken; 1 if timeout_ms passed first; 2 if
 * progress declined (no slot taken in either case); -ECANCELED; -EEXIST if holder already holds
 * a slot; other errors as locksmith_client_lock (-ETIMEDOUT: a request timed out). The entry is
 * removed on return. [LOCKSMITH_2] */
LOCKSMITH_WARN_UNUSED int locksmith_client_acquire(locksmith_client *c, const char *holder, int64_t timeout_ms, locksmith_progress_function progress, void *userdata);

/* The waiters of the group's queue, first in line first, as a list of records: id (the holder
 * id it waits for), since (when it joined, Unix seconds) and host (locksmith_holder_records_*).
 * Entries that waiters skip (since 0.9.0: see locksmith_client_queue_all) are left out.
 * Creates nothing. Returns 0, or a negative errno as locksmith_client_get. [LOCKSMITH_2] */
LOCKSMITH_WARN_UNUSED int locksmith_client_queue(locksmith_client *c, locksmith_holder_records **ret);

/* Every entry under the group's queue prefix, first in line first: the waiters, and the entries
 * they skip (anyone who may write the semaphore may put a key there), which
 * locksmith_holder_records_ignored() tells apart. Waiters skip such an entry at once: no waiter
 * makes one, and one that cannot expire would otherwise hold up the queue for ever. Creates
 * nothing. Returns 0, or a negative errno as locksmith_client_get. [LOCKSMITH_4] */
LOCKSMITH_WARN_UNUSED int locksmith_client_queue_all(locksmith_client *c, locksmith_holder_records **ret);

/* -- What etcd holds beside the group's semaphore -- */

/* The records of c's group, sorted by id (records that are not valid are left out). Creates
 * nothing. Returns 0, or a negative errno as locksmith_client_get. [LOCKSMITH_2] */
LOCKSMITH_WARN_UNUSED int locksmith_client_holder_records(locksmith_client *c, locksmith_holder_records **ret);

/* The group's semaphore (created if it is missing, as locksmith_client_get), its holder records
 * (as locksmith_client_holder_records) and every entry of its queue (as
 * locksmith_client_queue_all), read together: over etcd's v3 API in one transaction, so the
 * three are of one revision; over v2, which reads several keys only by reading a whole directory
 * (the default group's holds every other group's keys), one request each. Everything
 * `locksmithctl status --json` shows. Returns 0, or a negative errno as locksmith_client_get
 * (-EINVAL if a ret_* is NULL); nothing is written on failure. On success *ret_semaphore is
 * freed with locksmith_semaphore_free(), *ret_records and *ret_queue with
 * locksmith_holder_records_free(). [LOCKSMITH_6] */
LOCKSMITH_WARN_UNUSED int locksmith_client_get_all(locksmith_client *c, locksmith_semaphore **ret_semaphore, locksmith_holder_records **ret_records, locksmith_holder_records **ret_queue);

/* Every group that has a semaphore under LOCKSMITH_KEY_PREFIX, sorted by name ("" first), each
 * with its document or the reason it holds none. Creates nothing. *ret is freed with
 * locksmith_groups_free(). [LOCKSMITH_2] */
LOCKSMITH_WARN_UNUSED int locksmith_client_groups(locksmith_client *c, locksmith_groups **ret);

/* -- What the client did -- */

/* The message of the client's last failure ("" if none). Borrowed: valid until the next call on
 * c. NULL-safe (returns "" for NULL). Passwords never appear in it. [LOCKSMITH_1] */
LOCKSMITH_WARN_UNUSED const char *locksmith_client_last_error(const locksmith_client *c);

/* The option whose value caused the client's last failure ("etcd-api", "timeout", ...), or NULL
 * when no option was involved. Borrowed, valid until the next call on c. [LOCKSMITH_2] */
LOCKSMITH_WARN_UNUSED const char *locksmith_client_last_error_option(const locksmith_client *c);

/* Which API the client used: "v2" or "v3"; NULL before its first request or if c is NULL.
 * Borrowed, valid until the next call on c. [LOCKSMITH_1] */
LOCKSMITH_WARN_UNUSED const char *locksmith_client_api(const locksmith_client *c);

/* The endpoint that answered last; NULL before the first answer or if c is NULL.
 * Borrowed, valid until the next call on c. [LOCKSMITH_1] */
LOCKSMITH_WARN_UNUSED const char *locksmith_client_endpoint(const locksmith_client *c);

/* Counters since the client was made: HTTP requests sent, and compare-and-swap attempts lost to
 * other writers and retried. Either pointer may be NULL. Returns 0, or -EINVAL if c is NULL.
 * [LOCKSMITH_1] */
LOCKSMITH_WARN_UNUSED int locksmith_client_stats(const locksmith_client *c, int64_t *ret_requests, int64_t *ret_conflicts);

/* Frees c and closes its connection. Accepts NULL; returns NULL. [LOCKSMITH_1] */
locksmith_client *locksmith_client_free(locksmith_client *c);

/* ---- Groups and their semaphores: locksmith_groups (locksmith_client_groups) ------------------ */

/* The number of groups (>= 0, or -EINVAL). [LOCKSMITH_2] */
LOCKSMITH_WARN_UNUSED int locksmith_groups_count(const locksmith_groups *g);

/* Group i's name ("" for the default group). Borrowed; NULL out of range. [LOCKSMITH_2] */
LOCKSMITH_WARN_UNUSED const char *locksmith_groups_name(const locksmith_groups *g, int i);

/* Group i's etcd key, as etcd listed it. Borrowed; NULL out of range. [LOCKSMITH_2] */
LOCKSMITH_WARN_UNUSED const char *locksmith_groups_key(const locksmith_groups *g, int i);

/* Group i's semaphore, or NULL if its stored value is not one (then locksmith_groups_error() says
 * why). Borrowed: valid until g is freed; do not free or change it. [LOCKSMITH_2] */
LOCKSMITH_WARN_UNUSED const locksmith_semaphore *locksmith_groups_semaphore(const locksmith_groups *g, int i);

/* Why group i holds no semaphore document; NULL if it holds one or i is out of range. Borrowed.
 * [LOCKSMITH_2] */
LOCKSMITH_WARN_UNUSED const char *locksmith_groups_error(const locksmith_groups *g, int i);

/* Frees g. Accepts NULL; returns NULL. [LOCKSMITH_2] */
locksmith_groups *locksmith_groups_free(locksmith_groups *g);

/* ---- Holder records and queue entries: locksmith_holder_records --------------------------------
 * When each holder took its slot, and from which host. This library's clients record it after
 * every lock (beside the semaphore, in `<semaphore key>.holders/<id>`, so that the semaphore
 * document stays what the original writes) and remove it after every unlock. A holder that took
 * its slot with the original locksmith has no record; a record outlives a slot that the
 * original gave back until this library next writes the semaphore (any lock, unlock or set-max
 * removes the records of ids that are no holder): match records against the semaphore's holders.
 * The same list holds the entries of a group's queue (locksmith_client_queue, _queue_all). */

/* The entry can never go by itself: v3, it has no lease; v2, no TTL, or one longer than any
 * waiter gives its entry (1h, the longest queue-ttl). No waiter made it. */
#define LOCKSMITH_QUEUE_NEVER_EXPIRES 1
/* The entry's value is not a queue entry (then its id and host are "" and its since 0). */
#define LOCKSMITH_QUEUE_UNREADABLE 2

/* The number of records (>= 0, or -EINVAL). [LOCKSMITH_2] */
LOCKSMITH_WARN_UNUSED int locksmith_holder_records_count(const locksmith_holder_records *r);

/* Record i's holder id. Borrowed; NULL out of range. [LOCKSMITH_2] */
LOCKSMITH_WARN_UNUSED const char *locksmith_holder_records_id(const locksmith_holder_records *r, int i);

/* When record i's holder took its slot, in Unix seconds; -1 out of range. [LOCKSMITH_2] */
LOCKSMITH_WARN_UNUSED int64_t locksmith_holder_records_since(const locksmith_holder_records *r, int i);

/* The host record i's slot was taken from (where the lock call ran; "" if unknown). Borrowed;
 * NULL out of range. [LOCKSMITH_2] */
LOCKSMITH_WARN_UNUSED const char *locksmith_holder_records_host(const locksmith_holder_records *r, int i);

/* The etcd key of record i (a holder record, or a queue entry). Borrowed; NULL out of range.
 * [LOCKSMITH_4] */
LOCKSMITH_WARN_UNUSED const char *locksmith_holder_records_key(const locksmith_holder_records *r, int i);

/* The etcd revision (v3) or modification index (v2) record i was read at; -1 out of range. Every
 * lock writes its holder's record anew, so the revision tells one holding of a slot from the
 * next: see locksmith_client_unlock_record(). [LOCKSMITH_4] */
LOCKSMITH_WARN_UNUSED int64_t locksmith_holder_records_revision(const locksmith_holder_records *r, int i);

/* Why waiters skip queue entry i (see locksmith_client_queue_all): 0 they do not (a waiter),
 * LOCKSMITH_QUEUE_NEVER_EXPIRES, or LOCKSMITH_QUEUE_UNREADABLE; -EINVAL out of range. Always 0
 * for holder records. [LOCKSMITH_4] */
LOCKSMITH_WARN_UNUSED int locksmith_holder_records_ignored(const locksmith_holder_records *r, int i);

/* Frees r. Accepts NULL; returns NULL. [LOCKSMITH_2] */
locksmith_holder_records *locksmith_holder_records_free(locksmith_holder_records *r);

/* ---- The daemon's settings: locksmith_daemon_settings ------------------------------------------
 * What locksmithd reads from its configuration, checked as it checks them: REBOOT_STRATEGY
 * ("etcd-lock", "fleetlock", "reboot" (the default) or "off"; "best-effort" is read as
 * "etcd-lock" with a warning), the reboot window (LOCKSMITHD_REBOOT_WINDOW_START/_LENGTH, or the
 * unprefixed names), LOCKSMITHD_REBOOT_BROADCAST_DELAY (default 5m), LOCKSMITHD_SLOT_WAIT
 * ("watch" or "poll"), LOCKSMITHD_UTMP (default /var/run/utmp, under root), the reboot source,
 * hooks and metrics file (below) and the LOCKSMITHD_* etcd settings.
 * locksmith_daemon_settings_get() reads every setting by name; the accessors of one setting each
 * that follow it are those of LOCKSMITH_2, kept for the programs built on them. A new setting is
 * a new name of locksmith_daemon_settings_get, not a new function. */

/* Reads the daemon's settings from conf, with system paths under root (NULL: "/"). Returns 0;
 * -EINVAL for a bad or half-set value, the message naming the variable and the file it came
 * from. [LOCKSMITH_2] */
LOCKSMITH_WARN_UNUSED int locksmith_daemon_settings_load(const locksmith_config *conf, const char *root, locksmith_daemon_settings **ret);

/* The name of daemon setting number i, as locksmith_daemon_settings_get() takes it, in a fixed
 * order; NULL past the last. A static string. Thread-safe. [LOCKSMITH_5] */
LOCKSMITH_WARN_UNUSED const char *locksmith_daemon_settings_name(int i);

/* Daemon setting `name` as text, checked, defaults applied:
 *   strategy                "etcd-lock", "fleetlock", "reboot" or "off"
 *   window-start            the reboot window's start, normalized ("Thu 23:00", "02:33")
 *   window-length           its length, as a Go duration ("1h30m0s")
 *   window-zone             the IANA zone it is read in (not set: local time)
 *   broadcast-delay         how long users are warned before a reboot, a Go duration ("5m0s")
 *   slot-wait               "watch" or "poll"
 *   utmp                    the utmp file, under root
 *   group                   LOCKSMITHD_GROUP ("" for the default group)
 *   reboot-source           "auto", "update-engine", "file" or "command"
 *   reboot-source-argument  the sentinel file under root, the command line, or ""
 *   reboot-check-interval   how often a "command" source runs, a Go duration
 *   hook-timeout            how long one hook may run, a Go duration
 *   hooks-directory         the directory of pre-lock.d, pre-reboot.d and post-reboot.d
 *   metrics-file            the Prometheus text file the daemon keeps (not set: none)
 *   fleetlock-id            with REBOOT_STRATEGY=fleetlock, the id slots are taken under (not
 *                           set: the machine id)
 * Durations parse with locksmith_duration_parse(); the single-setting accessors below say more of
 * each. Returns 0 with *ret_value (borrowed: valid until s is freed); -ENOENT when the setting is
 * not set (only those marked so above); -EINVAL for a NULL argument or a name that is no setting.
 * [LOCKSMITH_5] */
LOCKSMITH_WARN_UNUSED int locksmith_daemon_settings_get(const locksmith_daemon_settings *s, const char *name, const char **ret_value);

/* The number of warnings (a deprecated strategy, a password in a file every user can read,
 * skipped lines), or -EINVAL. [LOCKSMITH_2] */
LOCKSMITH_WARN_UNUSED int locksmith_daemon_settings_warning_count(const locksmith_daemon_settings *s);

/* Warning number i. Borrowed: valid until s is freed; NULL out of range or if s is NULL.
 * [LOCKSMITH_2] */
LOCKSMITH_WARN_UNUSED const char *locksmith_daemon_settings_warning(const locksmith_daemon_settings *s, int i);

/* The reboot window, or NULL if none is set, read in LOCKSMITHD_REBOOT_WINDOW_TZ (an IANA zone
 * name) if that is set, else in local time. Borrowed: valid until s is freed. [LOCKSMITH_2] */
LOCKSMITH_WARN_UNUSED const locksmith_window *locksmith_daemon_settings_window(const locksmith_daemon_settings *s);

/* The setting the window's start (which 0), length (which 1) or time zone (which 2) came from, as
 * people read it: "LOCKSMITHD_REBOOT_WINDOW_START=\"Thu 23:00\" (from /etc/coreos/update.conf)".
 * Borrowed; NULL when no window is set, or for which 2 when the window is in local time.
 * [LOCKSMITH_2] */
LOCKSMITH_WARN_UNUSED const char *locksmith_daemon_settings_window_source(const locksmith_daemon_settings *s, int which);

/* A new client with the daemon's etcd settings (flags as locksmith_client_new_with_flags); with
 * REBOOT_STRATEGY=fleetlock its fleetlock-url option is LOCKSMITHD_FLEETLOCK_URL. [LOCKSMITH_2] */
LOCKSMITH_WARN_UNUSED int locksmith_daemon_settings_new_client(const locksmith_daemon_settings *s, uint64_t flags, locksmith_client **ret);

/* "etcd-lock", "fleetlock", "reboot" or "off". Borrowed; NULL if s is NULL. [LOCKSMITH_2] */
LOCKSMITH_WARN_UNUSED const char *locksmith_daemon_settings_strategy(const locksmith_daemon_settings *s);

/* How long users are warned before a reboot, in nanoseconds (>= 0; -1 if s is NULL).
 * [LOCKSMITH_2] */
LOCKSMITH_WARN_UNUSED int64_t locksmith_daemon_settings_broadcast_delay(const locksmith_daemon_settings *s);

/* "watch" or "poll". Borrowed; NULL if s is NULL. [LOCKSMITH_2] */
LOCKSMITH_WARN_UNUSED const char *locksmith_daemon_settings_slot_wait(const locksmith_daemon_settings *s);

/* The utmp file, under root. Borrowed; NULL if s is NULL. [LOCKSMITH_2] */
LOCKSMITH_WARN_UNUSED const char *locksmith_daemon_settings_utmp(const locksmith_daemon_settings *s);

/* The group (LOCKSMITHD_GROUP; "" for the default group). Borrowed; NULL if s is NULL.
 * [LOCKSMITH_2] */
LOCKSMITH_WARN_UNUSED const char *locksmith_daemon_settings_group(const locksmith_daemon_settings *s);

/* Where "reboot needed" comes from (LOCKSMITHD_REBOOT_SOURCE): "auto" (the default: the update
 * engine and the sentinel file, whichever says so first), "update-engine", "file" (a sentinel
 * file's existence) or "command" (a command run every reboot_check_interval: exit 0 nothing to
 * do, 1 reboot needed, anything else an error). Borrowed; NULL if s is NULL. [LOCKSMITH_2] */
LOCKSMITH_WARN_UNUSED const char *locksmith_daemon_settings_reboot_source(const locksmith_daemon_settings *s);

/* The source's sentinel file under root ("auto", "file"; default /run/reboot-required), its
 * command line ("command"), or "" ("update-engine"). Borrowed; NULL if s is NULL. [LOCKSMITH_2] */
LOCKSMITH_WARN_UNUSED const char *locksmith_daemon_settings_reboot_source_argument(const locksmith_daemon_settings *s);

/* How often a "command" source runs, in nanoseconds (LOCKSMITHD_REBOOT_CHECK_INTERVAL, default
 * 1h, at least 1s); -1 if s is NULL. [LOCKSMITH_2] */
LOCKSMITH_WARN_UNUSED int64_t locksmith_daemon_settings_reboot_check_interval(const locksmith_daemon_settings *s);

/* How long one hook may run before it is stopped and counted as failed, in nanoseconds
 * (LOCKSMITHD_HOOK_TIMEOUT, default 10m, at least 1s); -1 if s is NULL. [LOCKSMITH_2] */
LOCKSMITH_WARN_UNUSED int64_t locksmith_daemon_settings_hook_timeout(const locksmith_daemon_settings *s);

/* The directory that holds the hook directories pre-lock.d, pre-reboot.d and post-reboot.d:
 * /etc/locksmith under root. Borrowed; NULL if s is NULL. [LOCKSMITH_2] */
LOCKSMITH_WARN_UNUSED const char *locksmith_daemon_settings_hooks_directory(const locksmith_daemon_settings *s);

/* The Prometheus text file the daemon keeps (LOCKSMITHD_METRICS_FILE, an absolute path, under
 * root), or NULL when none is set or s is NULL. Borrowed. [LOCKSMITH_2] */
LOCKSMITH_WARN_UNUSED const char *locksmith_daemon_settings_metrics_file(const locksmith_daemon_settings *s);

/* With REBOOT_STRATEGY=fleetlock, the id the daemon takes slots under when
 * LOCKSMITHD_FLEETLOCK_ID sets one; NULL otherwise (the machine id is used) or if s is NULL.
 * Borrowed. [LOCKSMITH_2] */
LOCKSMITH_WARN_UNUSED const char *locksmith_daemon_settings_fleetlock_id(const locksmith_daemon_settings *s);

/* Frees s. Accepts NULL; returns NULL. [LOCKSMITH_2] */
locksmith_daemon_settings *locksmith_daemon_settings_free(locksmith_daemon_settings *s);

/* ---- The reboot-slot record --------------------------------------------------------------------
 * /var/lib/locksmith/reboot-slot (under root) says which slot this machine's daemon took and has not
 * given back; the daemon gives back exactly that slot at its next start, and nothing else held
 * under the machine id. `locksmithctl reboot` records the slot it takes the same way. */

/* Records that id holds a slot of the semaphore at key (an etcd key, as locksmith_group_key()
 * makes), or with key and id NULL that no slot is held. Written atomically, never through a
 * symbolic link. root NULL is "/". Returns 0, -EINVAL, or the -errno of the write. [LOCKSMITH_2] */
int locksmith_slot_record_write(const char *root, const char *key, const char *id);

/* Reads the record: 1 with *ret_key and *ret_id (malloc()ed) when a slot is recorded as held, 0
 * when none is, -ENOENT when there is no record (the daemon never ran here), -EBADMSG when the
 * file is not a record (the message says why). Either pointer may be NULL. [LOCKSMITH_2] */
LOCKSMITH_WARN_UNUSED int locksmith_slot_record_read(const char *root, char **ret_key, char **ret_id);

/* ---- locksmithd's files under /run -------------------------------------------------------------
 * A running locksmithd keeps two files for the other programs of the machine and holds a write
 * lock (fcntl, which only a writer can take) on each for as long as it runs: coordinator.conf, the original's (NAME=, STRATEGY=, STATE=),
 * and the state file, what pam_locksmith and `locksmithctl check` need so that they never ask
 * etcd: STRATEGY=, STATE= (starting, running, reboot-planned, rebooting), STATE_SINCE= (Unix
 * seconds), SLOT_HELD=yes|no (the slot this daemon took and has not given back), and with yes
 * SLOT_GROUP=, SLOT_KEY=, SLOT_ID= and, when known, SLOT_SINCE=. See docs/pam.md. */
#define LOCKSMITH_COORDINATOR_PATH "/run/update-engine/coordinator.conf"
#define LOCKSMITH_STATE_PATH "/run/locksmith/state"

/* Reads one of those files, path (absolute, e.g. LOCKSMITH_STATE_PATH) under root (NULL is "/"):
 * a regular file, never through a symbolic link, owned by root and writable by nobody else, of at
 * most 4096 bytes, in update.conf's KEY=value form. *ret gets its values (locksmith_config_get;
 * each value's origin is the file; free with locksmith_config_free) and *ret_modified (may be
 * NULL) its modification time in Unix seconds. Returns 1 when a running process holds a write
 * lock on the file (the values are current), 0 when nobody does (left over from a daemon that
 * stopped; an flock or read lock, which any reader can take, does not count), 2 when the kernel
 * cannot be asked (fcntl F_OFD_GETLK failed); no lock is taken to find out, and the answer costs
 * the same whatever other locks exist; -ENOENT when there is no file, -EACCES for a
 * symbolic link or a file of the wrong owner or mode, -ERANGE when it is too large, -EBADMSG when
 * it is not text, -EINVAL for bad arguments, or the -errno of the read. [LOCKSMITH_3] */
LOCKSMITH_WARN_UNUSED int locksmith_daemon_file_read(const char *root, const char *path, locksmith_config **ret, int64_t *ret_modified);

/* The text of the state file (LOCKSMITH_STATE_PATH), as locksmithd writes it: strategy and state
 * (lower-case words), state_since (Unix seconds), and the slot held: slot_key (a semaphore key, as
 * locksmith_group_key() makes) and slot_id (the holder), both NULL when none is held, taken at
 * slot_since (Unix seconds; negative when not known). *ret_text is malloc()ed. Returns 0 or
 * -EINVAL naming the bad value. [LOCKSMITH_3] */
LOCKSMITH_WARN_UNUSED int locksmith_daemon_state_text(const char *strategy, const char *state, int64_t state_since, const char *slot_key, const char *slot_id, int64_t slot_since, char **ret_text);

#ifdef __cplusplus
}
#endif

#endif /* LOCKSMITH_H */
