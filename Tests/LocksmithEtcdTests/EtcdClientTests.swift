import Glibc
import Synchronization
import Testing
import LocksmithCore
@testable import LocksmithEtcd
import LocksmithSystem

let bothAPIs: [EtcdAPI] = [.v2, .v3]

/// A group name no other test uses.
func uniqueGroup(_ name: String) -> String {
    struct Counter { static let value = Atomic<Int>(0) }
    return "\(name)-\(getpid())-\(Counter.value.add(1, ordering: .relaxed).newValue)"
}

func makeClient(_ api: EtcdAPI, group: String, server: EtcdServer = sharedEtcd, endpoints: [String]? = nil,
                timeout: String? = nil) throws -> EtcdClient {
    var options = ClientOptions()
    try options.set("endpoint", (endpoints ?? [server.endpoint]).joined(separator: ","))
    try options.set("group", group)
    try options.set("etcd-api", api.rawValue)
    if let timeout { try options.set("timeout", timeout) }
    return try EtcdClient(options: options)
}

/// Hands a client to another thread (it is used by one thread at a time).
struct Handoff<T>: @unchecked Sendable {
    let value: T
    init(_ value: T) { self.value = value }
}

/// Runs `body(i)` for i in 0..<n, each on its own thread, all at once.
func concurrently(_ n: Int, _ body: @escaping @Sendable (Int) -> Void) {
    final class Job {
        let body: @Sendable (Int) -> Void
        let index: Int
        init(_ body: @escaping @Sendable (Int) -> Void, _ index: Int) { (self.body, self.index) = (body, index) }
    }
    var threads: [pthread_t] = []
    for i in 0..<n {
        var thread = pthread_t()
        let job = Unmanaged.passRetained(Job(body, i)).toOpaque()
        pthread_create(&thread, nil, { p in
            let job = Unmanaged<Job>.fromOpaque(p!).takeRetainedValue()
            job.body(job.index)
            return nil
        }, job)
        threads.append(thread)
    }
    for t in threads { pthread_join(t, nil) }
}

@Suite struct EtcdClientTests {
    @Test(arguments: bothAPIs)
    func freshKeyIsCreatedWithTheOriginalBytes(api: EtcdAPI) throws {
        let group = uniqueGroup("fresh")
        let client = try makeClient(api, group: group)
        let s = try client.get()
        #expect(s.available == 1 && s.max == 1 && s.holders.isEmpty)
        let raw = try RawEtcd(sharedEtcd)
        #expect(try raw.get(api, client.key) == #"{"semaphore":1,"max":1,"holders":null}"#)
        #expect(client.api == api)
        #expect(client.endpointInUse == sharedEtcd.endpoint)
    }

    @Test(arguments: bothAPIs)
    func lockUnlockAndSetMaxStoreTheOriginalBytes(api: EtcdAPI) throws {
        let client = try makeClient(api, group: uniqueGroup("bytes"))
        let raw = try RawEtcd(sharedEtcd)
        #expect(try client.setMax(3) == 1)
        try client.lock("node1")
        try client.lock("b")
        try client.lock("a")
        #expect(try raw.get(api, client.key) == #"{"semaphore":0,"max":3,"holders":["a","b","node1"]}"#)
        #expect(try client.setMax(2) == 3)
        #expect(try raw.get(api, client.key) == #"{"semaphore":-1,"max":2,"holders":["a","b","node1"]}"#)
        for h in ["a", "b", "node1"] { try client.unlock(h) }
        #expect(try raw.get(api, client.key) == #"{"semaphore":2,"max":2,"holders":[]}"#)
    }

    @Test(arguments: bothAPIs)
    func refusalsChangeNothing(api: EtcdAPI) throws {
        let client = try makeClient(api, group: uniqueGroup("refusals"))
        let raw = try RawEtcd(sharedEtcd)
        try client.lock("x")
        let before = try raw.get(api, client.key)
        #expect(throws: LocksmithError(.busy, "semaphore is at 0")) { try client.lock("y") }
        #expect(throws: LocksmithError(.busy, "semaphore is at 0")) { try client.lock("x") }
        #expect(throws: LocksmithError(.notFound, "holder does not exist")) { try client.unlock("y") }
        #expect(throws: LocksmithError.self) { try client.setMax(-1) }
        try client.setMax(2)
        #expect(throws: LocksmithError(.exists, "holder exists")) { try client.lock("x") }
        #expect(before == #"{"semaphore":0,"max":1,"holders":["x"]}"#)
        #expect(try raw.get(api, client.key) == #"{"semaphore":1,"max":2,"holders":["x"]}"#)
        #expect(client.conflictRetries == 0)
    }

    @Test(arguments: bothAPIs)
    func groupKeysAndTheDoubleEscapedV2Path(api: EtcdAPI) throws {
        let group = "a b/c " + uniqueGroup("g")
        let client = try makeClient(api, group: group)
        try client.lock("m1")
        #expect(client.key == "coreos.com/updateengine/rebootlock/groups/" + URLEscape.query(group) + "/semaphore")
        let raw = try RawEtcd(sharedEtcd)
        #expect(try raw.get(api, client.key) == #"{"semaphore":0,"max":1,"holders":["m1"]}"#)
        if api == .v2 {
            // The original's URL: the group escaped once into the key, the key escaped again.
            let path = "/v2/keys/coreos.com/updateengine/rebootlock/groups/a+b%252Fc+" + uniqueSuffix(group) + "/semaphore"
            #expect(try raw.v2GetPath(path) == 200)
        }
        let other = try makeClient(api, group: uniqueGroup("other"))
        #expect(try other.get().holders.isEmpty)
    }

    private func uniqueSuffix(_ group: String) -> String {
        URLEscape.path(URLEscape.query(String(group.dropFirst("a b/c ".count))))
    }

    @Test(arguments: bothAPIs)
    func corruptValuesAreReportedAndNeverOverwritten(api: EtcdAPI) throws {
        let raw = try RawEtcd(sharedEtcd)
        for bad in ["not json", #"{"max":"2"}"#, #"{"holders":["a","a"]}"#, "[1,2]", #"{"semaphore":1,"max":1,"holders":null"#] {
            let client = try makeClient(api, group: uniqueGroup("corrupt"))
            try raw.put(api, client.key, bad)
            for operation in [{ try client.lock("n") }, { try client.unlock("n") }, { _ = try client.setMax(5) }, { _ = try client.get() }] {
                do {
                    try operation()
                    Issue.record("an operation succeeded on \(bad)")
                } catch let error as LocksmithError {
                    #expect(error.kind == .badMessage)
                    #expect(error.message.hasPrefix(client.key + ": "), "\(error.message)")
                    #expect(error.message.contains("(value: "))
                }
            }
            #expect(try raw.get(api, client.key) == bad)
        }
    }

    /// Issue 25, item 3: records left by slots given back by a client that writes only the
    /// document (the original) go at the next write, a bounded number per write; a holder's stays.
    @Test(arguments: bothAPIs)
    func aWriteRemovesTheRecordsOfHoldersThatAreGoneAFewAtATime(api: EtcdAPI) throws {
        let client = try makeClient(api, group: uniqueGroup("stale-records"))
        let raw = try RawEtcd(sharedEtcd)
        try client.setMax(3)
        try client.lock("kept")
        let kept = try client.holderRecords()
        for i in 0..<20 { try raw.put(api, client.holderRecordKey("gone\(i)"), #"{"since":1,"host":"h"}"#) }
        // The original's last write of the document (the one that gave those slots back).
        try raw.put(api, client.key, try #require(try raw.get(api, client.key)))
        #expect(try client.holderRecords().count == 21)
        #expect(try client.apply([(holder: "new", take: true)]).allSatisfy { $0 == nil })
        let left = try client.holderRecords().map(\.id)
        #expect(left.count == 22 - EtcdClient.recordsCleanedPerWrite)
        #expect(left.contains("kept") && left.contains("new"))
        #expect(try client.apply([(holder: "new", take: false)]).allSatisfy { $0 == nil })
        #expect(try client.holderRecords() == kept)
    }

    /// Issue 29: a client that writes over its own last write lists no records (nobody changed
    /// the holders since its last listing); a write of another writer in between (the original
    /// giving a slot back, which leaves its record) makes the next write list and clean again.
    @Test(arguments: bothAPIs)
    func aWriteListsTheRecordsOnlyAfterAnotherWritersWrite(api: EtcdAPI) throws {
        let client = try makeClient(api, group: uniqueGroup("records-listed"))
        let raw = try RawEtcd(sharedEtcd)
        try client.setMax(5)
        #expect(try client.apply([(holder: "a1", take: true), (holder: "a2", take: true)]).allSatisfy { $0 == nil })
        // A record planted without a write of the document is not looked for by the next write...
        try raw.put(api, client.holderRecordKey("planted"), #"{"since":1,"host":"h"}"#)
        #expect(try client.apply([(holder: "a3", take: true)]).allSatisfy { $0 == nil })
        #expect(try client.holderRecords().map(\.id).sorted() == ["a1", "a2", "a3", "planted"])
        // ...but the original giving a2's slot back (the document alone) is: both go.
        try raw.put(api, client.key, #"{"semaphore":3,"max":5,"holders":["a1","a3"]}"#)
        #expect(try client.apply([(holder: "a3", take: false)]).allSatisfy { $0 == nil })
        #expect(try client.holderRecords().map(\.id) == ["a1"])
        // Own writes in a row keep the records exact without listing.
        #expect(try client.apply([(holder: "b1", take: true), (holder: "a1", take: false)]).allSatisfy { $0 == nil })
        #expect(try client.apply([(holder: "b2", take: true)]).allSatisfy { $0 == nil })
        #expect(try client.apply([(holder: "b1", take: false)]).allSatisfy { $0 == nil })
        #expect(try client.holderRecords().map(\.id) == ["b2"])
        #expect(try client.get().holders == ["b2"])
    }

    @Test func aV2DirectoryIsReportedAndKept() throws {
        let raw = try RawEtcd(sharedEtcd)
        let client = try makeClient(.v2, group: uniqueGroup("dir"))
        try raw.v2MakeDirectory(client.key)
        #expect(throws: LocksmithError.self) { try client.lock("n") }
        do { try client.lock("n") } catch let e as LocksmithError { #expect(e.message.contains("is a directory")) }
        #expect(try raw.v2Get(client.key).status == 200)
    }

    @Test(arguments: bothAPIs)
    func unknownFieldsSurviveAndTheStoredIndexIsIgnored(api: EtcdAPI) throws {
        let raw = try RawEtcd(sharedEtcd)
        let client = try makeClient(api, group: uniqueGroup("unknown"))
        try raw.put(api, client.key, #"{"semaphore":2,"max":2,"holders":[],"index":4567,"note":"keep me"}"#)
        try client.lock("n1")
        #expect(try raw.get(api, client.key) == #"{"semaphore":1,"max":2,"holders":["n1"],"index":4567,"note":"keep me"}"#)
    }

    @Test func v2AndV3AreSeparateStores() throws {
        let group = uniqueGroup("stores")
        try makeClient(.v2, group: group).lock("only-v2")
        #expect(try makeClient(.v3, group: group).get().holders.isEmpty)
    }

    @Test(arguments: bothAPIs)
    func twentyConcurrentLockersAllSucceed(api: EtcdAPI) throws {
        let group = uniqueGroup("twenty")
        try makeClient(api, group: group).setMax(100)
        let failures = Mutex<[String]>([])
        let retries = Atomic<Int>(0)
        concurrently(20) { i in
            do {
                let client = try makeClient(api, group: group)
                try client.lock("machine-\(i)")
                retries.add(client.conflictRetries, ordering: .relaxed)
            } catch {
                failures.withLock { $0.append("machine-\(i): \(error)") }
            }
        }
        #expect(failures.withLock { $0 } == [])
        let s = try makeClient(api, group: group).get()
        #expect(s.holders.count == 20 && s.available == 80)
        #expect(s.holders == (0..<20).map { "machine-\($0)" }.sorted(by: { $0.utf8.lexicographicallyPrecedes($1.utf8) }))
    }

    @Test(arguments: bothAPIs)
    func deadAndHungEndpointsAreSkipped(api: EtcdAPI) throws {
        let hung = HungEndpoint()
        let dead = "http://127.0.0.1:\(EtcdServer.freePort())"
        let group = uniqueGroup("failover")
        let started = Clock.monotonicMilliseconds()
        let client = try makeClient(api, group: group, endpoints: [dead, hung.endpoint, sharedEtcd.endpoint], timeout: "300ms")
        try client.lock("m")
        #expect(client.endpointInUse == sharedEtcd.endpoint)
        // Once one answered, it is asked first: no more time lost on the others.
        let second = Clock.monotonicMilliseconds()
        try client.unlock("m")
        #expect(Clock.monotonicMilliseconds() - second < 250)
        #expect(second - started < 3000)
    }

    @Test func whenNoEndpointAnswersTheErrorNamesEach() throws {
        let hung = HungEndpoint()
        let dead = "http://127.0.0.1:\(EtcdServer.freePort())"
        let client = try makeClient(.v3, group: uniqueGroup("down"), endpoints: [dead, hung.endpoint], timeout: "200ms")
        do {
            _ = try client.get()
            Issue.record("no error")
        } catch let error as LocksmithError {
            #expect(error.kind == .connectionFailed)
            #expect(error.message.contains(dead + ": "))
            #expect(error.message.contains(hung.endpoint + ": "))
            #expect(error.message.contains("imed out"), "\(error.message)")
        }
    }

    @Test(arguments: bothAPIs)
    func aWaitingClientWakesWithinASecondOfAnUnlock(api: EtcdAPI) throws {
        let group = uniqueGroup("watch")
        let holder = try makeClient(api, group: group)
        try holder.lock("holder")
        let waiter = try makeClient(api, group: group)
        #expect(throws: LocksmithError.self) { try waiter.lock("waiter") }
        let woke = Atomic<Int>(0)
        let unlockedAt = Atomic<Int>(0)
        let (w, h) = (Handoff(waiter), Handoff(holder))
        concurrently(2) { i in
            if i == 0 {
                let changed = (try? w.value.wait(timeoutMilliseconds: 10_000)) ?? false
                woke.store(changed ? Clock.monotonicMilliseconds() : -1, ordering: .sequentiallyConsistent)
            } else {
                Clock.sleep(milliseconds: 300)
                unlockedAt.store(Clock.monotonicMilliseconds(), ordering: .sequentiallyConsistent)
                try? h.value.unlock("holder")
            }
        }
        let delay = woke.load(ordering: .sequentiallyConsistent) - unlockedAt.load(ordering: .sequentiallyConsistent)
        #expect(woke.load(ordering: .sequentiallyConsistent) > 0)
        #expect(delay >= 0 && delay < 1000, "woke \(delay) ms after the unlock")
        try waiter.lock("waiter")
    }

    @Test(arguments: bothAPIs)
    func waitTimesOutWhenNothingChanges(api: EtcdAPI) throws {
        let client = try makeClient(api, group: uniqueGroup("quiet"))
        _ = try client.get()
        let started = Clock.monotonicMilliseconds()
        #expect(try client.wait(timeoutMilliseconds: 400) == false)
        let elapsed = Clock.monotonicMilliseconds() - started
        #expect(elapsed >= 350 && elapsed < 2000)
    }

    @Test func autoUsesV2WhenTheClusterServesIt() throws {
        var options = ClientOptions()
        try options.set("endpoint", sharedEtcd.endpoint)
        try options.set("group", uniqueGroup("auto"))
        let client = try EtcdClient(options: options)
        try client.lock("a")
        #expect(client.api == .v2)
        #expect(try RawEtcd(sharedEtcd).v2Get(client.key).value == #"{"semaphore":0,"max":1,"holders":["a"]}"#)
        // A first write of a client on auto over a semaphore that exists: the probe's read is the
        // write's read (one GET of the key, then the compare-and-swap).
        let second = try EtcdClient(options: options)
        let lines = Mutex<[String]>([])
        second.transport.http.trace = { line in lines.withLock { $0.append(line) } }
        try second.unlock("a")
        let requests = lines.withLock { $0 }.map { $0.split(separator: " ", maxSplits: 2).prefix(2).joined(separator: " ") }
        #expect(requests.filter { $0.hasPrefix("GET ") && $0.contains("/semaphore?") }.count == 1, "\(requests)")
    }
}

@Suite(.serialized) struct EtcdServerLifecycleTests {
    @Test func autoUsesV3WhenV2IsNotServed() throws {
        let server = try EtcdServer(enableV2: false)
        var options = ClientOptions()
        try options.set("endpoint", server.endpoint)
        let client = try EtcdClient(options: options)
        try client.lock("a")
        #expect(client.api == .v3)
        #expect(try RawEtcd(server).v3Get(client.key).value == #"{"semaphore":0,"max":1,"holders":["a"]}"#)
        // A first write over a semaphore that exists: the v2 probe, one range (the probe's read,
        // kept for the write) and the transaction.
        let second = try EtcdClient(options: options)
        let lines = Mutex<[String]>([])
        second.transport.http.trace = { line in lines.withLock { $0.append(line) } }
        try second.unlock("a")
        #expect(lines.withLock { $0 }.map { $0.split(separator: " ", maxSplits: 2).prefix(2).joined(separator: " ") }
                    == ["GET \(server.endpoint)/v2/keys/coreos.com/updateengine/rebootlock/semaphore?quorum=true",
                        "POST \(server.endpoint)/v3/kv/range", "POST \(server.endpoint)/v3/kv/txn"], "\(lines.withLock { $0 })")
        let forced = try makeClient(.v2, group: "", server: server)
        do {
            _ = try forced.get()
            Issue.record("v2 worked on a server without v2")
        } catch let error as LocksmithError {
            #expect(error.kind == .protocolError)
        }
    }

    @Test(arguments: bothAPIs)
    func aWaitingClientSurvivesAnEtcdRestart(api: EtcdAPI) throws {
        let server = try EtcdServer()
        let group = uniqueGroup("restart")
        let holder = try makeClient(api, group: group, server: server)
        try holder.lock("holder")
        let waiter = try makeClient(api, group: group, server: server)
        _ = try waiter.get()
        let result = Mutex<String>("")
        let unlockedAt = Atomic<Int>(0)
        let (w, h, s) = (Handoff(waiter), Handoff(holder), Handoff(server))
        concurrently(2) { i in
            if i == 0 {
                do {
                    let changed = try w.value.wait(timeoutMilliseconds: 20_000)
                    let delay = Clock.monotonicMilliseconds() - unlockedAt.load(ordering: .sequentiallyConsistent)
                    result.withLock { $0 = changed ? "woke \(delay)" : "timed out" }
                } catch {
                    result.withLock { $0 = "error \(error)" }
                }
            } else {
                Clock.sleep(milliseconds: 300)
                s.value.stop()
                Clock.sleep(milliseconds: 700)
                do {
                    try s.value.start()
                    unlockedAt.store(Clock.monotonicMilliseconds(), ordering: .sequentiallyConsistent)
                    try h.value.unlock("holder")
                } catch {
                    result.withLock { $0 = "restart failed \(error)" }
                }
            }
        }
        let outcome = result.withLock { $0 }
        #expect(outcome.hasPrefix("woke "), "\(outcome)")
        if let ms = Int(outcome.dropFirst(5)) { #expect(ms < 1500) }
        try waiter.lock("waiter")
    }

    @Test(arguments: bothAPIs)
    func waitErrorsFailEndsAWaitAtTheFirstRequestWithNoAnswer(api: EtcdAPI) throws {
        let server = try EtcdServer()
        let group = uniqueGroup("fail-fast")
        let riding = try makeClient(api, group: group, server: server)
        var options = try makeClient(api, group: group, server: server).options
        #expect(throws: LocksmithError.self) { try options.set("wait-errors", "soon") }
        try options.set("wait-errors", "fail")
        let fast = try EtcdClient(options: options)
        _ = try riding.get()
        _ = try fast.get()
        server.stop()
        // The default rides it out until its timeout, "no change"...
        var started = Clock.monotonicMilliseconds()
        #expect(try riding.wait(timeoutMilliseconds: 600) == false)
        #expect(Clock.monotonicMilliseconds() - started >= 550)
        // ...`fail` ends at the first request with no answer, with its error.
        started = Clock.monotonicMilliseconds()
        do {
            _ = try fast.wait(timeoutMilliseconds: 10_000)
            Issue.record("no error")
        } catch let error as LocksmithError {
            #expect(error.kind == .connectionFailed, "\(error)")
        }
        #expect(Clock.monotonicMilliseconds() - started < 2000)
    }
}
