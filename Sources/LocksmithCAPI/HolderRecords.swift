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

/// Record `i`, or nil (NULL handle, or out of range).
private func holderRecord(_ r: OpaquePointer?, _ i: Int32) -> (HolderRecordsHandle, HolderRecord)? {
    listedRecord(r, i).map { ($0.0, $0.1.record) }
}

private func listedRecord(_ r: OpaquePointer?, _ i: Int32) -> (HolderRecordsHandle, ListedRecord)? {
    guard let handle = HolderRecordsHandle.accessed(r, "r"), inRange(i, handle.value.count) else { return nil }
    return (handle, handle.value[Int(i)])
}

@c @implementation
public func locksmith_holder_records_count(_ r: OpaquePointer!) -> Int32 {
    call { Int32(clamping: try HolderRecordsHandle.from(r, "r").value.count) }
}

@c @implementation
public func locksmith_holder_records_id(_ r: OpaquePointer!, _ i: Int32) -> UnsafePointer<CChar>! {
    guard let (handle, record) = holderRecord(r, i) else { return nil }
    return handle.lend("id \(i)") { record.id }
}

@c @implementation
public func locksmith_holder_records_since(_ r: OpaquePointer!, _ i: Int32) -> Int64 {
    holderRecord(r, i)?.1.since ?? -1
}

@c @implementation
public func locksmith_holder_records_host(_ r: OpaquePointer!, _ i: Int32) -> UnsafePointer<CChar>! {
    guard let (handle, record) = holderRecord(r, i) else { return nil }
    return handle.lend("host \(i)") { record.host }
}

@c @implementation
public func locksmith_holder_records_key(_ r: OpaquePointer!, _ i: Int32) -> UnsafePointer<CChar>! {
    guard let (handle, listed) = listedRecord(r, i) else { return nil }
    return handle.lend("key \(i)") { listed.key }
}

@c @implementation
public func locksmith_holder_records_revision(_ r: OpaquePointer!, _ i: Int32) -> Int64 {
    holderRecord(r, i)?.1.revision ?? -1
}

@c @implementation
public func locksmith_holder_records_ignored(_ r: OpaquePointer!, _ i: Int32) -> Int32 {
    call {
        let handle = try HolderRecordsHandle.from(r, "r")
        guard i >= 0, Int(i) < handle.value.count else { throw invalid("i \(i) is out of range (0..<\(handle.value.count))") }
        return handle.value[Int(i)].ignored
    }
}

@c @implementation
public func locksmith_holder_records_free(_ r: OpaquePointer!) -> OpaquePointer! {
    HolderRecordsHandle.release(r)
}
