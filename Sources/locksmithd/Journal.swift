// Log lines and sd_notify: to the journal (with priorities and fields) when systemd started the
// daemon, else plain lines on stderr.
import CSystemd
import Glibc
import LocksmithDaemon

/// Log lines: to the journal (with priority and fields) when systemd started us, else plain
/// lines with a level on stderr.
enum Log {
    nonisolated(unsafe) static var toJournal = false

    static func info(_ message: String, _ fields: [String] = []) { write(.info, message, fields) }
    static func notice(_ message: String, _ fields: [String] = []) { write(.notice, message, fields) }
    static func warning(_ message: String, _ fields: [String] = []) { write(.warning, message, fields) }
    static func error(_ message: String, _ fields: [String] = []) { write(.error, message, fields) }

    static func write(_ level: LogLevel, _ message: String, _ fields: [String]) {
        let priority = level.rawValue
        let name = level == .error ? "error" : level == .warning ? "warning" : level == .notice ? "notice" : "info"
        if toJournal {
            var pointers: [UnsafePointer<CChar>?] = fields.map { UnsafePointer(strdup($0)) } + [nil]
            defer { pointers.forEach { free(UnsafeMutableRawPointer(mutating: $0)) } }
            if csd_journal_print(priority, "locksmithd", message, &pointers) >= 0 { return }
        }
        writeStandardError("locksmithd: \(name): \(message)\n")
    }
}

func writeStandardError(_ text: String) {
    var bytes = Array(text.utf8)[...]
    while !bytes.isEmpty {
        let n = bytes.withUnsafeBytes { write(2, $0.baseAddress, $0.count) }
        if n < 0 && errno == EINTR { continue }
        if n <= 0 { return }
        bytes = bytes.dropFirst(n)
    }
}

/// sd_notify, when a service manager listens (NOTIFY_SOCKET); silent otherwise.
enum Notify {
    static func send(_ state: String) {
        guard getenv("NOTIFY_SOCKET") != nil else { return }
        _ = csd_notify(state)
    }

    static func status(_ text: String) { send("STATUS=" + text) }

    /// Waits (at most 5 s) until the service manager has read what was sent: before an exit
    /// right after READY=1, which it would otherwise be free to see first.
    static func barrier() {
        guard getenv("NOTIFY_SOCKET") != nil else { return }
        _ = csd_notify_barrier(5_000_000)
    }
}
