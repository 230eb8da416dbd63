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
    /// What to tell the administrator: a deprecated strategy, a password every user can read,
    /// skipped lines of update.conf.
    public var warnings: [String]

    public enum SlotWait: String, Sendable {
        /// etcd's watch: a freed slot is seen at once.
        case watch
        /// Backoff polling, as the original did.
        case poll
    }

    public static let defaultBroadcastDelay: Int64 = 300_000_000_000
    public static let defaultUtmp = "/var/run/utmp"

    /// Reads and checks the daemon's settings from `config`, with system paths under `root`.
    public static func load(_ config: Configuration, root: String) throws -> DaemonSettings {
        var warnings = config.warnings
        let (strategy, deprecation) = try config.rebootStrategy()
        if let deprecation { warnings.append(deprecation) }
        let window = try config.rebootWindow()
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
        return DaemonSettings(strategy: strategy, window: window, etcd: etcd, root: root, utmp: SystemRoot.resolve(utmp, root: root),
                              broadcastDelay: delay, slotWait: slotWait, warnings: warnings)
    }
}
