// What the daemon's threads share: one lock and condition over the daemon's inputs (reboot
// needed, stop requested), logging, sd_notify, and the signal thread.
import CSystemd
import Glibc
import LocksmithEtcd
import LocksmithSystem

/// The daemon's inputs, changed by the bus and signal threads, waited on by the main thread.
struct Inputs {
    var rebootNeeded = false
    var stopRequested = false
    var updateEngineOperation = ""
}

final class SharedInputs: @unchecked Sendable {
    private let mutex = UnsafeMutablePointer<pthread_mutex_t>.allocate(capacity: 1)
    private let condition = UnsafeMutablePointer<pthread_cond_t>.allocate(capacity: 1)
    private var inputs = Inputs()

    init() {
        pthread_mutex_init(mutex, nil)
        var attributes = pthread_condattr_t()
        pthread_condattr_init(&attributes)
        pthread_condattr_setclock(&attributes, CLOCK_MONOTONIC)
        pthread_cond_init(condition, &attributes)
        pthread_condattr_destroy(&attributes)
    }

    func update(_ change: (inout Inputs) -> Void) {
        pthread_mutex_lock(mutex)
        change(&inputs)
        pthread_cond_broadcast(condition)
        pthread_mutex_unlock(mutex)
    }

    var current: Inputs {
        pthread_mutex_lock(mutex)
        defer { pthread_mutex_unlock(mutex) }
        return inputs
    }

    /// Waits until `done(inputs)` or a stop request, or until `milliseconds` pass (nil: no limit).
    @discardableResult
    func wait(milliseconds: Int?, until done: (Inputs) -> Bool) -> Inputs {
        let deadline = milliseconds.map { Clock.monotonicMilliseconds() + max($0, 0) }
        pthread_mutex_lock(mutex)
        defer { pthread_mutex_unlock(mutex) }
        while !done(inputs) && !inputs.stopRequested {
            guard let deadline else {
                pthread_cond_wait(condition, mutex)
                continue
            }
            let now = Clock.monotonicMilliseconds()
            if now >= deadline { break }
            var ts = timespec()
            clock_gettime(CLOCK_MONOTONIC, &ts)
            let remaining = deadline - now
            ts.tv_sec += remaining / 1000
            ts.tv_nsec += (remaining % 1000) * 1_000_000
            if ts.tv_nsec >= 1_000_000_000 { ts.tv_sec += 1; ts.tv_nsec -= 1_000_000_000 }
            pthread_cond_timedwait(condition, mutex, &ts)
        }
        return inputs
    }
}

/// Log lines: to the journal (with priority and fields) when systemd started us, else plain
/// lines with a level on stderr.
enum Log {
    nonisolated(unsafe) static var toJournal = false

    static func info(_ message: String, _ fields: [String] = []) { write(6, "info", message, fields) }
    static func notice(_ message: String, _ fields: [String] = []) { write(5, "notice", message, fields) }
    static func warning(_ message: String, _ fields: [String] = []) { write(4, "warning", message, fields) }
    static func error(_ message: String, _ fields: [String] = []) { write(3, "error", message, fields) }

    private static func write(_ priority: Int32, _ level: String, _ message: String, _ fields: [String]) {
        if toJournal {
            var pointers: [UnsafePointer<CChar>?] = fields.map { UnsafePointer(strdup($0)) } + [nil]
            defer { pointers.forEach { free(UnsafeMutableRawPointer(mutating: $0)) } }
            if csd_journal_print(priority, "locksmithd", message, &pointers) >= 0 { return }
        }
        writeStandardError("locksmithd: \(level): \(message)\n")
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
        guard Syscalls.environment("NOTIFY_SOCKET") != nil else { return }
        _ = csd_notify(state)
    }

    static func status(_ text: String) { send("STATUS=" + text) }
}

/// Blocks SIGTERM, SIGINT and SIGHUP in every thread and starts one that waits for them: the
/// first asks the daemon to stop (and interrupts etcd requests in progress).
func startSignalThread(_ inputs: SharedInputs) {
    var set = sigset_t()
    sigemptyset(&set)
    for s in [SIGTERM, SIGINT, SIGHUP] { sigaddset(&set, s) }
    pthread_sigmask(SIG_BLOCK, &set, nil)
    spawnThread {
        var set = sigset_t()
        sigemptyset(&set)
        for s in [SIGTERM, SIGINT, SIGHUP] { sigaddset(&set, s) }
        while true {
            var received: Int32 = 0
            if sigwait(&set, &received) != 0 { continue }
            if received == SIGHUP { continue }
            Log.info("got \(received == SIGTERM ? "SIGTERM" : "SIGINT"): stopping")
            Interruption.request()
            inputs.update { $0.stopRequested = true }
        }
    }
}

/// Runs `body` on a new detached thread.
func spawnThread(_ body: @escaping @Sendable () -> Void) {
    final class Box { let body: @Sendable () -> Void; init(_ b: @escaping @Sendable () -> Void) { body = b } }
    var thread = pthread_t()
    let box = Unmanaged.passRetained(Box(body)).toOpaque()
    pthread_create(&thread, nil, { p in
        Unmanaged<Box>.fromOpaque(p!).takeRetainedValue().body()
        return nil
    }, box)
    pthread_detach(thread)
}

/// Once the daemon settles into waiting for an update, which may take days, the code it ran to
/// start is not needed until one arrives: ask the kernel to reclaim the pages of its read-only
/// file mappings (program and libraries; MADV_PAGEOUT, Linux 5.4+, elsewhere nothing happens).
/// They are read back from their files on the next use. The kernel leaves pages that other
/// processes map (libc, usually) where they are.
func pageOutOwnCode() {
    guard let maps = try? Syscalls.readFile("/proc/self/maps", limit: 1 << 20) else { return }
    let madvPageout: Int32 = 21  // MADV_PAGEOUT
    for line in String(decoding: maps, as: UTF8.self).split(separator: "\n") {
        let fields = line.split(separator: " ", omittingEmptySubsequences: true)
        guard fields.count >= 6, fields[5].hasPrefix("/"), !fields[1].contains("w") else { continue }
        let range = fields[0].split(separator: "-")
        guard range.count == 2, let start = UInt(range[0], radix: 16), let end = UInt(range[1], radix: 16), end > start else { continue }
        _ = madvise(UnsafeMutableRawPointer(bitPattern: start), Int(end - start), madvPageout)
    }
}
