// The daemon's settings, read out of a merged configuration (environment over update.conf) and
// checked: which variable wins, defaults, and errors that name the variable and where its value
// came from. The daemon, `locksmithctl window` and the C API (locksmith_daemon_settings_*) all
// read them here.
import LocksmithCore
import LocksmithSystem

public struct DaemonSettings: Sendable {
    public var strategy: RebootStrategy
    /// The reboot window, and the settings it came from; nil when none is set.
    public var window: (window: RebootWindow, start: Configuration.Source, length: Configuration.Source)?
    /// The zone the window is read in (LOCKSMITHD_REBOOT_WINDOW_TZ), and the setting; nil: local time.
    public var windowZone: (zone: ZoneCalendar, source: Configuration.Source)?
    /// The etcd client's options, from the LOCKSMITHD_* settings.
    public var etcd: ClientOptions
    /// The root system paths are read under.
    public var root: String
    /// The utmp file of logged-in users, under the root.
    public var utmp: String
    /// How long users are warned before the reboot, in nanoseconds.
    public var broadcastDelay: Int64
    /// How the daemon waits for a free slot.
    public var slotWait: SlotWait
    /// Where "reboot needed" comes from.
    public var rebootSource: RebootSource
    /// How often a `command:` source is run, in nanoseconds.
    public var rebootCheckInterval: Int64
    /// How long one hook may run, in nanoseconds.
    public var hookTimeout: Int64
    /// The directory of the hook directories (pre-lock.d, pre-reboot.d, post-reboot.d), under the root.
    public var hooksDirectory: String
    /// The id the daemon takes FleetLock slots under (LOCKSMITHD_FLEETLOCK_ID); nil: the machine id.
    public var fleetLockID: String?
    /// The Prometheus text file the daemon keeps (under the root); nil: none.
    public var metricsFile: String?
    /// What to tell the administrator: a deprecated strategy, a password every user can read,
    /// skipped lines of update.conf.
    public var warnings: [String]

    /// LOCKSMITHD_REBOOT_SOURCE.
    public enum RebootSource: Sendable, Equatable {
        /// The update engine's "reboot needed" on the system bus (the original's only source).
        case updateEngine
        /// A sentinel file's existence (Debian's and Ubuntu's /run/reboot-required), watched
        /// with inotify. The path is under the root.
        case file(String)
        /// A command run every `rebootCheckInterval` through /bin/sh: exit 0 nothing to do, 1
        /// reboot needed, anything else an error (Fedora's `needs-restarting -r`).
        case command(String)
        /// The update engine and the sentinel file at this path, whichever says so first.
        case auto(String)

        /// "update-engine", "file", "command" or "auto".
        public var kind: String {
            switch self {
            case .updateEngine: return "update-engine"
            case .file: return "file"
            case .command: return "command"
            case .auto: return "auto"
            }
        }

        /// The file's path, the command line, or "" (update-engine).
        public var argument: String {
            switch self {
            case .updateEngine: return ""
            case .file(let path), .auto(let path): return path
            case .command(let line): return line
            }
        }
    }

    public enum SlotWait: String, Sendable {
        /// etcd's watch: a freed slot is seen at once.
        case watch
        /// Backoff polling, as the original did.
        case poll
    }

    /// The settings by name, for locksmith_daemon_settings_get: the one table a new setting is
    /// added to (the C API, the overlay and Python read it by name). Durations are Go durations;
    /// nil: not set.
    private static let table: [(name: String, value: @Sendable (DaemonSettings) -> String?)] = [
        ("strategy", { $0.strategy.rawValue }),
        ("window-start", { $0.window?.window.startText }),
        ("window-length", { $0.window?.window.lengthText }),
        ("window-zone", { $0.windowZone?.zone.name }),
        ("broadcast-delay", { GoDuration.format($0.broadcastDelay) }),
        ("slot-wait", { $0.slotWait.rawValue }),
        ("utmp", { $0.utmp }),
        ("group", { $0.etcd.group }),
        ("reboot-source", { $0.rebootSource.kind }),
        ("reboot-source-argument", { $0.rebootSource.argument }),
        ("reboot-check-interval", { GoDuration.format($0.rebootCheckInterval) }),
        ("hook-timeout", { GoDuration.format($0.hookTimeout) }),
        ("hooks-directory", { $0.hooksDirectory }),
        ("metrics-file", { $0.metricsFile }),
        ("fleetlock-id", { $0.fleetLockID }),
    ]

    /// The names `value(_:)` knows, in a fixed order.
    public static let names = table.map(\.name)

    /// Setting `name` as text; nil when it is not set. -EINVAL for a name that is no setting.
    public func value(_ name: String) throws -> String? {
        guard let entry = DaemonSettings.table.first(where: { $0.name == name }) else {
            throw LocksmithError(.invalidArgument, "\(JSONText.quotedExcerpt(name)) is not a daemon setting")
        }
        return entry.value(self)
    }

    public static let defaultBroadcastDelay: Int64 = 300_000_000_000
    public static let defaultUtmp = "/var/run/utmp"
    public static let defaultSentinel = "/run/reboot-required"
    public static let defaultRebootCheckInterval: Int64 = 3_600_000_000_000
    public static let defaultHookTimeout: Int64 = 600_000_000_000
    public static let hooksDirectory = "/etc/locksmith"

    /// Reads and checks the daemon's settings from `config`, with system paths under `root`.
    public static func load(_ config: Configuration, root: String) throws -> DaemonSettings {
        var warnings = config.warnings
        let (strategy, deprecation) = try config.rebootStrategy()
        if let deprecation { warnings.append(deprecation) }
        let window = try config.rebootWindow()
        var windowZone: (zone: ZoneCalendar, source: Configuration.Source)?
        if let source = config.first(["LOCKSMITHD_REBOOT_WINDOW_TZ"]) {
            do {
                // Zone files are the system's data, read from the real root like the C library does.
                windowZone = (try ZoneCalendar(name: source.value), source)
            } catch let error as LocksmithError {
                throw LocksmithError(.invalidArgument, "\(source.description): \(error.message)", option: source.variable)
            }
            if window == nil {
                warnings.append("\(source.description) has no effect: no reboot window is set")
            }
        }
        var etcd = ClientOptions()
        try etcd.resolve(prefix: "LOCKSMITHD", daemon: config)
        warnings += etcd.warnings
        let delay = try config.duration("LOCKSMITHD_REBOOT_BROADCAST_DELAY", default: defaultBroadcastDelay)
        let utmp = config.first(["LOCKSMITHD_UTMP"])?.value ?? defaultUtmp
        var slotWait = SlotWait.watch
        if let source = config.first(["LOCKSMITHD_SLOT_WAIT"]) {
            guard let wait = SlotWait(rawValue: source.value) else {
                throw LocksmithError(.invalidArgument, "\(source.description) is not watch or poll", option: source.variable)
            }
            slotWait = wait
        }
        var fleetLockID: String?
        if strategy == .fleetLock {
            // A FleetLock server has no watch: the daemon polls it with backoff.
            if let source = config.first(["LOCKSMITHD_SLOT_WAIT"]), source.value == "watch" {
                warnings.append("\(source.description) has no effect with REBOOT_STRATEGY=fleetlock: a FleetLock server has no watch, so the daemon asks again with backoff")
            }
            slotWait = .poll
            guard etcd.fleetLockURL != nil else {
                throw LocksmithError(.invalidArgument, "REBOOT_STRATEGY=fleetlock needs LOCKSMITHD_FLEETLOCK_URL, the base URL of a FleetLock server (such as http://fleetlock.example.com:3333/)",
                                     option: "LOCKSMITHD_FLEETLOCK_URL")
            }
            do {
                _ = try FleetLockServer.group(of: etcd.group)
            } catch let error as LocksmithError {
                throw LocksmithError(.invalidArgument, "\(config.first(["LOCKSMITHD_GROUP"])?.description ?? "LOCKSMITHD_GROUP"): \(error.message)", option: "LOCKSMITHD_GROUP")
            }
            if let source = config.first(["LOCKSMITHD_FLEETLOCK_ID"]) {
                do {
                    try SemaphoreDocument.validateHolder(source.value)
                } catch let error as LocksmithError {
                    throw LocksmithError(.invalidArgument, "\(source.description): \(error.message)", option: source.variable)
                }
                fleetLockID = source.value
            }
        } else {
            for source in ["LOCKSMITHD_FLEETLOCK_URL", "LOCKSMITHD_FLEETLOCK_ID"].compactMap({ config.first([$0]) }) {
                warnings.append("\(source.description) has no effect: REBOOT_STRATEGY is \(strategy.rawValue), not fleetlock")
            }
        }
        let source = try rebootSource(config, root: root)
        let interval = try config.duration("LOCKSMITHD_REBOOT_CHECK_INTERVAL", default: defaultRebootCheckInterval)
        let hookTimeout = try config.duration("LOCKSMITHD_HOOK_TIMEOUT", default: defaultHookTimeout)
        for (variable, value, least) in [("LOCKSMITHD_REBOOT_CHECK_INTERVAL", interval, Int64(1_000_000_000)), ("LOCKSMITHD_HOOK_TIMEOUT", hookTimeout, 1_000_000_000)]
        where value < least {
            throw LocksmithError(.invalidArgument, "\(config.first([variable])?.description ?? variable) is shorter than 1s", option: variable)
        }
        let metrics = try config.first(["LOCKSMITHD_METRICS_FILE"]).map { try absolutePath($0.value, of: $0, root: root) }
        return DaemonSettings(strategy: strategy, window: window, windowZone: windowZone, etcd: etcd, root: root, utmp: SystemRoot.resolve(utmp, root: root),
                              broadcastDelay: delay, slotWait: slotWait, rebootSource: source, rebootCheckInterval: interval,
                              hookTimeout: hookTimeout, hooksDirectory: SystemRoot.resolve(hooksDirectory, root: root),
                              fleetLockID: fleetLockID, metricsFile: metrics, warnings: warnings)
    }

    /// LOCKSMITHD_REBOOT_SOURCE: update-engine | file[:PATH] | command:CMDLINE | auto (the default).
    static func rebootSource(_ config: Configuration, root: String) throws -> RebootSource {
        let sentinel = SystemRoot.resolve(defaultSentinel, root: root)
        guard let source = config.first(["LOCKSMITHD_REBOOT_SOURCE"]) else { return .auto(sentinel) }
        let value = source.value
        func invalid(_ why: String) -> LocksmithError {
            LocksmithError(.invalidArgument, "\(source.description) \(why)", option: source.variable)
        }
        switch value {
        case "auto": return .auto(sentinel)
        case "update-engine": return .updateEngine
        case "file": return .file(sentinel)
        default: break
        }
        if value.hasPrefix("file:") {
            let path = String(value.dropFirst(5))
            return .file(try absolutePath(path, of: source, root: root))
        }
        if value.hasPrefix("command:") {
            let line = String(value.dropFirst(8))
            guard line.contains(where: { $0 != " " && $0 != "\t" }) else { throw invalid("names no command") }
            guard !SemaphoreDocument.hasControlCharacter(line.replacingTabs()) else { throw invalid("has a control character in its command") }
            return .command(line)
        }
        throw invalid("is not a reboot source (use auto, update-engine, file, file:PATH or command:CMDLINE)")
    }

    /// The path in a setting: absolute, without control characters or "..", resolved under the root.
    static func absolutePath(_ path: String, of source: Configuration.Source, root: String) throws -> String {
        guard path.hasPrefix("/"), !path.hasSuffix("/"), !SemaphoreDocument.hasControlCharacter(path),
              !path.split(separator: "/").contains("..") else {
            throw LocksmithError(.invalidArgument, "\(source.description) is not an absolute path to a file", option: source.variable)
        }
        return SystemRoot.resolve(path, root: root)
    }
}

private extension String {
    /// Tabs are allowed in a command line; other control characters are not.
    func replacingTabs() -> String { String(map { $0 == "\t" ? " " : $0 }) }
}
