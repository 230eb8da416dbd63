// The lock client: reads and changes a group's semaphore in etcd with compare-and-swap, over
// v2 or v3, failing over between endpoints, and waits for changes with etcd's watch.
import Glibc
import LocksmithCore
import LocksmithSystem

/// A client of one group's semaphore. Belongs to one thread at a time.
public final class EtcdClient {
    /// Most compare-and-swap attempts lost to other writers per operation before giving up
    /// with `.conflict` (with the pauses between them, several seconds of solid contention).
    public static let maxAttempts = 64
    /// The longest v3 watch message read: an event carries one semaphore document (at most
    /// 128 KiB, in base64) and a few fields.
    static let maxWatchMessageBytes = 1 << 20

    public let options: ClientOptions
    /// The key of the group's semaphore.
    public let key: String
    /// The FleetLock server slots are taken through instead of etcd (the `fleetlock-url` option):
    /// then only lock, unlock, acquire and wait work, and every other operation fails with
    /// EOPNOTSUPP saying so.
    public let fleetLock: FleetLockServer?
    /// The API in use, once known (`auto` decides on the first request).
    public private(set) var api: EtcdAPI?
    /// The endpoint that answered last.
    public internal(set) var endpointInUse: String?
    /// Compare-and-swap attempts lost to other writers and retried, since the client was made.
    public private(set) var conflictRetries = 0
    /// HTTP requests sent, since the client was made.
    public var requestCount: Int { http.requestCount }
    /// Receives one line per HTTP request (method, URL, status, time); never a password.
    public var trace: ((String) -> Void)? {
        get { http.trace }
        set { http.trace = newValue }
    }

    let http: HTTPConnection
    private var preferred = 0
    /// Whether the last send() had an endpoint fail (perhaps after receiving the request) before
    /// another one answered.
    private var failedBeforeAnswer = false
    private var token: String?
    /// The newest value this client has seen (its own read or write, a lost compare-and-swap's
    /// answer, a watch event). Operations start from it instead of reading first; the
    /// compare-and-swap catches a stale one, and a refusal is only reported from a fresh one.
    private var known: StoredValue?
    /// When `known` was last confirmed (monotonic milliseconds).
    private var knownAt = 0
    /// A value seen this recently counts as fresh: a refusal computed from it is reported as is
    /// (it is as fresh as a read would be; a watch event that just arrived is the common case).
    static let freshMilliseconds = 1_000
    /// How many events etcd's v2 API keeps (a watch from an older index is refused as cleared).
    static let v2HistoryEvents: Int64 = 1_000

    /// How old a remembered document may be for a write over it without reading it first.
    static let optimisticMilliseconds = 100
    /// The last value decoded (or written) and its document: the same bytes at the same index
    /// are the same document.
    private var lastDecoded: (value: StoredValue, document: SemaphoreDocument)?
    /// The index to watch from: changes after it are news.
    private var seenIndex: Int64?
    private var random = SystemRandomNumberGenerator()

    public init(options: ClientOptions, cancellation: Cancellation = Cancellation()) throws {
        self.options = options
        key = try GroupKey.key(group: options.group)
        fleetLock = try options.fleetLockURL.map { try FleetLockServer(url: $0, group: options.group) }
        var settings = ConnectionSettings(tls: options.tls, proxy: options.proxy, useEnvironment: options.usesEnvironment)
        // etcd's credentials are etcd's: never sent to a FleetLock server.
        if fleetLock == nil, options.api == .v2 || options.api == .auto, let user = options.username {
            settings.basicAuth = (user, options.password ?? "")
        }
        http = try HTTPConnection(settings: settings, cancellation: cancellation)
        switch options.api {
        case .v2: api = .v2
        case .v3: api = .v3
        case .auto: api = nil
        }
    }

    // MARK: Operations

    /// The current document, creating the key with the initial document if it is missing.
    /// A stored value that is not a semaphore document is `.badMessage` naming the key.
    public func get() throws -> SemaphoreDocument {
        try decode(readOrCreate())
    }

    /// The current document without ever writing: nil when etcd has no value at the key.
    public func read() throws -> SemaphoreDocument? {
        switch try fetch() {
        case .value(let value), .conflict(let value?):
            remember(value)
            return try decode(value)
        case .missing, .conflict(nil), .stored:
            return nil
        }
    }

    /// No request of this client runs past this monotonic time in milliseconds (nil: none), and
    /// none starts after it: retries and failover end there too.
    public var deadline: Int? {
        get { http.deadline }
        set { http.deadline = newValue }
    }

    /// Takes a slot for `holder`. `.busy`, `.exists` as SemaphoreDocument.lock; never retried.
    /// A bad id or max is refused before any request.
    public func lock(_ holder: String) throws {
        if let fleetLock { return try fleetLockCall(fleetLock, "pre-reboot", holder: holder) }
        try takeSlot(holder)
    }

    /// The compare-and-swap of a lock, with the holder's record: v3 in the same transaction
    /// (with the other operations in `also`); v2 a request after it, or none if `record` is
    /// false (the caller writes it). `reserve`: free slots that must stay free for the waiters
    /// ahead in the queue (`.busy` if no more than that are free).
    func takeSlot(_ holder: String, also: [String] = [], record: Bool = true, reserve: Int = 0) throws {
        try SemaphoreDocument.validateHolder(holder)
        let take = { (document: inout SemaphoreDocument) throws in
            if document.available > 0 && document.available <= reserve {
                throw LocksmithError(.busy, "the free slots are for the \(reserve) waiters ahead in the queue")
            }
            try document.lock(holder)
        }
        if try resolvedAPI() == .v3 {
            try modify(take, done: { $0.holders.contains(holder) },
                       also: { _ in [V3.putOp(self.holderRecordKey(holder), HolderRecord.now(holder).json)] + also })
            return
        }
        try modify(take, done: { $0.holders.contains(holder) })
        if record { recordHolder(holder) }
    }

    /// A random number of milliseconds up to `limit`.
    func jitter(upTo limit: Int) -> Int {
        Int.random(in: 0...max(limit, 0), using: &random)
    }

    /// Gives back `holder`'s slot. `.notFound` if it holds none. Its record goes with it (v3 in
    /// the same transaction; v2 with the records of holders that are gone, after the write).
    public func unlock(_ holder: String) throws {
        if let fleetLock { return try fleetLockCall(fleetLock, "steady-state", holder: holder) }
        try SemaphoreDocument.validateHolder(holder)
        let api = try resolvedAPI()
        try modify({ try $0.unlock(holder) }, done: { !$0.holders.contains(holder) },
                   also: { _ in api == .v3 ? [V3.deleteOp(self.holderRecordKey(holder))] : [] })
    }

    // MARK: Many changes in one write

    /// Takes (`take` true) and gives back slots for several holders in one compare-and-swap: each
    /// change is applied in order to the document as the ones before it left it, and its result is
    /// what it alone would have given (nil for done; `.busy`, `.exists`, `.notFound`, `.invalid`).
    /// The document is written once if any change was made (v3: with the holder records in the
    /// same transaction; v2: the records of the holders taken after it, best effort, and those of
    /// the holders gone with the others that are), and not at all if none was.
    /// A lost compare-and-swap is retried with the fresh document, every result computed again.
    /// Throws for the whole batch (etcd unreachable, a stored value that is not a semaphore).
    /// A refusal always rests on a document read in this call (a server answers for now, not for
    /// what it saw a moment ago); ids that are not valid are refused before anything is sent.
    public func apply(_ changes: [(holder: String, take: Bool)]) throws -> [LocksmithError?] {
        let invalid = changes.map { change -> LocksmithError? in
            do {
                try SemaphoreDocument.validateHolder(change.holder)
                return nil
            } catch {
                return error as? LocksmithError ?? LocksmithError(.invalidArgument, "\(error)")
            }
        }
        if invalid.allSatisfy({ $0 != nil }) { return invalid }
        var results: [LocksmithError?] = []
        var written: [LocksmithError?] = []  // the results of the last write tried
        let api = try resolvedAPI()
        func run(_ document: inout SemaphoreDocument) throws -> [LocksmithError?] {
            results = zip(changes, invalid).map { change, refused in
                if let refused { return refused }
                do {
                    if change.take { try document.lock(change.holder) } else { try document.unlock(change.holder) }
                    return nil
                } catch let error as LocksmithError {
                    return error
                } catch {
                    return LocksmithError(.badMessage, "\(error)")
                }
            }
            if results.allSatisfy({ $0 != nil }) {
                // Nothing changes: refused on what was seen; modify reads again if that was old.
                throw LocksmithError(.busy, "no change to write")
            }
            written = results
            return results
        }
        func records(_ done: [LocksmithError?]) -> [String] {
            guard api == .v3 else { return [] }
            // One operation per holder (etcd refuses a transaction that names a key twice): the
            // last change made for it says whether its record stays.
            var last: [String: Bool] = [:]
            var order: [String] = []
            for (change, result) in zip(changes, done) where result == nil {
                if last.updateValue(change.take, forKey: change.holder) == nil { order.append(change.holder) }
            }
            return order.map { holder in
                last[holder] == true ? V3.putOp(holderRecordKey(holder), HolderRecord.now(holder).json) : V3.deleteOp(holderRecordKey(holder))
            }
        }
        do {
            results = try modify(run, done: { document in
                !written.isEmpty && zip(changes, written).allSatisfy { change, result in
                    result != nil || document.holders.contains(change.holder) == change.take
                }
            }, also: records, trustMilliseconds: 0)
        } catch let error as LocksmithError where error.kind == .busy && results.count == changes.count && results.allSatisfy({ $0 != nil }) {
            return results
        }
        if api == .v2 {
            // The records of the holders taken after the write, best effort, once per holder (its
            // last change; a holder whose last change gave its slot back lost its record with
            // those of the other holders gone, in the write).
            var done = Set<String>()
            for (change, result) in zip(changes, results).reversed() where result == nil && done.insert(change.holder).inserted {
                if change.take { recordHolder(change.holder) }
            }
        }
        return results
    }

    /// Sets the group's maximum; returns the old one.
    @discardableResult
    public func setMax(_ max: Int) throws -> Int {
        try SemaphoreDocument.validateMax(max)
        return try modify({ try $0.setMax(max) }, done: { $0.max == max })
    }

    /// The newest document this client has seen, without asking etcd (nil if none, or if it
    /// was not a semaphore document).
    public var lastSeen: SemaphoreDocument? {
        known.flatMap { try? decode($0) }
    }

    /// Every group that has a semaphore under the reboot-lock prefix, with its document or the
    /// reason it is not one. Sorted by group name ("" first). Creates nothing.
    public func allGroups() throws -> [(group: String, key: String, document: Result<SemaphoreDocument, LocksmithError>)] {
        let entries: [(key: String, value: [UInt8]?, index: Int64)]
        switch try resolvedAPI() {
        case .v2:
            let request = V2.list(GroupKey.prefix)
            entries = try V2.parseList(try send(request.method, request.path), key: GroupKey.prefix)
        case .v3:
            entries = try V3.parseRangeAll(try send("POST", V3.rangePath, body: V3.rangePrefix(GroupKey.prefix + "/")), key: GroupKey.prefix)
        }
        var out: [(group: String, key: String, document: Result<SemaphoreDocument, LocksmithError>)] = []
        for entry in entries {
            guard let group = GroupKey.group(ofKey: entry.key) else { continue }
            let document = Result {
                guard let value = entry.value else { throw LocksmithError(.badMessage, "is a directory, not a semaphore document") }
                return try value.withUnsafeBytes { try SemaphoreDocument(parsingUTF8: $0) }
            }
                .mapError { error in
                    let e = error as? LocksmithError ?? LocksmithError(.badMessage, "\(error)")
                    return LocksmithError(e.kind, "\(entry.key): \(e.message)")
                }
            let key = entry.key.hasPrefix("/") ? String(entry.key.dropFirst()) : entry.key
            out.append((group, key, document))
        }
        return out.sorted { $0.group.utf8.lexicographicallyPrecedes($1.group.utf8) }
    }

    /// Blocks until the semaphore changes after the last read or write of this client, or until
    /// `timeoutMilliseconds` pass. Returns true for a change (or when etcd can no longer tell,
    /// so the caller should read again), false on timeout. While no endpoint can be reached it
    /// keeps trying until the deadline: etcd may be restarting, and the watch resumes from the
    /// index last seen, so no change in between is missed.
    public func wait(timeoutMilliseconds: Int) throws -> Bool {
        if fleetLock != nil { return try fleetLockWait(timeoutMilliseconds: timeoutMilliseconds) }
        if seenIndex == nil { _ = try readOrCreate() }
        guard let index = seenIndex else { return true }
        let deadline = Clock.monotonicMilliseconds() + max(timeoutMilliseconds, 1)
        let api = try resolvedAPI()
        /// The client's own deadline ends a wait with an error, not as "no change yet": a caller
        /// that loops on wait() must not spin once it has passed.
        func checkClientDeadline() throws {
            if let end = http.deadline, Clock.monotonicMilliseconds() >= end {
                throw LocksmithError(.timedOut, "\(key): the client's deadline passed")
            }
        }
        while true {
            for endpoint in rotation() {
                try checkClientDeadline()
                let remaining = deadline - Clock.monotonicMilliseconds()
                if remaining <= 0 { return false }
                do {
                    return try watch(api, endpoint, after: index, timeoutMilliseconds: remaining)
                } catch let error as LocksmithError where error.kind == .timedOut {
                    try checkClientDeadline()
                    return false
                } catch let error as LocksmithError where error.kind == .connectionFailed {
                    continue
                }
            }
            let remaining = deadline - Clock.monotonicMilliseconds()
            if remaining <= 0 { return false }
            try checkCancelled()
            Clock.sleep(milliseconds: min(250, remaining))
        }
    }

    /// One watch request: true when the key changed after `index`; a timeout throws `.timedOut`;
    /// 5xx answers and streams that end without an event count as a failed connection.
    private func watch(_ api: EtcdAPI, _ endpoint: String, after index: Int64, timeoutMilliseconds: Int) throws -> Bool {
        note(try watchEvent(api, endpoint, key: key, after: index, timeoutMilliseconds: timeoutMilliseconds))
        return true
    }

    /// One watch request on any key (the semaphore, or a queue entry): the first event after
    /// `index` (for v2 an error such as "index cleared" is `.lost`); a timeout throws `.timedOut`;
    /// 5xx answers and streams that end without an event count as a failed connection.
    func watchEvent(_ api: EtcdAPI, _ endpoint: String, key: String, after index: Int64, timeoutMilliseconds: Int) throws -> WatchEvent {
        switch api {
        case .v2:
            let request = V2.watch(key, after: index)
            let response = try http.perform(method: request.method, url: endpoint + request.path,
                                            timeoutMilliseconds: timeoutMilliseconds, interruptible: true)
            if response.status >= 500 { throw LocksmithError(.connectionFailed, "HTTP \(response.status)") }
            return V2.watchEvent(response)
        case .v3:
            var line: [UInt8] = []
            var event: WatchEvent?
            var oversized = false
            let response = try http.perform(method: "POST", url: endpoint + V3.watchPath, body: V3.watch(key, after: index),
                                            headers: try authHeaders(endpoint), timeoutMilliseconds: timeoutMilliseconds,
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
                if line.count > EtcdClient.maxWatchMessageBytes {
                    oversized = true
                    return false
                }
                // A message may come without its newline: try it once the text ends an object.
                guard line.last == UInt8(ascii: "}") else { return true }
                event = V3.watchEvent(line)
                return event == nil
            }
            if oversized {
                throw LocksmithError(.protocolError, "\(endpoint): a watch message is larger than \(EtcdClient.maxWatchMessageBytes >> 20) MiB: not an etcd answer")
            }
            if let event { return event }
            if response.status == 401 { token = nil }
            if (400..<500).contains(response.status) { _ = try V3.answer(response, key: key) }
            // The stream ended without an event (etcd shutting down, a proxy closing it): watch
            // again from the same revision, so nothing is missed.
            throw LocksmithError(.connectionFailed, "the watch stream ended (HTTP \(response.status))")
        }
    }

    // MARK: Compare-and-swap

    /// Read-modify-write of the document with compare-and-swap. `done` says whether a document
    /// already shows the change made: if a write of this call may have landed without our
    /// hearing it (an endpoint timed out or failed before another answered, and the retry then
    /// lost the compare-and-swap), a refusal on a document that shows the change is our own
    /// write seen again, and the call succeeded. `unchanged` (v3): more keys the write is
    /// conditional on (a refusal for them reads as a lost compare-and-swap: `change` must find out).
    /// A write that is stored removes the holder records of ids it leaves no holder
    /// (`cleanHolderRecords`).
    @discardableResult
    func modify<T>(_ change: (inout SemaphoreDocument) throws -> T, done: (SemaphoreDocument) -> Bool,
                   also: (T) -> [String] = { _ in [] }, unchanged: [(key: String, revision: Int64)] = [],
                   trustMilliseconds: Int = EtcdClient.freshMilliseconds) throws -> T {
        let age = Clock.monotonicMilliseconds() - knownAt
        if age >= EtcdClient.optimisticMilliseconds {
            // A write over a value that is probably out of date costs a refused write (v3 goes
            // through consensus and the disk even to refuse; a refused v2 compare-and-swap does
            // not even say what is there) before the real one: a read first is cheaper.
            known = nil
        }
        var fresh = known == nil || age < trustMilliseconds
        var current = try known ?? readOrCreate()
        var lost = 0
        var unheard: T?  // the result of a write that may have landed unheard
        while true {
            var document: SemaphoreDocument
            let result: T
            do {
                document = try decode(current)
                result = try change(&document)
            } catch where !fresh {
                // Refused on what we saw last: only a fresh read may say no.
                current = try readOrCreate()
                fresh = true
                continue
            } catch let refusal as LocksmithError {
                if let unheard, let seen = try? decode(current), done(seen) { return unheard }
                throw refusal
            }
            let json = document.json
            let outcome: WireResult
            let listed: [(key: String, index: Int64)]?
            do {
                failedBeforeAnswer = false
                (outcome, listed) = try write(json, over: current.index, holders: document.holders.count, also: also(result), unchanged: unchanged)
                if failedBeforeAnswer { unheard = result }
            } catch {
                // No answer (a lost reply, a timeout, a 5xx): the write may have been applied.
                // Forget what we remember, so that the next operation reads before it reports a
                // refusal; else it could say "not held" of a slot etcd lists, or "already held" of
                // one etcd no longer lists.
                known = nil
                throw error
            }
            switch outcome {
            case .stored(let index):
                let stored = StoredValue(bytes: Array(json.utf8), index: index)
                remember(stored)
                lastDecoded = (stored, document)
                cleanHolderRecords(after: document, at: index, listed: listed)
                return result
            case .conflict(let newer?), .value(let newer):
                current = newer
                remember(newer)
            case .conflict(nil), .missing:
                current = try readOrCreate()
            }
            conflictRetries += 1
            if !fresh {
                fresh = true  // what we saw last was out of date; that is no contention
                continue
            }
            lost += 1
            if lost >= EtcdClient.maxAttempts {
                throw LocksmithError(.conflict, "\(key): gave up after \(lost) attempts lost to other writers")
            }
            // Another writer won: try again with the fresh data after a random pause that grows
            // with each loss, so that a crowd of writers spreads out (at most 0.2 s).
            try checkCancelled()
            Clock.sleep(milliseconds: Int.random(in: 0...min(2 << min(lost, 7), 200), using: &random))
        }
    }

    /// Makes this client's wait in progress and every later call fail with ECANCELED; any thread.
    public var cancellation: Cancellation { http.cancellation }

    func checkCancelled() throws {
        if http.cancellation.isSet { throw LocksmithError(.system(ECANCELED), "cancelled") }
    }

    /// The newest document this client has seen, without asking etcd: nil if none; throws
    /// `.badMessage` if what it saw is not a semaphore document.
    public func lastSeenDocument() throws -> SemaphoreDocument? {
        try known.map { try decode($0) }
    }

    /// Remembers a value of the semaphore read along with other keys (the queue's transactions).
    func noteSemaphore(_ value: StoredValue) {
        remember(value)
    }

    /// Reads the semaphore (creating it if missing) and remembers it.
    func readSemaphore() throws -> SemaphoreDocument {
        try decode(readOrCreate())
    }

    /// Forgets the document last seen unless it was read or written within the last second, so
    /// that the next operation reads it first (a waiter at the head of the queue that has not
    /// looked at the semaphore for a while).
    func forgetStaleDocument() {
        if known != nil && Clock.monotonicMilliseconds() - knownAt >= EtcdClient.freshMilliseconds {
            known = nil
            seenIndex = nil
        }
    }

    private func remember(_ value: StoredValue) {
        known = value
        knownAt = Clock.monotonicMilliseconds()
        seenIndex = max(value.index, value.observed)
    }

    /// What a watch reported: the new value if it carried one; otherwise we know only that
    /// something changed (or that etcd can no longer say what), and read again next time.
    private func note(_ event: WatchEvent) {
        switch event {
        case .changed(let value?):
            remember(value)
        case .changed(nil), .lost:
            known = nil
            seenIndex = nil
        }
    }

    /// Reads the value, creating the key first if it is missing.
    private func readOrCreate() throws -> StoredValue {
        for _ in 0..<EtcdClient.maxAttempts {
            switch try fetch() {
            case .value(let value):
                remember(value)
                return value
            case .missing, .conflict(nil), .stored:
                let initial = SemaphoreDocument().json
                switch try create(initial) {
                case .stored(let index):
                    let value = StoredValue(bytes: Array(initial.utf8), index: index)
                    remember(value)
                    return value
                case .conflict(let value?), .value(let value):
                    remember(value)
                    return value
                case .conflict(nil), .missing:
                    continue  // created by someone else: read it
                }
            case .conflict(let value?):
                remember(value)
                return value
            }
        }
        throw LocksmithError(.conflict, "\(key): the key kept changing between reads")
    }

    private func decode(_ value: StoredValue) throws -> SemaphoreDocument {
        // The value decoded last, or written last, again (the common case: a write over the
        // document this client wrote itself): no need to parse and check it again.
        if let last = lastDecoded, last.value == value { return last.document }
        do {
            let document = try value.bytes.withUnsafeBytes { try SemaphoreDocument(parsingUTF8: $0) }
            lastDecoded = (value, document)
            return document
        } catch let error as LocksmithError {
            throw LocksmithError(error.kind, "\(key): \(error.message): \(Advice.repair(key: key, api: api))")
        }
    }

    private func fetch() throws -> WireResult {
        switch options.api == .auto && api == nil ? nil : try resolvedAPI() {
        case .v2?:
            let request = V2.get(key)
            return try V2.parse(try send(request.method, request.path), key: key)
        case .v3?:
            return try V3.parseRange(try send("POST", V3.rangePath, body: V3.range(key)), key: key)
        case nil:
            // auto: the v2 read doubles as the probe.
            let request = V2.get(key)
            let response = try send(request.method, request.path)
            if V2.isV2Answer(response) {
                api = .v2
                return try V2.parse(response, key: key)
            }
            guard response.status == 404 || response.status == 405 else {
                throw LocksmithError(.protocolError, "\(key): cannot tell whether etcd serves the v2 API (HTTP \(response.status) to \(request.path))")
            }
            api = .v3
            http.settings.basicAuth = nil
            return try fetch()
        }
    }

    private func create(_ json: String) throws -> WireResult {
        switch try resolvedAPI() {
        case .v2:
            let request = V2.create(key, json)
            return try V2.parse(try send(request.method, request.path, body: request.body, headers: [V2.formHeader]), key: key)
        case .v3:
            return try V3.parseTxn(try send("POST", V3.txnPath, body: V3.putIf(key, json, target: "CREATE", revision: 0)), key: key)
        }
    }

    /// The compare-and-swap of the document over `index`, and (v3) the holder record keys after it:
    /// a keys-only range at the end of the transaction, of at most `holders` (the document's) and
    /// `recordsCleanedPerWrite` more, so that it finds that many stale ones if there are any.
    private func write(_ json: String, over index: Int64, holders: Int, also: [String] = [],
                       unchanged: [(key: String, revision: Int64)] = []) throws -> (WireResult, [(key: String, index: Int64)]?) {
        switch try resolvedAPI() {
        case .v2:
            let request = V2.compareAndSwap(key, json, index: index)
            let result = try V2.parse(try send(request.method, request.path, body: request.body, headers: [V2.formHeader]), key: key)
            if case .missing = result { return (.conflict(nil), nil) }
            return (result, nil)
        case .v3:
            let records = V3.rangePrefix(holderRecordsPrefix, keysOnly: true, limit: holders + EtcdClient.recordsCleanedPerWrite)
            let body = V3.putIf(key, json, target: "MOD", revision: index, also: also + [V3.rangeOp(String(decoding: records, as: UTF8.self))],
                                unchanged: unchanged)
            return try V3.parseTxn(try send("POST", V3.txnPath, body: body), key: key, listing: 1 + also.count)
        }
    }

    /// Writes `value` at `key`, whatever is there (holder records; never the semaphore).
    func put(_ key: String, _ value: String) throws {
        switch try resolvedAPI() {
        case .v2:
            let request = V2.set(key, value)
            _ = try V2.check(try send(request.method, request.path, body: request.body, headers: [V2.formHeader]), key: key)
        case .v3:
            _ = try V3.answer(try send("POST", V3.putPath, body: V3.put(key, value)), key: key)
        }
    }

    func resolvedAPI() throws -> EtcdAPI {
        if let api { return api }
        _ = try fetch()
        return api ?? .v3
    }

    // MARK: Endpoints

    /// Endpoints in the order to try them: the one that answered last first.
    func rotation() -> [String] {
        let all = options.endpoints
        return (0..<all.count).map { all[(preferred + $0) % all.count] }
    }

    /// Sends a request to the first endpoint that answers; connection errors, timeouts and
    /// 5xx answers move on to the next. v3 requests carry the auth token (fetched, and fetched
    /// again once when etcd says it expired).
    func send(_ method: String, _ path: String, body: [UInt8]? = nil, headers: [String] = [], evenIfCancelled: Bool = false) throws -> HTTPResponse {
        if let fleetLock { throw fleetLockUnsupported(fleetLock) }
        var failures: [String] = []
        var allTimedOut = true
        var noneServed = true  // every endpoint answered, but none as etcd serving this API
        let all = options.endpoints
        for offset in 0..<all.count {
            let index = (preferred + offset) % all.count
            let endpoint = all[index]
            do {
                var response = try http.perform(method: method, url: endpoint + path, body: body,
                                                headers: headers + (path.hasPrefix("/v3/") ? authHeaders(endpoint) : []),
                                                timeoutMilliseconds: options.timeoutMilliseconds, evenIfCancelled: evenIfCancelled)
                if path.hasPrefix("/v3/"), token != nil, response.status == 401 || isInvalidToken(response) {
                    token = nil
                    response = try http.perform(method: method, url: endpoint + path, body: body,
                                                headers: headers + authHeaders(endpoint), timeoutMilliseconds: options.timeoutMilliseconds,
                                                evenIfCancelled: evenIfCancelled)
                }
                if let notServed = notServed(response, method, path, endpoint) {
                    // Not etcd, or not the API asked for: the next endpoint may be.
                    failures.append("\(endpoint): \(notServed)")
                    allTimedOut = false
                    continue
                }
                if response.status >= 500 {
                    failures.append("\(endpoint): \(EtcdClient.serverFailure(response))")
                    allTimedOut = false
                    noneServed = false
                    continue
                }
                if let refusal = refusal(response, path) { throw refusal }
                preferred = index
                endpointInUse = endpoint
                failedBeforeAnswer = !failures.isEmpty
                return response
            } catch let error as LocksmithError where error.kind == .connectionFailed || error.kind == .timedOut {
                failures.append("\(endpoint): \(error.message)")
                allTimedOut = allTimedOut && error.kind == .timedOut
                noneServed = false
            }
        }
        if noneServed && !failures.isEmpty {
            // Reached, and answered: a protocol error, not a connection that failed.
            throw LocksmithError(.protocolError, "no endpoint serves the etcd API in use (" + failures.joined(separator: "; ") + ")")
        }
        throw LocksmithError(allTimedOut ? .timedOut : .connectionFailed, "no etcd endpoint answered (" + failures.joined(separator: "; ") + ")")
    }

    /// Why an answer shows that the endpoint does not serve what was asked, and what to do; nil
    /// when it does. An etcd answer is JSON (v2: an `action` and a `node`, or an `errorCode`), so
    /// an answer that is not, is not etcd's; an etcd that does not serve v2 answers a v2 request
    /// with a plain 404, told apart from other servers by its `/version` (asked only then). In
    /// `auto` the first v2 request is the probe, whose 404 means "use v3": not judged here.
    /// Every answer passes here, so the usual ones are told by their first bytes, not parsed a
    /// second time: etcd's v2 answers start `{"action":` or `{"errorCode":`, its v3 answers are
    /// JSON objects (a body that only looks like one is parsed as usual, and fails there).
    private func notServed(_ response: HTTPResponse, _ method: String, _ path: String, _ endpoint: String) -> String? {
        if path.hasPrefix("/v2/") {
            guard api == .v2, !EtcdClient.begins(response.body, with: #"{"action":"#),
                  !EtcdClient.begins(response.body, with: #"{"errorCode":"#), !V2.isV2Answer(response) else { return nil }
            if response.status == 404, let version = etcdVersion(endpoint) { return Advice.noV2(version: version) }
        } else if !path.hasPrefix("/v3/") || EtcdClient.begins(response.body, with: "{") {
            return nil
        }
        return Advice.notEtcd(status: response.status, method: method, path: path, body: response.text)
    }

    /// What a 5xx answer (an endpoint that failed) says, and what to do where that is known:
    /// etcd's JSON gateway that cannot connect to etcd itself.
    static func serverFailure(_ response: HTTPResponse, to request: String? = nil) -> String {
        if let etcdSaid = V3.gatewayCannotConnect(response) { return Advice.gatewayCannotConnect(status: response.status, etcdSaid: etcdSaid) }
        return "HTTP \(response.status) " + (request.map { "to " + $0 } ?? excerpt(response.text, limit: 60))
    }

    /// Whether `body` starts with `prefix` after any blanks.
    static func begins(_ body: [UInt8], with prefix: String) -> Bool {
        guard let start = body.firstIndex(where: { $0 != 0x20 && $0 != 0x09 && $0 != 0x0a && $0 != 0x0d }) else { return false }
        return body[start...].starts(with: prefix.utf8)
    }

    /// The etcd server version `endpoint` reports at `/version` ("etcd 3.4.23"), or nil when it
    /// does not answer as etcd does.
    private func etcdVersion(_ endpoint: String) -> String? {
        guard let response = try? http.perform(method: "GET", url: endpoint + "/version", timeoutMilliseconds: options.timeoutMilliseconds),
              response.status == 200, let server = JSONTree(response.body)?.node["etcdserver"]?.string,
              !server.isEmpty, server.utf8.count <= 32, server.utf8.allSatisfy({ (0x21...0x7e).contains($0) }) else { return nil }
        return "etcd \(server)"
    }

    /// An answer that refuses our credentials or our access, as the error that says what to do
    /// (v2: HTTP 401 with etcd error 110; v3: the gateway's unauthenticated or permission denied).
    private func refusal(_ response: HTTPResponse, _ path: String) -> LocksmithError? {
        guard response.status != 200 else { return nil }
        let tree = JSONTree(response.body)
        let etcdSaid = tree?.node["message"]?.string ?? tree?.node["error"]?.string ?? excerpt(response.text, limit: 60)
        if path.hasPrefix("/v2/") {
            guard tree?.node["errorCode"]?.int64 == 110 else { return nil }
            guard let user = options.username else { return LocksmithError(.permissionDenied, Advice.credentialsNeeded) }
            return LocksmithError(.permissionDenied, Advice.v2Refused(user: user, etcdSaid: "110: \(etcdSaid)"))
        }
        guard path.hasPrefix("/v3/") else { return nil }
        switch V3.refusal(response, tree) {
        case .noUser?:
            return LocksmithError(.permissionDenied, Advice.credentialsNeeded)
        case .badCredentials?:
            guard let user = options.username else { return LocksmithError(.permissionDenied, Advice.credentialsNeeded) }
            return LocksmithError(.permissionDenied, Advice.wrongCredentials(user: user, etcdSaid: etcdSaid))
        case .denied?:
            guard let user = options.username else { return LocksmithError(.permissionDenied, Advice.credentialsNeeded) }
            return LocksmithError(.permissionDenied, Advice.noPermission(user: user, etcdSaid: etcdSaid))
        case nil:
            return nil
        }
    }

    // MARK: Authentication (v3)

    func authHeaders(_ endpoint: String) throws -> [String] {
        guard let user = options.username else { return [] }
        if token == nil {
            let response = try http.perform(method: "POST", url: endpoint + V3.authenticatePath,
                                            body: V3.authenticate(user: user, password: options.password ?? ""),
                                            timeoutMilliseconds: options.timeoutMilliseconds)
            if response.status >= 500 {
                // send() names the endpoint.
                throw LocksmithError(.connectionFailed, EtcdClient.serverFailure(response, to: "authentication"))
            }
            let answered: String
            do {
                answered = try V3.parseToken(response)
            } catch let error as LocksmithError {
                let tree = JSONTree(response.body)
                if let etcdSaid = tree?.node["message"]?.string ?? tree?.node["error"]?.string, etcdSaid.contains("authentication failed") {
                    throw LocksmithError(.permissionDenied, Advice.wrongCredentials(user: user, etcdSaid: etcdSaid))
                }
                throw LocksmithError(.permissionDenied, "etcd refused user \(JSONText.quoted(user)): \(error.message)")
            }
            // The token goes into a header line of every request: only visible ASCII, bounded.
            guard (1...4096).contains(answered.utf8.count), answered.utf8.allSatisfy({ (0x21...0x7e).contains($0) }) else {
                throw LocksmithError(.protocolError, "\(endpoint): etcd answered an authentication token that is not plain text (\(answered.utf8.count) bytes); not using it")
            }
            token = answered
        }
        return ["Authorization: \(token ?? "")"]
    }

    /// A token etcd no longer takes (expired, or etcd restarted): fetched again and retried once.
    private func isInvalidToken(_ response: HTTPResponse) -> Bool {
        guard response.status != 200, let tree = JSONTree(response.body) else { return false }
        switch V3.refusal(response, tree) {
        case .noUser?, .badCredentials?: return true
        case .denied?, nil: return false
        }
    }
}
