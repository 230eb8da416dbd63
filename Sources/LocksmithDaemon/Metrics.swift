// The daemon's metrics, as a Prometheus text file for node_exporter's textfile collector
// (LOCKSMITHD_METRICS_FILE). A file is read when it is scraped, not when it changes, so times are
// written as Unix timestamps (seconds in the current state: time() - locksmithd_state_since_seconds).

public struct Metrics: Equatable, Sendable {
    public var state = DaemonState.starting
    /// Unix seconds when `state` began.
    public var stateSince: Int64 = 0
    public var rebootNeeded = false
    public var slotHeld = false
    /// Why the slot is held after a reboot: a post-reboot hook failed.
    public var heldForHealth = false
    public var hookFailures: [HookPhase: Int] = [:]
    /// Unix seconds of the last error (0: none yet).
    public var lastErrorTime: Int64 = 0
    /// The group's semaphore as last seen (nil: not seen).
    public var freeSlots: Int?
    public var maxSlots: Int?
    public var group = ""
    public var strategy = ""

    public init() {}

    /// The text file: HELP and TYPE lines, then the samples.
    public func render() -> String {
        var out = ""
        func metric(_ name: String, _ help: String, type: String = "gauge", _ samples: [(labels: String, value: String)]) {
            out += "# HELP locksmithd_\(name) \(help)\n# TYPE locksmithd_\(name) \(type)\n"
            for sample in samples { out += "locksmithd_\(name)\(sample.labels) \(sample.value)\n" }
        }
        let group = "group=\"\(Metrics.escape(self.group))\""
        metric("info", "The daemon's settings (always 1).",
               [("{strategy=\"\(Metrics.escape(strategy))\",\(group)}", "1")])
        metric("state", "The daemon's state (1 for the current one).",
               Metrics.states.map { ("{state=\"\($0.rawValue)\"}", $0 == state ? "1" : "0") })
        metric("state_since_seconds", "When the current state began (Unix time).", [("", "\(stateSince)")])
        metric("reboot_needed", "Whether a reboot is needed.", [("", rebootNeeded ? "1" : "0")])
        metric("slot_held", "Whether this machine holds a reboot slot.", [("", slotHeld ? "1" : "0")])
        metric("slot_held_for_health_check", "Whether the slot is kept because a post-reboot hook fails.",
               [("", heldForHealth ? "1" : "0")])
        metric("hook_failures_total", "Hook runs that failed, by phase.", type: "counter",
               HookPhase.allCases.map { ("{phase=\"\($0.rawValue)\"}", "\(hookFailures[$0] ?? 0)") })
        metric("last_error_seconds", "When the last error happened (Unix time; 0: none).", [("", "\(lastErrorTime)")])
        if let freeSlots, let maxSlots {
            metric("group_free_slots", "The group's free slots, as last seen.", [("{\(group)}", "\(freeSlots)")])
            metric("group_max_slots", "The group's slots, as last seen.", [("{\(group)}", "\(maxSlots)")])
        }
        return out
    }

    static let states: [DaemonState] = [.starting, .running, .rebootPlanned, .rebooting]

    /// A label value: backslash, double quote and line feed escaped.
    static func escape(_ text: String) -> String {
        var out = ""
        for c in text {
            switch c {
            case "\\": out += "\\\\"
            case "\"": out += "\\\""
            case "\n": out += "\\n"
            default: out.append(c)
            }
        }
        return out
    }
}
