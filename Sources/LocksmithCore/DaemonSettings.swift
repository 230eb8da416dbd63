// Reading the daemon's settings out of a merged configuration (environment over update.conf):
// which variable wins, and errors that name the variable and where its value came from.

public enum DaemonSettings {
    /// A configured value and where it came from, for error messages.
    public struct Source: Sendable, Equatable {
        public var variable: String
        public var value: String
        public var origin: String
        /// "LOCKSMITHD_REBOOT_WINDOW_START=\"Thu 23:00\" (from /etc/coreos/update.conf)"
        public var description: String {
            "\(variable)=\(JSONText.quoted(value)) (from \(origin == "environment" ? "the environment" : origin))"
        }
    }

    /// The first of `variables` set to a non-empty value.
    public static func first(_ variables: [String], in config: Configuration) -> Source? {
        for name in variables {
            if let s = config.settings[name], !s.value.isEmpty { return Source(variable: name, value: s.value, origin: s.origin) }
        }
        return nil
    }

    /// What the daemon does when an update needs a reboot.
    public enum Strategy: String, Sendable {
        /// Take a slot of the group's semaphore in etcd first.
        case etcdLock = "etcd-lock"
        /// Reboot without asking anyone.
        case reboot
        /// Do nothing: the daemon exits at once.
        case off
    }

    /// REBOOT_STRATEGY: `etcd-lock`, `reboot` (the default) or `off`; `best-effort` (removed in
    /// the original's 0.6) is read as `etcd-lock` with a warning in `deprecation`.
    public static func strategy(_ config: Configuration) throws -> (strategy: Strategy, deprecation: String?) {
        guard let source = first(["REBOOT_STRATEGY"], in: config) else { return (.reboot, nil) }
        if source.value == "best-effort" {
            return (.etcdLock, "\(source.description): best-effort was removed in locksmith 0.6; using etcd-lock")
        }
        guard let strategy = Strategy(rawValue: source.value) else {
            throw LocksmithError(.invalidArgument, "\(source.description) is not a reboot strategy (use etcd-lock, reboot or off)")
        }
        return (strategy, nil)
    }

    /// A duration setting in Go syntax, or `defaultValue` (nanoseconds) when it is not set.
    public static func duration(_ variable: String, in config: Configuration, default defaultValue: Int64) throws -> Int64 {
        guard let source = first([variable], in: config) else { return defaultValue }
        do {
            let value = try GoDuration.parse(source.value)
            guard value >= 0 else { throw LocksmithError(.invalidArgument, "it is negative") }
            return value
        } catch let error as LocksmithError {
            throw LocksmithError(.invalidArgument, "\(source.description): \(error.message)")
        }
    }

    /// The reboot window: LOCKSMITHD_REBOOT_WINDOW_START/LENGTH, or the unprefixed
    /// REBOOT_WINDOW_START/LENGTH when the prefixed one is empty. nil when neither is set;
    /// `.invalidArgument` when only one of the two is set or a value does not parse.
    public static func rebootWindow(_ config: Configuration) throws -> (window: RebootWindow, start: Source, length: Source)? {
        let start = first(["LOCKSMITHD_REBOOT_WINDOW_START", "REBOOT_WINDOW_START"], in: config)
        let length = first(["LOCKSMITHD_REBOOT_WINDOW_LENGTH", "REBOOT_WINDOW_LENGTH"], in: config)
        switch (start, length) {
        case (nil, nil):
            return nil
        case (let s?, nil):
            throw LocksmithError(.invalidArgument, "\(s.description) is set but LOCKSMITHD_REBOOT_WINDOW_LENGTH is not: set both or neither")
        case (nil, let l?):
            throw LocksmithError(.invalidArgument, "\(l.description) is set but LOCKSMITHD_REBOOT_WINDOW_START is not: set both or neither")
        case (let s?, let l?):
            do {
                return (try RebootWindow(start: s.value, length: l.value), s, l)
            } catch let error as LocksmithError {
                let culprit = error.message.hasPrefix("reboot window start") ? s : l
                throw LocksmithError(.invalidArgument, "\(culprit.description): \(error.message)")
            }
        }
    }
}
