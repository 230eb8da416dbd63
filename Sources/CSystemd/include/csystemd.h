/* libsystemd for Swift: sd-bus, sd_notify and sd-journal, loaded with dlopen(3) the first time
 * one of these functions is called, so that programs that never touch the bus (locksmithctl
 * status, the common case) do not pay for loading libsystemd and its libraries at every start.
 * The calls are typed wrappers: sd-bus's message functions are variadic, which Swift cannot
 * call. Each returns a negative errno on failure, -ELIBACC if libsystemd cannot be loaded. */
#ifndef LOCKSMITH_CSYSTEMD_H
#define LOCKSMITH_CSYSTEMD_H

#include <stdint.h>
#include <systemd/sd-bus.h>

/* Why libsystemd could not be loaded ("" if it could, or was not tried yet). */
const char *csd_load_error(void);

int csd_bus_open_system(sd_bus **ret);
sd_bus *csd_bus_flush_close_unref(sd_bus *bus);
int csd_bus_flush(sd_bus *bus);
int csd_bus_get_fd(sd_bus *bus);
int csd_bus_get_events(sd_bus *bus);
int csd_bus_get_timeout(sd_bus *bus, uint64_t *usec);
int csd_bus_process(sd_bus *bus);
sd_bus_message *csd_message_unref(sd_bus_message *m);
sd_bus_slot *csd_slot_unref(sd_bus_slot *slot);
void csd_error_free(sd_bus_error *e);

/* The update engine's StatusUpdate signal (x d s s x), emitted on /com/coreos/update1. */
int csd_emit_status_update(sd_bus *bus, int64_t checked, double progress, const char *op, const char *version, int64_t size);
/* Reads the status tuple (x d s s x) from a GetStatus reply or a StatusUpdate signal. */
int csd_read_status(sd_bus_message *m, int64_t *checked, double *progress, const char **op, const char **version, int64_t *size);
/* The update engine's GetStatus() -> (x d s s x), asked of destination (a unique name, so that
 * the answer comes from the connection meant, or the well-known name). */
int csd_call_get_status(sd_bus *bus, const char *destination, sd_bus_error *error, sd_bus_message **reply);
/* logind's Reboot(b interactive). */
int csd_call_reboot(sd_bus *bus, sd_bus_error *error, int interactive);
/* Calls handler for every StatusUpdate signal of the update engine. */
int csd_match_status_update(sd_bus *bus, sd_bus_slot **slot, sd_bus_message_handler_t handler, void *userdata);
/* Calls handler whenever the owner of a bus name changes (NameOwnerChanged for name). */
int csd_match_name_owner(sd_bus *bus, sd_bus_slot **slot, const char *name, sd_bus_message_handler_t handler, void *userdata);
/* Reads NameOwnerChanged's (s name, s old_owner, s new_owner). */
int csd_read_name_owner_changed(sd_bus_message *m, const char **name, const char **old_owner, const char **new_owner);
/* The unique name (":1.42") of the connection that owns name: 1 and a malloc()ed copy in
 * *ret_owner; 0 and NULL if nobody owns it. */
int csd_get_name_owner(sd_bus *bus, const char *name, char **ret_owner);
/* The user id the bus daemon knows for the connection `name` (GetConnectionUnixUser). */
int csd_get_connection_uid(sd_bus *bus, const char *name, uint32_t *ret_uid);
/* The unique name of a message's sender (set by the bus daemon, not by the sender), or NULL. */
const char *csd_message_sender(sd_bus_message *m);

/* sd_notify(3): 0 if there is no service manager to tell, > 0 if told. */
int csd_notify(const char *state);

/* sd_notify_barrier(3): returns once the service manager has read every notification sent
 * before (or after usec): a process that exits right after READY=1 is then not taken for one
 * that exited before it. 0 if there is no service manager, > 0 once done, or -errno. */
int csd_notify_barrier(uint64_t usec);
/* sd_watchdog_enabled(3): > 0 and the interval in *usec if the unit has WatchdogSec. */
int csd_watchdog_enabled(uint64_t *usec);
/* One journal entry: MESSAGE, PRIORITY and SYSLOG_IDENTIFIER, plus optional "KEY=value" fields
 * (NULL-terminated list, may be NULL). */
int csd_journal_print(int priority, const char *identifier, const char *message, const char *const *fields);
/* The terminals of logind's sessions (sd_get_sessions(3), sd_session_get_tty(3)), as "pts/0" or
 * "tty1": a NULL-terminated list in *ret, to be freed with csd_strv_free; the number of them, or
 * a negative errno. Sessions without a terminal are left out. */
int csd_session_ttys(char ***ret);
void csd_strv_free(char **v);

#endif
