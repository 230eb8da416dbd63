/* A stand-in for the update engine on a private bus: owns com.coreos.update1, answers
 * GetStatus with the current status, and reads commands on stdin, one per line:
 *   status OPERATION        set the current operation (e.g. UPDATE_STATUS_IDLE)
 *   emit OPERATION          set it and emit StatusUpdate
 *   emit-only OPERATION     emit StatusUpdate with OPERATION, leaving what GetStatus answers as it is
 *   emit-bad                emit a StatusUpdate with the wrong types (a malformed signal)
 *   forge-owner             emit org.freedesktop.DBus.NameOwnerChanged("com.coreos.update1", <its owner
 *                           or "">, <this connection's unique name>), as only the bus itself may
 *   quit
 * usage: fake-update-engine [--no-name] [INITIAL-OPERATION]    (bus from DBUS_SYSTEM_BUS_ADDRESS)
 * --no-name: an impostor: serves GetStatus on its unique name but does not own com.coreos.update1. */
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <systemd/sd-bus.h>
#include <unistd.h>

static char operation[512] = "UPDATE_STATUS_IDLE";

static int on_get_status(sd_bus_message *m, void *userdata, sd_bus_error *error) {
    (void)userdata;
    (void)error;
    return sd_bus_reply_method_return(m, "xdssx", (int64_t)1700000000, 0.0, operation, "9999.0.0", (int64_t)0);
}

static const sd_bus_vtable vtable[] = {
    SD_BUS_VTABLE_START(0),
    SD_BUS_METHOD("GetStatus", "", "xdssx", on_get_status, SD_BUS_VTABLE_UNPRIVILEGED),
    SD_BUS_SIGNAL("StatusUpdate", "xdssx", 0),
    SD_BUS_VTABLE_END,
};

/* NameOwnerChanged for com.coreos.update1 from this connection (not from the bus driver): a forgery. */
static int forge_owner(sd_bus *bus) {
    const char *unique = NULL, *owner = "";
    sd_bus_message *reply = NULL;
    int r = sd_bus_get_unique_name(bus, &unique);
    if (r < 0) return r;
    if (sd_bus_call_method(bus, "org.freedesktop.DBus", "/org/freedesktop/DBus", "org.freedesktop.DBus", "GetNameOwner", NULL,
                           &reply, "s", "com.coreos.update1") < 0 ||
        sd_bus_message_read(reply, "s", &owner) < 0)
        owner = "";
    r = sd_bus_emit_signal(bus, "/org/freedesktop/DBus", "org.freedesktop.DBus", "NameOwnerChanged", "sss", "com.coreos.update1",
                           owner, unique);
    sd_bus_message_unref(reply);
    return r;
}

int main(int argc, char **argv) {
    sd_bus *bus = NULL;
    char line[512];
    int r, own_name = 1;
    if (argc > 1 && strcmp(argv[1], "--no-name") == 0) {
        own_name = 0;
        argc--;
        argv++;
    }
    if (argc > 1) snprintf(operation, sizeof operation, "%s", argv[1]);
    if ((r = sd_bus_open_system(&bus)) < 0) { fprintf(stderr, "fake-update-engine: bus: %s\n", strerror(-r)); return 1; }
    if ((r = sd_bus_add_object_vtable(bus, NULL, "/com/coreos/update1", "com.coreos.update1.Manager", vtable, NULL)) < 0 ||
        (own_name && (r = sd_bus_request_name(bus, "com.coreos.update1", 0)) < 0)) {
        fprintf(stderr, "fake-update-engine: %s\n", strerror(-r));
        return 1;
    }
    printf("ready\n");
    fflush(stdout);
    for (;;) {
        while ((r = sd_bus_process(bus, NULL)) > 0) {}
        if (r < 0) return 1;
        struct pollfd fds[2] = {{.fd = sd_bus_get_fd(bus), .events = (short)sd_bus_get_events(bus)}, {.fd = 0, .events = POLLIN}};
        if (poll(fds, 2, -1) < 0) continue;
        if (fds[1].revents & (POLLIN | POLLHUP)) {
            if (!fgets(line, sizeof line, stdin)) return 0;
            line[strcspn(line, "\n")] = 0;
            if (strncmp(line, "status ", 7) == 0) {
                snprintf(operation, sizeof operation, "%s", line + 7);
            } else if (strncmp(line, "emit ", 5) == 0) {
                snprintf(operation, sizeof operation, "%s", line + 5);
                sd_bus_emit_signal(bus, "/com/coreos/update1", "com.coreos.update1.Manager", "StatusUpdate", "xdssx",
                                   (int64_t)1700000000, 0.0, operation, "9999.0.0", (int64_t)0);
            } else if (strncmp(line, "emit-only ", 10) == 0) {
                sd_bus_emit_signal(bus, "/com/coreos/update1", "com.coreos.update1.Manager", "StatusUpdate", "xdssx",
                                   (int64_t)1700000000, 0.0, line + 10, "9999.0.0", (int64_t)0);
            } else if (strcmp(line, "forge-owner") == 0) {
                if ((r = forge_owner(bus)) < 0) fprintf(stderr, "fake-update-engine: forge-owner: %s\n", strerror(-r));
            } else if (strcmp(line, "emit-bad") == 0) {
                sd_bus_emit_signal(bus, "/com/coreos/update1", "com.coreos.update1.Manager", "StatusUpdate", "s", "garbage");
            } else if (strcmp(line, "quit") == 0) {
                return 0;
            }
            sd_bus_flush(bus);
            printf("ok\n");
            fflush(stdout);
        }
    }
}
