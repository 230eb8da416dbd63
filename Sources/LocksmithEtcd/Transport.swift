// How a client reaches etcd: its endpoints in turn (the one that answered last first), failing
// over on connection errors, timeouts and 5xx answers; v3's authentication token; and the
// answers that are no etcd's, or that refuse our credentials, told apart from the others. Every
// backend's requests go through here (a FleetLock server's do not: it is one URL).
import Glibc
import LocksmithCore
import LocksmithSystem

/// The endpoints and credentials of one client. Belongs to one thread at a time.
final class EtcdTransport {
    let options: ClientOptions
    let http: HTTPConnection
    /// The API in use, once known: a v2 answer that is not etcd's is judged only then (in `auto`
    /// the first v2 request is the probe, whose 404 means "use v3").
    var api: EtcdAPI?
    /// The endpoint that answered last.
    var endpointInUse: String?
    /// Whether the last send() had an endpoint fail (perhaps after receiving the request) before
    /// another one answered.
    var failedBeforeAnswer = false
    private var preferred = 0
    private var token: String?

    init(options: ClientOptions, http: HTTPConnection, api: EtcdAPI?) {
        self.options = options
        self.http = http
        self.api = api
    }

    /// Forgets the v3 token (etcd answered 401 to a request made with it).
    func forgetToken() {
        token = nil
    }

    /// Endpoints in the order to try them: the one that answered last first.
    func rotation() -> [String] {
        let all = options.endpoints
        return (0..<all.count).map { all[(preferred + $0) % all.count] }
    }

    /// Sends a request to the first endpoint that answers; connection errors, timeouts and
    /// 5xx answers move on to the next. v3 requests carry the auth token (fetched, and fetched
    /// again once when etcd says it expired).
    func send(_ method: String, _ path: String, body: [UInt8]? = nil, headers: [String] = [], evenIfCancelled: Bool = false) throws -> HTTPResponse {
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
                    failures.append("\(endpoint): \(EtcdTransport.serverFailure(response))")
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
            guard api == .v2, !EtcdTransport.begins(response.body, with: #"{"action":"#),
                  !EtcdTransport.begins(response.body, with: #"{"errorCode":"#), !V2.isV2Answer(response) else { return nil }
            if response.status == 404, let version = etcdVersion(endpoint) { return Advice.noV2(version: version) }
        } else if !path.hasPrefix("/v3/") || EtcdTransport.begins(response.body, with: "{") {
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
                throw LocksmithError(.connectionFailed, EtcdTransport.serverFailure(response, to: "authentication"))
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
