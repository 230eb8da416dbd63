// etcd's v3 API (through its JSON gateway) as a backend: the semaphore's compare-and-swap is a
// transaction that also writes the keys beside it and (unless the client knows them clean) lists
// the holder records; queue entries live on leases, ordered by create revision (etcd's own lock recipe).
import LocksmithCore

final class V3Backend: Backend {
    let transport: EtcdTransport
    let keys: GroupKeys

    init(transport: EtcdTransport, keys: GroupKeys) {
        self.transport = transport
        self.keys = keys
    }

    /// The longest v3 watch message read: an event carries one semaphore document (at most
    /// 128 KiB, in base64) and a few fields.
    static let maxWatchMessageBytes = 1 << 20

    // MARK: Keys

    func read(_ key: String) throws -> WireResult {
        try V3.parseRange(try transport.send("POST", V3.rangePath, body: V3.range(key)), key: key)
    }

    func create(_ json: String) throws -> WireResult {
        try V3.parseTxn(try transport.send("POST", V3.txnPath, body: V3.putIf(keys.semaphore, json, target: "CREATE", revision: 0)),
                        key: keys.semaphore)
    }

    /// With `listRecords`, the transaction ends with a keys-only range of the holder records, so
    /// the listing is at the write's revision.
    func write(_ json: String, over index: Int64, holders: Int, side: [SideWrite], listRecords: Bool,
               unchanged: [(key: String, revision: Int64)]) throws -> (WireResult, ListedKeys?) {
        var also = side.map(operation)
        if listRecords {
            let records = V3.rangePrefix(keys.records, keysOnly: true, limit: holders + EtcdClient.recordsCleanedPerWrite)
            also.append(V3.rangeOp(String(decoding: records, as: UTF8.self)))
        }
        let body = V3.putIf(keys.semaphore, json, target: "MOD", revision: index, also: also, unchanged: unchanged)
        return try V3.parseTxn(try transport.send("POST", V3.txnPath, body: body), key: keys.semaphore,
                               listing: listRecords ? also.count : nil)
    }

    /// A side write as an operation of the transaction.
    private func operation(_ write: SideWrite) -> String {
        switch write {
        case .record(let holder, taken: true):
            return V3.putOp(keys.record(holder), HolderRecord.now(holder).json)
        case .record(let holder, taken: false):
            return V3.deleteOp(keys.record(holder))
        case .endEntry(let ticket):
            // (The lease, holding no key now, runs out by itself.)
            return V3.deleteOp(ticket.key)
        }
    }

    func afterWrite(_ side: [SideWrite]) {}  // all in the transaction

    func put(_ key: String, _ value: String) throws {
        _ = try V3.answer(try transport.send("POST", V3.putPath, body: V3.put(key, value)), key: key)
    }

    func list(_ directory: String, label: String) throws -> [(key: String, value: [UInt8]?, index: Int64)] {
        try V3.parseRangeAll(try transport.send("POST", V3.rangePath, body: V3.rangePrefix(directory + "/")), key: label)
    }

    /// In one transaction, each compared on the mod_revision listed.
    /// Whether they all went: the transaction is all or nothing, so one record that changed since
    /// (a holder that took a slot again) keeps the others too, and the next write lists again.
    func removeRecords(_ stale: ListedKeys) -> Bool {
        let body = V3.txn(stale.map { V3.deleteOp($0.key) }, unchanged: stale.map { ($0.key, $0.index) })
        guard let response = try? transport.send("POST", V3.txnPath, body: body),
              let tree = try? V3.answer(response, key: keys.records) else { return false }
        return tree.node["succeeded"]?.bool == true
    }

    /// One transaction of three ranges, so that the three are of one revision: the semaphore,
    /// the holder records (with their values) and the queue in the order it joined.
    func readGroup() throws -> GroupReading? {
        let tree = try V3.answer(try transport.send("POST", V3.txnPath, body: V3.txn([
            V3.rangeOp(String(decoding: V3.range(keys.semaphore), as: UTF8.self)),
            V3.rangeOp(String(decoding: V3.rangePrefix(keys.records), as: UTF8.self)),
            V3.rangeOp(queueRange()),
        ])), key: keys.semaphore)
        let revision = tree.node["header"]?["revision"]?.int64
        let responses = tree.node["responses"]
        return GroupReading(semaphore: try V3.firstValue(responses?[0]?["response_range"], key: keys.semaphore, at: revision),
                            records: V3.keyValues(responses?[1]?["response_range"]),
                            queue: queueListing(responses?[2]?["response_range"], ticket: nil, revision: revision ?? 0))
    }

    func watch(_ key: String, at endpoint: String, after index: Int64, timeoutMilliseconds: Int) throws -> WatchEvent {
        var line: [UInt8] = []
        var event: WatchEvent?
        var oversized = false
        let response = try transport.http.perform(method: "POST", url: endpoint + V3.watchPath, body: V3.watch(key, after: index),
                                                  headers: try transport.authHeaders(endpoint), timeoutMilliseconds: timeoutMilliseconds,
                                                  interruptible: true) { chunk in
            var rest = chunk[...]
            while let newline = rest.firstIndex(of: UInt8(ascii: "\n")) {
                line.append(contentsOf: rest[..<newline])
                rest = rest[(newline + 1)...]
                event = V3.watchEvent(line)
                if event != nil { return false }
                line.removeAll(keepingCapacity: true)
            }
            line.append(contentsOf: rest)
            if line.count > V3Backend.maxWatchMessageBytes {
                oversized = true
                return false
            }
            // A message may come without its newline: try it once the text ends an object.
            guard line.last == UInt8(ascii: "}") else { return true }
            event = V3.watchEvent(line)
            return event == nil
        }
        if oversized {
            throw LocksmithError(.protocolError, "\(endpoint): a watch message is larger than \(V3Backend.maxWatchMessageBytes >> 20) MiB: not an etcd answer")
        }
        if let event { return event }
        if response.status == 401 { transport.forgetToken() }
        if (400..<500).contains(response.status) { _ = try V3.answer(response, key: key) }
        // The stream ended without an event (etcd shutting down, a proxy closing it): watch
        // again from the same revision, so nothing is missed.
        throw LocksmithError(.connectionFailed, "the watch stream ended (HTTP \(response.status))")
    }

    // MARK: Queue entries

    var historyEvents: Int64? { nil }

    /// From the listing's revision: it is at least the entry's.
    func watchStart(listing: Int64, entry: Int64) -> Int64 { listing }

    var listsSemaphoreWithQueue: Bool { true }

    /// Each entry is `<prefix><lease id in hex>`, put with its lease.
    func join(value: String, ttl: Int) throws -> (QueueTicket, QueueListing) {
        let granted = try V3.answer(try transport.send("POST", V3.leaseGrantPath, body: Array("{\"TTL\":\"\(ttl)\"}".utf8)), key: keys.queue)
        guard let lease = granted.node["ID"]?.int64, lease > 0 else {
            throw LocksmithError(.protocolError, "\(keys.queue): etcd granted no lease")
        }
        let entryKey = keys.queue + V3Backend.hex16(lease)
        // The entry is the newest, so every other one is ahead: the transaction reads the two
        // newest entries (this one and the one to watch) and how many there are, not the
        // whole queue (a crowd joining together would cost etcd the square of its size).
        let tree = try V3.answer(try transport.send("POST", V3.txnPath, body: V3.txn([
            V3.putOp(entryKey, value, lease: "\(lease)"), V3.rangeOp(queueRange(newest: 2)), V3.rangeOp(queueRange(countOnly: true)),
            V3.rangeOp(String(decoding: V3.range(keys.semaphore), as: UTF8.self)),
        ])), key: entryKey)
        guard let revision = tree.node["header"]?["revision"]?.int64 else {
            throw LocksmithError(.protocolError, "\(entryKey): the v3 answer has no revision")
        }
        let ticket = QueueTicket(key: entryKey, order: revision, lease: "\(lease)")
        let semaphore = try V3.firstValue(tree.node["responses"]?[3]?["response_range"], key: keys.semaphore, at: revision)
        var listing = queueListing(tree.node["responses"]?[1]?["response_range"], ticket: ticket, revision: revision)
        if listing.skipped > 0 {
            // The entry just ahead is one waiters skip: the waiter to watch is further ahead.
            var full = try listQueue(before: ticket, semaphore: false)
            full.semaphore = semaphore
            return (ticket, full)
        }
        // (Entries further ahead that waiters skip are counted until the next listing: a
        // waiter then waits for one more, never for one fewer.)
        let total = tree.node["responses"]?[2]?["response_range"]?["count"]?.int64 ?? 0
        listing.unlisted = max(0, Int(clamping: total) - 1 - listing.count)
        listing.semaphore = semaphore
        return (ticket, listing)
    }

    /// A keep-alive of the entry's lease.
    func renew(_ ticket: QueueTicket, ttl: Int) throws -> Int64? {
        let answer = try V3.answer(try transport.send("POST", V3.leaseKeepAlivePath, body: Array("{\"ID\":\"\(ticket.lease ?? "0")\"}".utf8)),
                                   key: ticket.key)
        // An expired lease answers with no TTL (or 0).
        guard (answer.node["result"]?["TTL"]?.int64 ?? 0) > 0 else { return nil }
        return answer.node["result"]?["header"]?["revision"]?.int64 ?? 0
    }

    /// Revoking the lease deletes the entry with it.
    func leave(_ ticket: QueueTicket) {
        if let lease = ticket.lease {
            _ = try? transport.send("POST", V3.leaseRevokePath, body: Array("{\"ID\":\"\(lease)\"}".utf8), evenIfCancelled: true)
        }
    }

    func listQueue(before ticket: QueueTicket?, semaphore: Bool) throws -> QueueListing {
        guard semaphore else {
            let tree = try V3.answer(try transport.send("POST", V3.rangePath, body: Array(queueRange(before: ticket).utf8)), key: keys.queue)
            return queueListing(tree.node, ticket: ticket, revision: tree.node["header"]?["revision"]?.int64 ?? 0)
        }
        let tree = try V3.answer(try transport.send("POST", V3.txnPath, body: V3.txn([
            V3.rangeOp(queueRange(before: ticket)), V3.rangeOp(String(decoding: V3.range(keys.semaphore), as: UTF8.self)),
        ])), key: keys.queue)
        var listing = queueListing(tree.node["responses"]?[0]?["response_range"], ticket: ticket,
                                   revision: tree.node["header"]?["revision"]?.int64 ?? 0)
        listing.semaphore = try V3.firstValue(tree.node["responses"]?[1]?["response_range"], key: keys.semaphore,
                                              at: tree.node["header"]?["revision"]?.int64)
        return listing
    }

    /// The v3 range of the entries up to `ticket`'s (all of them for nil), in the order they
    /// joined; or of the `newest` entries only, newest first; or only their number. With values:
    /// waiters tell an entry they skip by its value and lease.
    private func queueRange(before ticket: QueueTicket? = nil, newest: Int? = nil, countOnly: Bool = false) -> String {
        var end = Array(keys.queue.utf8)
        end[end.count - 1] += 1
        var body = "{\"key\":\"\(Base64.encode(keys.queue))\",\"range_end\":\"\(Base64.encode(end))\""
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

    /// A lease id as 16 hex digits (a v3 entry's name).
    static func hex16(_ value: Int64) -> String {
        let digits = String(UInt64(bitPattern: value), radix: 16)
        return String(repeating: "0", count: max(0, 16 - digits.count)) + digits
    }
}
