// Settings for a node, merged from update.conf files and the process environment, remembering
// where each value came from so errors and --debug can name the file or "environment".

/// Merged `KEY=VALUE` settings with their origins. Later merges win.
public struct Configuration: Sendable {
    public struct Setting: Sendable, Equatable {
        public var value: String
        /// A file path, or "environment".
        public var origin: String
        /// The line of the file the assignment starts on; 0 for the environment.
        public var line: Int = 0
    }

    /// The settings files, in the order they are read (later wins): the update.conf files, the
    /// distribution's defaults first, then the administrator's, CoreOS before Flatcar; then
    /// /etc/default/locksmithd, which the Debian package's unit reads last (issue 27: the CLI on a
    /// node resolves settings exactly as the unit does, from the same files in the same order).
    public static let updateConfPaths = [
        "/usr/share/coreos/update.conf",
        "/usr/share/flatcar/update.conf",
        "/etc/coreos/update.conf",
        "/etc/flatcar/update.conf",
        "/etc/default/locksmithd",
    ]

    public private(set) var settings: [String: Setting] = [:]
    /// Lines that were skipped, each prefixed with the file it came from.
    public private(set) var warnings: [String] = []

    public init() {}

    /// Adds the assignments of one EnvironmentFile-syntax text; they override earlier ones.
    public mutating func merge(fileText: String, origin: String) {
        let parsed = EnvironmentFile.parse(fileText)
        for ((key, value), line) in zip(parsed.assignments, parsed.lines) {
            settings[key] = Setting(value: value, origin: origin, line: line)
        }
        warnings += parsed.warnings.map { "\(origin): \($0)" }
    }

    /// Adds process environment variables; they override everything merged before. A variable
    /// whose value is the one a file already gave keeps the file as its origin: under the unit
    /// the files reach the daemon as variables too (EnvironmentFile=), and a message should name
    /// the file where the setting is to be changed, not "the environment".
    public mutating func merge(environment: [(key: String, value: String)]) {
        // (An array rather than any sequence: a generic call across modules is not specialized,
        // and this runs over the whole environment in every program that loads its configuration.)
        settings.reserveCapacity(settings.count + environment.count)
        for (key, value) in environment {
            if let known = settings[key], known.value == value { continue }
            settings[key] = Setting(value: value, origin: "environment")
        }
    }

    /// The value of `key`, or nil when no file and no variable set it.
    public subscript(key: String) -> String? { settings[key]?.value }
}

/// What the daemon does when an update needs a reboot (REBOOT_STRATEGY).
public enum RebootStrategy: String, Sendable {
    /// Take a slot of the group's semaphore in etcd first.
    case etcdLock = "etcd-lock"
    /// Take a slot through a FleetLock server (LOCKSMITHD_FLEETLOCK_URL) first.
    case fleetLock = "fleetlock"
    /// Reboot without asking anyone.
    case reboot
    /// Do nothing: the daemon exits at once.
    case off
}

// Reading the daemon's settings out of a configuration: which variable wins, and errors that
// name the variable and where its value came from (DaemonSettings puts them together).
extension Configuration {
    /// A configured value and where it came from, for error messages.
    public struct Source: Sendable, Equatable {
        public var variable: String
        public var value: String
        public var origin: String
        /// "LOCKSMITHD_REBOOT_WINDOW_START=\"Thu 23:00\" (from /etc/coreos/update.conf)"
        public var description: String {
            "\(variable)=\(JSONText.quotedExcerpt(value)) (from \(origin == "environment" ? "the environment" : origin))"
        }
    }

    /// The first of `variables` set to a non-empty value.
    public func first(_ variables: [String]) -> Source? {
        for name in variables {
            if let s = settings[name], !s.value.isEmpty { return Source(variable: name, value: s.value, origin: s.origin) }
        }
        return nil
    }

    /// REBOOT_STRATEGY: `etcd-lock`, `fleetlock`, `reboot` (the default) or `off`; `best-effort` (removed in
    /// the original's 0.6) is read as `etcd-lock` with a warning in `deprecation`.
    public func rebootStrategy() throws -> (strategy: RebootStrategy, deprecation: String?) {
        guard let source = first(["REBOOT_STRATEGY"]) else { return (.reboot, nil) }
        if source.value == "best-effort" {
            return (.etcdLock, "\(source.description): best-effort was removed in locksmith 0.6; using etcd-lock")
        }
        guard let strategy = RebootStrategy(rawValue: source.value) else {
            throw LocksmithError(.invalidArgument, "\(source.description) is not a reboot strategy (use etcd-lock, fleetlock, reboot or off)", option: source.variable)
        }
        return (strategy, nil)
    }

    /// A duration setting in Go syntax, or `defaultValue` (nanoseconds) when it is not set.
    public func duration(_ variable: String, default defaultValue: Int64) throws -> Int64 {
        guard let source = first([variable]) else { return defaultValue }
        do {
            let value = try GoDuration.parse(source.value)
            guard value >= 0 else { throw LocksmithError(.invalidArgument, "it is negative") }
            return value
        } catch let error as LocksmithError {
            throw LocksmithError(.invalidArgument, "\(source.description): \(error.message)", option: source.variable)
        }
    }

    /// The reboot window: LOCKSMITHD_REBOOT_WINDOW_START/LENGTH, or the unprefixed
    /// REBOOT_WINDOW_START/LENGTH when the prefixed one is empty. nil when neither is set;
    /// `.invalidArgument` when only one of the two is set or a value does not parse.
    public func rebootWindow() throws -> (window: RebootWindow, start: Source, length: Source)? {
        let start = first(["LOCKSMITHD_REBOOT_WINDOW_START", "REBOOT_WINDOW_START"])
        let length = first(["LOCKSMITHD_REBOOT_WINDOW_LENGTH", "REBOOT_WINDOW_LENGTH"])
        switch (start, length) {
        case (nil, nil):
            return nil
        case (let s?, nil):
            throw LocksmithError(.invalidArgument, "\(s.description) is set but LOCKSMITHD_REBOOT_WINDOW_LENGTH is not: set both or neither", option: s.variable)
        case (nil, let l?):
            throw LocksmithError(.invalidArgument, "\(l.description) is set but LOCKSMITHD_REBOOT_WINDOW_START is not: set both or neither", option: l.variable)
        case (let s?, let l?):
            do {
                return (try RebootWindow(start: s.value, length: l.value), s, l)
            } catch let error as LocksmithError {
                let culprit = error.option == "start" ? s : l
                throw LocksmithError(.invalidArgument, "\(culprit.description): \(error.message)", option: culprit.variable)
            }
        }
    }
}
