/* See Sources/CSystemd/include/csystemd.h: libsystemd through dlopen(3), with typed wrappers. */
#define _GNU_SOURCE
#include "csystemd.h"

#include <errno.h>
#include "cloader.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>
#include <systemd/sd-daemon.h>

static struct {
    int (*bus_open_system)(sd_bus **);
    sd_bus *(*bus_flush_close_unref)(sd_bus *);
    int (*bus_flush)(sd_bus *);
    int (*bus_get_fd)(sd_bus *);
    int (*bus_get_events)(sd_bus *);
    int (*bus_get_timeout)(sd_bus *, uint64_t *);
    int (*bus_process)(sd_bus *, sd_bus_message **);
    sd_bus_message *(*message_unref)(sd_bus_message *);
    sd_bus_slot *(*slot_unref)(sd_bus_slot *);
    void (*error_free)(sd_bus_error *);
    int (*emit_signal)(sd_bus *, const char *, const char *, const char *, const char *, ...);
    int (*message_read)(sd_bus_message *, const char *, ...);
    int (*call_method)(sd_bus *, const char *, const char *, const char *, const char *, sd_bus_error *,
                       sd_bus_message **, const char *, ...);
    int (*match_signal)(sd_bus *, sd_bus_slot **, const char *, const char *, const char *, const char *,
                        sd_bus_message_handler_t, void *);
    const char *(*message_get_sender)(sd_bus_message *);
    int (*error_has_name)(const sd_bus_error *, const char *);
    int (*notify)(int, const char *);
    int (*notify_barrier)(int, uint64_t);
    int (*watchdog_enabled)(int, uint64_t *);
    int (*journal_sendv)(const struct iovec *, int);
    int (*get_sessions)(char ***);
    int (*session_get_tty)(const char *, char **);
} api;

static const struct cloader_symbol symbols[] = {
    {"sd_bus_open_system", (void **)&api.bus_open_system},
    {"sd_bus_flush_close_unref", (void **)&api.bus_flush_close_unref},
    {"sd_bus_flush", (void **)&api.bus_flush},
    {"sd_bus_get_fd", (void **)&api.bus_get_fd},
    {"sd_bus_get_events", (void **)&api.bus_get_events},
    {"sd_bus_get_timeout", (void **)&api.bus_get_timeout},
    {"sd_bus_process", (void **)&api.bus_process},
    {"sd_bus_message_unref", (void **)&api.message_unref},
    {"sd_bus_slot_unref", (void **)&api.slot_unref},
    {"sd_bus_error_free", (void **)&api.error_free},
    {"sd_bus_emit_signal", (void **)&api.emit_signal},
    {"sd_bus_message_read", (void **)&api.message_read},
    {"sd_bus_call_method", (void **)&api.call_method},
    {"sd_bus_match_signal", (void **)&api.match_signal},
    {"sd_bus_message_get_sender", (void **)&api.message_get_sender},
    {"sd_bus_error_has_name", (void **)&api.error_has_name},
    {"sd_notify", (void **)&api.notify},
    {"sd_notify_barrier", (void **)&api.notify_barrier},
    {"sd_watchdog_enabled", (void **)&api.watchdog_enabled},
    {"sd_journal_sendv", (void **)&api.journal_sendv},
    {"sd_get_sessions", (void **)&api.get_sessions},
    {"sd_session_get_tty", (void **)&api.session_get_tty},
};

CLOADER_DLOPEN_NOTE(dlopen_note_libsystemd,
                    "[{\"feature\":\"bus\",\"description\":\"the update engine and logind on the system bus, "
                    "sd_notify, the journal\",\"priority\":\"required\",\"soname\":[\"libsystemd.so.0\"]}]");

static struct cloader loader = {"libsystemd.so.0", symbols, sizeof symbols / sizeof symbols[0], NULL, PTHREAD_ONCE_INIT, ""};

/* Loads libsystemd once; 0, or -ELIBACC with the reason in csd_load_error(). */
static int ready(void) { return cloader_ready(&loader) ? 0 : -ELIBACC; }

#define READY_OR_RETURN(value)  \
    do {                        \
        if (ready() < 0)        \
            return value;       \
    } while (0)

const char *csd_load_error(void) { return loader.error; }

int csd_bus_open_system(sd_bus **ret) {
    READY_OR_RETURN(-ELIBACC);
    return api.bus_open_system(ret);
}

sd_bus *csd_bus_flush_close_unref(sd_bus *bus) {
    if (!bus || ready() < 0) return NULL;
    return api.bus_flush_close_unref(bus);
}

int csd_bus_flush(sd_bus *bus) {
    READY_OR_RETURN(-ELIBACC);
    return api.bus_flush(bus);
}

int csd_bus_get_fd(sd_bus *bus) {
    READY_OR_RETURN(-ELIBACC);
    return api.bus_get_fd(bus);
}

int csd_bus_get_events(sd_bus *bus) {
    READY_OR_RETURN(-ELIBACC);
    return api.bus_get_events(bus);
}

int csd_bus_get_timeout(sd_bus *bus, uint64_t *usec) {
    READY_OR_RETURN(-ELIBACC);
    return api.bus_get_timeout(bus, usec);
}

int csd_bus_process(sd_bus *bus) {
    READY_OR_RETURN(-ELIBACC);
    return api.bus_process(bus, NULL);
}

sd_bus_message *csd_message_unref(sd_bus_message *m) {
    if (!m || ready() < 0) return NULL;
    return api.message_unref(m);
}

sd_bus_slot *csd_slot_unref(sd_bus_slot *slot) {
    if (!slot || ready() < 0) return NULL;
    return api.slot_unref(slot);
}

void csd_error_free(sd_bus_error *e) {
    if (e && ready() == 0) api.error_free(e);
}

int csd_emit_status_update(sd_bus *bus, int64_t checked, double progress, const char *op, const char *version, int64_t size) {
    READY_OR_RETURN(-ELIBACC);
    return api.emit_signal(bus, "/com/coreos/update1", "com.coreos.update1.Manager", "StatusUpdate", "xdssx",
                           checked, progress, op, version, size);
}

int csd_read_status(sd_bus_message *m, int64_t *checked, double *progress, const char **op, const char **version, int64_t *size) {
    READY_OR_RETURN(-ELIBACC);
    return api.message_read(m, "xdssx", checked, progress, op, version, size);
}

int csd_call_get_status(sd_bus *bus, const char *destination, sd_bus_error *error, sd_bus_message **reply) {
    READY_OR_RETURN(-ELIBACC);
    return api.call_method(bus, destination, "/com/coreos/update1", "com.coreos.update1.Manager", "GetStatus",
                           error, reply, "");
}

int csd_call_reboot(sd_bus *bus, sd_bus_error *error, int interactive) {
    READY_OR_RETURN(-ELIBACC);
    return api.call_method(bus, "org.freedesktop.login1", "/org/freedesktop/login1", "org.freedesktop.login1.Manager",
                           "Reboot", error, NULL, "b", interactive);
}

int csd_match_status_update(sd_bus *bus, sd_bus_slot **slot, sd_bus_message_handler_t handler, void *userdata) {
    READY_OR_RETURN(-ELIBACC);
    return api.match_signal(bus, slot, NULL, "/com/coreos/update1", "com.coreos.update1.Manager", "StatusUpdate",
                            handler, userdata);
}

int csd_match_name_owner(sd_bus *bus, sd_bus_slot **slot, const char *name, sd_bus_message_handler_t handler, void *userdata) {
    (void)name;
    READY_OR_RETURN(-ELIBACC);
    return api.match_signal(bus, slot, "org.freedesktop.DBus", "/org/freedesktop/DBus", "org.freedesktop.DBus",
                            "NameOwnerChanged", handler, userdata);
}

int csd_read_name_owner_changed(sd_bus_message *m, const char **name, const char **old_owner, const char **new_owner) {
    READY_OR_RETURN(-ELIBACC);
    return api.message_read(m, "sss", name, old_owner, new_owner);
}

int csd_get_name_owner(sd_bus *bus, const char *name, char **ret_owner) {
    sd_bus_message *reply = NULL;
    sd_bus_error error = SD_BUS_ERROR_NULL;
    const char *owner = NULL;
    int r;
    READY_OR_RETURN(-ELIBACC);
    *ret_owner = NULL;
    r = api.call_method(bus, "org.freedesktop.DBus", "/org/freedesktop/DBus", "org.freedesktop.DBus", "GetNameOwner",
                        &error, &reply, "s", name);
    if (r < 0) {
        int none = api.error_has_name(&error, "org.freedesktop.DBus.Error.NameHasNoOwner");
        api.error_free(&error);
        return none ? 0 : r;
    }
    r = api.message_read(reply, "s", &owner);
    if (r >= 0) r = (*ret_owner = strdup(owner)) ? 1 : -ENOMEM;
    api.message_unref(reply);
    return r;
}

int csd_get_connection_uid(sd_bus *bus, const char *name, uint32_t *ret_uid) {
    sd_bus_message *reply = NULL;
    sd_bus_error error = SD_BUS_ERROR_NULL;
    int r;
    READY_OR_RETURN(-ELIBACC);
    r = api.call_method(bus, "org.freedesktop.DBus", "/org/freedesktop/DBus", "org.freedesktop.DBus",
                        "GetConnectionUnixUser", &error, &reply, "s", name);
    api.error_free(&error);
    if (r < 0) return r;
    r = api.message_read(reply, "u", ret_uid);
    api.message_unref(reply);
    return r;
}

const char *csd_message_sender(sd_bus_message *m) {
    if (!m || ready() < 0) return NULL;
    return api.message_get_sender(m);
}

int csd_notify(const char *state) {
    READY_OR_RETURN(-ELIBACC);
    return api.notify(0, state);
}

int csd_notify_barrier(uint64_t usec) {
    READY_OR_RETURN(-ELIBACC);
    return api.notify_barrier(0, usec);
}

int csd_watchdog_enabled(uint64_t *usec) {
    READY_OR_RETURN(-ELIBACC);
    return api.watchdog_enabled(0, usec);
}

int csd_journal_print(int priority, const char *identifier, const char *message, const char *const *fields) {
    char prio[32], ident[256];
    char *msg = NULL;
    struct iovec iov[32];
    int n = 0, r;
    READY_OR_RETURN(-ELIBACC);
    if (asprintf(&msg, "MESSAGE=%s", message) < 0) return -ENOMEM;
    snprintf(prio, sizeof prio, "PRIORITY=%d", priority);
    snprintf(ident, sizeof ident, "SYSLOG_IDENTIFIER=%s", identifier);
    iov[n++] = (struct iovec){msg, strlen(msg)};
    iov[n++] = (struct iovec){prio, strlen(prio)};
    iov[n++] = (struct iovec){ident, strlen(ident)};
    for (; fields && *fields && n < 32; fields++) iov[n++] = (struct iovec){(void *)*fields, strlen(*fields)};
    r = api.journal_sendv(iov, n);
    free(msg);
    return r;
}

int csd_session_ttys(char ***ret) {
    char **sessions = NULL, **ttys;
    int n, found = 0;
    if (!ret) return -EINVAL;
    *ret = NULL;
    READY_OR_RETURN(-ELIBACC);
    n = api.get_sessions(&sessions);
    if (n < 0) return n;
    ttys = calloc((size_t)n + 1, sizeof *ttys);
    if (!ttys) {
        csd_strv_free(sessions);
        return -ENOMEM;
    }
    for (int i = 0; i < n && sessions && sessions[i]; i++) {
        char *tty = NULL;
        if (api.session_get_tty(sessions[i], &tty) >= 0 && tty) ttys[found++] = tty;
    }
    csd_strv_free(sessions);
    *ret = ttys;
    return found;
}

void csd_strv_free(char **v) {
    if (!v) return;
    for (char **p = v; *p; p++) free(*p);
    free(v);
}
