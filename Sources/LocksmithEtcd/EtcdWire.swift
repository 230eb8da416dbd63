// The etcd wire formats, in one place: requests and answers of the v2 keys API (as the original
// sent them, byte for byte) and of the v3 JSON gateway (/v3/kv/range, /v3/kv/txn, /v3/watch,
// /v3/auth/authenticate).
import LocksmithCore

/// A stored value with the index etcd reports for it (v2 modifiedIndex, v3 mod_revision). The
/// compare-and-swap index always comes from here, never from the document.
struct StoredValue: Equatable {
    var bytes: [UInt8]
    var index: Int64
    /// v3: the revision it was read at (its index or later). A watch from there starts in step
    /// with etcd: one from an older revision is served by etcd's catch-up loop, every 100 ms.
    var observed: Int64 = 0

    static func == (a: StoredValue, b: StoredValue) -> Bool { a.bytes == b.bytes && a.index == b.index }
}

/// What a watch saw.
enum WatchEvent: Equatable {
    /// The key changed; its new value if the event carried one (not for a delete).
    case changed(StoredValue?)
    /// etcd cannot say what happened since our index (history compacted or cleared).
    case lost
}

/// What a read or a conditional write found.
enum WireResult {
    /// The key holds this value.
    case value(StoredValue)
    /// The key does not exist.
    case missing
    /// A conditional write lost: someone else wrote first. The current value, if the answer carried it.
    case conflict(StoredValue?)
    /// A conditional write was stored, at this index.
    case stored(Int64)
}

// MARK: - v2 keys API

enum V2 {
    /// What to do about a v2 directory where a semaphore belongs (docs/errors.md). Here rather than
    /// with the other advice (Advice.swift) so that the wire code builds on its own (Tests/harness/fuzz).
    static func repairDirectory(key: String) -> String {
        "locksmith does not remove it: look at what it holds with `ETCDCTL_API=2 etcdctl ls --recursive /\(key)`, "
            + "then remove it with `ETCDCTL_API=2 etcdctl rm --recursive /\(key)` (the next locksmith command creates a fresh semaphore "
            + "with max 1: set the maximum again with locksmithctl set-max)"
    }

    static func keyPath(_ key: String) -> String { "/v2/keys/" + URLEscape.path(key) }

    /// `GET /v2/keys/<key>?quorum=true`. The original read without `quorum`, which lets any member
    /// answer from what it has applied so far: after a failover a lagging member can say "not a
    /// holder" of a slot the client took a moment ago, and the unlock then leaks it. A quorum
    /// read goes through the leader (raft), so what it says is current.
    static func get(_ key: String) -> (method: String, path: String) { ("GET", keyPath(key) + "?quorum=true") }

    /// `PUT /v2/keys/<key>?prevExist=false` with `value=<json>`: create only if missing.
    static func create(_ key: String, _ json: String) -> (method: String, path: String, body: [UInt8]) {
        ("PUT", keyPath(key) + "?prevExist=false", form(json))
    }

    /// `PUT /v2/keys/<key>?prevIndex=<index>` with `value=<json>`: compare-and-swap.
    static func compareAndSwap(_ key: String, _ json: String, index: Int64) -> (method: String, path: String, body: [UInt8]) {
        ("PUT", keyPath(key) + "?prevIndex=\(index)", form(json))
    }

    /// `GET /v2/keys/<key>?wait=true&waitIndex=<index>`: the next change at or after index.
    static func watch(_ key: String, after index: Int64) -> (method: String, path: String) {
        ("GET", keyPath(key) + "?wait=true&waitIndex=\(index + 1)")
    }

    /// `DELETE /v2/keys/<key>?prevIndex=<index>`: delete only if the key is still at `index`.
    static func compareAndDelete(_ key: String, index: Int64) -> (method: String, path: String) {
        ("DELETE", keyPath(key) + "?prevIndex=\(index)")
    }

    /// `PUT /v2/keys/<key>` with `value=<value>`: set, whatever is there.
    static func set(_ key: String, _ value: String) -> (method: String, path: String, body: [UInt8]) {
        ("PUT", keyPath(key), form(value))
    }

    /// Checks the answer of a set, refresh or delete: false for "key not found", an etcd error
    /// other than that throws.
    @discardableResult
    static func check(_ response: HTTPResponse, key: String) throws -> Bool {
        guard let tree = JSONTree(response.body) else {
            throw LocksmithError(.protocolError, "\(key): the v2 answer (HTTP \(response.status)) is not JSON: \(excerpt(response.text))")
        }
        guard let code = tree.node["errorCode"]?.int64 else { return true }
        if code == 100 { return false }
        throw LocksmithError(code == 110 ? .permissionDenied : .protocolError, "\(key): etcd error \(code): \(tree.node["message"]?.string ?? "")")
    }

    static let formHeader = "Content-Type: application/x-www-form-urlencoded"

    private static func form(_ json: String) -> [UInt8] { Array(("value=" + URLEscape.query(json)).utf8) }

    /// Reads an answer of the keys API. Errors etcd reports by code (100 key not found, 101
    /// compare failed, 105 node exists) become results; others are errors naming the code.
    static func parse(_ response: HTTPResponse, key: String) throws -> WireResult {
        guard let tree = JSONTree(response.body) else {
            throw LocksmithError(.protocolError, "\(key): the v2 answer (HTTP \(response.status)) is not JSON: \(excerpt(response.text))")
        }
        let root = tree.node
        if let code = root["errorCode"]?.int64 {
            let message = root["message"]?.string ?? ""
            switch code {
            case 100: return .missing
            case 101, 105: return .conflict(nil)
            case 110: throw LocksmithError(.permissionDenied, "\(key): etcd refused access (\(code): \(message))")
            default: throw LocksmithError(.protocolError, "\(key): etcd error \(code): \(message)")
            }
        }
        guard let node = root["node"] else {
            throw LocksmithError(.protocolError, "\(key): the v2 answer has no node: \(excerpt(response.text))")
        }
        if node["dir"]?.bool == true {
            throw LocksmithError(.badMessage, "\(key): is a directory, not a semaphore document: \(V2.repairDirectory(key: key))")
        }
        guard let index = node["modifiedIndex"]?.int64 else {
            throw LocksmithError(.protocolError, "\(key): the v2 answer has no modifiedIndex")
        }
        let action = root["action"]?.string ?? ""
        if action == "compareAndSwap" || action == "create" {
            return .stored(index)
        }
        guard let value = node["value"]?.bytes else {
            throw LocksmithError(.badMessage, "\(key): has no value")
        }
        return .value(StoredValue(bytes: value, index: index))
    }

    /// `GET /v2/keys/<prefix>?recursive=true`: everything under the reboot-lock prefix.
    static func list(_ prefix: String) -> (method: String, path: String) {
        ("GET", keyPath(prefix) + "?recursive=true")
    }

    /// Every key, value and modification index in a recursive answer (a missing prefix is an
    /// empty list). A directory where a semaphore belongs is listed with no value, so that it is
    /// reported.
    static func parseList(_ response: HTTPResponse, key: String) throws -> [(key: String, value: [UInt8]?, index: Int64)] {
        guard let tree = JSONTree(response.body) else {
            throw LocksmithError(.protocolError, "\(key): the v2 answer (HTTP \(response.status)) is not JSON: \(excerpt(response.text))")
        }
        if let code = tree.node["errorCode"]?.int64 {
            if code == 100 { return [] }
            throw LocksmithError(code == 110 ? .permissionDenied : .protocolError, "\(key): etcd error \(code): \(tree.node["message"]?.string ?? "")")
        }
        var out: [(key: String, value: [UInt8]?, index: Int64)] = []
        func walk(_ node: JSONNode) {
            let k = node["key"]?.string.map { $0.hasPrefix("/") ? String($0.dropFirst()) : $0 }
            let index = node["modifiedIndex"]?.int64 ?? 0
            if node["dir"]?.bool == true || node["nodes"] != nil {
                if let k, GroupKey.group(ofKey: k) != nil { out.append((k, nil, index)) }
                guard let nodes = node["nodes"] else { return }
                for i in 0..<nodes.count { if let child = nodes[i] { walk(child) } }
            } else if let k, let v = node["value"]?.bytes {
                out.append((k, v, index))
            }
        }
        if let node = tree.node["node"] { walk(node) }
        return out
    }

    /// The event of a `wait=true` answer.
    static func watchEvent(_ response: HTTPResponse) -> WatchEvent {
        guard let tree = JSONTree(response.body), tree.node["errorCode"] == nil, let node = tree.node["node"],
              let index = node["modifiedIndex"]?.int64 else { return .lost }
        return .changed(node["value"]?.bytes.map { StoredValue(bytes: $0, index: index) })
    }

    /// Whether an answer to `GET /v2/keys/...` came from an etcd that serves the v2 API: JSON
    /// with `action` and `node`, or an etcd error object.
    static func isV2Answer(_ response: HTTPResponse) -> Bool {
        guard let tree = JSONTree(response.body) else { return false }
        return tree.node["errorCode"]?.int64 != nil || (tree.node["action"] != nil && tree.node["node"] != nil)
    }
}

// MARK: - v3 JSON gateway

enum V3 {
    static let rangePath = "/v3/kv/range"
    static let txnPath = "/v3/kv/txn"
    static let putPath = "/v3/kv/put"
    static let deleteRangePath = "/v3/kv/deleterange"
    static let leaseGrantPath = "/v3/lease/grant"
    static let leaseKeepAlivePath = "/v3/lease/keepalive"
    static let leaseRevokePath = "/v3/lease/revoke"
    static let watchPath = "/v3/watch"
    static let authenticatePath = "/v3/auth/authenticate"

    static func range(_ key: String) -> [UInt8] {
        Array(#"{"key":"\#(Base64.encode(key))"}"#.utf8)
    }

    /// All keys under `prefix`; `keysOnly`: without their values; `limit`: the first so many, in
    /// key order.
    static func rangePrefix(_ prefix: String, keysOnly: Bool = false, limit: Int? = nil) -> [UInt8] {
        var end = Array(prefix.utf8)
        end[end.count - 1] += 1
        return Array((#"{"key":"\#(Base64.encode(prefix))","range_end":"\#(Base64.encode(end))""# + (keysOnly ? #","keys_only":true"# : "")
            + (limit.map { #","limit":"\#($0)""# } ?? "") + "}").utf8)
    }

    /// A transaction that puts `json` if the key's `target` revision equals `revision`
    /// (CREATE 0: the key is missing; MOD n: unchanged since read), and otherwise reads the key,
    /// so a lost race costs no extra request.
    /// `also`: more operations of the success branch (putOp, deleteOp): keys beside the
    /// semaphore that change with it in one step.
    /// `unchanged`: more keys that must still be at the mod_revision given (a missing key is at 0).
    static func putIf(_ key: String, _ json: String, target: String, revision: Int64, also: [String] = [],
                      unchanged: [(key: String, revision: Int64)] = []) -> [UInt8] {
        let k = Base64.encode(key), v = Base64.encode(json)
        let field = target == "CREATE" ? "create_revision" : "mod_revision"
        let more = unchanged.map { "," + unchangedCompare($0.key, $0.revision) }
        return Array(("{\"compare\":[{\"key\":\"\(k)\",\"result\":\"EQUAL\",\"target\":\"\(target)\",\"\(field)\":\"\(revision)\"}" + more.joined() + "],"
            + "\"success\":[" + (["{\"request_put\":{\"key\":\"\(k)\",\"value\":\"\(v)\"}}"] + also).joined(separator: ",") + "],"
            + "\"failure\":[{\"request_range\":{\"key\":\"\(k)\"}}]}").utf8)
    }

    static func put(_ key: String, _ value: String, lease: String? = nil) -> [UInt8] {
        Array(("{\"key\":\"\(Base64.encode(key))\",\"value\":\"\(Base64.encode(value))\"" + (lease.map { ",\"lease\":\"\($0)\"" } ?? "") + "}").utf8)
    }

    /// A put of a transaction's branch.
    static func putOp(_ key: String, _ value: String, lease: String? = nil) -> String {
        "{\"request_put\":{\"key\":\"\(Base64.encode(key))\",\"value\":\"\(Base64.encode(value))\""
            + (lease.map { ",\"lease\":\"\($0)\"" } ?? "") + "}}"
    }

    /// A range of a transaction's branch (`body`: the fields of a range request).
    static func rangeOp(_ body: String) -> String {
        "{\"request_range\":" + body + "}"
    }

    /// The compare that `key` is still at mod_revision `revision` (a missing key is at 0).
    static func unchangedCompare(_ key: String, _ revision: Int64) -> String {
        "{\"key\":\"\(Base64.encode(key))\",\"result\":\"EQUAL\",\"target\":\"MOD\",\"mod_revision\":\"\(revision)\"}"
    }

    /// A transaction: `operations` in one step (reads see the writes before them), only if every
    /// key of `unchanged` is still at its mod_revision.
    static func txn(_ operations: [String], unchanged: [(key: String, revision: Int64)] = []) -> [UInt8] {
        let compare = unchanged.isEmpty ? "" : "\"compare\":[" + unchanged.map { unchangedCompare($0.key, $0.revision) }.joined(separator: ",") + "],"
        return Array(("{" + compare + "\"success\":[" + operations.joined(separator: ",") + "]}").utf8)
    }

    /// A delete of a transaction's branch.
    static func deleteOp(_ key: String) -> String {
        "{\"request_delete_range\":{\"key\":\"\(Base64.encode(key))\"}}"
    }

    static func watch(_ key: String, after revision: Int64) -> [UInt8] {
        Array(#"{"create_request":{"key":"\#(Base64.encode(key))","start_revision":"\#(revision + 1)"}}"#.utf8)
    }

    static func authenticate(user: String, password: String) -> [UInt8] {
        Array(("{\"name\":" + JSONText.quoted(user) + ",\"password\":" + JSONText.quoted(password) + "}").utf8)
    }

    /// An authentication or authorization refusal in a gateway answer.
    enum Refusal { case noUser, badCredentials, denied }

    /// What a failed gateway answer refuses, if anything: by its gRPC code (16 unauthenticated, 7
    /// permission denied) or HTTP status, and by etcd's own error text where the code does not
    /// tell (an empty user name comes as InvalidArgument; some versions send an invalid token as
    /// Unknown). The one place that reads etcd's texts.
    static func refusal(_ response: HTTPResponse, _ tree: JSONTree?) -> Refusal? {
        guard response.status != 200 else { return nil }
        let message = tree?.node["message"]?.string ?? tree?.node["error"]?.string ?? ""
        let code = tree?.node["code"]?.int64 ?? 0
        if message.contains("user name is empty") { return .noUser }
        if code == 16 || response.status == 401 || message.contains("invalid auth token") { return .badCredentials }
        if code == 7 || response.status == 403 || message.contains("permission denied") { return .denied }
        return nil
    }

    /// etcd's own words when a v3 answer shows its JSON gateway unable to connect to etcd (the
    /// gateway is a gRPC client of etcd's own port): HTTP 503, gRPC code 14 (unavailable), and
    /// a text of gRPC's transport or Go's network, not of etcd. nil for anything else, above all
    /// etcd itself unavailable (no leader, a request that timed out), which comes with the same
    /// code but a text that starts "etcdserver: ".
    static func gatewayCannotConnect(_ response: HTTPResponse) -> String? {
        guard response.status == 503, let tree = JSONTree(response.body), tree.node["code"]?.int64 == 14,
              let message = tree.node["message"]?.string ?? tree.node["error"]?.string,
              !message.hasPrefix("etcdserver:") else { return nil }
        let transport = ["connection closed", "use of closed network connection", "transport is closing", "transport: ",
                         "connection error", "all SubConns are in TransientFailure", "handshake failed",
                         "write tcp ", "read tcp ", "broken pipe", "connection reset by peer"]
        return transport.contains { message.contains($0) } ? message : nil
    }

    /// Checks the HTTP status and error body of a gateway answer and returns the parsed tree.
    static func answer(_ response: HTTPResponse, key: String) throws -> JSONTree {
        let tree = JSONTree(response.body)
        if response.status == 200, let tree { return tree }
        let message = tree?.node["message"]?.string ?? tree?.node["error"]?.string ?? excerpt(response.text)
        switch refusal(response, tree) {
        case .noUser?:
            throw LocksmithError(.permissionDenied, "\(key): etcd requires authentication (set etcd-username and etcd-password)")
        case .badCredentials?:
            throw LocksmithError(.permissionDenied, "\(key): etcd refused the credentials: \(message)")
        case .denied?:
            throw LocksmithError(.permissionDenied, "\(key): etcd refused access: \(message)")
        case nil:
            throw LocksmithError(.protocolError, "\(key): etcd v3 answered HTTP \(response.status): \(message)")
        }
    }

    /// The first key-value of a range answer, or nil if there is none; `revision`: the answer's.
    static func firstValue(_ node: JSONNode?, key: String, field: String = "kvs", at revision: Int64? = nil) throws -> StoredValue? {
        guard let kv = field == "kvs" ? node?["kvs"]?[0] : node?[field] else { return nil }
        guard let modified = kv["mod_revision"]?.int64 else {
            throw LocksmithError(.protocolError, "\(key): the v3 answer has no mod_revision")
        }
        let encoded = kv["value"]?.string ?? ""  // an empty value is omitted
        guard let value = Base64.decode(encoded) else {
            throw LocksmithError(.protocolError, "\(key): the v3 answer's value is not base64")
        }
        return StoredValue(bytes: value, index: modified, observed: max(modified, revision ?? 0))
    }

    static func parseRange(_ response: HTTPResponse, key: String) throws -> WireResult {
        let tree = try answer(response, key: key)
        return try firstValue(tree.node, key: key, at: tree.node["header"]?["revision"]?.int64).map(WireResult.value) ?? .missing
    }

    static func parseTxn(_ response: HTTPResponse, key: String) throws -> WireResult {
        try parseTxn(answer(response, key: key), key: key)
    }

    /// A compare-and-swap's answer, and the keys and mod_revisions that the range at `listing` of
    /// its success branch found (nil if it did not succeed, has no such response, or `listing` is nil).
    static func parseTxn(_ response: HTTPResponse, key: String, listing: Int?) throws -> (WireResult, [(key: String, index: Int64)]?) {
        let tree = try answer(response, key: key)
        let result = try parseTxn(tree, key: key)
        guard case .stored = result, let listing, let range = tree.node["responses"]?[listing]?["response_range"] else { return (result, nil) }
        return (result, keyValues(range).map { ($0.key, $0.index) })
    }

    private static func parseTxn(_ tree: JSONTree, key: String) throws -> WireResult {
        if tree.node["succeeded"]?.bool == true {
            guard let revision = tree.node["header"]?["revision"]?.int64 else {
                throw LocksmithError(.protocolError, "\(key): the v3 answer has no revision")
            }
            return .stored(revision)
        }
        // Default-valued fields are omitted: a failed transaction has no "succeeded" at all.
        let current = try firstValue(tree.node["responses"]?[0]?["response_range"], key: key, at: tree.node["header"]?["revision"]?.int64)
        return .conflict(current)
    }

    /// Every key, value and mod_revision of a prefix range answer.
    static func parseRangeAll(_ response: HTTPResponse, key: String) throws -> [(key: String, value: [UInt8]?, index: Int64)] {
        keyValues(try answer(response, key: key).node)
    }

    /// The `kvs` of a range answer (`node`: the answer, or a response_range of a transaction).
    static func keyValues(_ node: JSONNode?) -> [(key: String, value: [UInt8]?, index: Int64)] {
        guard let kvs = node?["kvs"] else { return [] }
        return (0..<kvs.count).compactMap { i in
            guard let kv = kvs[i], let k = kv["key"]?.string.flatMap(Base64.decode) else { return nil }
            return (String(decoding: k, as: UTF8.self), (Base64.decode(kv["value"]?.string ?? "") ?? []) as [UInt8]?,
                    kv["mod_revision"]?.int64 ?? 0)
        }
    }

    static func parseToken(_ response: HTTPResponse) throws -> String {
        let tree = try answer(response, key: "authentication")
        guard let token = tree.node["token"]?.string, !token.isEmpty else {
            throw LocksmithError(.protocolError, "authentication: etcd answered without a token")
        }
        return token
    }

    /// The event in one message of the watch stream (one JSON object per line), or nil for a
    /// message without one (such as the "created" confirmation).
    static func watchEvent(_ line: [UInt8]) -> WatchEvent? {
        guard let tree = JSONTree(line), let result = tree.node["result"] else { return nil }
        if result["compact_revision"] != nil || result["canceled"]?.bool == true { return .lost }
        let events = result["events"]
        guard let count = events?.count, count > 0, let last = events?[count - 1] else { return nil }
        if last["type"]?.string == "DELETE" { return .changed(nil) }
        return .changed(try? firstValue(last, key: "watch", field: "kv", at: result["header"]?["revision"]?.int64))
    }
}

func excerpt(_ text: String, limit: Int = 80) -> String {
    let flat = text.unicodeScalars.count <= limit ? text : String(text.unicodeScalars.prefix(limit).map(Character.init)) + "..."
    return JSONText.quoted(flat)
}
