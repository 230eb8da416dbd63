// locksmith_holder_records: holder records and queue entries, as the client lists them.
// Ordered as include/locksmith.h.
import CLocksmith
import Glibc
import LocksmithCore
import LocksmithEtcd
import LocksmithSystem

/// One record of a locksmith_holder_records list: a holder record, or a queue entry.
struct ListedRecord {
    var record: HolderRecord
    var key: String
    /// LOCKSMITH_QUEUE_NEVER_EXPIRES, LOCKSMITH_QUEUE_UNREADABLE, or 0.
    var ignored: Int32 = 0

    init(_ record: HolderRecord, key: String) {
        self.record = record
        self.key = key
    }

    init(_ entry: QueueEntry) {
        record = HolderRecord(id: entry.id, since: entry.since, host: entry.host, revision: entry.revision)
        key = entry.key
        switch entry.ignored {
        case nil: ignored = 0
        case .neverExpires?: ignored = LOCKSMITH_QUEUE_NEVER_EXPIRES
        case .unreadable?: ignored = LOCKSMITH_QUEUE_UNREADABLE
        }
    }
}

typealias HolderRecordsHandle = Handle<[ListedRecord]>

@c @implementation
public func locksmith_holder_records_count(_ r: OpaquePointer!) -> Int32 {
    HolderRecordsHandle.count(r, "r") { $0 }
}

@c @implementation
public func locksmith_holder_records_id(_ r: OpaquePointer!, _ i: Int32) -> UnsafePointer<CChar>! {
    HolderRecordsHandle.lendItem(r, "r", i, "id", { $0 }) { $0.record.id }
}

@c @implementation
public func locksmith_holder_records_since(_ r: OpaquePointer!, _ i: Int32) -> Int64 {
    HolderRecordsHandle.item(r, "r", i) { $0 }?.1.record.since ?? -1
}

@c @implementation
public func locksmith_holder_records_host(_ r: OpaquePointer!, _ i: Int32) -> UnsafePointer<CChar>! {
    HolderRecordsHandle.lendItem(r, "r", i, "host", { $0 }) { $0.record.host }
}

@c @implementation
public func locksmith_holder_records_key(_ r: OpaquePointer!, _ i: Int32) -> UnsafePointer<CChar>! {
    HolderRecordsHandle.lendItem(r, "r", i, "key", { $0 }) { $0.key }
}

@c @implementation
public func locksmith_holder_records_revision(_ r: OpaquePointer!, _ i: Int32) -> Int64 {
    HolderRecordsHandle.item(r, "r", i) { $0 }?.1.record.revision ?? -1
}

@c @implementation
public func locksmith_holder_records_ignored(_ r: OpaquePointer!, _ i: Int32) -> Int32 {
    call {
        let records = try HolderRecordsHandle.from(r, "r").value
        return records[try index(i, records.count)].ignored
    }
}

@c @implementation
public func locksmith_holder_records_free(_ r: OpaquePointer!) -> OpaquePointer! {
    HolderRecordsHandle.release(r)
}
