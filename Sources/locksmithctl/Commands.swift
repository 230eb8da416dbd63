// The subcommands of locksmithctl: what each does, its help, and its run.
import Glibc
import LocksmithBus
import LocksmithCore
import LocksmithEtcd
import LocksmithSystem

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
            examples: ["locksmithctl status", "locksmithctl -group=lb status --json", "locksmithctl status --all-groups"],
            localFlags: [("json", "Print one JSON object: available, max, holders, group, key, etcd API and endpoint used."),
                         ("all-groups", "Show every group that has a semaphore, one line each (with --json: a JSON object).")],
            run: runStatus),
    Command(name: "lock", arguments: "[MACHINE-ID]", summary: "Take a reboot slot for a machine (default: this one).",
            details: "Fails if no slot is free or the machine already holds one. The machine id defaults to /etc/machine-id.",
            examples: ["locksmithctl lock", "locksmithctl lock 69d27b356a94476da859461d3a3bc6fd"], run: runLock),
    Command(name: "unlock", arguments: "[MACHINE-ID]", summary: "Give back a machine's reboot slot (default: this machine's).",
            details: "Use it to free the slot of a machine that went away while holding it.",
            examples: ["locksmithctl unlock 69d27b356a94476da859461d3a3bc6fd"], run: runUnlock),
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
                update.conf files, as the daemon does, and shows times in the local time zone.
                """,
            examples: ["locksmithctl window"], run: runWindow),
    Command(name: "completion", arguments: "bash|zsh|fish", summary: "Print a shell completion script.",
            details: "make install installs them; this prints one for other places.",
            examples: ["locksmithctl completion bash > /etc/bash_completion.d/locksmithctl"], hidden: true, run: runCompletion),
    Command(name: "man", arguments: "", summary: "Print the manual page (roff).", details: "make install installs it.",
            examples: ["locksmithctl man | man -l -"], hidden: true, run: runManual),
]

func command(named name: String) -> Command? { commands.first { $0.name == name } }

// MARK: - Context

/// Everything a command needs: the parsed command line, and the etcd client made from the
/// settings on first use.
final class Context {
    let line: ParsedCommandLine
    let debug: Bool
    private var madeClient: EtcdClient?

    init(_ line: ParsedCommandLine) {
        self.line = line
        debug = line.flag("debug")
    }

    func debugLog(_ text: String) {
        if debug { standardError("locksmithctl: debug: \(text)\n") }
    }

    /// The node's configuration as the daemon sees it (update.conf files and environment).
    func daemonConfiguration() -> Configuration? {
        do {
            return try NodeConfiguration.load()
        } catch {
            debugLog("cannot read the daemon's configuration: \(error)")
            return nil
        }
    }

    func client() throws -> EtcdClient {
        if let madeClient { return madeClient }
        let settings = Settings.resolve(line, environment: Syscalls.environment, daemonConfiguration: daemonConfiguration)
        var options = ClientOptions()
        for setting in settings {
            debugLog(Settings.describe(setting))
            do {
                try options.set(setting.name, setting.value)
            } catch let error as LocksmithError {
                // A value the flag's type refuses is a usage error, as with Go's flag package.
                let isUsage = setting.origin.hasPrefix("flag") && (setting.name == "etcd-api" || setting.name == "timeout")
                throw Failure(message: isUsage ? "locksmithctl: invalid value \(JSONText.quoted(setting.value)) for flag -\(setting.name): \(error.message)\nRun 'locksmithctl help' for usage."
                                               : "Error initializing etcd client: \(error.message)",
                              status: isUsage ? ExitStatus.usage : ExitStatus.failed)
            }
        }
        if let warning = options.passwordFileWarning { standardError("locksmithctl: warning: \(warning)\n") }
        let client = try EtcdClient(options: options)
        if debug { client.trace = { [weak self] line in self?.debugLog(line) } }
        madeClient = client
        return client
    }

    /// Runs an etcd operation, turning its failure into the original's messages: no endpoint
    /// reachable is "Error initializing etcd client", a corrupt document "Error reading
    /// semaphore", anything else `prefix`.
    func etcd<T>(_ prefix: String, _ body: (EtcdClient) throws -> T) throws -> T {
        let c = try client()
        defer {
            if let api = c.api { debugLog("etcd API \(api.rawValue), endpoint \(c.endpointInUse ?? "none")") }
        }
        do {
            return try body(c)
        } catch let error as LocksmithError {
            switch error.kind {
            case .connectionFailed, .timedOut, .permissionDenied:
                throw Failure(message: "Error initializing etcd client: \(error.message)", status: ExitStatus.failed)
            case .badMessage:
                throw Failure(message: "Error reading semaphore: \(error.message)", status: ExitStatus.failed)
            default:
                throw Failure(message: "\(prefix): \(error.message)", status: ExitStatus.failed)
            }
        }
    }

    /// The machine id argument, or this machine's id.
    func machineID(_ verb: String) throws -> String {
        if line.arguments.count > 1 {
            throw Failure(message: "\(verb) takes at most one machine id\nRun 'locksmithctl help \(verb)' for usage.", status: ExitStatus.usage)
        }
        if let id = line.arguments.first { return id }
        do {
            return try MachineID.read()
        } catch {
            throw Failure(message: "Error reading machine id: \(error)", status: ExitStatus.failed)
        }
    }
}

func standardOutput(_ text: String) { writeAll(1, text) }
func standardError(_ text: String) { writeAll(2, text) }

/// Writes all of `text` to a file descriptor (unbuffered: nothing is lost at exit).
private func writeAll(_ fd: Int32, _ text: String) {
    var bytes = Array(text.utf8)[...]
    while !bytes.isEmpty {
        let n = bytes.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
        if n < 0 && errno == EINTR { continue }
        if n <= 0 { return }
        bytes = bytes.dropFirst(n)
    }
}

// MARK: - Commands

func runStatus(_ context: Context) throws {
    guard context.line.arguments.isEmpty else {
        throw Failure(message: "status takes no arguments\nRun 'locksmithctl help status' for usage.", status: ExitStatus.usage)
    }
    let json = context.line.localFlags.contains("json")
    if context.line.localFlags.contains("all-groups") {
        try runAllGroups(context, json: json)
        return
    }
    let document = try context.etcd("Error reading semaphore") { try $0.get() }
    let client = try context.client()
    if json {
        standardOutput("{" + [
            "\"group\":" + JSONText.quoted(client.options.group),
            "\"key\":" + JSONText.quoted(client.key),
            "\"available\":\(document.available)",
            "\"max\":\(document.max)",
            "\"holders\":[" + document.holders.map(JSONText.quoted).joined(separator: ",") + "]",
            "\"etcd_api\":" + JSONText.quoted(client.api?.rawValue ?? ""),
            "\"endpoint\":" + JSONText.quoted(client.endpointInUse ?? ""),
        ].joined(separator: ",") + "}\n")
        return
    }
    var text = "Available: \(document.available)\nMax: \(document.max)\n"
    if !document.holders.isEmpty {
        text += "\nMACHINE ID\n" + document.holders.map { $0 + "\n" }.joined()
    }
    standardOutput(text)
}

private func runAllGroups(_ context: Context, json: Bool) throws {
    let groups = try context.etcd("Error reading semaphores") { try $0.allGroups() }
    let client = try context.client()
    var bad = 0
    if json {
        let items = groups.map { entry -> String in
            let key = (try? GroupKey.key(group: entry.group)) ?? ""
            switch entry.document {
            case .success(let d):
                return "{\"group\":\(JSONText.quoted(entry.group)),\"key\":\(JSONText.quoted(key)),\"available\":\(d.available),\"max\":\(d.max),"
                    + "\"holders\":[" + d.holders.map(JSONText.quoted).joined(separator: ",") + "]}"
            case .failure(let e):
                bad += 1
                return "{\"group\":\(JSONText.quoted(entry.group)),\"key\":\(JSONText.quoted(key)),\"error\":\(JSONText.quoted(e.message))}"
            }
        }
        standardOutput("{\"etcd_api\":\(JSONText.quoted(client.api?.rawValue ?? "")),\"endpoint\":\(JSONText.quoted(client.endpointInUse ?? "")),"
            + "\"groups\":[" + items.joined(separator: ",") + "]}\n")
    } else {
        var rows = [["GROUP", "AVAILABLE", "MAX", "HOLDERS"]]
        for entry in groups {
            // Group names come from etcd keys: one with a control character is shown quoted.
            let name = entry.group.isEmpty ? "(default)"
                : entry.group.unicodeScalars.contains { $0.value < 0x20 || (0x7f...0x9f).contains($0.value) } ? JSONText.quoted(entry.group) : entry.group
            switch entry.document {
            case .success(let d):
                rows.append([name, "\(d.available)", "\(d.max)", d.holders.isEmpty ? "-" : d.holders.joined(separator: ",")])
            case .failure(let e):
                bad += 1
                rows.append([name, "-", "-", "error: " + e.message])
            }
        }
        let widths = (0..<3).map { column in rows.map { $0[column].count }.max() ?? 0 }
        for row in rows {
            var line = ""
            for column in 0..<3 { line += row[column] + String(repeating: " ", count: widths[column] - row[column].count + 2) }
            standardOutput(line + row[3] + "\n")
        }
    }
    if bad > 0 { throw Failure(message: "Error reading semaphore: \(bad) group(s) hold no valid semaphore", status: ExitStatus.failed) }
}

func runLock(_ context: Context) throws {
    let id = try context.machineID("lock")
    try context.etcd("Error locking") { try $0.lock(id) }
}

func runUnlock(_ context: Context) throws {
    let id = try context.machineID("unlock")
    try context.etcd("Error unlocking") { try $0.unlock(id) }
}

func runSetMax(_ context: Context) throws {
    let arguments = context.line.arguments
    guard arguments.count == 1 else { throw Failure(message: "New maximum value must be set.", status: ExitStatus.failed) }
    guard let max = parseMax(arguments[0]) else {
        throw Failure(message: "Invalid maximum value: \(arguments[0])", status: ExitStatus.failed)
    }
    let old = try context.etcd("Error setting value") { try $0.setMax(max) }
    standardOutput("Old-Max: \(old)\nMax: \(max)\n")
}

/// A maximum as Go's strconv.Atoi reads it (optional sign, decimal digits), which must be
/// 0 or more and fit an int.
func parseMax(_ text: String) -> Int? {
    var digits = Substring(text)
    var negative = false
    if let sign = digits.first, sign == "+" || sign == "-" {
        negative = sign == "-"
        digits = digits.dropFirst()
    }
    guard !digits.isEmpty, digits.allSatisfy({ $0.isASCII && $0.isNumber }), let value = Int32(digits) else { return nil }
    if negative && value != 0 { return nil }
    return Int(value)
}

func runReboot(_ context: Context) throws {
    guard context.line.arguments.isEmpty else {
        throw Failure(message: "reboot takes no arguments\nRun 'locksmithctl help reboot' for usage.", status: ExitStatus.usage)
    }
    guard geteuid() == 0 else { throw Failure(message: "Error: reboot must be run as root", status: ExitStatus.failed) }
    let id = try context.machineID("reboot")
    var took = false
    var key = ""
    try context.etcd("Error locking") { client in
        key = client.key
        do {
            try client.lock(id)
            took = true
        } catch let error as LocksmithError where error.kind == .exists {
            context.debugLog("\(id) already holds a slot")
        } catch let error as LocksmithError where error.kind == .busy {
            // Free slots are checked first; a holder with no free slot left still holds its own.
            if try client.get().holds(id) { context.debugLog("\(id) already holds a slot") } else { throw error }
        }
    }
    if took {
        // So that this machine's locksmithd gives the slot back once the machine is up again.
        do {
            try SlotRecord.write(held: (key, id), root: SystemRoot.current)
        } catch {
            standardError("locksmithctl: warning: \(error): after the reboot, give the slot back with 'locksmithctl unlock \(id)'\n")
        }
    }
    do {
        try SystemBus().reboot()
    } catch {
        var message = "Error rebooting: \(error)"
        if took {
            do {
                try context.etcd("Error unlocking") { try $0.unlock(id) }
                message += "\nThe reboot lock taken for \(id) was released."
            } catch let failure as Failure {
                message += "\n" + failure.message + "\nThe reboot lock is still held by \(id): run 'locksmithctl unlock \(id)'."
            }
        }
        throw Failure(message: message, status: ExitStatus.failed)
    }
}

func runSendNeedReboot(_ context: Context) throws {
    guard context.line.arguments.isEmpty else {
        throw Failure(message: "send-need-reboot takes no arguments\nRun 'locksmithctl help send-need-reboot' for usage.", status: ExitStatus.usage)
    }
    do {
        let bus = try SystemBus()
        try bus.emitStatusUpdate(UpdateStatus(currentOperation: UpdateStatus.needReboot))
        // locksmithd believes this signal only from root, and asks the bus daemon which user sent
        // it: that works only while this connection is open, so it stays open a moment.
        Clock.sleep(milliseconds: 2000)
    } catch {
        throw Failure(message: "Error sending the signal: \(error)", status: ExitStatus.failed)
    }
}

func runWindow(_ context: Context) throws {
    let config: Configuration
    do {
        config = try NodeConfiguration.load()
    } catch {
        throw Failure(message: "Error reading the configuration: \(error)", status: ExitStatus.failed)
    }
    let resolved: (window: RebootWindow, start: DaemonSettings.Source, length: DaemonSettings.Source)?
    do {
        resolved = try DaemonSettings.rebootWindow(config)
    } catch {
        throw Failure(message: "Invalid reboot window: \(error)", status: ExitStatus.failed)
    }
    guard let resolved else {
        standardOutput("No reboot window is set: reboots may happen at any time.\n")
        return
    }
    let calendar = SystemCalendar()
    var now = timespec()
    clock_gettime(CLOCK_REALTIME, &now)
    let t = Int64(now.tv_sec)
    let window = resolved.window
    let occurrence: (start: Int64, end: Int64)
    do {
        occurrence = try window.occurrence(now: t, calendar: calendar)
    } catch {
        throw Failure(message: "Error: \(error)", status: ExitStatus.failed)
    }
    var text = "Reboot window: \(window.startText), \(window.lengthText) long"
    text += " (\(resolved.start.description), \(resolved.length.description))\n"
    if occurrence.start <= t {
        text += "Open now: since \(calendar.format(occurrence.start)); closes \(calendar.format(occurrence.end)), in \(GoDuration.format((occurrence.end - t) * 1_000_000_000))\n"
    } else {
        text += "Next opening: \(calendar.format(occurrence.start)), in \(GoDuration.format((occurrence.start - t) * 1_000_000_000)); closes \(calendar.format(occurrence.end))\n"
    }
    standardOutput(text)
}
