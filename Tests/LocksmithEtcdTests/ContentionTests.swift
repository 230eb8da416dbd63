import Glibc
import Synchronization
import Testing
import LocksmithCore
@testable import LocksmithEtcd
import LocksmithSystem

/// 50 clients each take and give back a slot 3 times with max 3 (waiting with the watch when
/// none is free), against their own etcd; then the whole
/// history of the key is read back (v3: the value at every revision; v2: the event log through
/// `wait=true&waitIndex=`) and checked: never more than 3 holders, and exactly the writes that
/// the clients reported.
@Suite(.serialized) struct ContentionTests {
    static let clients = 50
    static let rounds = 3
    static let max = 3

    struct Outcome {
        var locks = 0
        var unlocks = 0
        var busy = 0
        var failures: [String] = []
        var lockedIDs = Set<String>()
    }

    @Test(arguments: bothAPIs)
    func fiftyClientsNeverExceedMax(api: EtcdAPI) throws {
        let server = try EtcdServer()
        let group = uniqueGroup("contention")
        let setup = try makeClient(api, group: group, server: server)
        _ = try setup.get()
        try setup.setMax(ContentionTests.max)
        let raw = try RawEtcd(server)
        let startIndex: Int64 = api == .v2 ? try raw.v2Get(setup.key).index! : try raw.v3Get(setup.key).modRevision!

        let outcome = Mutex(Outcome())
        concurrently(ContentionTests.clients) { i in
            let id = "client-\(i)"
            do {
                let client = try makeClient(api, group: group, server: server, timeout: "10s")
                var done = 0
                while done < ContentionTests.rounds {
                    do {
                        try client.lock(id)
                    } catch let error as LocksmithError where error.kind == .busy {
                        // No free slot: wait (with the watch) for the next change, then try again.
                        outcome.withLock { $0.busy += 1 }
                        _ = try client.wait(timeoutMilliseconds: 2_000)
                        continue
                    }
                    outcome.withLock { $0.locks += 1; $0.lockedIDs.insert(id) }
                    Clock.sleep(milliseconds: Int.random(in: 0...3))
                    try client.unlock(id)
                    outcome.withLock { $0.unlocks += 1 }
                    done += 1
                }
            } catch {
                outcome.withLock { $0.failures.append("\(id): \(error)") }
            }
        }
        let result = outcome.withLock { $0 }
        #expect(result.failures == [])
        #expect(result.locks == ContentionTests.clients * ContentionTests.rounds && result.locks == result.unlocks)

        // The final document is what the operations imply: every lock was unlocked again.
        let final = try setup.get()
        #expect(final.holders.isEmpty && final.available == ContentionTests.max && final.max == ContentionTests.max)

        // The complete history of the key.
        let history = api == .v2 ? try v2History(raw, key: setup.key, after: startIndex, count: result.locks * 2)
                                 : try v3History(raw, key: setup.key, after: startIndex)
        #expect(history.count == result.locks + result.unlocks, "every successful write, and nothing else, is in the history")
        var most = 0
        var seen = Set<String>()
        var previous: SemaphoreDocument?
        for value in history {
            let s = try SemaphoreDocument(parsing: value)
            most = Swift.max(most, s.holders.count)
            #expect(s.holders.count <= ContentionTests.max)
            #expect(s.available + s.holders.count == ContentionTests.max)
            if let previous { #expect(abs(previous.holders.count - s.holders.count) == 1, "one holder changes per write") }
            seen.formUnion(s.holders)
            previous = s
        }
        #expect(most <= ContentionTests.max)
        #expect(seen == result.lockedIDs, "every client that reported a lock is in the history, no other")
        print("\(api): \(result.locks) locks, \(result.busy) refused as busy, \(history.count) writes, at most \(most) holders")
    }

    /// The value of the key after each change with a revision greater than `after`.
    private func v3History(_ raw: RawEtcd, key: String, after: Int64) throws -> [String] {
        let last = try raw.v3Get(key).modRevision!
        var values: [String] = []
        var revision = last
        // Walk back through mod revisions: the value at r has mod_revision m <= r; the one
        // before it is the value at m - 1.
        var stack: [String] = []
        while revision > after {
            let (value, modRevision, _) = try raw.v3Get(key, revision: revision)
            guard let value, let modRevision, modRevision > after else { break }
            stack.append(value)
            revision = modRevision - 1
        }
        values = stack.reversed()
        return values
    }

    /// The values of the key's next `count` changes after index `after`, from the v2 event log.
    private func v2History(_ raw: RawEtcd, key: String, after: Int64, count: Int) throws -> [String] {
        var values: [String] = []
        var index = after
        while values.count < count {
            let r = try raw.http.perform(method: "GET", url: raw.endpoint + "/v2/keys/" + URLEscape.path(key) + "?wait=true&waitIndex=\(index + 1)",
                                         timeoutMilliseconds: 2000)
            guard let tree = JSONTree(r.body), let node = tree.node["node"], let value = node["value"]?.string,
                  let modified = node["modifiedIndex"]?.int64 else {
                Issue.record("bad v2 event: \(r.text)")
                break
            }
            values.append(value)
            index = modified
        }
        // Nothing after the last expected write.
        let more = try? raw.http.perform(method: "GET", url: raw.endpoint + "/v2/keys/" + URLEscape.path(key) + "?wait=true&waitIndex=\(index + 1)",
                                         timeoutMilliseconds: 300)
        #expect(more == nil, "a write nobody reported")
        return values
    }
}
