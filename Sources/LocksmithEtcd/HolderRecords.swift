// When each holder took its slot, and from which host: one small key per holder beside the
// semaphore document (`<semaphore key>.holders/<escaped id>`, value {"since":<Unix seconds>,
// "host":"<name>"}), written after a lock and removed after an unlock by this library's clients.
// Beside the document rather than in it, so that the document stays byte for byte what the
// original writes (docs/decisions.md, issue 14). The original neither writes nor removes these
// keys: a holder that took its slot with the original has no record ("unknown"), and a record
// can outlive a slot given back by the original; readers match records against the holders.
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

    public init(id: String, since: Int64, host: String) {
        self.id = id
        self.since = since
        self.host = host
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

    func holderRecordKey(_ id: String) -> String { holderRecordsPrefix + URLEscape.query(id) }

    /// The records of the group, sorted by id; records whose id or value is not valid are left
    /// out. Creates nothing.
    public func holderRecords() throws -> [HolderRecord] {
        let entries: [(key: String, value: [UInt8]?)]
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
                  let record = HolderRecord(id: id, value: value) else { continue }
            records.append(record)
        }
        return records.sorted { $0.id.utf8.lexicographicallyPrecedes($1.id.utf8) }
    }

    /// After a lock: records when and from where. Best effort: the slot is taken whether or
    /// not the record is written.
    func recordHolder(_ id: String) {
        _ = try? put(holderRecordKey(id), HolderRecord.now(id).json)
    }

    /// After an unlock: removes the record. Best effort.
    func forgetHolder(_ id: String) {
        _ = try? remove(holderRecordKey(id))
    }
}
