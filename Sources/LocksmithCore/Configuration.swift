// Settings for a node, merged from update.conf files and the process environment, remembering
// where each value came from so errors and --debug can name the file or "environment".

/// Merged `KEY=VALUE` settings with their origins. Later merges win.
public struct Configuration: Sendable {
    public struct Setting: Sendable, Equatable {
        public var value: String
        /// A file path, or "environment".
        public var origin: String
    }

    /// The update.conf files, in the order they are read (later wins): the distribution's
    /// defaults first, then the administrator's; CoreOS before Flatcar.
    public static let updateConfPaths = [
        "/usr/share/coreos/update.conf",
        "/usr/share/flatcar/update.conf",
        "/etc/coreos/update.conf",
        "/etc/flatcar/update.conf",
    ]

    public private(set) var settings: [String: Setting] = [:]
    /// Lines that were skipped, each prefixed with the file it came from.
    public private(set) var warnings: [String] = []

    public init() {}

    /// Adds the assignments of one EnvironmentFile-syntax text; they override earlier ones.
    public mutating func merge(fileText: String, origin: String) {
        let parsed = EnvironmentFile.parse(fileText)
        for (key, value) in parsed.assignments {
            settings[key] = Setting(value: value, origin: origin)
        }
        warnings += parsed.warnings.map { "\(origin): \($0)" }
    }

    /// Adds process environment variables; they override everything merged before.
    public mutating func merge(environment: some Sequence<(key: String, value: String)>) {
        for (key, value) in environment {
            settings[key] = Setting(value: value, origin: "environment")
        }
    }

    /// The value of `key`, or nil when no file and no variable set it.
    public subscript(key: String) -> String? { settings[key]?.value }
}
