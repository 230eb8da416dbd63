// A group's whole state at once: the semaphore, the holder records and the queue, as `status
// --json` shows them. v3 reads the three in one transaction (one request, one revision); v2, and
// a client whose `auto` has not decided yet, read them one by one.
import LocksmithCore

/// A group's semaphore, holder records (sorted by id) and queue (every entry, first in line
/// first, those waiters skip marked), as one read found them.
public struct GroupStatus: Sendable {
    public var document: SemaphoreDocument
    public var holderRecords: [HolderRecord]
    public var queue: [QueueEntry]
}

/// What a backend's one read of a group found (Backend.readGroup).
struct GroupReading {
    /// nil: the semaphore key is missing.
    var semaphore: StoredValue?
    /// Every key under the holder records' prefix, as Backend.list gives them.
    var records: [(key: String, value: [UInt8]?, index: Int64)]
    /// The whole queue, as Backend.listQueue(before: nil, semaphore: false) gives it.
    var queue: QueueListing
}

extension EtcdClient {
    /// The semaphore (created if it is missing, as `get`), the holder records (as
    /// `holderRecords`) and every entry of the queue (as `queue`). A refusal of the one read
    /// (etcd's permissions may let a user read the semaphore but not the keys beside it) reads
    /// them one by one instead, so that the error names the key refused.
    public func getAll() throws -> GroupStatus {
        // `auto` decides with a read of the semaphore: let that read be `get`'s, not a probe.
        let early = api == nil && fleetLock == nil ? try get() : nil
        do {
            if let reading = try resolvedBackend().readGroup() {
                let document: SemaphoreDocument
                if let value = reading.semaphore {
                    noteSemaphore(value)
                    document = try lastSeenDocument() ?? readSemaphore()
                } else {
                    document = try readSemaphore()  // missing: created, as `get` does
                }
                return GroupStatus(document: document, holderRecords: holderRecords(listed: reading.records),
                                   queue: EtcdClient.queueEntries(reading.queue))
            }
        } catch let error as LocksmithError where error.kind == .permissionDenied {}
        return GroupStatus(document: try early ?? get(), holderRecords: try holderRecords(), queue: try queue())
    }

    /// The holder records among `listed` (keys under the records' prefix with their values),
    /// sorted by id; those whose id or value is not valid are left out.
    func holderRecords(listed: [(key: String, value: [UInt8]?, index: Int64)]) -> [HolderRecord] {
        var records: [HolderRecord] = []
        for entry in listed {
            let k = entry.key.hasPrefix("/") ? String(entry.key.dropFirst()) : entry.key
            guard k.hasPrefix(holderRecordsPrefix), let value = entry.value,
                  let id = GroupKey.queryUnescape(String(k.dropFirst(holderRecordsPrefix.count))),
                  var record = HolderRecord(id: id, value: value) else { continue }
            record.revision = entry.index
            records.append(record)
        }
        return records.sorted { $0.id.utf8.lexicographicallyPrecedes($1.id.utf8) }
    }
}
