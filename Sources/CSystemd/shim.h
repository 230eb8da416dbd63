/* libsystemd for Swift: sd_notify, sd-bus and sd-journal, with typed wrappers for the variadic
 * calls Swift cannot make (sd_bus_message_append/read and sd_journal_send take format strings). */
#ifndef LOCKSMITH_CSYSTEMD_SHIM_H
#define LOCKSMITH_CSYSTEMD_SHIM_H
#include <stdint.h>
#include <systemd/sd-bus.h>
#include <systemd/sd-daemon.h>
#include <systemd/sd-journal.h>

/* The update engine's status tuple (x d s s x), as GetStatus returns it and StatusUpdate carries it. */
static inline int csd_read_status(sd_bus_message *m, int64_t *checked, double *progress,
                                  const char **op, const char **version, int64_t *size) {
    return sd_bus_message_read(m, "xdssx", checked, progress, op, version, size);
}
static inline int csd_append_status(sd_bus_message *m, int64_t checked, double progress,
                                    const char *op, const char *version, int64_t size) {
    return sd_bus_message_append(m, "xdssx", checked, progress, op, version, size);
}
/* logind's Reboot(b interactive). */
static inline int csd_call_reboot(sd_bus *bus, sd_bus_error *err, int interactive) {
    return sd_bus_call_method(bus, "org.freedesktop.login1", "/org/freedesktop/login1",
                              "org.freedesktop.login1.Manager", "Reboot", err, NULL, "b", interactive);
}
/* The update engine's GetStatus() -> (xdssx). */
static inline int csd_call_get_status(sd_bus *bus, sd_bus_error *err, sd_bus_message **reply) {
    return sd_bus_call_method(bus, "com.coreos.update1", "/com/coreos/update1", "com.coreos.update1.Manager",
                              "GetStatus", err, reply, "");
}
/* One journal entry with a message and a priority. */
static inline int csd_journal_print(int priority, const char *message) {
    return sd_journal_send("MESSAGE=%s", message, "PRIORITY=%i", priority, NULL);
}
#endif
