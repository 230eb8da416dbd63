// The fair queue beside a group's semaphore: a client that wants a slot joins the queue
// (`<semaphore key>.queue/`), waits for the entry just ahead of it to go, and only at the head of
// the queue tries the semaphore, so one release wakes one waiter and turns come in the order
// waiters joined. The semaphore document stays the only authority on who holds a slot: clients
// that do not queue (the original, `locksmithctl lock`) may take a free slot before the head,
// never more than max.
//
// v3: each entry is `<prefix><lease id in hex>`, put with a lease the waiter keeps alive; entries
// are ordered by create revision, and the one ahead is the newest created before ours (etcd's
// own lock recipe). v2: each entry is made with POST (an in-order key named by its index) and a
// TTL the waiter refreshes. An entry whose waiter died goes when its lease or TTL runs out
// (`queue-ttl`, default 60 s, renewed 20 s before it runs out), and the waiter behind it moves up.
// An entry that can never run out (no lease; no TTL, or one longer than any queue-ttl) or whose
// value is not an entry was not made by a waiter: waiters skip it at once (docs/decisions.md,
// issue 26), and `queue()` lists it marked as such.
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

extension EtcdClient {
    /// The prefix of the group's queue entries.
    public var queuePrefix: String { key + ".queue/" }

    /// Every entry of the group's queue, first in line first; those waiters skip are marked
    /// (`ignored`). Creates nothing.
    public func queue() throws -> [QueueEntry] {
        let api = try resolvedAPI()
        let listed = try listQueue(api, before: nil)
        return listed.entries.map { entry in
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
        if let fleetLock { return try fleetLockAcquire(fleetLock, holder, timeoutMilliseconds: timeoutMilliseconds, progress: progress) }
        try SemaphoreDocument.validateHolder(holder)
        let deadline = timeoutMilliseconds.map { Clock.monotonicMilliseconds() + max($0, 0) }
        let api = try resolvedAPI()
        let ttl = options.queueTTLSeconds
        // (Up to a tenth earlier, at random: waiters that joined together do not all renew at once.)
        let period = ClientOptions.queueRenewalMilliseconds(ttlSeconds: ttl) - jitter(upTo: ClientOptions.queueRenewalMilliseconds(ttlSeconds: ttl) / 10)
        var (ticket, ahead) = try joinQueue(api, holder: holder, ttl: ttl)
        var renewed = Clock.monotonicMilliseconds()
        var lastPosition = -1
        var gone = false  // the entry was removed already
        // Whether the listing in `ahead` must be read again before it is used: not after a wait
        // that saw no change, nor when the only waiter ahead went (new waiters join behind).
        var stale = false
        defer { if !gone { leaveQueue(api, ticket) } }
        while true {
            try checkCancelled()
            if Clock.monotonicMilliseconds() - renewed >= period {
                switch try renewQueue(api, ticket, ttl: ttl) {
                case nil:
                    // Our entry ran out (a long stall): join again, at the back.
                    (ticket, ahead) = try joinQueue(api, holder: holder, ttl: ttl)
                    lastPosition = -1
                    stale = false
                case let index? where api == .v2 && index - ahead.revision > EtcdClient.v2HistoryEvents * 9 / 10:
                    // v2 keeps the last 1,000 events: a watch from the listing's index would be
                    // refused as cleared. List again instead of asking.
                    stale = true
                case _?:
                    break
                }
                renewed = Clock.monotonicMilliseconds()
                if progress?(-1) == false { return .declined }
            }
            if stale {
                ahead = try listQueue(api, before: ticket, semaphore: true)
                stale = false
            }
            if !ahead.mine {
                // Our entry is gone (it ran out, or someone removed it): join again, at the back;
                // not more than once a second, whatever the server does.
                if let deadline, Clock.monotonicMilliseconds() >= deadline { return .timedOut }
                let since = Clock.monotonicMilliseconds() - renewed
                if since < 1000 {
                    Clock.sleep(milliseconds: 1000 - since)
                    try checkCancelled()
                }
                leaveQueue(api, ticket)
                (ticket, ahead) = try joinQueue(api, holder: holder, ttl: ttl)
                renewed = Clock.monotonicMilliseconds()
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
                    if api == .v3 {
                        // The slot, its holder record and the end of the entry in one
                        // transaction: the waiter behind moves up as the slot is taken. (The
                        // lease, holding no key now, runs out by itself.)
                        try takeSlot(holder, also: [V3.deleteOp(ticket.key)], reserve: ahead.count)
                    } else {
                        try takeSlot(holder, record: false, reserve: ahead.count)
                        // The waiter behind moves up first; the holder record can wait a moment.
                        leaveQueue(api, ticket)
                        recordHolder(holder)
                    }
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
            let left = min(period - (now - renewed), deadline.map { $0 - now } ?? Int.max)
            guard left > 0 else { continue }
            if let predecessor = ahead.entries.last {
                // The entry just ahead goes when its waiter takes a slot, leaves or dies (its
                // renewals make no event).
                // (From the listing's index: v2 keeps only the last 1,000 events, and a watch
                // from the entry's own, older index would soon be refused.)
                switch try waitForChange(api, key: predecessor.key, after: max(ahead.revision, api == .v3 ? 0 : predecessor.index),
                                         timeoutMilliseconds: left) {
                case .gone where ahead.count == 1:
                    ahead.atHead()  // it was the only one ahead: this waiter is at the head
                case .gone where api == .v2:
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

    // MARK: The entries

    /// Joins the queue at the back: the ticket, and the waiters ahead of it. v3 reads the
    /// semaphore in the same transaction.
    private func joinQueue(_ api: EtcdAPI, holder: String, ttl: Int) throws -> (QueueTicket, QueueListing) {
        var now = timespec()
        clock_gettime(CLOCK_REALTIME, &now)
        let value = "{\"id\":" + JSONText.quoted(holder) + ",\"since\":\(now.tv_sec),\"host\":" + JSONText.quoted(HolderRecord.hostName) + "}"
        switch api {
        case .v2:
            let response = try send("POST", V2.keyPath(String(queuePrefix.dropLast())) + "?ttl=\(ttl)",
                                    body: Array(("value=" + URLEscape.query(value)).utf8), headers: [V2.formHeader])
            guard let tree = JSONTree(response.body), tree.node["errorCode"] == nil,
                  let node = tree.node["node"], let created = node["key"]?.string, let index = node["createdIndex"]?.int64 else {
                throw LocksmithError(.protocolError, "\(queuePrefix): etcd did not make a queue entry: \(excerpt(response.text))")
            }
            let ticket = QueueTicket(key: created.hasPrefix("/") ? String(created.dropFirst()) : created, order: index, lease: nil)
            return (ticket, try listQueue(api, before: ticket))
        case .v3:
            let granted = try V3.answer(try send("POST", V3.leaseGrantPath, body: Array("{\"TTL\":\"\(ttl)\"}".utf8)), key: queuePrefix)
            guard let lease = granted.node["ID"]?.int64, lease > 0 else {
                throw LocksmithError(.protocolError, "\(queuePrefix): etcd granted no lease")
            }
            let entryKey = queuePrefix + EtcdClient.hex16(lease)
            // The entry is the newest, so every other one is ahead: the transaction reads the two
            // newest entries (this one and the one to watch) and how many there are, not the
            // whole queue (a crowd joining together would cost etcd the square of its size).
            let tree = try V3.answer(try send("POST", V3.txnPath, body: V3.txn([
                V3.putOp(entryKey, value, lease: "\(lease)"), V3.rangeOp(queueRange(newest: 2)), V3.rangeOp(queueRange(countOnly: true)),
                V3.rangeOp(String(decoding: V3.range(key), as: UTF8.self)),
            ])), key: entryKey)
            guard let revision = tree.node["header"]?["revision"]?.int64 else {
                throw LocksmithError(.protocolError, "\(entryKey): the v3 answer has no revision")
            }
            let ticket = QueueTicket(key: entryKey, order: revision, lease: "\(lease)")
            if let semaphore = try V3.firstValue(tree.node["responses"]?[3]?["response_range"], key: key, at: revision) {
                noteSemaphore(semaphore)
            }
            var listing = queueListing(tree.node["responses"]?[1]?["response_range"], ticket: ticket, revision: revision)
            if listing.skipped > 0 {
                // The entry just ahead is one waiters skip: the waiter to watch is further ahead.
                return (ticket, try listQueue(api, before: ticket))
            }
            // (Entries further ahead that waiters skip are counted until the next listing: a
            // waiter then waits for one more, never for one fewer.)
            let total = tree.node["responses"]?[2]?["response_range"]?["count"]?.int64 ?? 0
            listing.unlisted = max(0, Int(clamping: total) - 1 - listing.count)
            return (ticket, listing)
        }
    }

    /// Keeps the entry alive: nil if it is gone, else etcd's index then (v2; 0 if the answer had
    /// none) or revision (v3).
    private func renewQueue(_ api: EtcdAPI, _ ticket: QueueTicket, ttl: Int) throws -> Int64? {
        switch api {
        case .v2:
            let response = try send("PUT", V2.keyPath(ticket.key) + "?refresh=true&prevExist=true",
                                    body: Array("ttl=\(ttl)".utf8), headers: [V2.formHeader])
            return try V2.check(response, key: ticket.key) ? response.etcdIndex ?? 0 : nil
        case .v3:
            let answer = try V3.answer(try send("POST", V3.leaseKeepAlivePath, body: Array("{\"ID\":\"\(ticket.lease ?? "0")\"}".utf8)),
                                       key: ticket.key)
            // An expired lease answers with no TTL (or 0).
            guard (answer.node["result"]?["TTL"]?.int64 ?? 0) > 0 else { return nil }
            return answer.node["result"]?["header"]?["revision"]?.int64 ?? 0
        }
    }

    /// Removes the entry (and its lease). Best effort.
    private func leaveQueue(_ api: EtcdAPI, _ ticket: QueueTicket) {
        switch api {
        case .v2:
            _ = try? send("DELETE", V2.keyPath(ticket.key), evenIfCancelled: true)
        case .v3:
            // Revoking the lease deletes the entry with it.
            if let lease = ticket.lease {
                _ = try? send("POST", V3.leaseRevokePath, body: Array("{\"ID\":\"\(lease)\"}".utf8), evenIfCancelled: true)
            }
        }
    }

    /// The waiters ahead of `ticket` (every entry for nil), first in line first, and whether the
    /// ticket's own entry is still there; the revision or index the listing was read at, and with
    /// `semaphore` the semaphore read in the same step (v2 lists only).
    private func listQueue(_ api: EtcdAPI, before ticket: QueueTicket?, semaphore: Bool = false) throws -> QueueListing {
        switch api {
        case .v2:
            let response = try send("GET", V2.keyPath(String(queuePrefix.dropLast())) + "?sorted=true&quorum=true")
            guard let tree = JSONTree(response.body) else {
                throw LocksmithError(.protocolError, "\(queuePrefix): the v2 answer is not JSON: \(excerpt(response.text))")
            }
            if let code = tree.node["errorCode"]?.int64 {
                if code == 100 { return QueueListing(entries: [], mine: ticket == nil, revision: 0) }
                throw LocksmithError(code == 110 ? .permissionDenied : .protocolError, "\(queuePrefix): etcd error \(code)")
            }
            var listing = QueueListing(entries: [], mine: ticket == nil, revision: response.etcdIndex ?? 0)
            if let nodes = tree.node["node"]?["nodes"] {
                for i in 0..<nodes.count {
                    guard let node = nodes[i], var k = node["key"]?.string, let index = node["modifiedIndex"]?.int64,
                          let created = node["createdIndex"]?.int64 else { continue }
                    if k.hasPrefix("/") { k.removeFirst() }
                    if let ticket {
                        if k == ticket.key { listing.mine = true; break }
                        if created > ticket.order { continue }
                    }
                    let ttl = node["ttl"]?.int64 ?? 0
                    listing.add(k, index, node["value"]?.bytes, expires: ttl > 0 && ttl <= QueueEntry.maxTTLSeconds, waiting: ticket != nil)
                }
            }
            return listing
        case .v3 where semaphore:
            let tree = try V3.answer(try send("POST", V3.txnPath, body: V3.txn([
                V3.rangeOp(queueRange(before: ticket)), V3.rangeOp(String(decoding: V3.range(key), as: UTF8.self)),
            ])), key: queuePrefix)
            if let value = try V3.firstValue(tree.node["responses"]?[1]?["response_range"], key: key,
                                             at: tree.node["header"]?["revision"]?.int64) {
                noteSemaphore(value)
            }
            return queueListing(tree.node["responses"]?[0]?["response_range"], ticket: ticket,
                                revision: tree.node["header"]?["revision"]?.int64 ?? 0)
        case .v3:
            let tree = try V3.answer(try send("POST", V3.rangePath, body: Array(queueRange(before: ticket).utf8)), key: queuePrefix)
            return queueListing(tree.node, ticket: ticket, revision: tree.node["header"]?["revision"]?.int64 ?? 0)
        }
    }

    /// The v3 range of the entries up to `ticket`'s (all of them for nil), in the order they
    /// joined; or of the `newest` entries only, newest first; or only their number. With values:
    /// waiters tell an entry they skip by its value and lease.
    private func queueRange(before ticket: QueueTicket? = nil, newest: Int? = nil, countOnly: Bool = false) -> String {
        var end = Array(queuePrefix.utf8)
        end[end.count - 1] += 1
        var body = "{\"key\":\"\(Base64.encode(queuePrefix))\",\"range_end\":\"\(Base64.encode(end))\""
        if countOnly { return body + ",\"count_only\":true}" }
        body += ",\"sort_order\":\"\(newest == nil ? "ASCEND" : "DESCEND")\",\"sort_target\":\"CREATE\""
        if let newest { body += ",\"limit\":\"\(newest)\"" }
        if let ticket { body += ",\"max_create_revision\":\"\(ticket.order)\"" }
        return body + "}"
    }

    /// The entries of a v3 range answer (`node` holds its `kvs`), but the ticket's own (and with
    /// a ticket, those waiters skip).
    private func queueListing(_ node: JSONNode?, ticket: QueueTicket?, revision: Int64) -> QueueListing {
        var listing = QueueListing(entries: [], mine: ticket == nil, revision: revision)
        if let kvs = node?["kvs"] {
            for i in 0..<kvs.count {
                guard let kv = kvs[i], let k = kv["key"]?.string.flatMap(Base64.decode).map({ String(decoding: $0, as: UTF8.self) }),
                      let index = kv["mod_revision"]?.int64 else { continue }
                if k == ticket?.key { listing.mine = true; continue }
                listing.add(k, index, Base64.decode(kv["value"]?.string ?? ""), expires: (kv["lease"]?.int64 ?? 0) != 0, waiting: ticket != nil)
            }
        }
        return listing
    }

    /// How a wait on the entry ahead ended.
    private enum Watched { case gone, changed, quiet }

    /// Waits until `key` changes after `index`: `.gone` when it was deleted (or ran out),
    /// `.changed` for anything else that calls for a new listing (another change, a history etcd
    /// no longer has, every endpoint failing), `.quiet` when `timeoutMilliseconds` pass without an
    /// event. An endpoint that cannot be reached is left for the next.
    private func waitForChange(_ api: EtcdAPI, key: String, after index: Int64, timeoutMilliseconds: Int) throws -> Watched {
        let deadline = Clock.monotonicMilliseconds() + max(timeoutMilliseconds, 1)
        while true {
            for endpoint in rotation() {
                try checkCancelled()
                let remaining = deadline - Clock.monotonicMilliseconds()
                if remaining <= 0 { return .quiet }
                do {
                    return try watchEvent(api, endpoint, key: key, after: index, timeoutMilliseconds: remaining) == .changed(nil) ? .gone : .changed
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

    /// A lease id as 16 hex digits (a v3 entry's name).
    static func hex16(_ value: Int64) -> String {
        let digits = String(UInt64(bitPattern: value), radix: 16)
        return String(repeating: "0", count: max(0, 16 - digits.count)) + digits
    }
}
