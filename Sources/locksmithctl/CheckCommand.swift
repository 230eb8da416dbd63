// `check`: whether this machine is ready to take part in rollouts, as locksmithd would see it.
// Each line is one check with ok / warning / error and, when not ok, what to do. Exit status 0
// when all are ok, 1 with warnings, 2 with errors; --json for automation. Nothing is written:
// etcd is only read (a missing semaphore stays missing), the bus only asked.
import Glibc
import Locksmith
import LocksmithBus
import LocksmithDaemon

private enum Level: Int, Comparable {
    case ok = 0, warning = 1, error = 2

    var word: String { ["ok", "warning", "error"][rawValue] }
    static func < (a: Level, b: Level) -> Bool { a.rawValue < b.rawValue }
}

private struct Finding {
    let check: String
    let level: Level
    let message: String
    let fix: String?
}

/// The checks, in the order they run; each adds findings.
private final class Checker {
    let root: String
    var findings: [Finding] = []
    var configuration: Configuration?
    var settings: DaemonSettings?
    var machineID: String?
    /// What the running daemon says in its state file (nil: no running daemon's file).
    var daemonState: Configuration?

    init(root: String) { self.root = root }

    func add(_ check: String, _ level: Level, _ message: String, fix: String? = nil) {
        findings.append(Finding(check: check, level: level, message: message, fix: fix))
    }

    func now() -> Int64 {
        var t = timespec()
        clock_gettime(CLOCK_REALTIME, &t)
        return Int64(t.tv_sec)
    }

    func ago(_ t: Int64) -> String {
        Library.formatDuration(max(0, now() - t) * 1_000_000_000) + " ago"
    }

    // ---- configuration, strategy, window ----

    func checkConfiguration() {
        let present = Configuration.files.filter { access(underRoot($0), F_OK) == 0 }
        do {
            configuration = try Configuration(root: root)
        } catch {
            add("configuration", .error, "cannot read the update.conf files: \(error)",
                fix: "make each update.conf file a readable UTF-8 text file")
            return
        }
        if present.isEmpty {
            add("configuration", .ok, "no settings file (\(Configuration.files.joined(separator: ", "))): the defaults and the environment apply")
        } else {
            add("configuration", .ok, "read \(present.map(underRoot).joined(separator: ", "))")
        }
        for warning in configuration!.warnings {
            add("configuration", .warning, warning, fix: "correct or remove the line: locksmithd skips it")
        }
        do {
            settings = try DaemonSettings(configuration!, root: root)
        } catch {
            // The message starts with the setting: VARIABLE="value" (from FILE) ...
            let message = "\(error)"
            let variable = String(message.prefix { $0 == "_" || ("A"..."Z").contains($0) || ("0"..."9").contains($0) })
            let place = place(of: variable)
            add("settings", .error, message,
                fix: "correct \(place.map { "\(variable) at \($0)" } ?? "the setting named") (locksmithd does not start with it)")
            return
        }
        // The configuration's own warnings (skipped lines) are among them: said once, above.
        for warning in settings!.warnings where !configuration!.warnings.contains(warning) { add("settings", .warning, warning) }
        let strategy = settings!.strategy
        let origin = place(of: "REBOOT_STRATEGY").map { " (\($0))" } ?? " (the default)"
        switch strategy {
        case .off:
            add("strategy", .warning, "REBOOT_STRATEGY=off\(origin): locksmithd does nothing, and this machine never reboots for an update",
                fix: "set REBOOT_STRATEGY=etcd-lock (or fleetlock, or reboot) in /etc/flatcar/update.conf or /etc/default/locksmithd")
        case .reboot:
            add("strategy", .ok, "REBOOT_STRATEGY=reboot\(origin): reboots when an update needs it, without asking anyone for a slot")
        case .fleetLock:
            add("strategy", .ok, "REBOOT_STRATEGY=fleetlock\(origin): takes a slot of group \(groupName(settings!.group)) through a FleetLock server first")
        case .etcdLock:
            add("strategy", .ok, "REBOOT_STRATEGY=\(strategy)\(origin): takes a slot of group \(groupName(settings!.group)) in etcd first")
        }
        checkWindow()
    }

    /// Where `variable` was set: "FILE:LINE", "environment", or nil when nothing sets it.
    func place(of variable: String) -> String? {
        guard !variable.isEmpty, let setting = configuration?[variable] else { return nil }
        return configuration!.line(variable).map { "\(setting.origin):\($0)" } ?? setting.origin
    }

    func groupName(_ group: String) -> String { group.isEmpty ? "(default)" : Library.jsonQuoted(group) }

    func underRoot(_ path: String) -> String { LocksmithDaemon.underRoot(path, root) }

    func checkWindow() {
        guard let settings else { return }
        guard let window = settings.window else {
            add("window", .ok, "no reboot window: reboots whenever one is needed")
            return
        }
        let (start, length) = window.text
        let t = now()
        do {
            let next = try window.occurrence(now: t)
            let when = next.start <= t
                ? "open now, closes \(window.format(next.end)) (in \(Library.formatDuration((next.end - t) * 1_000_000_000)))"
                : "next opens \(window.format(next.start)) (in \(Library.formatDuration((next.start - t) * 1_000_000_000)))"
            add("window", .ok, "\(start), \(length) long\(window.zone.map { ", \($0) time" } ?? ""): \(when)")
        } catch {
            add("window", .error, "\(start), \(length) long: \(error)", fix: "correct LOCKSMITHD_REBOOT_WINDOW_START and _LENGTH")
        }
    }

    // ---- machine id ----

    func checkMachineID() {
        do {
            machineID = try Library.machineID(root: root)
            add("machine-id", .ok, machineID!)
        } catch {
            add("machine-id", .error, "\(error)",
                fix: "give the machine an id: systemd-machine-id-setup (each machine needs its own: cloned images share one)")
        }
    }

    // ---- the running daemon ----

    func checkDaemon() {
        let strategy = settings?.strategy
        do {
            if let file = try DaemonFile.read(DaemonFile.statePath, root: root), file.running != false {
                daemonState = file.values
                let state = file.values["STATE"]?.value ?? "?"
                let since = file.values["STATE_SINCE"].flatMap { Int64($0.value) }
                let running = file.values["STRATEGY"]?.value ?? "?"
                if file.running == nil {
                    // No answer from the kernel about the lock is not "running": say what the file says, as a warning.
                    add("locksmithd", .warning, "cannot tell whether it runs (the kernel cannot be asked about its lock); its state file says \(state) (REBOOT_STRATEGY=\(running))",
                        fix: "systemctl status locksmithd")
                } else {
                    add("locksmithd", .ok, "running, \(state)\(since.map { " since \(ago($0))" } ?? "") (REBOOT_STRATEGY=\(running))")
                }
                if let strategy, running != strategy.rawValue {
                    add("locksmithd", .warning, "it runs with REBOOT_STRATEGY=\(running), the configuration now says \(strategy)",
                        fix: "systemctl restart locksmithd")
                }
                return
            }
            if let coordinator = try DaemonFile.read(DaemonFile.coordinatorPath, root: root), coordinator.running != false {
                add("locksmithd", .warning, "a coordinator runs that keeps no \(DaemonFile.statePath) (the original locksmithd, or an older one): \(coordinator.values["STATE"]?.value ?? "?")",
                    fix: "run this project's locksmithd")
                return
            }
        } catch {
            add("locksmithd", .error, "\(error)", fix: "remove the file: only locksmithd (root) writes it")
            return
        }
        if strategy == .off {
            add("locksmithd", .ok, "not running (REBOOT_STRATEGY=off: it would have nothing to do)")
        } else {
            add("locksmithd", .warning, "not running: no update will lead to a reboot",
                fix: "systemctl enable --now locksmithd")
        }
    }

    // ---- where "reboot needed" comes from ----

    func checkRebootSource() {
        guard let settings, settings.strategy != .off else { return }
        let source = settings.rebootSource, argument = settings.rebootSourceArgument
        func engineOnBus() -> Result<Bool, Error> {
            Result { try SystemBus().owner(of: UpdateEngine.service) != nil }
        }
        switch source {
        case .updateEngine, .auto:
            switch engineOnBus() {
            case .success(true):
                add("reboot-source", .ok, "the update engine (\(UpdateEngine.service)) is on the system bus")
            case .success(false) where source == .auto:
                checkSentinel(argument, prefix: "the update engine is not on the system bus: ")
            case .success(false):
                add("reboot-source", .error, "the update engine (\(UpdateEngine.service)) is not on the system bus: locksmithd will wait for it",
                    fix: "start the update engine, or set LOCKSMITHD_REBOOT_SOURCE=file (Debian: /run/reboot-required)")
            case .failure(let error):
                if source == .auto {
                    checkSentinel(argument, prefix: "the system bus cannot be asked (\(error)): ")
                } else {
                    add("reboot-source", .error, "\(error)", fix: "start D-Bus (systemctl start dbus)")
                }
            }
        case .file:
            checkSentinel(argument, prefix: "")
        case .command:
            let program = String(argument.split(separator: " ", maxSplits: 1).first ?? "")
            if let found = findProgram(program) {
                add("reboot-source", .ok, "the command \(Library.jsonQuoted(argument)) (\(found)), every \(Library.formatDuration(settings.rebootCheckInterval))")
            } else {
                add("reboot-source", .error, "the command \(Library.jsonQuoted(argument)): \(Library.jsonQuoted(program)) is not an executable file",
                    fix: "install it, or correct LOCKSMITHD_REBOOT_SOURCE")
            }
        }
    }

    func checkSentinel(_ path: String, prefix: String) {
        let directory = path.lastIndex(of: "/").map { path[..<$0].isEmpty ? "/" : String(path[..<$0]) } ?? "."
        var st = stat()
        if stat(directory, &st) == 0 && st.st_mode & S_IFMT == S_IFDIR {
            add("reboot-source", .ok, "\(prefix)locksmithd watches \(path)\(access(path, F_OK) == 0 ? ", which exists: a reboot is needed" : "")")
        } else {
            add("reboot-source", .error, "\(prefix)\(path) cannot be watched: \(directory) is not a directory",
                fix: "create \(directory), or correct LOCKSMITHD_REBOOT_SOURCE")
        }
    }

    func findProgram(_ program: String) -> String? {
        guard !program.isEmpty else { return nil }
        let candidates = program.contains("/") ? [program]
            : HookFiles.path.split(separator: ":").map { "\($0)/\(program)" }
        return candidates.first { access($0, X_OK) == 0 }
    }

    // ---- hooks ----

    func checkHooks() {
        guard let settings else { return }
        var total = 0
        for phase in HookPhase.allCases {
            let entries = HookFiles.entries(settings.hooksDirectory, phase)
            let hooks = entries.compactMap { if case .hook(let name, _) = $0 { return name } else { return nil } }
            total += entries.count
            if !hooks.isEmpty {
                add("hooks", .ok, "\(HookFiles.directory(settings.hooksDirectory, phase)): \(hooks.joined(separator: ", "))")
            }
            for case .refused(let name, let why) in entries {
                add("hooks", .error, "\(phase.rawValue) hook \(name) is refused: \(why); while it is there the \(phase.rawValue) phase fails and this machine does not reboot",
                    fix: why == "not executable" ? "chmod +x it, or remove it" : "make it root's and writable by root alone (chown root:root, chmod go-w), or remove it")
            }
        }
        if total == 0 {
            add("hooks", .ok, "none in \(settings.hooksDirectory)/{pre-lock,pre-reboot,post-reboot}.d")
        }
    }

    // ---- etcd ----

    func checkEtcd() {
        guard let settings else { return }
        guard settings.strategy == .etcdLock else {
            if settings.strategy == .fleetLock {
                add("etcd", .ok, "not used: slots come from the FleetLock server, which can only be asked to take or give back one (not checked)")
            }
            return
        }
        let client: Client
        do {
            client = try settings.client()
        } catch {
            add("etcd", .error, "\(error)", fix: "correct the etcd setting named")
            return
        }
        let value = { (name: String) in client.settings.first { $0.name == name } }
        let endpoints = (value("endpoint")?.value ?? "").split(separator: ",").map(String.init)
        var reached: Client?
        for endpoint in endpoints {
            do {
                let one = try settings.client()
                try one.set("endpoint", "")  // "" empties the list; then this endpoint alone
                try one.set("endpoint", endpoint)
                let start = monotonicMilliseconds()
                do {
                    _ = try one.read()
                } catch let error as LocksmithFailure where error.code == EBADMSG {
                    // It answered, with a value that is not a semaphore: the semaphore check says so.
                }
                var detail = "answered in \(monotonicMilliseconds() - start) ms (etcd \(one.api ?? "?"))"
                if endpoint.hasPrefix("https://") {
                    let ca = value("etcd-cafile").flatMap { $0.value.isEmpty ? nil : $0 }
                    detail += ", TLS verified against \(ca.map { "\($0.value) (\($0.origin.isEmpty ? "etcd-cafile" : $0.origin))" } ?? "the system's CA certificates")"
                    if let cert = value("etcd-certfile"), !cert.value.isEmpty { detail += " with client certificate \(cert.value)" }
                }
                if let user = value("etcd-username"), !user.value.isEmpty { detail += ", authenticated as \(Library.jsonQuoted(user.value))" }
                add("etcd", .ok, "\(endpoint): \(detail)")
                if reached == nil { reached = one }
            } catch {
                add("etcd", endpoints.count > 1 ? .warning : .error, "\(endpoint): \(error)",
                    fix: "see docs/errors.md for this message")
            }
        }
        guard let reached else {
            if endpoints.count > 1 {
                add("etcd", .error, "no endpoint answered: locksmithd cannot take a slot", fix: "see the lines above")
            }
            return
        }
        checkAPI(reached, settings: settings)
        checkSemaphore(reached)
    }

    /// The API in use, and whether the original's machines (etcd v2 only) share this semaphore.
    func checkAPI(_ client: Client, settings: DaemonSettings) {
        let api = client.api ?? "?"
        guard api == "v3" else {
            add("etcd-api", .ok, "etcd \(api): the keys of the original locksmith; its machines share this semaphore")
            return
        }
        do {
            let v2 = try settings.client()
            if let endpoint = client.endpoint {
                try v2.set("endpoint", "")
                try v2.set("endpoint", endpoint)
            }
            try v2.set("etcd-api", "v2")
            if let document = try v2.read() {
                add("etcd-api", .warning, "etcd v3, but etcd also holds a v2 semaphore at \(client.key) (max \(document.max), \(document.holders.count) holder(s)): machines running the original locksmith (etcd v2 only) use that one, and the two do not share slots",
                    fix: "while machines run the original, set LOCKSMITHD_ETCD_API=v2 on every machine of the group (README: etcd v2, v3, and moving from one to the other)")
            } else {
                add("etcd-api", .ok, "etcd v3; there is no v2 semaphore at this key, so no machine running the original locksmith (etcd v2 only) takes part in this group")
            }
        } catch {
            add("etcd-api", .ok, "etcd v3; this etcd does not answer v2 requests, so no machine running the original locksmith can share its semaphores")
        }
    }

    func checkSemaphore(_ client: Client) {
        let group = groupName(settings?.group ?? "")
        let document: SemaphoreDocument?
        do {
            document = try client.read()
        } catch {
            add("semaphore", .error, "group \(group): \(error)",
                fix: "locksmith-swift never overwrites a corrupt value: look at it (etcdctl get \(client.key)) and repair or delete it (docs/errors.md)")
            return
        }
        guard let document else {
            add("semaphore", .ok, "group \(group): no semaphore yet at \(client.key) (the first lock creates it with max 1)")
            return
        }
        add("semaphore", .ok, "group \(group): max \(document.max), \(document.holders.count) holder(s), \(document.available) free")
        if document.max == 0 {
            add("semaphore", .warning, "max is 0: no machine of group \(group) can reboot", fix: "locksmithctl set-max N (N machines at once)")
        } else if document.available < 0 {
            add("semaphore", .warning, "more holders than max (\(document.holders.count) > \(document.max)): nobody else reboots until \(-document.available + 1) give back their slots")
        }
        guard let machineID, document.holders.contains(machineID) else { return }
        let daemonHolds = daemonState?["SLOT_HELD"]?.value == "yes" && daemonState?["SLOT_KEY"]?.value == client.key
        if daemonHolds {
            let since = daemonState?["SLOT_SINCE"].flatMap { Int64($0.value) }
            add("slot", .ok, "this machine holds a slot, taken by locksmithd\(since.map { " \(ago($0))" } ?? "")")
        } else {
            add("slot", .warning, "this machine (\(machineID)) holds a slot of group \(group) that locksmithd did not take (locksmithctl lock, locksmith-run --id, or left over): it keeps one machine of the group from rebooting",
                fix: "if nothing uses it: locksmithctl unlock")
        }
    }

    func run() {
        checkConfiguration()
        checkMachineID()
        checkDaemon()
        checkRebootSource()
        checkHooks()
        checkEtcd()
    }
}

func runCheck(_ context: Context) throws {
    guard context.line.arguments.isEmpty else {
        throw Failure(message: "check takes no arguments\nRun 'locksmithctl help check' for usage.", status: ExitStatus.usage)
    }
    // The machine as locksmithd sees it: its settings, not locksmithctl's flags.
    if let given = Library.optionNames.first(where: { !context.line.values(of: $0).isEmpty }) {
        throw Failure(message: "check looks at this machine's settings as locksmithd reads them (update.conf files, LOCKSMITHD_* variables); it takes no -\(given)\nRun 'locksmithctl help check' for usage.",
                      status: ExitStatus.usage)
    }
    let checker = Checker(root: context.root)
    checker.run()
    let worst = checker.findings.map(\.level).max() ?? .ok
    let count = { (level: Level) in checker.findings.filter { $0.level == level }.count }
    if context.line.localFlags.contains("json") {
        let items = checker.findings.map { f in
            "{\"check\":\(Library.jsonQuoted(f.check)),\"status\":\"\(f.level.word)\",\"message\":\(Library.jsonQuoted(f.message)),\"fix\":\(f.fix.map(Library.jsonQuoted) ?? "null")}"
        }
        standardOutput("{\"status\":\"\(worst.word)\",\"ok\":\(count(.ok)),\"warnings\":\(count(.warning)),\"errors\":\(count(.error)),\"checks\":[\(items.joined(separator: ","))]}\n")
    } else {
        var text = ""
        for f in checker.findings {
            let level = f.level.word.padding(8), check = f.check.padding(14)
            text += "\(level) \(check) \(f.message)\n"
            if let fix = f.fix, f.level != .ok { text += "         \("".padding(14)) fix: \(fix)\n" }
        }
        text += "\n\(count(.ok)) ok, \(count(.warning)) warning(s), \(count(.error)) error(s)\n"
        standardOutput(text)
    }
    if worst != .ok { throw Failure(message: "", status: Int32(worst.rawValue)) }
}

private extension String {
    func padding(_ width: Int) -> String { count >= width ? self : self + String(repeating: " ", count: width - count) }
}
