// etcd's v2 keys API as a backend: the original's requests for the semaphore (EtcdWire.swift's
// V2), and what v2 has in place of transactions: keys beside the semaphore written after it, the
// holder records listed after a write, queue entries made with POST (in-order keys named by their
// index) and kept alive by refreshing their TTL.
import LocksmithCore

final class V2Backend: Backend {
    let transport: EtcdTransport
    let keys: GroupKeys

    init(transport: EtcdTransport, keys: GroupKeys) {
        self.transport = transport
        self.keys = keys
    }

    // MARK: Keys

    func read(_ key: String) throws -> WireResult {
        let request = V2.get(key)
        return try V2.parse(try transport.send(request.method, request.path), key: key)
    }

    func create(_ json: String) throws -> WireResult {
        let request = V2.create(keys.semaphore, json)
        return try V2.parse(try transport.send(request.method, request.path, body: request.body, headers: [V2.formHeader]), key: keys.semaphore)
    }

    func write(_ json: String, over index: Int64, holders: Int, side: [SideWrite], listRecords: Bool,
               unchanged: [(key: String, revision: Int64)]) throws -> (WireResult, ListedKeys?) {
        // (`unchanged` has no v2 form: callers read the keys after the semaphore and write over
        // the index they read it at, so a change in between fails the compare-and-swap.)
        let request = V2.compareAndSwap(keys.semaphore, json, index: index)
        let result = try V2.parse(try transport.send(request.method, request.path, body: request.body, headers: [V2.formHeader]),
                                  key: keys.semaphore)
        switch result {
        case .missing:
            return (.conflict(nil), nil)
        case .stored where !listRecords && !side.contains(where: { if case .record(_, taken: false) = $0 { true } else { false } }):
            // (A holder's record that a v2 write gives back goes with the clean-up after the
            // listing: such a write always lists.)
            return (result, nil)
        case .stored:
            // The records after the write: a plain read, served by any member (nothing in it is
            // trusted beyond what the cleanup's guards check).
            let listing = V2.list(String(keys.records.dropLast()))  // the directory
            let listed = (try? V2.parseList(try transport.send(listing.method, listing.path), key: keys.records))?
                .compactMap { $0.value == nil ? nil : ($0.key, $0.index) }
            return (result, listed)
        case .value, .conflict:
            return (result, nil)
        }
    }

    func afterWrite(_ side: [SideWrite]) {
        for write in side {
            switch write {
            case .record(let holder, taken: true):
                _ = try? put(keys.record(holder), HolderRecord.now(holder).json)
            case .record(_, taken: false):
                break  // removed with the records of the other holders gone, by the cleanup
            case .endEntry(let ticket):
                leave(ticket)
            }
        }
    }

    func put(_ key: String, _ value: String) throws {
        let request = V2.set(key, value)
        _ = try V2.check(try transport.send(request.method, request.path, body: request.body, headers: [V2.formHeader]), key: key)
    }

    func list(_ directory: String, label: String) throws -> [(key: String, value: [UInt8]?, index: Int64)] {
        let request = V2.list(directory)
        return try V2.parseList(try transport.send(request.method, request.path), key: label)
    }

    func removeRecords(_ stale: ListedKeys) -> Bool {
        var answered = true
        for entry in stale {
            let request = V2.compareAndDelete(entry.key, index: entry.index)
            // (412, the record changed since, and 404, gone already, are answers too.)
            if (try? transport.send(request.method, request.path)).map({ $0.status < 500 }) != true { answered = false }
        }
        return answered
    }

    /// v2 has no read of several keys but a recursive GET of a directory, and a group's
    /// directory is no group's own: the default group's semaphore, queue and holder records lie
    /// in coreos.com/updateengine/rebootlock beside groups/, which holds every other group's
    /// keys. So the semaphore, the records and the queue are read one by one (EtcdClient.getAll).
    func readGroup() throws -> GroupReading? { nil }

    func watch(_ key: String, at endpoint: String, after index: Int64, timeoutMilliseconds: Int) throws -> WatchEvent {
        let request = V2.watch(key, after: index)
        let response = try transport.http.perform(method: request.method, url: endpoint + request.path,
                                                  timeoutMilliseconds: timeoutMilliseconds, interruptible: true)
        if response.status >= 500 { throw LocksmithError(.connectionFailed, "HTTP \(response.status)") }
        return V2.watchEvent(response)
    }

    // MARK: Queue entries

    /// v2 keeps the last 1,000 events: a watch from an older index is refused as cleared.
    var historyEvents: Int64? { 1_000 }

    /// From the listing's index: a watch from the entry's own, older index would soon be refused.
    func watchStart(listing: Int64, entry: Int64) -> Int64 { max(listing, entry) }

    var listsSemaphoreWithQueue: Bool { false }

    func join(value: String, ttl: Int) throws -> (QueueTicket, QueueListing) {
        let response = try transport.send("POST", V2.keyPath(String(keys.queue.dropLast())) + "?ttl=\(ttl)",
                                          body: Array(("value=" + URLEscape.query(value)).utf8), headers: [V2.formHeader])
        guard let tree = JSONTree(response.body), tree.node["errorCode"] == nil,
              let node = tree.node["node"], let created = node["key"]?.string, let index = node["createdIndex"]?.int64 else {
            throw LocksmithError(.protocolError, "\(keys.queue): etcd did not make a queue entry: \(excerpt(response.text))")
        }
        let ticket = QueueTicket(key: created.hasPrefix("/") ? String(created.dropFirst()) : created, order: index, lease: nil)
        return (ticket, try listQueue(before: ticket, semaphore: false))
    }

    func renew(_ ticket: QueueTicket, ttl: Int) throws -> Int64? {
        let response = try transport.send("PUT", V2.keyPath(ticket.key) + "?refresh=true&prevExist=true",
                                          body: Array("ttl=\(ttl)".utf8), headers: [V2.formHeader])
        return try V2.check(response, key: ticket.key) ? response.etcdIndex ?? 0 : nil
    }

    func leave(_ ticket: QueueTicket) {
        _ = try? transport.send("DELETE", V2.keyPath(ticket.key), evenIfCancelled: true)
    }

    /// (v2 lists only: `semaphore` asks nothing more.)
    func listQueue(before ticket: QueueTicket?, semaphore: Bool) throws -> QueueListing {
        let response = try transport.send("GET", V2.keyPath(String(keys.queue.dropLast())) + "?sorted=true&quorum=true")
        guard let tree = JSONTree(response.body) else {
            throw LocksmithError(.protocolError, "\(keys.queue): the v2 answer is not JSON: \(excerpt(response.text))")
        }
        if let code = tree.node["errorCode"]?.int64 {
            if code == 100 { return QueueListing(entries: [], mine: ticket == nil, revision: 0) }
            throw LocksmithError(code == 110 ? .permissionDenied : .protocolError, "\(keys.queue): etcd error \(code)")
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
    }
}
