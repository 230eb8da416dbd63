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
// (`queue-ttl`, default 60 s, renewed every third of it), and the waiter behind it moves up.
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

    /// The waiters of the group's queue, first in line first (entries that are not valid are left
    /// out). Creates nothing.
    public func queue() throws -> [QueueEntry] {
        let api = try resolvedAPI()
        let listed = try listQueue(api, before: nil, values: true)
        return listed.entries.compactMap { entry in
            guard let value = entry.value, let record = HolderRecord(id: nil, value: value) else { return nil }
            return QueueEntry(key: entry.key, id: record.id, since: record.since, host: record.host)
        }
    }

    /// Waits in the group's queue and takes a slot for `holder` when its turn comes. `progress`
    /// hears the number of waiters ahead each time it changes, 0 before each attempt at the head
    /// to take a slot (made only when a slot may be free), and -1 when it goes on waiting: at the
    /// head with the semaphore full, and after each renewal of the entry (a heartbeat, at least
    /// every third of queue-ttl); it returns false to decline (the wait ends, `.declined`,
    /// without a slot). `.timedOut` when `timeoutMilliseconds` pass first. Throws ECANCELED when the client
    /// is cancelled, `.exists` if `holder` already holds a slot, other errors as `lock` (a
    /// request that timed out is `.timedOut`). The entry is removed on the way out (if etcd
    /// cannot be reached then, it goes when its time to live runs out).
    @discardableResult
    public func acquire(_ holder: String, timeoutMilliseconds: Int?, progress: ((Int) -> Bool)? = nil) throws -> QueueOutcome {
        try SemaphoreDocument.validateHolder(holder)
        let deadline = timeoutMilliseconds.map { Clock.monotonicMilliseconds() + max($0, 0) }
        let api = try resolvedAPI()
        let ttl = options.queueTTLSeconds
        let period = ttl * 1000 / 3
        var ticket = try joinQueue(api, holder: holder, ttl: ttl)
        var renewed = Clock.monotonicMilliseconds()
        var lastPosition = -1
        var gone = false  // the entry was removed already
        // The listing of the last round, when the wait that followed it saw no change (v3): the
        // same waiter is still ahead, so the next round watches it again without listing.
        var unchanged: (entries: [(key: String, index: Int64, value: [UInt8]?)], mine: Bool, revision: Int64)?
        defer { if !gone { leaveQueue(api, ticket) } }
        while true {
            try checkCancelled()
            if Clock.monotonicMilliseconds() - renewed >= period {
                if try !renewQueue(api, ticket, ttl: ttl) {
                    // Our entry ran out (a long stall): join again, at the back.
                    ticket = try joinQueue(api, holder: holder, ttl: ttl)
                    lastPosition = -1
                    unchanged = nil
                }
                renewed = Clock.monotonicMilliseconds()
                if progress?(-1) == false { return .declined }
            }
            let ahead = try unchanged ?? listQueue(api, before: ticket, values: false)
            unchanged = nil
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
                ticket = try joinQueue(api, holder: holder, ttl: ttl)
                renewed = Clock.monotonicMilliseconds()
                lastPosition = -1
                continue
            }
            if ahead.entries.count != lastPosition && !ahead.entries.isEmpty {
                lastPosition = ahead.entries.count
                if progress?(lastPosition) == false { return .declined }
            }
            // At the head: take a slot as soon as one may be free (if the caller still wants it). A
            // semaphore last seen full is waited on first: the wait returns at once if it changed.
            let full = lastSeen.map { $0.available <= 0 && !$0.holders.contains(holder) } ?? false
            if ahead.entries.isEmpty && !full {
                lastPosition = 0
                if progress?(0) == false { return .declined }
                do {
                    if api == .v3 {
                        // The slot, its holder record and the end of the entry in one
                        // transaction: the waiter behind moves up as the slot is taken. (The
                        // lease, holding no key now, runs out by itself.)
                        try takeSlot(holder, also: [V3.deleteOp(ticket.key)])
                    } else {
                        try takeSlot(holder, record: false)
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
                    if progress?(-1) == false { return .declined }
                }
            } else if ahead.entries.isEmpty {
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
                // The entry just ahead goes when its waiter takes a slot, leaves or dies.
                let changed = try waitForChange(api, key: predecessor.key, after: api == .v3 ? ahead.revision : predecessor.index,
                                                timeoutMilliseconds: left)
                // (v2 keeps only the last 1,000 events: a watch from the old index would soon be
                // refused, so v2 lists again.)
                if !changed && api == .v3 { unchanged = ahead }
            } else {
                _ = try wait(timeoutMilliseconds: left)
            }
        }
    }

    // MARK: The entries

    private func joinQueue(_ api: EtcdAPI, holder: String, ttl: Int) throws -> QueueTicket {
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
            return QueueTicket(key: created.hasPrefix("/") ? String(created.dropFirst()) : created, order: index, lease: nil)
        case .v3:
            let granted = try V3.answer(try send("POST", V3.leaseGrantPath, body: Array("{\"TTL\":\"\(ttl)\"}".utf8)), key: queuePrefix)
            guard let lease = granted.node["ID"]?.int64, lease > 0 else {
                throw LocksmithError(.protocolError, "\(queuePrefix): etcd granted no lease")
            }
            let entryKey = queuePrefix + EtcdClient.hex16(lease)
            let put = try V3.answer(try send("POST", V3.putPath, body: V3.put(entryKey, value, lease: "\(lease)")), key: entryKey)
            guard let revision = put.node["header"]?["revision"]?.int64 else {
                throw LocksmithError(.protocolError, "\(entryKey): the v3 answer has no revision")
            }
            return QueueTicket(key: entryKey, order: revision, lease: "\(lease)")
        }
    }

    /// Keeps the entry alive; false if it is gone.
    private func renewQueue(_ api: EtcdAPI, _ ticket: QueueTicket, ttl: Int) throws -> Bool {
        switch api {
        case .v2:
            return try V2.check(try send("PUT", V2.keyPath(ticket.key) + "?refresh=true&prevExist=true",
                                         body: Array("ttl=\(ttl)".utf8), headers: [V2.formHeader]), key: ticket.key)
        case .v3:
            let answer = try V3.answer(try send("POST", V3.leaseKeepAlivePath, body: Array("{\"ID\":\"\(ticket.lease ?? "0")\"}".utf8)),
                                       key: ticket.key)
            // An expired lease answers with no TTL (or 0).
            return (answer.node["result"]?["TTL"]?.int64 ?? 0) > 0
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

    /// The entries ahead of `ticket` (all of them for nil), first in line first, and whether the
    /// ticket's own entry is still there; for v3 the revision the listing was read at.
    private func listQueue(_ api: EtcdAPI, before ticket: QueueTicket?, values: Bool)
        throws -> (entries: [(key: String, index: Int64, value: [UInt8]?)], mine: Bool, revision: Int64) {
        switch api {
        case .v2:
            let response = try send("GET", V2.keyPath(String(queuePrefix.dropLast())) + "?sorted=true&quorum=true")
            guard let tree = JSONTree(response.body) else {
                throw LocksmithError(.protocolError, "\(queuePrefix): the v2 answer is not JSON: \(excerpt(response.text))")
            }
            if let code = tree.node["errorCode"]?.int64 {
                if code == 100 { return ([], ticket == nil, 0) }
                throw LocksmithError(code == 110 ? .permissionDenied : .protocolError, "\(queuePrefix): etcd error \(code)")
            }
            var entries: [(key: String, index: Int64, value: [UInt8]?)] = []
            var mine = ticket == nil
            if let nodes = tree.node["node"]?["nodes"] {
                for i in 0..<nodes.count {
                    guard let node = nodes[i], var k = node["key"]?.string, let index = node["modifiedIndex"]?.int64,
                          let created = node["createdIndex"]?.int64 else { continue }
                    if k.hasPrefix("/") { k.removeFirst() }
                    if let ticket {
                        if k == ticket.key { mine = true; break }
                        if created > ticket.order { continue }
                    }
                    entries.append((k, index, values ? node["value"]?.bytes : nil))
                }
            }
            return (entries, mine, 0)
        case .v3:
            var end = Array(queuePrefix.utf8)
            end[end.count - 1] += 1
            var body = "{\"key\":\"\(Base64.encode(queuePrefix))\",\"range_end\":\"\(Base64.encode(end))\","
                + "\"sort_order\":\"ASCEND\",\"sort_target\":\"CREATE\""
            if let ticket { body += ",\"max_create_revision\":\"\(ticket.order)\"" }
            if !values { body += ",\"keys_only\":true" }
            let tree = try V3.answer(try send("POST", V3.rangePath, body: Array((body + "}").utf8)), key: queuePrefix)
            var entries: [(key: String, index: Int64, value: [UInt8]?)] = []
            var mine = ticket == nil
            if let kvs = tree.node["kvs"] {
                for i in 0..<kvs.count {
                    guard let kv = kvs[i], let k = kv["key"]?.string.flatMap(Base64.decode).map({ String(decoding: $0, as: UTF8.self) }),
                          let revision = kv["mod_revision"]?.int64 else { continue }
                    if k == ticket?.key { mine = true; continue }
                    entries.append((k, revision, values ? Base64.decode(kv["value"]?.string ?? "") : nil))
                }
            }
            return (entries, mine, tree.node["header"]?["revision"]?.int64 ?? 0)
        }
    }

    /// Waits until `key` changes after `index` (true), or `timeoutMilliseconds` pass (false); an
    /// endpoint that cannot be reached is left for the next.
    private func waitForChange(_ api: EtcdAPI, key: String, after index: Int64, timeoutMilliseconds: Int) throws -> Bool {
        let deadline = Clock.monotonicMilliseconds() + max(timeoutMilliseconds, 1)
        while true {
            for endpoint in rotation() {
                try checkCancelled()
                let remaining = deadline - Clock.monotonicMilliseconds()
                if remaining <= 0 { return false }
                do {
                    _ = try watchEvent(api, endpoint, key: key, after: index, timeoutMilliseconds: remaining)
                    return true
                } catch let error as LocksmithError where error.kind == .timedOut {
                    return false
                } catch let error as LocksmithError where error.kind == .connectionFailed {
                    continue
                }
            }
            let remaining = deadline - Clock.monotonicMilliseconds()
            // Every endpoint failed: list again afterwards (something may have changed).
            if remaining <= 0 { return true }
            Clock.sleep(milliseconds: min(250, remaining))
        }
    }

    /// A lease id as 16 hex digits (a v3 entry's name).
    static func hex16(_ value: Int64) -> String {
        let digits = String(UInt64(bitPattern: value), radix: 16)
        return String(repeating: "0", count: max(0, 16 - digits.count)) + digits
    }
}
