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
