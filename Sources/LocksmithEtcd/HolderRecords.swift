// When each holder took its slot, and from which host: one small key per holder beside the
// semaphore document (`<semaphore key>.holders/<escaped id>`, value {"since":<Unix seconds>,
// "host":"<name>"}), written after a lock and removed after an unlock by this library's clients.
// Beside the document rather than in it, so that the document stays byte for byte what the
// original writes (docs/decisions.md, issue 14). The original neither writes nor removes these
// keys: a holder that took its slot with the original has no record ("unknown"), and a record
// outlives a slot given back by the original until this library next writes the document, which
// removes the records of ids it leaves no holder (issue 25); readers match records against the
// holders.
#if canImport(Glibc)
import Glibc
#endif
import LocksmithCore

public struct HolderRecord: Sendable, Equatable {
    public var id: String
    /// Unix seconds.
    public var since: Int64
    /// The host the slot was taken from (where the lock call ran); "" if not recorded.
    public var host: String
    /// The etcd revision (v3) or modification index (v2) the record was read at; 0 for one not
    /// read from etcd. Each lock writes the record anew, so it tells one holding from the next.
    public var revision: Int64 = 0

    public init(id: String, since: Int64, host: String, revision: Int64 = 0) {
        self.id = id
        self.since = since
        self.host = host
        self.revision = revision
    }

    /// The stored value.
    var json: String { "{\"since\":\(since),\"host\":" + JSONText.quoted(host) + "}" }

    /// A stored value, checked: a small JSON object with an integer `since` in the years 1 to
    /// 9999 and a short `host` without control characters, and (for a queue entry, `id` nil) a
    /// valid holder `id`; nil for anything else (the keys are anyone's to write who may write
    /// the semaphore: a bad one is ignored, not trusted).
    init?(id: String?, value: [UInt8]) {
        guard value.count <= 1024, let tree = JSONTree(value), let since = tree.node["since"]?.int64,
              RebootWindow.validTimes.contains(since),
              let id = id ?? tree.node["id"]?.string, (try? SemaphoreDocument.validateHolder(id)) != nil else { return nil }
        let host = tree.node["host"]?.string ?? ""
        guard host.utf8.count <= 255, !SemaphoreDocument.hasControlCharacter(host) else { return nil }
        self.init(id: id, since: since, host: host)
    }

    /// A record for `id` taken now, on this host.
    static func now(_ id: String) -> HolderRecord {
        var now = timespec()
        clock_gettime(CLOCK_REALTIME, &now)
        return HolderRecord(id: id, since: Int64(now.tv_sec), host: hostName)
    }

    /// This machine's host name, bounded and without control characters ("" if it has none).
    static var hostName: String {
        var buffer = [CChar](repeating: 0, count: 256)
        guard gethostname(&buffer, buffer.count - 1) == 0 else { return "" }
        let name = String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
        return SemaphoreDocument.hasControlCharacter(name) ? "" : name
    }
}

extension EtcdClient {
    /// The prefix of the group's holder records.
    public var holderRecordsPrefix: String { keys.records }

    /// The etcd key of `id`'s record.
    public func holderRecordKey(_ id: String) -> String { keys.record(id) }

    /// The records of the group, sorted by id; records whose id or value is not valid are left
    /// out. Creates nothing.
    public func holderRecords() throws -> [HolderRecord] {
        holderRecords(listed: try resolvedBackend().list(String(holderRecordsPrefix.dropLast()), label: holderRecordsPrefix))  // the directory
    }

    /// Gives back `holder`'s slot only if its record is still the one read at `revision`
    /// (`HolderRecord.revision`): a holder that gave its slot back and took one again since keeps
    /// the new one. `.changed` if the record was rewritten or removed, `.notFound` if `holder`
    /// holds no slot. v3: the record's revision is a condition of the transaction that writes the
    /// document. v2, which has no transactions: the record is read after the document and the
    /// document written over the index it was read at, so a slot given back and taken again after
    /// that read fails the compare-and-swap, and the next attempt finds the new record.
    public func unlock(_ holder: String, recordRevision revision: Int64) throws {
        try SemaphoreDocument.validateHolder(holder)
        guard revision > 0 else { throw LocksmithError(.invalidArgument, "a record's revision is more than 0, not \(revision)") }
        let recordKey = holderRecordKey(holder)
        _ = try resolvedBackend()  // (`auto` decides before the first change is computed)
        let change = { (document: inout SemaphoreDocument) throws in
            try document.unlock(holder)
            guard let now = try self.index(of: recordKey), now == revision else {
                throw LocksmithError(.changed, "\(holder) gave its slot back and took one again since its record was read (at \(revision))")
            }
        }
        // (v2: the record goes with those of the other holders gone, after the write; the
        // revision is no condition of the write, which has none but the document's index.)
        try modify(change, done: { !$0.holders.contains(holder) }, side: { _ in [.record(holder: holder, taken: false)] },
                   unchanged: [(recordKey, revision)])
    }

    /// The modification index (v2) or revision (v3) of `key`, nil if it is missing.
    private func index(of key: String) throws -> Int64? {
        if case .value(let value) = try resolvedBackend().read(key) { return value.index }
        return nil
    }

    /// Most stale records removed after one write: each write costs a bounded amount, and what is
    /// left goes at the next writes.
    static let recordsCleanedPerWrite = 16

    /// After a write of `document` that etcd stored at `index`: removes the records of ids that
    /// are no holder in it, such as one whose slot the original (which writes only the document)
    /// gave back. `listed`: the record keys and revisions as the backend's write found them (v3 in
    /// its transaction, v2 with a listing after it). A record is judged only if it was written at
    /// or before `index`: a later one may be that of a new holder missing from `document`. Each
    /// removal is conditional on the record still being the one listed (v3: its mod_revision in
    /// one transaction; v2: `prevIndex`), so a holder that locked since keeps its new record.
    /// Best effort, never an error: what is left is tried again at the next write. Whether no
    /// stale record is left: false without a listing, with more stale records than one clean-up
    /// removes, with a listing that may have been cut short, or with a removal unanswered.
    @discardableResult
    func cleanHolderRecords(after document: SemaphoreDocument, at index: Int64, listed: ListedKeys?) -> Bool {
        guard let listed else { return false }
        let holders = Set(document.holders)
        let stale = listed.filter { entry in
            guard entry.index <= index, entry.key.hasPrefix(holderRecordsPrefix) else { return false }
            // A key that names no valid id is no holder's record either.
            guard let id = GroupKey.queryUnescape(String(entry.key.dropFirst(holderRecordsPrefix.count))) else { return true }
            return !holders.contains(id)
        }
        // (v3 reads at most holders + recordsCleanedPerWrite keys: a full listing may have more.)
        let complete = stale.count <= EtcdClient.recordsCleanedPerWrite && listed.count < holders.count + EtcdClient.recordsCleanedPerWrite
        guard !stale.isEmpty else { return complete }
        guard let backend = try? resolvedBackend() else { return false }
        return backend.removeRecords(Array(stale.prefix(EtcdClient.recordsCleanedPerWrite))) && complete
    }
}
