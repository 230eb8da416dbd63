// What a client remembers of its semaphore, in one place: the newest value it saw (its own read
// or write, a lost compare-and-swap's answer, a watch event), when, the index to watch from, and
// the document last decoded. Operations start from the remembered value instead of reading
// first; the compare-and-swap catches a stale one, and a refusal is only reported from a fresh one.
import LocksmithCore
import LocksmithSystem

struct DocumentCache {
    /// A value seen this recently counts as fresh: a refusal computed from it is reported as is
    /// (it is as fresh as a read would be; a watch event that just arrived is the common case).
    static let freshMilliseconds = 1_000
    /// How old a remembered document may be for a write over it without reading it first.
    static let optimisticMilliseconds = 100

    /// The newest value seen.
    private(set) var known: StoredValue?
    /// When `known` was last confirmed (monotonic milliseconds).
    private var knownAt = 0
    /// The index to watch from: changes after it are news.
    private(set) var seenIndex: Int64?
    /// The last value decoded (or written) and its document: the same bytes at the same index
    /// are the same document.
    private var lastDecoded: (value: StoredValue, document: SemaphoreDocument)?

    /// How long ago the value was last confirmed, in milliseconds.
    var age: Int { Clock.monotonicMilliseconds() - knownAt }

    mutating func remember(_ value: StoredValue) {
        known = value
        knownAt = Clock.monotonicMilliseconds()
        seenIndex = max(value.index, value.observed)
    }

    /// Remembers a value this client wrote, with the document it wrote (no need to parse it again).
    mutating func remember(written value: StoredValue, _ document: SemaphoreDocument) {
        remember(value)
        lastDecoded = (value, document)
    }

    /// Forgets the value (a write with no answer may have been applied: the next operation reads
    /// before it reports a refusal). The index to watch from stays.
    mutating func forgetValue() {
        known = nil
    }

    /// Forgets the value and the index: the next operation, and the next wait, read first.
    mutating func forget() {
        known = nil
        seenIndex = nil
    }

    /// Forgets what was seen unless it was confirmed within `freshMilliseconds`.
    mutating func forgetStale() {
        if known != nil && age >= DocumentCache.freshMilliseconds { forget() }
    }

    /// What a watch reported: the new value if it carried one; otherwise we know only that
    /// something changed (or that etcd can no longer say what), and read again next time.
    mutating func note(_ event: WatchEvent) {
        switch event {
        case .changed(let value?):
            remember(value)
        case .changed(nil), .lost:
            forget()
        }
    }

    /// The document in `value`; `.badMessage` (with `repair`'s advice) if it is not one.
    mutating func decode(_ value: StoredValue, key: String, repair: () -> String) throws -> SemaphoreDocument {
        // The value decoded last, or written last, again (the common case: a write over the
        // document this client wrote itself): no need to parse and check it again.
        if let last = lastDecoded, last.value == value { return last.document }
        do {
            let document = try value.bytes.withUnsafeBytes { try SemaphoreDocument(parsingUTF8: $0) }
            lastDecoded = (value, document)
            return document
        } catch let error as LocksmithError {
            throw LocksmithError(error.kind, "\(key): \(error.message): \(repair())")
        }
    }
}
