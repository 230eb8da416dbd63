// The subcommands of locksmithctl: what each does, its help, and its run. Everything etcd,
// configuration and machine id goes through liblocksmith (the Locksmith overlay).
import Glibc
import Locksmith
import LocksmithBus

/// Exit statuses: 0 done, 1 the operation failed, 2 the command line was wrong.
enum ExitStatus {
    static let ok: Int32 = 0
    static let failed: Int32 = 1
    static let usage: Int32 = 2
}

/// Ends the command with a message on stderr and an exit status.
struct Failure: Error {
    let message: String
    let status: Int32
}

struct Command: Sendable {
    let name: String
    let arguments: String
    let summary: String
    let details: String
    let examples: [String]
    var localFlags: [(name: String, help: String)] = []
    /// Flags of its own that take a value: --NAME=VALUE.
    var valueFlags: [(name: String, value: String, help: String)] = []
    var takesDashArguments = false
    var hidden = false
    let run: @Sendable (Context) throws -> Void
}

let commands: [Command] = [
    Command(name: "help", arguments: "[COMMAND]", summary: "Show help for locksmithctl or one of its commands.",
            details: "Without a command, lists the commands and the global flags.",
            examples: ["locksmithctl help set-max"], run: runHelp),
    Command(name: "status", arguments: "", summary: "Show the free slots, the maximum and the holders of the reboot lock.",
            details: """
                Prints "Available: N" (free slots; negative when the maximum was lowered below the \
                number of holders), "Max: M" and, if any machine holds a slot, a blank line, \
                "MACHINE ID" and one holder per line. Creates the semaphore if it does not exist yet.
                """,
            examples: ["locksmithctl status", "locksmithctl -group=lb status --json", "locksmithctl status --all-groups",
                       "locksmithctl status --ages", "locksmithctl status --watch --all-groups"],
            localFlags: [("json", "Print one JSON object: available, max, holders, group, key, etcd API and endpoint used, holder_ages (when each holder took its slot and from which host; null where nothing was recorded), queue (the waiters in order) and queue_ignored (entries under the queue prefix that waiters skip, with key and reason: no-lease, no-ttl or unreadable)."),
                         ("all-groups", "Show every group that has a semaphore, one line each (with --json: a JSON object)."),
                         ("ages", "Show how long each holder has held its slot, since when and from which host (\"unknown\" for a holder that took it with the original locksmith)."),
                         ("queue", "Show the machines waiting for a slot in the group's queue, first in line first, with how long each has waited; entries no waiter made (no lease or TTL, or not an entry) are listed with '-' and why waiters skip them."),
                         ("watch", "Keep showing the group (with --all-groups: every group), updated at each change of the semaphore that etcd's watch reports (no polling): free slots and max, the holders with how long they have held, the queue with how long each has waited, and the last changes with their times. On a terminal a full-screen view that fits the window (Ctrl-C quits); otherwise one timestamped line per change (UTC), starting with one line of the current state. If etcd cannot be reached it says so and retries until it can. Not with --json.")],
            run: runStatus),
    Command(name: "lock", arguments: "[MACHINE-ID]", summary: "Take a reboot slot for a machine (default: this one).",
            details: "Fails if no slot is free or the machine already holds one. The machine id defaults to /etc/machine-id.",
            examples: ["locksmithctl lock", "locksmithctl lock 69d27b356a94476da859461d3a3bc6fd"], run: runLock),
    Command(name: "unlock", arguments: "[MACHINE-ID]", summary: "Give back a machine's reboot slot (default: this machine's).",
            details: """
                Use it to free the slot of a machine that went away while holding it. With \
                --older-than, gives back every slot held longer than that instead, one line each; \
                holders whose age was not recorded keep their slots, and so does a holder that gave \
                its slot back and took one again after its age was read.
                """,
            examples: ["locksmithctl unlock 69d27b356a94476da859461d3a3bc6fd", "locksmithctl unlock --older-than=6h"],
            valueFlags: [("older-than", "DURATION", "Give back the slots held longer than DURATION (such as 6h or 90m).")],
            run: runUnlock),
    Command(name: "set-max", arguments: "MAX", summary: "Set how many machines of the group may reboot at once.",
            details: """
                Prints the old and the new maximum. Holders keep their slots: lowering the maximum \
                below the number of holders leaves the free count negative until enough of them \
                unlock. 0 pauses all reboots of the group.
                """,
            examples: ["locksmithctl set-max 2", "locksmithctl -group=lb set-max 1"], takesDashArguments: true, run: runSetMax),
    Command(name: "reboot", arguments: "", summary: "Take this machine's reboot slot, then reboot it through logind (root only).",
            details: """
                Holding a slot already counts as holding it. If logind does not accept the reboot, \
                the slot taken is given back. The daemon gives the slot back once the machine is up.
                """,
            examples: ["sudo locksmithctl reboot"], run: runReboot),
    Command(name: "send-need-reboot", arguments: "", summary: "Tell locksmithd that an update needs a reboot, as the update engine would.",
            details: """
                Emits the update engine's StatusUpdate signal with UPDATE_STATUS_UPDATED_NEED_REBOOT \
                on the system bus: a way to test the daemon without an update. locksmithd believes \
                the signal only from the update engine itself or from root (any user may emit it), \
                so run it as root; it stays connected for 2 seconds so that the daemon can ask the \
                bus who sent it.
                """,
            examples: ["sudo locksmithctl send-need-reboot"], run: runSendNeedReboot),
    Command(name: "window", arguments: "", summary: "Show the configured reboot window and when it next opens.",
            details: """
                Reads LOCKSMITHD_REBOOT_WINDOW_START and LOCKSMITHD_REBOOT_WINDOW_LENGTH (or \
                REBOOT_WINDOW_START and REBOOT_WINDOW_LENGTH) from the environment and the \
                update.conf files, as the daemon does, and shows times in the local time zone, or \
                in LOCKSMITHD_REBOOT_WINDOW_TZ's zone when that is set.
                """,
            examples: ["locksmithctl window"], run: runWindow),
    Command(name: "check", arguments: "", summary: "Check whether this machine is ready to take part in rollouts, and say what to fix.",
            details: """
                Looks at the machine as locksmithd does (its update.conf files and LOCKSMITHD_* \
                variables, not locksmithctl's flags) and prints one line per check, ok, warning or \
                error, with what to do when it is not ok: the update.conf files and the settings \
                (with the file and line of a bad one), the strategy, the reboot window and when it \
                next opens, the machine id, whether locksmithd runs and in what state, where \
                "reboot needed" comes from (the update engine on the bus, or the file watched), \
                the hooks, and with etcd-lock each etcd endpoint (answering, TLS and its CA, the \
                user), the API in use and whether machines on the original locksmith share the \
                semaphore, the group's semaphore (readable, valid, max and holders) and whether \
                this machine holds a slot locksmithd did not take. Only reads. Exit status 0 when \
                every check is ok, 1 with warnings, 2 with errors.
                """,
            examples: ["locksmithctl check", "locksmithctl check --json"],
            localFlags: [("json", "Print one JSON object: status (ok, warning or error), the counts, and checks, each with check, status, message and fix (null when ok).")],
            run: runCheck),
    Command(name: "completion", arguments: "bash|zsh|fish", summary: "Print a shell completion script.",
            details: "make install installs them; this prints one for other places.",
            examples: ["locksmithctl completion bash > /etc/bash_completion.d/locksmithctl"], hidden: true, run: runCompletion),
    Command(name: "man", arguments: "", summary: "Print the manual page (roff).", details: "make install installs it.",
            examples: ["locksmithctl man | man -l -"], hidden: true, run: runManual),
]

func command(named name: String) -> Command? { commands.first { $0.name == name } }
