// `status --watch`: a live view of a rollout. It shows one group's semaphore (or every group's,
// with --all-groups) and changes when etcd says the semaphore changed: each group has a thread
// blocked in its own client's wait (etcd's watch), which reads the group again after an event and
// hands the view to the main thread. Nothing polls etcd: the only timer redraws the "held for"
// and "waited" ages once a second on a terminal, from the times already read.
//
// On a terminal: a full-screen view (the alternate screen, redrawn in place) that fits the
// window and follows SIGWINCH. Otherwise: one timestamped line per change, for logs.
//
// What the watch sees is the semaphore document, so the view is read again when it changes. The
// queue and the holder records are separate keys, read along with each change; the C API has no
// watch on a prefix (docs/decisions.md, issue 18 part 3, says why): a machine that joins the
// queue while every slot is held shows up with the next change of the semaphore, which is also
// the only moment the queue can move.
import Glibc
import Locksmith

/// One read of a group: its document (nil if the stored value is not a semaphore document; then
/// `error` says why), its holders with their records, and its queue.
struct GroupView: Sendable {
    var group: String
    var document: SemaphoreDocument?
    var error: String?
    var holders: [HolderAge] = []
    var queue: [Client.Record] = []
}

/// What a watcher thread tells the main thread.
enum WatchReport: Sendable {
    case view(GroupView)
    /// etcd cannot be reached (or refuses) for this group; retried after `retry` seconds.
    case lost(group: String, message: String, retry: Int)
    /// The group's semaphore key is gone (only with --all-groups: it is not created again).
    case gone(group: String)
}

/// Reads a group: nil when the key is missing. A stored value that is not a semaphore document is
/// a view with an error (it is shown, never overwritten); other failures are thrown.
func readView(_ client: Client, group: String) throws -> GroupView? {
    var view = GroupView(group: group)
    do {
        guard let document = try client.read() else { return nil }
        view.document = document
        view.holders = try holderAges(document, client)
    } catch let failure as LocksmithFailure where failure.code == EBADMSG {
        view.error = failure.message
    }
    view.queue = try client.queue()
    return view
}

// MARK: - Threads and their mailbox

/// Reports from the watcher threads, and a pipe whose read end wakes the main thread's poll().
final class Mailbox: @unchecked Sendable {
    private let mutex = UnsafeMutablePointer<pthread_mutex_t>.allocate(capacity: 1)
    private var reports: [WatchReport] = []
    let readEnd: Int32
    private let writeEnd: Int32

    init() throws {
        (readEnd, writeEnd) = try makePipe()
        pthread_mutex_init(mutex, nil)
    }

    func post(_ report: WatchReport) {
        pthread_mutex_lock(mutex)
        reports.append(report)
        pthread_mutex_unlock(mutex)
        var byte: UInt8 = 1
        _ = write(writeEnd, &byte, 1)  // a full pipe already wakes the reader
    }

    func take() -> [WatchReport] {
        var buffer = [UInt8](repeating: 0, count: 256)
        while read(readEnd, &buffer, buffer.count) > 0 {}
        pthread_mutex_lock(mutex)
        defer { pthread_mutex_unlock(mutex) }
        let taken = reports
        reports.removeAll()
        return taken
    }
}

/// The signals the view handles; they are delivered to the main thread only.
let watchSignals: [Int32] = [SIGINT, SIGTERM, SIGHUP, SIGWINCH]

/// The write end of the self-pipe the signal handler writes the signal number to.
nonisolated(unsafe) private var signalPipeWriteEnd: Int32 = -1

/// A pipe that receives one byte per signal of `watchSignals`; returns its read end.
private func catchSignals() throws -> Int32 {
    let (readEnd, writeEnd) = try makePipe()
    signalPipeWriteEnd = writeEnd
    var action = sigaction()
    action.__sigaction_handler.sa_handler = { signal in
        var byte = UInt8(truncatingIfNeeded: signal)
        _ = write(signalPipeWriteEnd, &byte, 1)
    }
    action.sa_flags = SA_RESTART
    for s in watchSignals { sigaction(s, &action, nil) }
    return readEnd
}

/// A non-blocking, close-on-exec pipe (pipe2 is not imported without _GNU_SOURCE).
private func makePipe() throws -> (readEnd: Int32, writeEnd: Int32) {
    var fds: [Int32] = [-1, -1]
    guard pipe(&fds) == 0 else {
        throw Failure(message: "locksmithctl: cannot make a pipe: \(String(cString: strerror(errno)))", status: ExitStatus.failed)
    }
    for fd in fds {
        _ = fcntl(fd, F_SETFD, FD_CLOEXEC)
        _ = fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK)
    }
    return (fds[0], fds[1])
}

/// Runs `body` on a new detached thread that never takes the view's signals.
private func spawnWatcher(_ body: @escaping @Sendable () -> Void) {
    final class Box { let body: @Sendable () -> Void; init(_ b: @escaping @Sendable () -> Void) { body = b } }
    var thread = pthread_t()
    let box = Unmanaged.passRetained(Box(body)).toOpaque()
    pthread_create(&thread, nil, { p in
        var set = sigset_t()
        sigemptyset(&set)
        for s in watchSignals { sigaddset(&set, s) }
        pthread_sigmask(SIG_BLOCK, &set, nil)
        Unmanaged<Box>.fromOpaque(p!).takeRetainedValue().body()
        return nil
    }, box)
    pthread_detach(thread)
}

/// The seconds before retry `attempt` while etcd cannot be reached: 1, 2, 4, 8, then 15. Shorter
/// than the daemon's backoff (5 s to 5 min): someone is looking at this view.
func watchRetryDelay(_ attempt: Int) -> Int { min(1 << min(attempt, 4), 15) }

/// A watcher thread's loop: wait for a change of the group's semaphore (etcd's watch), read the
/// group, post the view; while etcd cannot be reached, post that and retry with a backoff.
/// `client` belongs to this thread from now on.
private func watchGroup(_ client: Client, group: String, allGroups: Bool, mailbox: Mailbox, debug: Bool, readFirst: Bool) {
    if debug { client.trace { line in standardError("locksmithctl: debug: \(line)\n") } }
    /// Why the group is to be read again: it changed (or the watch failed), or it is the one
    /// settling read after a change.
    enum Reason { case changed, settling }
    var reason: Reason? = readFirst ? .changed : nil
    var attempt = 0
    // The holder record of a new holder and the removal of its queue entry are written just
    // after the semaphore (other keys): a read right after the event may miss them, so the group
    // is read once more when the semaphore has been quiet for half a second after a change.
    // One read per change, not a timer: a quiet semaphore is not read again.
    var settling = false
    while true {
        if let why = reason {
            do {
                var view = try readView(client, group: group)
                if view == nil {
                    if allGroups {
                        mailbox.post(.gone(group: group))
                        return
                    }
                    // Plain `status` creates a missing semaphore: so does its watch (wait would).
                    _ = try client.get()
                    view = try readView(client, group: group)
                }
                if let view { mailbox.post(.view(view)) }
                attempt = 0
                reason = nil
                settling = why == .changed
            } catch {
                let delay = watchRetryDelay(attempt)
                mailbox.post(.lost(group: group, message: "\(error)", retry: delay))
                attempt += 1
                sleep(UInt32(delay))
                continue
            }
        }
        do {
            reason = try client.wait(milliseconds: settling ? 500 : 600_000) ? .changed : settling ? .settling : nil
        } catch {
            reason = .changed  // failed (wait-errors fail: at the first request with no answer): the read says why
        }
    }
}

// MARK: - The view's state

/// A change seen between two views, with when it was seen.
struct SeenChange {
    let time: Int64
    let group: String
    /// For the plain lines: "took: ID (available 1/2)".
    let line: String
    /// For the terminal: "ID took a slot".
    let text: String
}

/// The changes from `old` to `new` (a group seen for the first time has none).
func changes(from old: GroupView, to new: GroupView, at time: Int64) -> [SeenChange] {
    var out: [SeenChange] = []
    func add(_ line: String, _ text: String) { out.append(SeenChange(time: time, group: new.group, line: line, text: text)) }
    let counts = new.document.map { " (available \($0.available)/\($0.max))" } ?? ""
    if let error = new.error, error != old.error {
        add("error: \(error)", "semaphore unreadable: \(error)")
        return out
    }
    if old.error != nil && new.error == nil { add("readable:" + counts, "semaphore readable again") }
    guard let before = old.document, let after = new.document else { return out }
    let was = Set(before.holders), now = Set(after.holders)
    for id in before.holders where !now.contains(id) { add("gave back: \(id)\(counts)", "\(id) gave back a slot") }
    if before.max != after.max { add("max: \(before.max) -> \(after.max)\(counts)", "max \(before.max) -> \(after.max)") }
    for id in after.holders where !was.contains(id) { add("took: \(id)\(counts)", "\(id) took a slot") }
    let queued = Set(old.queue.map(\.id)), queuedNow = Set(new.queue.map(\.id))
    for (i, w) in new.queue.enumerated() where !queued.contains(w.id) {
        add("queued: \(w.id) (\(i + 1) in line)", "\(w.id) joined the queue (\(i + 1) in line)")
    }
    for w in old.queue where !queuedNow.contains(w.id) && !now.subtracting(was).contains(w.id) {
        add("left the queue: \(w.id)", "\(w.id) left the queue")
    }
    return out
}

/// "1/2, holders: a, b; queue: c" or the error: one group's state in one line.
func stateLine(_ view: GroupView) -> String {
    guard let d = view.document else { return "error: \(view.error ?? "no semaphore")" }
    return "available \(d.available)/\(d.max), holders: " + (d.holders.isEmpty ? "-" : d.holders.joined(separator: ", "))
        + "; queue: " + (view.queue.isEmpty ? "-" : view.queue.map(\.id).joined(separator: ", "))
}

/// How a group is named on screen and in lines.
func groupName(_ group: String) -> String {
    group.isEmpty ? "(default)"
        : group.unicodeScalars.contains { $0.value < 0x20 || (0x7f...0x9f).contains($0.value) } ? Library.jsonQuoted(group) : group
}

func formatTime(_ t: Int64, _ format: String, utc: Bool) -> String { Library.formatTime(t, format, utc: utc) }

/// The terminal's size (columns, rows), or 80x24 if it does not say.
func terminalSize() -> (columns: Int, rows: Int) {
    var size = winsize()
    guard ioctl(1, UInt(TIOCGWINSZ), &size) == 0, size.ws_col > 0, size.ws_row > 0 else { return (80, 24) }
    return (Int(size.ws_col), Int(size.ws_row))
}

final class WatchView {
    let allGroups: Bool
    let terminal: Bool
    let header: String
    var views: [String: GroupView] = [:]
    var seen: [SeenChange] = []
    /// Groups whose watcher cannot reach etcd: since when, the reason, the next retry.
    var lost: [String: (since: Int64, message: String, retry: Int)] = [:]
    static let keptChanges = 100

    init(allGroups: Bool, terminal: Bool, header: String) {
        (self.allGroups, self.terminal, self.header) = (allGroups, terminal, header)
    }

    /// Plain mode: one line, with the time in UTC and the group when there are several.
    private func emit(_ time: Int64, _ group: String, _ text: String) {
        guard !terminal else { return }
        standardOutput(formatTime(time, "%Y-%m-%dT%H:%M:%SZ", utc: true) + (allGroups ? " group=\(groupName(group))" : "") + " \(text)\n")
    }

    private func note(_ change: SeenChange) {
        seen.append(change)
        if seen.count > WatchView.keptChanges { seen.removeFirst(seen.count - WatchView.keptChanges) }
        emit(change.time, change.group, change.line)
    }

    /// The first views: one state line each.
    func start(_ first: [GroupView], at time: Int64) {
        for view in first {
            views[view.group] = view
            emit(time, view.group, "state: " + stateLine(view))
        }
    }

    func apply(_ report: WatchReport, at time: Int64) {
        switch report {
        case .view(let view):
            if let gone = lost.removeValue(forKey: view.group) {
                let line = "etcd reachable again after \(heldFor(max(time - gone.since, 0)))"
                note(SeenChange(time: time, group: view.group, line: line + "; state: " + stateLine(view), text: line))
            }
            if let old = views[view.group] {
                for change in changes(from: old, to: view, at: time) { note(change) }
            } else {
                note(SeenChange(time: time, group: view.group, line: "state: " + stateLine(view), text: "group \(groupName(view.group)) appeared"))
            }
            views[view.group] = view
        case .lost(let group, let message, let retry):
            if let was = lost[group] {
                lost[group] = (was.since, message, retry)
            } else {
                lost[group] = (time, message, retry)
                note(SeenChange(time: time, group: group, line: "etcd lost: \(message) (retrying)", text: "etcd lost: \(message)"))
            }
        case .gone(let group):
            views.removeValue(forKey: group)
            lost.removeValue(forKey: group)
            note(SeenChange(time: time, group: group, line: "gone: the semaphore key was deleted", text: "group \(groupName(group)) is gone (its key was deleted)"))
        }
    }

    /// The screen, as lines (not yet cut to the terminal).
    func screen(now: Int64, rows: Int) -> [String] {
        var top = [header, formatTime(now, "%a %Y-%m-%d %H:%M:%S %Z", utc: false) + "   (changes from etcd's watch; Ctrl-C quits)", ""]
        for (group, l) in lost.sorted(by: { $0.key < $1.key }) {
            top.append("!! etcd lost" + (allGroups ? " (group \(groupName(group)))" : "") + " since \(formatTime(l.since, "%H:%M:%S", utc: false)): \(l.message); retrying every \(l.retry)s")
        }
        if !lost.isEmpty { top.append("") }
        for group in views.keys.sorted(by: { $0.utf8.lexicographicallyPrecedes($1.utf8) }) {
            let view = views[group]!
            if allGroups { top.append("GROUP \(groupName(group))") }
            guard let d = view.document else {
                top.append("Error reading semaphore: \(view.error ?? "no semaphore")")
                top.append("")
                continue
            }
            top.append("Available: \(d.available)/\(d.max)   Max: \(d.max)   Holders: \(d.holders.count)   Waiting: \(view.queue.count)")
            if !view.holders.isEmpty {
                var rows = [["  HOLDER", "HELD FOR", "HOST"]]
                for h in view.holders {
                    rows.append(["  " + h.id, h.seconds(at: now).map(heldFor) ?? "unknown", h.record.map { $0.host.isEmpty ? "-" : $0.host } ?? "-"])
                }
                top += table(rows)
            }
            if !view.queue.isEmpty {
                var rows = [["  IN LINE", "WAITING", "WAITED", "HOST"]]
                for (i, w) in view.queue.enumerated() {
                    rows.append(["  \(i + 1)", w.id, heldFor(max(now - w.since, 0)), w.host.isEmpty ? "-" : w.host])
                }
                top += table(rows)
            }
            top.append("")
        }
        var bottom = ["LAST CHANGES"]
        if seen.isEmpty { bottom.append("  none since the start") }
        for change in seen.reversed() {
            bottom.append("  " + formatTime(change.time, "%H:%M:%S", utc: false) + "  " + (allGroups ? "\(groupName(change.group)): " : "") + change.text)
        }
        // The newest changes fill what the groups leave; the groups are cut only if the window
        // cannot hold them, the heading of the changes and the newest one.
        if top.count > rows - 2 {
            top = Array(top.prefix(max(rows - 3, 1))) + ["... (enlarge the window to see the rest)"]
        }
        return top + Array(bottom.prefix(max(rows - top.count, 2)))
    }

    private func table(_ rows: [[String]]) -> [String] {
        let columns = rows[0].count
        let widths = (0..<columns - 1).map { c in rows.map { $0[c].count }.max() ?? 0 }
        return rows.map { row in
            (0..<columns - 1).map { row[$0] + String(repeating: " ", count: widths[$0] - row[$0].count + 2) }.joined() + row[columns - 1]
        }
    }

    /// Redraws the terminal in place: home, each line cut to the width and its rest cleared, then
    /// the rest of the screen cleared (no flicker from clearing first).
    func draw(now: Int64) {
        let (columns, rows) = terminalSize()
        let lines = screen(now: now, rows: rows).prefix(rows)
        var out = "\u{1b}[H"
        for (i, line) in lines.enumerated() {
            out += String(line.prefix(columns)) + "\u{1b}[K" + (i + 1 < lines.count ? "\r\n" : "")
        }
        standardOutput(out + "\u{1b}[J")
    }
}

// MARK: - The command

func runStatusWatch(_ context: Context, allGroups: Bool) throws {
    if context.line.localFlags.contains("json") {
        throw Failure(message: "status --watch cannot be combined with --json: the watch prints a screen on a terminal and one line per change otherwise; use status --json for one JSON object\nRun 'locksmithctl help status' for usage.",
                      status: ExitStatus.usage)
    }
    let mailbox = try Mailbox()
    let debug = context.debug
    // A wait would ride out an unreachable etcd silently until its timeout: the watchers' waits
    // end at the first request with no answer instead, so that the read after it reports it.
    let main = try context.client()
    try main.set("wait-errors", "fail")
    let now = currentTime()
    var first: [GroupView] = []
    var watchers: [(client: Client, group: String)] = []
    if allGroups {
        let groups = try context.etcd("Error reading semaphores") { try $0.groups() }
        for entry in groups {
            let client = try context.client(group: entry.group)
            try client.set("wait-errors", "fail")
            if let view = try context.etcd("Error reading semaphore", { _ in try readView(client, group: entry.group) }) {
                first.append(view)
                watchers.append((client, entry.group))
            }
        }
    } else {
        let group = main.settings.first { $0.name == "group" }?.value ?? ""
        var view = try context.etcd("Error reading semaphore") { try readView($0, group: group) }
        if view == nil {
            _ = try context.etcd("Error reading semaphore") { try $0.get() }
            view = try context.etcd("Error reading semaphore") { try readView($0, group: group) }
        }
        if let view { first.append(view) }
        watchers.append((main, group))
    }
    let terminal = isatty(1) == 1
    let scope = allGroups ? "all groups" : "group \(groupName(watchers.first?.group ?? ""))"
    let header = "locksmithctl status --watch: \(scope), etcd \(main.api ?? "?") at \(main.endpoint ?? "?")"
    let view = WatchView(allGroups: allGroups, terminal: terminal, header: header)
    let signals = try catchSignals()
    view.start(first, at: now)
    var watched = Set<String>()
    func watch(_ client: Client, _ group: String, readFirst: Bool) {
        watched.insert(group)
        spawnWatcher { watchGroup(client, group: group, allGroups: allGroups, mailbox: mailbox, debug: debug, readFirst: readFirst) }
    }
    for w in watchers { watch(w.client, w.group, readFirst: false) }

    if terminal {
        // The alternate screen, without the cursor; both restored on the way out.
        standardOutput("\u{1b}[?1049h\u{1b}[?25l\u{1b}[H\u{1b}[2J")
        view.draw(now: currentTime())
    }
    defer { if terminal { standardOutput("\u{1b}[?25h\u{1b}[?1049l") } }
    while true {
        var fds = [pollfd(fd: signals, events: Int16(POLLIN), revents: 0), pollfd(fd: mailbox.readEnd, events: Int16(POLLIN), revents: 0)]
        var spec = timespec()
        clock_gettime(CLOCK_REALTIME, &spec)
        // On a terminal, wake at the next full second to move the ages on.
        let timeout = terminal ? Int32(1000 - spec.tv_nsec / 1_000_000) : -1
        let n = poll(&fds, 2, timeout)
        if n < 0 && errno != EINTR { throw Failure(message: "locksmithctl: poll: \(String(cString: strerror(errno)))", status: ExitStatus.failed) }
        if fds[0].revents != 0 {
            var buffer = [UInt8](repeating: 0, count: 64)
            let got = read(signals, &buffer, buffer.count)
            if got > 0 && buffer.prefix(got).contains(where: { Int32($0) != SIGWINCH }) { return }
        }
        if fds[1].revents != 0 {
            var changed = false
            for report in mailbox.take() {
                view.apply(report, at: currentTime())
                switch report {
                case .view: changed = true
                case .gone(let group): watched.remove(group)
                case .lost: break
                }
            }
            // A new group shows up in the listing when any group changes (the C API watches one
            // key, not the prefix of all groups). Not while etcd is lost: the view would hang.
            if allGroups && changed, let groups = try? main.groups() {
                for entry in groups where !watched.contains(entry.group) {
                    guard let client = try? context.client(group: entry.group),
                          let first = try? readView(client, group: entry.group) else { continue }
                    view.apply(.view(first), at: currentTime())
                    watch(client, entry.group, readFirst: false)
                }
            }
        }
        // On a terminal every wake-up redraws (a change, the next second, a new window size).
        if terminal { view.draw(now: currentTime()) }
    }
}
