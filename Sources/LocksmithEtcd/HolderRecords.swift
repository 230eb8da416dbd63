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
    public var holderRecordsPrefix: String { key + ".holders/" }

    /// The etcd key of `id`'s record.
    public func holderRecordKey(_ id: String) -> String { holderRecordsPrefix + URLEscape.query(id) }

    /// The records of the group, sorted by id; records whose id or value is not valid are left
    /// out. Creates nothing.
    public func holderRecords() throws -> [HolderRecord] {
        let entries: [(key: String, value: [UInt8]?, index: Int64)]
        switch try resolvedAPI() {
        case .v2:
            let request = V2.list(String(holderRecordsPrefix.dropLast()))  // the directory
            entries = try V2.parseList(try send(request.method, request.path), key: holderRecordsPrefix)
        case .v3:
            entries = try V3.parseRangeAll(try send("POST", V3.rangePath, body: V3.rangePrefix(holderRecordsPrefix)), key: holderRecordsPrefix)
        }
        var records: [HolderRecord] = []
        for entry in entries {
            let k = entry.key.hasPrefix("/") ? String(entry.key.dropFirst()) : entry.key
            guard k.hasPrefix(holderRecordsPrefix), let value = entry.value,
                  let id = GroupKey.queryUnescape(String(k.dropFirst(holderRecordsPrefix.count))),
                  var record = HolderRecord(id: id, value: value) else { continue }
            record.revision = entry.index
            records.append(record)
        }
        return records.sorted { $0.id.utf8.lexicographicallyPrecedes($1.id.utf8) }
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
        let api = try resolvedAPI()
        let change = { (document: inout SemaphoreDocument) throws in
            try document.unlock(holder)
            guard let now = try self.index(of: recordKey), now == revision else {
                throw LocksmithError(.changed, "\(holder) gave its slot back and took one again since its record was read (at \(revision))")
            }
        }
        // (v2: the record goes with those of the other holders gone, after the write.)
        try modify(change, done: { !$0.holders.contains(holder) }, also: { _ in api == .v3 ? [V3.deleteOp(recordKey)] : [] },
                   unchanged: api == .v3 ? [(recordKey, revision)] : [])
    }

    /// The modification index (v2) or revision (v3) of `key`, nil if it is missing.
    private func index(of key: String) throws -> Int64? {
        let result: WireResult
        switch try resolvedAPI() {
        case .v2:
            let request = V2.get(key)
            result = try V2.parse(try send(request.method, request.path), key: key)
        case .v3:
            result = try V3.parseRange(try send("POST", V3.rangePath, body: V3.range(key)), key: key)
        }
        if case .value(let value) = result { return value.index }
        return nil
    }

    /// After a lock: records when and from where. Best effort: the slot is taken whether or
    /// not the record is written.
    func recordHolder(_ id: String) {
        _ = try? put(holderRecordKey(id), HolderRecord.now(id).json)
    }

    /// Most stale records removed after one write: each write costs a bounded amount, and what is
    /// left goes at the next writes.
    static let recordsCleanedPerWrite = 16

    /// After a write of `document` that etcd stored at `index`: removes the records of ids that
    /// are no holder in it, such as one whose slot the original (which writes only the document)
    /// gave back. `listed`: the record keys and revisions the write's transaction read (v3); nil
    /// on v2, which lists them now (one request). A record is judged only if it was written at or
    /// before `index`: a later one may be that of a new holder missing from `document`. Each
    /// removal is conditional on the record still being the one listed (v3: its mod_revision in
    /// one transaction; v2: `prevIndex`), so a holder that locked since keeps its new record.
    /// Best effort, never an error: what is left is tried again at the next write.
    func cleanHolderRecords(after document: SemaphoreDocument, at index: Int64, listed: [(key: String, index: Int64)]?) {
        guard let api else { return }
        var listed = listed
        if api == .v2, listed == nil {
            let request = V2.list(String(holderRecordsPrefix.dropLast()))  // the directory
            listed = (try? V2.parseList(try send(request.method, request.path), key: holderRecordsPrefix))?
                .compactMap { $0.value == nil ? nil : ($0.key, $0.index) }
        }
        let holders = Set(document.holders)
        let stale = (listed ?? []).filter { entry in
            guard entry.index <= index, entry.key.hasPrefix(holderRecordsPrefix) else { return false }
            // A key that names no valid id is no holder's record either.
            guard let id = GroupKey.queryUnescape(String(entry.key.dropFirst(holderRecordsPrefix.count))) else { return true }
            return !holders.contains(id)
        }.prefix(EtcdClient.recordsCleanedPerWrite)
        guard !stale.isEmpty else { return }
        switch api {
        case .v2:
            for entry in stale {
                let request = V2.compareAndDelete(entry.key, index: entry.index)
                _ = try? send(request.method, request.path)
            }
        case .v3:
            _ = try? send("POST", V3.txnPath, body: V3.txn(stale.map { V3.deleteOp($0.key) }, unchanged: stale.map { ($0.key, $0.index) }))
        }
    }
}
