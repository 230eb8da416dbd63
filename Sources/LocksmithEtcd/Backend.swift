// The one protocol behind which a client's slots live: etcd's v2 API (V2Backend.swift), its v3
// API (V3Backend.swift) or a FleetLock server (FleetLock.swift). The client (EtcdClient.swift)
// holds the rules that do not depend on the API (the compare-and-swap loop, the cache, the queue's
// order); a backend holds the requests, so that no rule asks which API it runs on.
import LocksmithCore

/// A key written along with a change of the semaphore: v3 in the same transaction; v2, which has
/// no transactions over several keys, after the write (best effort) in the order given.
enum SideWrite {
    /// A holder's record, written (`taken`) or removed. (v2 removes it with the records of the
    /// other holders gone, in the cleanup after the write: never unconditionally.)
    case record(holder: String, taken: Bool)
    /// The end of a queue entry whose waiter took its slot: the waiter behind moves up.
    case endEntry(QueueTicket)
}

/// Keys with the index (v2) or revision (v3) they were read at.
typealias ListedKeys = [(key: String, index: Int64)]

/// Where a client's slots are, and the requests that reach them. Belongs to its client's thread.
protocol Backend: AnyObject {
    // MARK: The slots (etcd's: EtcdClient's rules over the requests below; FleetLock's own calls)

    /// Takes a slot for `holder` (a valid id). `.busy`, `.exists` as SemaphoreDocument.lock.
    func lock(_ holder: String, client: EtcdClient) throws
    /// Gives back `holder`'s slot (a valid id). `.notFound` if it holds none.
    func unlock(_ holder: String, client: EtcdClient) throws
    /// Blocks until the semaphore changes or `timeoutMilliseconds` pass (EtcdClient.wait).
    func wait(timeoutMilliseconds: Int, client: EtcdClient) throws -> Bool
    /// Waits for a slot in turn and takes it (EtcdClient.acquire; `holder` is a valid id).
    func acquire(_ holder: String, timeoutMilliseconds: Int?, progress: ((Int) -> Bool)?, client: EtcdClient) throws -> QueueOutcome

    // MARK: Keys

    /// Reads `key`.
    func read(_ key: String) throws -> WireResult
    /// Creates the semaphore with `json` if it is missing.
    func create(_ json: String) throws -> WireResult
    /// The compare-and-swap of the semaphore over `index`, with `side` (v3: in the transaction).
    /// With `listRecords`, also returns the holder records' keys as they stand after a stored
    /// write: v3 reads at most `holders` + `EtcdClient.recordsCleanedPerWrite` of them in the
    /// transaction, v2 lists them after it (nil if that failed, or without `listRecords`).
    /// `unchanged` (v3): more keys the write is conditional on.
    func write(_ json: String, over index: Int64, holders: Int, side: [SideWrite], listRecords: Bool,
               unchanged: [(key: String, revision: Int64)]) throws -> (WireResult, ListedKeys?)
    /// What is left of `side` once the write is stored (v2: those writes; v3: nothing). Best effort.
    func afterWrite(_ side: [SideWrite])
    /// Writes `value` at `key`, whatever is there (holder records; never the semaphore).
    func put(_ key: String, _ value: String) throws
    /// Every key under `directory` (no trailing "/") with its value and index; `label` names it in errors.
    func list(_ directory: String, label: String) throws -> [(key: String, value: [UInt8]?, index: Int64)]
    /// Removes holder records, each only if it is still at the index listed. Best effort: whether
    /// none of them is left stale (v2: a record that changed since, or is gone, is no longer the
    /// stale one; v3: one transaction, refused whole when any record changed).
    func removeRecords(_ stale: ListedKeys) -> Bool
    /// The semaphore, the holder records and the whole queue in one request (`GroupReading`),
    /// or nil where the API has no such read: then they are read one by one.
    func readGroup() throws -> GroupReading?
    /// One watch request at `endpoint`: the first event of `key` after `index`; a timeout throws
    /// `.timedOut`; 5xx answers and streams that end without an event are `.connectionFailed`.
    func watch(_ key: String, at endpoint: String, after index: Int64, timeoutMilliseconds: Int) throws -> WatchEvent

    // MARK: Queue entries (the requests of QueueSession and the queue's listings)

    /// Makes an entry with `value` that lives `ttl` seconds unless renewed: the ticket, and the
    /// waiters ahead of it (v3 with the semaphore read in the same step).
    func join(value: String, ttl: Int) throws -> (QueueTicket, QueueListing)
    /// Keeps the entry alive: nil if it is gone, else etcd's index (v2; 0 if the answer had none)
    /// or revision (v3) then.
    func renew(_ ticket: QueueTicket, ttl: Int) throws -> Int64?
    /// Removes the entry. Best effort.
    func leave(_ ticket: QueueTicket)
    /// The waiters ahead of `ticket` (every entry for nil); with `semaphore`, v3 reads the
    /// semaphore in the same step.
    func listQueue(before ticket: QueueTicket?, semaphore: Bool) throws -> QueueListing
    /// How many events etcd keeps for a watch from an old index (nil: as long as not compacted).
    var historyEvents: Int64? { get }
    /// The index a watch on the entry ahead starts after, from the listing's and the entry's.
    func watchStart(listing: Int64, entry: Int64) -> Int64
    /// Whether a listing of the queue reads the semaphore in the same step (so listing again
    /// costs nothing more than telling whether the waiter ahead took its slot).
    var listsSemaphoreWithQueue: Bool { get }
}

extension Backend {
    // etcd's way, the same over v2 and v3: the compare-and-swap of the document, the watch, the
    // fair queue. FleetLockBackend has its own.

    /// (Only v3 reads several keys in one request.)
    func readGroup() throws -> GroupReading? { nil }

    func lock(_ holder: String, client: EtcdClient) throws {
        try client.takeSlot(holder)
    }

    func unlock(_ holder: String, client: EtcdClient) throws {
        try client.modify({ try $0.unlock(holder) }, done: { !$0.holders.contains(holder) },
                          side: { _ in [.record(holder: holder, taken: false)] })
    }

    func wait(timeoutMilliseconds: Int, client: EtcdClient) throws -> Bool {
        try client.watchSemaphore(timeoutMilliseconds: timeoutMilliseconds)
    }

    func acquire(_ holder: String, timeoutMilliseconds: Int?, progress: ((Int) -> Bool)?, client: EtcdClient) throws -> QueueOutcome {
        try client.waitInQueue(holder, timeoutMilliseconds: timeoutMilliseconds, progress: progress)
    }
}

/// The keys of one group: the semaphore, and beside it the queue and the holder records.
struct GroupKeys {
    /// The semaphore document's key.
    let semaphore: String
    /// The prefix of the queue's entries.
    var queue: String { semaphore + ".queue/" }
    /// The prefix of the holder records.
    var records: String { semaphore + ".holders/" }

    /// The key of `id`'s record.
    func record(_ id: String) -> String { records + URLEscape.query(id) }
}
