/* A stand-in for logind on a private bus: owns org.freedesktop.login1 and answers
 * org.freedesktop.login1.Manager.Reboot(b interactive) by appending "Reboot <interactive>" to a
 * log file (with " pid=<caller's pid>" when the bus can tell), and prints "Reboot" on stdout. With --fail N it refuses the first N calls (org.freedesktop.DBus.Error.AccessDenied).
 * usage: fake-logind LOGFILE [--fail N]    (bus from DBUS_SYSTEM_BUS_ADDRESS) */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <systemd/sd-bus.h>

static const char *logfile;
static int failures_left;

static int on_reboot(sd_bus_message *m, void *userdata, sd_bus_error *error) {
    (void)userdata;
    int interactive = 0;
    int r = sd_bus_message_read(m, "b", &interactive);
    if (r < 0) return r;
    pid_t pid = 0;
    sd_bus_creds *creds = NULL;
    if (sd_bus_query_sender_creds(m, SD_BUS_CREDS_PID, &creds) >= 0) {
        sd_bus_creds_get_pid(creds, &pid);
        sd_bus_creds_unref(creds);
    }
    FILE *f = fopen(logfile, "a");
    if (f) {
        fprintf(f, "Reboot %s%s", interactive ? "true" : "false", failures_left > 0 ? " refused" : "");
        if (pid > 0) fprintf(f, " pid=%d", (int)pid);
        fputc('\n', f);
        fclose(f);
    }
    printf("Reboot%s\n", failures_left > 0 ? " refused" : "");
    fflush(stdout);
    if (failures_left > 0) {
        failures_left--;
        return sd_bus_error_set(error, "org.freedesktop.DBus.Error.AccessDenied", "refused by the test");
    }
    return sd_bus_reply_method_return(m, NULL);
}

static const sd_bus_vtable vtable[] = {
    SD_BUS_VTABLE_START(0),
    SD_BUS_METHOD("Reboot", "b", "", on_reboot, SD_BUS_VTABLE_UNPRIVILEGED),
    SD_BUS_VTABLE_END,
};

int main(int argc, char **argv) {
    sd_bus *bus = NULL;
    int r;
    if (argc < 2) return 2;
    logfile = argv[1];
    if (argc == 4 && strcmp(argv[2], "--fail") == 0) failures_left = atoi(argv[3]);
    if ((r = sd_bus_open_system(&bus)) < 0) { fprintf(stderr, "fake-logind: bus: %s\n", strerror(-r)); return 1; }
    if ((r = sd_bus_add_object_vtable(bus, NULL, "/org/freedesktop/login1", "org.freedesktop.login1.Manager", vtable, NULL)) < 0 ||
        (r = sd_bus_request_name(bus, "org.freedesktop.login1", 0)) < 0) {
        fprintf(stderr, "fake-logind: %s\n", strerror(-r));
        return 1;
    }
    printf("ready\n");
    fflush(stdout);
    for (;;) {
        r = sd_bus_process(bus, NULL);
        if (r < 0) return 1;
        if (r > 0) continue;
        if (sd_bus_wait(bus, (uint64_t)-1) < 0) return 1;
    }
}
