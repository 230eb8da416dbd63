// The lock client: reads and changes a group's semaphore with compare-and-swap and waits for
// changes with etcd's watch. Its rules hold whatever the backend (Backend.swift: v2, v3 or a
// FleetLock server); endpoints, failover and credentials are the transport's (Transport.swift),
// what it remembers of the semaphore the cache's (DocumentCache.swift), the fair queue Queue.swift.
import Glibc
import LocksmithCore
import LocksmithSystem

/// A client of one group's semaphore. Belongs to one thread at a time.
public final class EtcdClient {
    /// Most compare-and-swap attempts lost to other writers per operation before giving up
    /// with `.conflict` (with the pauses between them, several seconds of solid contention).
    public static let maxAttempts = 64

    public let options: ClientOptions
    /// The key of the group's semaphore.
    public let key: String
    /// The FleetLock server slots are taken through instead of etcd (the `fleetlock-url` option):
    /// then only lock, unlock, acquire and wait work, and every other operation fails with
    /// EOPNOTSUPP saying so.
    public let fleetLock: FleetLockServer?
    /// The API in use, once known (`auto` decides on the first request).
    public var api: EtcdAPI? { transport.api }
    /// The endpoint that answered last.
    public var endpointInUse: String? { transport.endpointInUse }
    /// Compare-and-swap attempts lost to other writers and retried, since the client was made.
    public private(set) var conflictRetries = 0
    /// HTTP requests sent, since the client was made.
    public var requestCount: Int { transport.http.requestCount }
    /// Receives one line per HTTP request (method, URL, status, time); never a password.
    public var trace: ((String) -> Void)? {
        get { transport.http.trace }
        set { transport.http.trace = newValue }
    }

    let transport: EtcdTransport
    let keys: GroupKeys
    /// Where the slots are; nil while `auto` has not decided (then it is etcd, v2 or v3).
    private var backend: Backend?
    /// What this client remembers of the semaphore.
    private var cache = DocumentCache()
    /// The index of this client's last write after which no stale holder record was left (its
    /// listing found none, or its clean-up removed them all); nil when not known. A write over
    /// that same index, with no other writer in between, has nothing new to clean: it lists no
    /// records (a long-lived client such as locksmith-fleetlockd writes many times in a row, and
    /// the listing was a third of etcd's work for each of its writes).
    private var recordsCleanAt: Int64?
    private var random = SystemRandomNumberGenerator()

    public init(options: ClientOptions, cancellation: Cancellation = Cancellation()) throws {
        self.options = options
        key = try GroupKey.key(group: options.group)
        keys = GroupKeys(semaphore: key)
        fleetLock = try options.fleetLockURL.map { try FleetLockServer(url: $0, group: options.group) }
        var settings = ConnectionSettings(tls: options.tls, proxy: options.proxy, useEnvironment: options.usesEnvironment)
        // etcd's credentials are etcd's: never sent to a FleetLock server.
        if fleetLock == nil, options.api == .v2 || options.api == .auto, let user = options.username {
            settings.basicAuth = (user, options.password ?? "")
        }
        let http = try HTTPConnection(settings: settings, cancellation: cancellation)
        let api: EtcdAPI? = switch options.api {
        case .v2: .v2
        case .v3: .v3
        case .auto: nil
        }
        transport = EtcdTransport(options: options, http: http, api: api)
        if let fleetLock {
            backend = FleetLockBackend(server: fleetLock, transport: transport)
        } else if let api {
            backend = EtcdClient.backend(api, transport, keys)
        }
    }

    private static func backend(_ api: EtcdAPI, _ transport: EtcdTransport, _ keys: GroupKeys) -> Backend {
        switch api {
        case .v2: V2Backend(transport: transport, keys: keys)
        case .v3: V3Backend(transport: transport, keys: keys)
        }
    }

    /// The backend, once known: `auto` decides with a read of the semaphore (not kept).
    func resolvedBackend() throws -> Backend {
        if let backend { return backend }
        // The probe is a read of the semaphore: what it finds is remembered, so the operation
        // that needed the backend (a first lock, unlock or apply) does not read it again.
        if case .value(let value) = try fetch() { cache.remember(value) }
        return try backend ?? EtcdClient.undecided()
    }

    private static func undecided() throws -> Backend {
        throw LocksmithError(.protocolError, "cannot tell which etcd API to use")
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
            cache.remember(value)
            return try decode(value)
        case .missing, .conflict(nil), .stored:
            return nil
        }
    }

    /// No request of this client runs past this monotonic time in milliseconds (nil: none), and
    /// none starts after it: retries and failover end there too.
    public var deadline: Int? {
        get { transport.http.deadline }
        set { transport.http.deadline = newValue }
    }

    /// Takes a slot for `holder`. `.busy`, `.exists` as SemaphoreDocument.lock; never retried.
    /// A bad id or max is refused before any request.
    public func lock(_ holder: String) throws {
        try SemaphoreDocument.validateHolder(holder)
        try resolvedBackend().lock(holder, client: self)
    }

    /// The compare-and-swap of a lock, with the holder's record (`SideWrite`) and `also` (the end
    /// of a queue entry). `reserve`: free slots that must stay free for the waiters ahead in the
    /// queue (`.busy` if no more than that are free).
    func takeSlot(_ holder: String, also: [SideWrite] = [], reserve: Int = 0) throws {
        try modify({ (document: inout SemaphoreDocument) throws in
            if document.available > 0 && document.available <= reserve {
                throw LocksmithError(.busy, "the free slots are for the \(reserve) waiters ahead in the queue")
            }
            try document.lock(holder)
        }, done: { $0.holders.contains(holder) }, side: { _ in also + [.record(holder: holder, taken: true)] })
    }

    /// A random number of milliseconds up to `limit`.
    func jitter(upTo limit: Int) -> Int {
        Int.random(in: 0...max(limit, 0), using: &random)
    }

    /// Gives back `holder`'s slot. `.notFound` if it holds none. Its record goes with it (v3 in
    /// the same transaction; v2 with the records of holders that are gone, after the write).
    public func unlock(_ holder: String) throws {
        try SemaphoreDocument.validateHolder(holder)
        try resolvedBackend().unlock(holder, client: self)
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
        _ = try resolvedBackend()  // (`auto` decides before the first change is computed)
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
        func records(_ done: [LocksmithError?]) -> [SideWrite] {
            // One write per holder (etcd refuses a transaction that names a key twice): the last
            // change made for it says whether its record stays.
            var last: [String: Bool] = [:]
            var order: [String] = []
            for (change, result) in zip(changes, done) where result == nil {
                if last.updateValue(change.take, forKey: change.holder) == nil { order.append(change.holder) }
            }
            return order.map { holder in .record(holder: holder, taken: last[holder] == true) }
        }
        do {
            results = try modify(run, done: { document in
                !written.isEmpty && zip(changes, written).allSatisfy { change, result in
                    result != nil || document.holders.contains(change.holder) == change.take
                }
            }, side: records, trustMilliseconds: 0)
        } catch let error as LocksmithError where error.kind == .busy && results.count == changes.count && results.allSatisfy({ $0 != nil }) {
            return results
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
        cache.known.flatMap { try? decode($0) }
    }

    /// Every group that has a semaphore under the reboot-lock prefix, with its document or the
    /// reason it is not one. Sorted by group name ("" first). Creates nothing.
    public func allGroups() throws -> [(group: String, key: String, document: Result<SemaphoreDocument, LocksmithError>)] {
        let entries = try resolvedBackend().list(GroupKey.prefix, label: GroupKey.prefix)
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
    /// index last seen, so no change in between is missed. With the `wait-errors` option `fail`,
    /// a request that gets no answer ends the wait with its error instead.
    public func wait(timeoutMilliseconds: Int) throws -> Bool {
        // (`auto` decides with the read the wait starts from.)
        if backend == nil { _ = try readOrCreate() }
        return try resolvedBackend().wait(timeoutMilliseconds: timeoutMilliseconds, client: self)
    }

    /// etcd's wait: a watch on the semaphore, resumed on the next endpoint while they fail.
    func watchSemaphore(timeoutMilliseconds: Int) throws -> Bool {
        if cache.seenIndex == nil { _ = try readOrCreate() }
        guard let index = cache.seenIndex else { return true }
        let backend = try resolvedBackend()
        let deadline = Clock.monotonicMilliseconds() + max(timeoutMilliseconds, 1)
        /// The client's own deadline ends a wait with an error, not as "no change yet": a caller
        /// that loops on wait() must not spin once it has passed.
        func checkClientDeadline() throws {
            if let end = transport.http.deadline, Clock.monotonicMilliseconds() >= end {
                throw LocksmithError(.timedOut, "\(key): the client's deadline passed")
            }
        }
        while true {
            for endpoint in transport.rotation() {
                try checkClientDeadline()
                let remaining = deadline - Clock.monotonicMilliseconds()
                if remaining <= 0 { return false }
                do {
                    cache.note(try backend.watch(key, at: endpoint, after: index, timeoutMilliseconds: remaining))
                    return true
                } catch let error as LocksmithError where error.kind == .timedOut {
                    try checkClientDeadline()
                    return false
                } catch let error as LocksmithError where error.kind == .connectionFailed {
                    if options.waitFailsFast && transport.http.lastRequestFailed { throw error }
                    continue
                }
            }
            let remaining = deadline - Clock.monotonicMilliseconds()
            if remaining <= 0 { return false }
            try checkCancelled()
            Clock.sleep(milliseconds: min(250, remaining))
        }
    }

    // MARK: Compare-and-swap

    /// Read-modify-write of the document with compare-and-swap. `done` says whether a document
    /// already shows the change made: if a write of this call may have landed without our
    /// hearing it (an endpoint timed out or failed before another answered, and the retry then
    /// lost the compare-and-swap), a refusal on a document that shows the change is our own
    /// write seen again, and the call succeeded. `side`: the keys written with the change
    /// (SideWrite). `unchanged` (v3): more keys the write is conditional on (a refusal for them
    /// reads as a lost compare-and-swap: `change` must find out).
    /// A write that is stored removes the holder records of ids it leaves no holder
    /// (`cleanHolderRecords`).
    @discardableResult
    func modify<T>(_ change: (inout SemaphoreDocument) throws -> T, done: (SemaphoreDocument) -> Bool,
                   side: (T) -> [SideWrite] = { _ in [] }, unchanged: [(key: String, revision: Int64)] = [],
                   trustMilliseconds: Int = DocumentCache.freshMilliseconds) throws -> T {
        let age = cache.age
        if age >= DocumentCache.optimisticMilliseconds {
            // A write over a value that is probably out of date costs a refused write (v3 goes
            // through consensus and the disk even to refuse; a refused v2 compare-and-swap does
            // not even say what is there) before the real one: a read first is cheaper.
            cache.forgetValue()
        }
        var fresh = cache.known == nil || age < trustMilliseconds
        var current = try cache.known ?? readOrCreate()
        let backend = try resolvedBackend()
        var lost = 0
        var unheard: (result: T, side: [SideWrite])?  // a write that may have landed unheard
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
                if let unheard, let seen = try? decode(current), done(seen) {
                    backend.afterWrite(unheard.side)
                    recordsCleanAt = nil
                    return unheard.result
                }
                throw refusal
            }
            let json = document.json
            let writes = side(result)
            let outcome: WireResult
            let listed: ListedKeys?
            let listRecords = current.index != recordsCleanAt
            do {
                transport.failedBeforeAnswer = false
                (outcome, listed) = try backend.write(json, over: current.index, holders: document.holders.count, side: writes,
                                                      listRecords: listRecords, unchanged: unchanged)
                if transport.failedBeforeAnswer { unheard = (result, writes) }
            } catch {
                // No answer (a lost reply, a timeout, a 5xx): the write may have been applied.
                // Forget what we remember, so that the next operation reads before it reports a
                // refusal; else it could say "not held" of a slot etcd lists, or "already held" of
                // one etcd no longer lists.
                cache.forgetValue()
                throw error
            }
            switch outcome {
            case .stored(let index):
                cache.remember(written: StoredValue(bytes: Array(json.utf8), index: index), document)
                // The side writes first (v2: the end of a queue entry, so the next waiter moves
                // up at once), then the clean-up of stale holder records, which may take a read
                // and a few deletes.
                backend.afterWrite(writes)
                let cleaned = cleanHolderRecords(after: document, at: index, listed: listed)
                recordsCleanAt = cleaned || (!listRecords && listed == nil) ? index : nil
                return result
            case .conflict(let newer?), .value(let newer):
                current = newer
                cache.remember(newer)
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
    public var cancellation: Cancellation { transport.http.cancellation }

    func checkCancelled() throws {
        if transport.http.cancellation.isSet { throw LocksmithError(.system(ECANCELED), "cancelled") }
    }

    // MARK: What the client remembers

    /// The newest document this client has seen, without asking etcd: nil if none; throws
    /// `.badMessage` if what it saw is not a semaphore document.
    public func lastSeenDocument() throws -> SemaphoreDocument? {
        try cache.known.map { try decode($0) }
    }

    /// Remembers a value of the semaphore read along with other keys (the queue's transactions).
    func noteSemaphore(_ value: StoredValue) {
        cache.remember(value)
    }

    /// Reads the semaphore (creating it if missing) and remembers it.
    func readSemaphore() throws -> SemaphoreDocument {
        try decode(readOrCreate())
    }

    /// Forgets the document last seen unless it was read or written within the last second, so
    /// that the next operation reads it first (a waiter at the head of the queue that has not
    /// looked at the semaphore for a while).
    func forgetStaleDocument() {
        cache.forgetStale()
    }

    /// Reads the value, creating the key first if it is missing.
    private func readOrCreate() throws -> StoredValue {
        for _ in 0..<EtcdClient.maxAttempts {
            switch try fetch() {
            case .value(let value):
                cache.remember(value)
                return value
            case .missing, .conflict(nil), .stored:
                let initial = SemaphoreDocument().json
                switch try resolvedBackend().create(initial) {
                case .stored(let index):
                    let value = StoredValue(bytes: Array(initial.utf8), index: index)
                    cache.remember(value)
                    return value
                case .conflict(let value?), .value(let value):
                    cache.remember(value)
                    return value
                case .conflict(nil), .missing:
                    continue  // created by someone else: read it
                }
            case .conflict(let value?):
                cache.remember(value)
                return value
            }
        }
        throw LocksmithError(.conflict, "\(key): the key kept changing between reads")
    }

    private func decode(_ value: StoredValue) throws -> SemaphoreDocument {
        try cache.decode(value, key: key) { Advice.repair(key: key, api: api) }
    }

    /// Reads the semaphore. In `auto` the first read is a v2 read that doubles as the probe: an
    /// etcd that serves v2 answers it; one that does not answers 404 (or 405), and v3 it is.
    private func fetch() throws -> WireResult {
        if let backend { return try backend.read(key) }
        let request = V2.get(key)
        let response = try transport.send(request.method, request.path)
        if V2.isV2Answer(response) {
            transport.api = .v2
            backend = V2Backend(transport: transport, keys: keys)
            return try V2.parse(response, key: key)
        }
        guard response.status == 404 || response.status == 405 else {
            throw LocksmithError(.protocolError, "\(key): cannot tell whether etcd serves the v2 API (HTTP \(response.status) to \(request.path))")
        }
        transport.api = .v3
        backend = V3Backend(transport: transport, keys: keys)
        transport.http.settings.basicAuth = nil
        return try fetch()
    }
}
