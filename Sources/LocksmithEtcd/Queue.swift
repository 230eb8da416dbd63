// The fair queue beside a group's semaphore: a client that wants a slot joins the queue
// (`<semaphore key>.queue/`), waits for the entry just ahead of it to go, and only at the head of
// the queue tries the semaphore, so one release wakes one waiter and turns come in the order
// waiters joined. The semaphore document stays the only authority on who holds a slot: clients
// that do not queue (the original, `locksmithctl lock`) may take a free slot before the head,
// never more than max.
//
// In two parts, as etcd's own client splits its `Session` from `waitDeletes`: QueueSession keeps
// the waiter's entry alive (joins, renews it before its lease or TTL runs out, joins again at the
// back if it ran out, leaves); `waitInQueue` waits for the entry just ahead to go and takes the
// slot at the head. The requests are the backend's: v3 puts each entry as `<prefix><lease id in
// hex>` with a lease and orders entries by create revision (etcd's own lock recipe); v2 makes
// each with POST (an in-order key named by its index) and a TTL. An entry whose waiter died goes
// when its lease or TTL runs out (`queue-ttl`, default 60 s, renewed 20 s before it runs out), and
// the waiter behind it moves up. An entry that can never run out (no lease; no TTL, or one longer
// than any queue-ttl) or whose value is not an entry was not made by a waiter: waiters skip it at
// once (docs/decisions.md, issue 26), and `queue()` lists it marked as such.
#if canImport(Glibc)
import Glibc
#endif
import LocksmithCore
import LocksmithSystem

/// One waiter of a group's queue.
public struct QueueEntry: Sendable, Equatable {
    /// The entry's etcd key.
    public var key: String
    /// The holder id it waits for.
    public var id: String
    /// When it joined (Unix seconds) and from which host.
    public var since: Int64
    public var host: String
    /// Why waiters skip this entry; nil for a waiter's entry. (An unreadable entry has id and
    /// host "" and since 0.)
    public var ignored: Ignored? = nil
    /// The revision (v3) or modification index (v2) the entry was read at.
    public var revision: Int64 = 0

    /// Why an entry under the queue prefix is no waiter's.
    public enum Ignored: Sendable, Equatable {
        /// v3: it has no lease; v2: no TTL, or one longer than any waiter's (`maxTTLSeconds`).
        /// It would never go.
        case neverExpires
        /// Its value is not a queue entry.
        case unreadable
    }

    /// The longest TTL a waiter gives its v2 entry (the longest queue-ttl).
    static let maxTTLSeconds: Int64 = 3600

    /// Why waiters skip an entry with this value (nil: a waiter's entry), given whether it can run out.
    static func ignored(value: [UInt8]?, expires: Bool) -> Ignored? {
        guard let value, HolderRecord(id: nil, value: value) != nil else { return .unreadable }
        return expires ? nil : .neverExpires
    }
}

/// The waiters ahead of a ticket (or every entry), first in line first: key, modification
/// index (v2) or revision (v3), value, and why waiters skip it (listed only without a ticket);
/// whether the ticket's own entry is there; the revision (v3) or etcd index (v2, 0 if the answer
/// had none) the listing was read at.
struct QueueListing {
    var entries: [(key: String, index: Int64, value: [UInt8]?, ignored: QueueEntry.Ignored?)]
    var mine: Bool
    var revision: Int64
    /// Waiters ahead that are counted but not listed (a join lists only the one just ahead).
    var unlisted = 0
    /// Entries ahead that waiters skip, left out of `entries`.
    var skipped = 0
    /// The semaphore, when it was read in the same step (v3).
    var semaphore: StoredValue? = nil

    /// Adds an entry; with a ticket, one that waiters skip is only counted.
    mutating func add(_ key: String, _ index: Int64, _ value: [UInt8]?, expires: Bool, waiting: Bool) {
        let ignored = QueueEntry.ignored(value: value, expires: expires)
        if waiting && ignored != nil {
            skipped += 1
        } else {
            entries.append((key, index, value, ignored))
        }
    }

    /// The number of waiters ahead.
    var count: Int { unlisted + entries.count }

    /// No waiter is ahead any more.
    mutating func atHead() {
        entries.removeAll()
        unlisted = 0
    }
}

/// How a wait in the queue ended.
public enum QueueOutcome: Sendable, Equatable {
    /// The slot is taken.
    case taken
    /// The time given ran out first.
    case timedOut
    /// The caller's progress callback declined to take a slot at the head.
    case declined
}

/// A waiter's own entry.
struct QueueTicket {
    var key: String
    /// v3: the entry's create revision; v2: its created index.
    var order: Int64
    /// v3: the lease (decimal, as the gateway writes it).
    var lease: String?
}

/// A waiter's entry, kept alive (etcd's `concurrency.Session`): joined at the back, renewed
/// before its lease or TTL runs out, joined again at the back when it ran out, left on the way
/// out. Knows nothing of the order of the queue.
final class QueueSession {
    let backend: Backend
    let holder: String
    /// The entry's time to live, in seconds.
    let ttl: Int
    /// How often the entry is renewed, in milliseconds (up to a tenth earlier, at random: waiters
    /// that joined together do not all renew at once).
    let period: Int
    /// The entry (none until the first `join`).
    private(set) var ticket = QueueTicket(key: "", order: 0)
    /// When the entry was last made or renewed (monotonic milliseconds).
    private(set) var renewed = 0

    init(_ backend: Backend, holder: String, ttl: Int, jitter: (Int) -> Int) {
        self.backend = backend
        self.holder = holder
        self.ttl = ttl
        let period = ClientOptions.queueRenewalMilliseconds(ttlSeconds: ttl)
        self.period = period - jitter(period / 10)
    }

    /// Whether the entry is due for renewal.
    var due: Bool { Clock.monotonicMilliseconds() - renewed >= period }

    /// Milliseconds until the entry is due for renewal.
    var untilDue: Int { period - (Clock.monotonicMilliseconds() - renewed) }

    /// Joins at the back: the waiters ahead of the new entry.
    func join() throws -> QueueListing {
        var now = timespec()
        clock_gettime(CLOCK_REALTIME, &now)
        let value = "{\"id\":" + JSONText.quoted(holder) + ",\"since\":\(now.tv_sec),\"host\":" + JSONText.quoted(HolderRecord.hostName) + "}"
        let listing: QueueListing
        (ticket, listing) = try backend.join(value: value, ttl: ttl)
        renewed = Clock.monotonicMilliseconds()
        return listing
    }

    /// Renews the entry: nil if it was gone (then the caller joins again), else etcd's index or
    /// revision then.
    func renew() throws -> Int64? {
        let index = try backend.renew(ticket, ttl: ttl)
        renewed = Clock.monotonicMilliseconds()
        return index
    }

    /// Removes the entry. Best effort: if etcd cannot be reached, it goes when its time runs out.
    func leave() {
        backend.leave(ticket)
    }
}

extension EtcdClient {
    /// The prefix of the group's queue entries.
    public var queuePrefix: String { keys.queue }

    /// Every entry of the group's queue, first in line first; those waiters skip are marked
    /// (`ignored`). Creates nothing.
    public func queue() throws -> [QueueEntry] {
        EtcdClient.queueEntries(try resolvedBackend().listQueue(before: nil, semaphore: false))
    }

    /// The entries of a listing of the whole queue.
    static func queueEntries(_ listed: QueueListing) -> [QueueEntry] {
        listed.entries.map { entry in
            let record = entry.value.flatMap { HolderRecord(id: nil, value: $0) }
            return QueueEntry(key: entry.key, id: record?.id ?? "", since: record?.since ?? 0, host: record?.host ?? "",
                              ignored: entry.ignored, revision: entry.index)
        }
    }

    /// Waits in the group's queue and takes a slot for `holder` when its turn comes. `progress`
    /// hears the number of waiters ahead each time it changes, 0 before each attempt to take a
    /// slot (made only when one may be free for this waiter: at the head, or behind fewer
    /// waiters than slots are free), and -1 when it goes on waiting: at the
    /// head with the semaphore full, and after each renewal of the entry (a heartbeat: see
    /// `ClientOptions.queueRenewalMilliseconds`); it returns false to decline (the wait ends, `.declined`,
    /// without a slot). `.timedOut` when `timeoutMilliseconds` pass first. Throws ECANCELED when the client
    /// is cancelled, `.exists` if `holder` already holds a slot, other errors as `lock` (a
    /// request that timed out is `.timedOut`). The entry is removed on the way out (if etcd
    /// cannot be reached then, it goes when its time to live runs out).
    ///
    /// What it costs etcd: joining is a lease and one transaction (v3: the entry, the waiters
    /// ahead and the semaphore in one step) or two requests (v2); each move up the line is one
    /// watch, and a listing only when more than one waiter was ahead; at the head, a watch on the
    /// semaphore while it is full (its event carries the document), then the compare-and-swap.
    @discardableResult
    public func acquire(_ holder: String, timeoutMilliseconds: Int?, progress: ((Int) -> Bool)? = nil) throws -> QueueOutcome {
        try SemaphoreDocument.validateHolder(holder)
        return try resolvedBackend().acquire(holder, timeoutMilliseconds: timeoutMilliseconds, progress: progress, client: self)
    }

    /// etcd's acquire: the session keeps the entry alive, this loop waits for the entry ahead.
    func waitInQueue(_ holder: String, timeoutMilliseconds: Int?, progress: ((Int) -> Bool)?) throws -> QueueOutcome {
        let deadline = timeoutMilliseconds.map { Clock.monotonicMilliseconds() + max($0, 0) }
        let backend = try resolvedBackend()
        let session = QueueSession(backend, holder: holder, ttl: options.queueTTLSeconds, jitter: jitter)
        var ahead = try joined(session)
        var lastPosition = -1
        var gone = false  // the entry was removed already
        // Whether the listing in `ahead` must be read again before it is used: not after a wait
        // that saw no change, nor when the only waiter ahead went (new waiters join behind).
        var stale = false
        defer { if !gone { session.leave() } }
        while true {
            try checkCancelled()
            if session.due {
                switch try session.renew() {
                case nil:
                    // Our entry ran out (a long stall): join again, at the back.
                    ahead = try joined(session)
                    lastPosition = -1
                    stale = false
                case let index? where backend.historyEvents.map({ index - ahead.revision > $0 * 9 / 10 }) ?? false:
                    // etcd keeps only so many events (v2: 1,000): a watch from the listing's
                    // index would be refused as cleared. List again instead of asking.
                    stale = true
                case _?:
                    break
                }
                if progress?(-1) == false { return .declined }
            }
            if stale {
                ahead = try listed(backend, before: session.ticket)
                stale = false
            }
            if !ahead.mine {
                // Our entry is gone (it ran out, or someone removed it): join again, at the back;
                // not more than once a second, whatever the server does.
                if let deadline, Clock.monotonicMilliseconds() >= deadline { return .timedOut }
                let since = Clock.monotonicMilliseconds() - session.renewed
                if since < 1000 {
                    Clock.sleep(milliseconds: 1000 - since)
                    try checkCancelled()
                }
                session.leave()
                ahead = try joined(session)
                lastPosition = -1
                continue
            }
            if ahead.count != lastPosition && ahead.count > 0 {
                lastPosition = ahead.count
                if progress?(lastPosition) == false { return .declined }
            }
            // Take a slot as soon as one may be free for this waiter (if the caller still wants
            // it): at the head, unless the semaphore was last seen full (it is waited on first:
            // the wait returns at once if it changed); behind others, when more slots are free
            // than waiters are ahead (each of them still finds one), as when many join at once.
            if ahead.count == 0 && lastPosition != 0 {
                // Just arrived at the head: what was seen of the semaphore long ago is no guide.
                forgetStaleDocument()
            }
            let seen = lastSeen
            let mayTake = ahead.count == 0
                ? seen.map { $0.available > 0 || $0.holders.contains(holder) } ?? true
                : seen.map { $0.available > ahead.count && !$0.holders.contains(holder) } ?? false
            if mayTake {
                lastPosition = 0
                if progress?(0) == false { return .declined }
                do {
                    // The slot, its holder record and the end of the entry (v3 in one
                    // transaction; v2 the end of the entry first: the waiter behind moves up,
                    // the holder record can wait a moment).
                    try takeSlot(holder, also: [.endEntry(session.ticket)], reserve: ahead.count)
                    gone = true
                    return .taken
                } catch let error as LocksmithError where error.kind == .busy {
                    // "semaphore is at 0" comes before "holder exists" (as in the original): a
                    // full semaphore that lists the holder means it holds a slot already.
                    if lastSeen?.holders.contains(holder) == true {
                        throw LocksmithError(.exists, "holder exists")
                    }
                    if ahead.count == 0, progress?(-1) == false { return .declined }
                }
            } else if ahead.count == 0 {
                // At the head, the semaphore full: the caller hears that it still waits.
                lastPosition = 0
                if progress?(-1) == false { return .declined }
            }
            // Wait (at most until the entry must be renewed, or the time given runs out).
            let now = Clock.monotonicMilliseconds()
            if let deadline, now >= deadline { return .timedOut }
            let left = min(session.untilDue, deadline.map { $0 - now } ?? Int.max)
            guard left > 0 else { continue }
            if let predecessor = ahead.entries.last {
                // The entry just ahead goes when its waiter takes a slot, leaves or dies (its
                // renewals make no event).
                switch try waitDeletes(backend, key: predecessor.key,
                                       after: backend.watchStart(listing: ahead.revision, entry: predecessor.index),
                                       timeoutMilliseconds: left) {
                case .gone where ahead.count == 1:
                    ahead.atHead()  // it was the only one ahead: this waiter is at the head
                case .gone where !backend.listsSemaphoreWithQueue:
                    // If the waiter ahead went because it took a slot, it was at the head: so is
                    // this one now. The semaphore says (and is read at the head anyway; v3 reads
                    // it with the listing).
                    if let id = predecessor.value.flatMap({ HolderRecord(id: nil, value: $0)?.id }),
                       try readSemaphore().holders.contains(id) {
                        ahead.atHead()
                    } else {
                        stale = true
                    }
                case .gone, .changed:
                    stale = true
                case .quiet:
                    break  // watch the same entry again (v2: if its history is gone by then, list)
                }
            } else {
                // At the head: the semaphore's event carries the new document.
                _ = try wait(timeoutMilliseconds: left)
            }
        }
    }

    /// Joins (again) at the back; remembers the semaphore if it was read in the same step.
    private func joined(_ session: QueueSession) throws -> QueueListing {
        let listing = try session.join()
        if let semaphore = listing.semaphore { noteSemaphore(semaphore) }
        return listing
    }

    /// The waiters ahead of `ticket`, with the semaphore where a listing reads it in the same step.
    private func listed(_ backend: Backend, before ticket: QueueTicket) throws -> QueueListing {
        let listing = try backend.listQueue(before: ticket, semaphore: true)
        if let semaphore = listing.semaphore { noteSemaphore(semaphore) }
        return listing
    }

    /// How a wait on the entry ahead ended.
    private enum Watched { case gone, changed, quiet }

    /// Waits until `key` changes after `index` (etcd's `waitDeletes`, for one key): `.gone` when
    /// it was deleted (or ran out), `.changed` for anything else that calls for a new listing
    /// (another change, a history etcd no longer has, every endpoint failing), `.quiet` when
    /// `timeoutMilliseconds` pass without an event. An endpoint that cannot be reached is left
    /// for the next.
    private func waitDeletes(_ backend: Backend, key: String, after index: Int64, timeoutMilliseconds: Int) throws -> Watched {
        let deadline = Clock.monotonicMilliseconds() + max(timeoutMilliseconds, 1)
        while true {
            for endpoint in transport.rotation() {
                try checkCancelled()
                let remaining = deadline - Clock.monotonicMilliseconds()
                if remaining <= 0 { return .quiet }
                do {
                    return try backend.watch(key, at: endpoint, after: index, timeoutMilliseconds: remaining) == .changed(nil) ? .gone : .changed
                } catch let error as LocksmithError where error.kind == .timedOut {
                    return .quiet
                } catch let error as LocksmithError where error.kind == .connectionFailed {
                    continue
                }
            }
            let remaining = deadline - Clock.monotonicMilliseconds()
            // Every endpoint failed: list again afterwards (something may have changed).
            if remaining <= 0 { return .changed }
            Clock.sleep(milliseconds: min(250, remaining))
        }
    }
}
