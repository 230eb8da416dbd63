// The FleetLock side of the lock client: with the `fleetlock-url` option, a client takes and gives
// back its slot through a FleetLock server (locksmith-fleetlockd, airlock) instead of etcd. The
// protocol has two calls, pre-reboot and steady-state, and no way to read the semaphore or to
// wait for a change: waiting is polling, with the library's backoff.
import Glibc
import LocksmithCore
import LocksmithSystem

/// A FleetLock server: its base URL and the group asked for.
public struct FleetLockServer: Sendable {
    /// The base URL, ending in "/": the calls are `<base>v1/pre-reboot` and `<base>v1/steady-state`.
    public let base: String
    /// The FleetLock group: the locksmith group, or `default` for the default group (the mapping
    /// locksmith-fleetlockd serves).
    public let group: String

    public init(url: String, group: String) throws {
        base = url.hasSuffix("/") ? url : url + "/"
        self.group = try FleetLockServer.group(of: group)
    }

    /// The FleetLock name of locksmith group `group` ("" is FleetLock's `default`).
    public static func group(of group: String) throws -> String {
        if group.isEmpty { return "default" }
        try checkGroup(group)
        return group
    }

    /// The longest FleetLock group name.
    public static let maxGroupBytes = 128

    /// The one rule for FleetLock group names, the client's and locksmith-fleetlockd's
    /// (locksmith_fleetlock_group_check): 1 to 128 bytes of ASCII letters, digits, '.' and '-'
    /// (FleetLock's ^[a-zA-Z0-9.-]+$, bounded as the server bounds it), and not "." or "..",
    /// which as a path segment of an etcd v2 key would name this directory or the one above.
    public static func checkGroup(_ group: String) throws {
        let bytes = group.utf8
        guard !bytes.isEmpty, bytes.count <= maxGroupBytes, group != ".", group != "..", bytes.allSatisfy({ isGroupByte($0) }) else {
            throw LocksmithError(.invalidArgument, "group \(JSONText.quotedExcerpt(group)) cannot be named to a FleetLock server: FleetLock groups are ASCII letters, digits, '.' and '-' (1 to \(maxGroupBytes) of them), and not . or ..", option: "group")
        }
    }

    private static func isGroupByte(_ c: UInt8) -> Bool {
        (48...57).contains(c) || (65...90).contains(c) || (97...122).contains(c) || c == 46 || c == 45
    }

    /// The request body: FleetLock's client parameters, as JSON.
    func body(id: String) -> [UInt8] {
        Array("{\"client_params\":{\"id\":\(JSONText.quoted(id)),\"group\":\(JSONText.quoted(group))}}".utf8)
    }

    /// What a call's answer means: nil for success (200), else the error to throw. A refusal of
    /// pre-reboot (`failed_lock` with a 4xx or 500 status) is `.busy`: the server says no slot is
    /// free (airlock also says so on its own write conflicts; the caller asks again later). A
    /// gateway error (502, 503, 504) or another 5xx is a server that could not finish: for a
    /// pre-reboot call, the slot may have been taken, as with a lost answer. The server's text is
    /// quoted, bounded, in the message.
    func outcome(of response: HTTPResponse, call: String) -> LocksmithError? {
        if response.status == 200 { return nil }
        let where_ = "the FleetLock server \(base)"
        var kind = "", value = ""
        if response.body.count <= 16 << 10, let tree = JSONTree(response.body) {
            kind = tree.node["kind"]?.string ?? ""
            value = tree.node["value"]?.string ?? ""
        }
        // Kinds are short identifiers; anything else is shown as the server's text only.
        if kind.utf8.count > 64 || !kind.utf8.allSatisfy({ (97...122).contains($0) || (48...57).contains($0) || $0 == 95 }) { kind = "" }
        let said = kind.isEmpty ? (value.isEmpty ? "" : ": " + JSONText.quotedExcerpt(value)) : ": \(kind)" + (value.isEmpty ? "" : " " + JSONText.quotedExcerpt(value))
        let status = response.status
        if call == "pre-reboot" && kind == "failed_lock" && (status == 500 || (400..<500).contains(status)) {
            return LocksmithError(.busy, "\(where_) granted no slot (HTTP \(status)\(said))")
        }
        switch status {
        case 300..<400:
            return LocksmithError(.protocolError, "\(where_) answered \(call) with a redirect (HTTP \(status)); FleetLock clients do not follow redirects: give the final URL as fleetlock-url")
        case 404, 405:
            return LocksmithError(.protocolError, "\(where_) has no \(call) call (HTTP \(status)\(said)): is fleetlock-url the base URL of a FleetLock server (the part before /v1/)?")
        case 400..<500:
            return LocksmithError(.invalidArgument, "\(where_) refused \(call) (HTTP \(status)\(said))")
        case 500..<600:
            return LocksmithError(.connectionFailed, "\(where_) could not finish \(call) (HTTP \(status)\(said))")
        default:
            return LocksmithError(.protocolError, "\(where_) answered \(call) with HTTP \(status)\(said)")
        }
    }
}

/// A FleetLock server as the backend: lock is its pre-reboot call, unlock its steady-state call,
/// acquire polls pre-reboot with the library's backoff, wait sleeps its whole time. It has nothing
/// of etcd's keys: every other request fails with EOPNOTSUPP saying so.
final class FleetLockBackend: Backend {
    let server: FleetLockServer
    let transport: EtcdTransport

    init(server: FleetLockServer, transport: EtcdTransport) {
        self.server = server
        self.transport = transport
    }

    private var http: HTTPConnection { transport.http }

    // MARK: The slots

    func lock(_ holder: String, client: EtcdClient) throws {
        try call("pre-reboot", holder: holder)
    }

    func unlock(_ holder: String, client: EtcdClient) throws {
        try call("steady-state", holder: holder)
    }

    /// One FleetLock call (`pre-reboot` or `steady-state`) for `holder`: no retry here (pre-reboot
    /// is recursive and steady-state idempotent, so the caller may simply ask again).
    private func call(_ call: String, holder: String) throws {
        let url = server.base + "v1/" + call
        let response: HTTPResponse
        do {
            response = try http.perform(method: "POST", url: url, body: server.body(id: holder),
                                        headers: ["fleet-lock-protocol: true", "Content-Type: application/json"],
                                        timeoutMilliseconds: transport.options.timeoutMilliseconds)
        } catch let error as LocksmithError where error.kind == .connectionFailed || error.kind == .timedOut {
            throw LocksmithError(error.kind, "the FleetLock server \(server.base) did not answer \(call): \(error.message)")
        }
        transport.endpointInUse = server.base
        if let error = server.outcome(of: response, call: call) { throw error }
    }

    /// Waiting for a change, without a watch: FleetLock cannot tell, so this sleeps the whole
    /// time (ending early only for a cancel or the client's deadline) and says "no change".
    func wait(timeoutMilliseconds: Int, client: EtcdClient) throws -> Bool {
        let end = Clock.monotonicMilliseconds() + max(timeoutMilliseconds, 0)
        while true {
            try client.checkCancelled()
            let now = Clock.monotonicMilliseconds()
            if let limit = http.deadline, now >= limit { throw LocksmithError(.timedOut, "the client's deadline passed") }
            if now >= end { return false }
            Clock.sleep(milliseconds: min(end - now, 250, (http.deadline ?? Int.max) - now))
        }
    }

    /// pre-reboot, and while no slot is granted, again after the library's backoff (5 s doubling
    /// to 5 min). `progress(0)` comes before each attempt (false declines), `progress(-1)` after
    /// each refusal; there is no line to report.
    func acquire(_ holder: String, timeoutMilliseconds: Int?, progress: ((Int) -> Bool)?, client: EtcdClient) throws -> QueueOutcome {
        let deadline = timeoutMilliseconds.map { Clock.monotonicMilliseconds() + max($0, 0) }
        var attempt = 0
        while true {
            try client.checkCancelled()
            if progress?(0) == false { return .declined }
            do {
                try call("pre-reboot", holder: holder)
                return .taken
            } catch let error as LocksmithError where error.kind == .busy {
            }
            if progress?(-1) == false { return .declined }
            let pause = Int(Backoff.delay(attempt: attempt)) * 1000
            attempt += 1
            let left = deadline.map { $0 - Clock.monotonicMilliseconds() } ?? Int.max
            if left <= 0 { return .timedOut }
            // The last wait ends at the deadline; the attempt after it is the last one.
            _ = try wait(timeoutMilliseconds: min(pause, left), client: client)
        }
    }

    // MARK: What FleetLock cannot do

    /// Everything but taking and giving back a slot.
    private var unsupported: LocksmithError {
        LocksmithError(.system(EOPNOTSUPP), "\(server.base) is a FleetLock server (fleetlock-url): it can only take a slot (lock) and give one back (unlock); it cannot show the semaphore, set max, list groups or holders, or report changes. Ask etcd for those (endpoint), or read the server's /metrics")
    }

    func read(_ key: String) throws -> WireResult { throw unsupported }
    func create(_ json: String) throws -> WireResult { throw unsupported }
    func write(_ json: String, over index: Int64, holders: Int, side: [SideWrite], listRecords: Bool,
               unchanged: [(key: String, revision: Int64)]) throws -> (WireResult, ListedKeys?) { throw unsupported }
    func afterWrite(_ side: [SideWrite]) {}
    func put(_ key: String, _ value: String) throws { throw unsupported }
    func list(_ directory: String, label: String) throws -> [(key: String, value: [UInt8]?, index: Int64)] { throw unsupported }
    func removeRecords(_ stale: ListedKeys) -> Bool { true }
    func watch(_ key: String, at endpoint: String, after index: Int64, timeoutMilliseconds: Int) throws -> WatchEvent { throw unsupported }
    func join(value: String, ttl: Int) throws -> (QueueTicket, QueueListing) { throw unsupported }
    func renew(_ ticket: QueueTicket, ttl: Int) throws -> Int64? { throw unsupported }
    func leave(_ ticket: QueueTicket) {}
    func listQueue(before ticket: QueueTicket?, semaphore: Bool) throws -> QueueListing { throw unsupported }
    var historyEvents: Int64? { nil }
    func watchStart(listing: Int64, entry: Int64) -> Int64 { listing }
    var listsSemaphoreWithQueue: Bool { false }
}
