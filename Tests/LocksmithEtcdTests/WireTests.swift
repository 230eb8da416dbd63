import Testing
import LocksmithCore
@testable import LocksmithEtcd

/// The requests as the original sent them (golden-outputs.md, "On the v2 wire"), and the v3
/// gateway's encodings, checked without a server.
@Suite struct WireTests {
    let groupKey = try! GroupKey.key(group: "a b/c")

    @Test func v2RequestsAreTheOriginals() {
        let json = #"{"semaphore":1,"max":1,"holders":null}"#
        let create = V2.create(groupKey, json)
        #expect(create.method == "PUT")
        #expect(create.path == "/v2/keys/coreos.com/updateengine/rebootlock/groups/a+b%252Fc/semaphore?prevExist=false")
        #expect(String(decoding: create.body, as: UTF8.self) == "value=%7B%22semaphore%22%3A1%2C%22max%22%3A1%2C%22holders%22%3Anull%7D")
        let cas = V2.compareAndSwap(GroupKey.defaultKey, json, index: 42)
        #expect(cas.path == "/v2/keys/coreos.com/updateengine/rebootlock/semaphore?prevIndex=42")
        #expect(cas.body == create.body)
        #expect(V2.get(GroupKey.defaultKey).path == "/v2/keys/coreos.com/updateengine/rebootlock/semaphore?quorum=true")
        #expect(V2.watch(GroupKey.defaultKey, after: 7).path.hasSuffix("?wait=true&waitIndex=8"))
    }

    /// etcd 3.4's JSON gateway that cannot connect to etcd itself (issue 25, item 5), told apart
    /// from etcd unavailable (the same HTTP status and gRPC code, etcd's own words).
    @Test func aGatewayThatCannotConnectIsNotAnUnavailableEtcd() {
        func answer(_ status: Int, _ text: String) -> HTTPResponse { HTTPResponse(status: status, body: Array(text.utf8)) }
        #expect(V3.gatewayCannotConnect(answer(503, #"{"error":"connection closed","message":"connection closed","code":14}"#)) == "connection closed")
        let pipe = #"{"error":"write tcp 127.0.0.1:51422->127.0.0.1:2379: write: broken pipe","message":"write tcp 127.0.0.1:51422->127.0.0.1:2379: write: broken pipe","code":14}"#
        #expect(V3.gatewayCannotConnect(answer(503, pipe)) == "write tcp 127.0.0.1:51422->127.0.0.1:2379: write: broken pipe")
        for unavailable in ["etcdserver: no leader", "etcdserver: request timed out", "etcdserver: leader changed"] {
            #expect(V3.gatewayCannotConnect(answer(503, #"{"error":"\#(unavailable)","message":"\#(unavailable)","code":14}"#)) == nil)
        }
        #expect(V3.gatewayCannotConnect(answer(500, #"{"error":"connection closed","message":"connection closed","code":14}"#)) == nil)
        #expect(V3.gatewayCannotConnect(answer(503, #"{"error":"connection closed","message":"connection closed","code":2}"#)) == nil)
        #expect(V3.gatewayCannotConnect(answer(503, "connection closed")) == nil)
    }

    @Test func v2AnswersAreRead() throws {
        func answer(_ status: Int, _ text: String) -> HTTPResponse { HTTPResponse(status: status, body: Array(text.utf8)) }
        let key = GroupKey.defaultKey
        guard case .value(let v) = try V2.parse(answer(200, #"{"action":"get","node":{"key":"/k","value":"{\"max\":2}","modifiedIndex":9,"createdIndex":3}}"#), key: key) else {
            Issue.record("not a value"); return
        }
        #expect(v.index == 9 && String(decoding: v.bytes, as: UTF8.self) == #"{"max":2}"#)
        guard case .missing = try V2.parse(answer(404, #"{"errorCode":100,"message":"Key not found","cause":"/k","index":5}"#), key: key) else {
            Issue.record("not missing"); return
        }
        guard case .conflict(nil) = try V2.parse(answer(412, #"{"errorCode":101,"message":"Compare failed","cause":"[1 != 2]","index":5}"#), key: key) else {
            Issue.record("not a conflict"); return
        }
        guard case .conflict(nil) = try V2.parse(answer(412, #"{"errorCode":105,"message":"Key already exists","cause":"/k","index":5}"#), key: key) else {
            Issue.record("not a conflict"); return
        }
        guard case .stored(11) = try V2.parse(answer(200, #"{"action":"compareAndSwap","node":{"key":"/k","value":"x","modifiedIndex":11,"createdIndex":3},"prevNode":{"key":"/k","value":"y","modifiedIndex":9,"createdIndex":3}}"#), key: key) else {
            Issue.record("not stored"); return
        }
        #expect(throws: LocksmithError.self) { try V2.parse(answer(200, "<html>"), key: key) }
        #expect(throws: LocksmithError.self) { try V2.parse(answer(200, #"{"action":"get","node":{"key":"/k","dir":true,"modifiedIndex":4}}"#), key: key) }
        #expect(V2.isV2Answer(answer(404, #"{"errorCode":100,"message":"Key not found"}"#)))
        #expect(!V2.isV2Answer(answer(404, "404 page not found\n")))
    }

    @Test func v3RequestsAndAnswers() throws {
        #expect(String(decoding: V3.range("foo"), as: UTF8.self) == #"{"key":"Zm9v"}"#)
        let txn = String(decoding: V3.putIf("foo", "bar", target: "MOD", revision: 12), as: UTF8.self)
        #expect(txn == #"{"compare":[{"key":"Zm9v","result":"EQUAL","target":"MOD","mod_revision":"12"}],"success":[{"request_put":{"key":"Zm9v","value":"YmFy"}}],"failure":[{"request_range":{"key":"Zm9v"}}]}"#)
        #expect(String(decoding: V3.putIf("foo", "bar", target: "CREATE", revision: 0), as: UTF8.self).contains(#""create_revision":"0""#))
        let failed = HTTPResponse(status: 200, body: Array(#"{"header":{"revision":"20"},"responses":[{"response_range":{"header":{"revision":"20"},"kvs":[{"key":"Zm9v","create_revision":"2","mod_revision":"19","version":"3","value":"YmF6"}],"count":"1"}}]}"#.utf8))
        guard case .conflict(let current?) = try V3.parseTxn(failed, key: "foo") else { Issue.record("not a conflict"); return }
        #expect(current.index == 19 && current.bytes == Array("baz".utf8))
        let ok = HTTPResponse(status: 200, body: Array(#"{"header":{"revision":"21"},"succeeded":true,"responses":[{"response_put":{"header":{"revision":"21"}}}]}"#.utf8))
        guard case .stored(21) = try V3.parseTxn(ok, key: "foo") else { Issue.record("not stored"); return }
        let empty = HTTPResponse(status: 200, body: Array(#"{"header":{"revision":"21"}}"#.utf8))
        guard case .missing = try V3.parseRange(empty, key: "foo") else { Issue.record("not missing"); return }
        let error = HTTPResponse(status: 400, body: Array(#"{"error":"etcdserver: user name is empty","message":"etcdserver: user name is empty","code":3}"#.utf8))
        #expect(throws: LocksmithError.self) { try V3.parseRange(error, key: "foo") }
    }

    @Test func v3WatchStream() {
        #expect(V3.watchEvent(Array(#"{"result":{"header":{"revision":"5"},"created":true}}"#.utf8)) == nil)
        guard case .changed(let v?)? = V3.watchEvent(Array(#"{"result":{"header":{"revision":"6"},"events":[{"kv":{"key":"Zm9v","mod_revision":"6","value":"YmFy"}}]}}"#.utf8)) else {
            Issue.record("no event"); return
        }
        #expect(v.index == 6 && v.bytes == Array("bar".utf8))
        guard case .changed(nil)? = V3.watchEvent(Array(#"{"result":{"events":[{"type":"DELETE","kv":{"key":"Zm9v","mod_revision":"7"}}]}}"#.utf8)) else {
            Issue.record("no delete"); return
        }
        guard case .lost? = V3.watchEvent(Array(#"{"result":{"compact_revision":"9","canceled":true}}"#.utf8)) else {
            Issue.record("no loss"); return
        }
    }

    @Test(arguments: [("", ""), ("f", "Zg=="), ("fo", "Zm8="), ("foo", "Zm9v"), ("foob", "Zm9vYg=="), ("\u{1}\u{ff}", "Af8=")])
    func base64(plain: String, encoded: String) {
        let bytes: [UInt8] = plain == "\u{1}\u{ff}" ? [1, 255] : Array(plain.utf8)
        #expect(Base64.encode(bytes) == encoded)
        #expect(Base64.decode(encoded) == bytes)
    }

    @Test func base64RefusesGarbage() {
        #expect(Base64.decode("Zm9v!") == nil)
        #expect(Base64.decode("Zg==Zg") == nil)
    }

    @Test func options() throws {
        var o = ClientOptions()
        #expect(o.endpoints == ["http://127.0.0.1:2379", "http://127.0.0.1:4001"])
        try o.set("endpoint", "http://a:2379/, https://b:2379")
        try o.set("endpoint", "http://c:2379")
        #expect(o.endpoints == ["http://a:2379", "https://b:2379", "http://c:2379"])
        try o.set("endpoint", "")
        #expect(o.endpoints == ClientOptions.defaultEndpoints)
        for bad in ["127.0.0.1:2379", "ftp://x", "http://", ",", "http:// x"] {
            #expect(throws: LocksmithError.self) { try o.set("endpoint", bad) }
        }
        try o.set("timeout", "1.5s")
        #expect(o.timeoutMilliseconds == 1500)
        for bad in ["0", "-1s", "2h", "soon", "500us"] {
            #expect(throws: LocksmithError.self) { try o.set("timeout", bad) }
        }
        try o.set("etcd-api", "V3")
        #expect(o.api == .v3)
        #expect(throws: LocksmithError.self) { try o.set("etcd-api", "v4") }
        #expect(throws: LocksmithError.self) { try o.set("etcd-endpoint", "x") }
        #expect(ClientOptions.variable(prefix: "LOCKSMITHCTL", option: "etcd-cafile") == "LOCKSMITHCTL_ETCD_CAFILE")
        #expect(ClientOptions.variable(prefix: "ab-c", option: "queue-ttl") == "AB-C_QUEUE_TTL")  // the prefix keeps its dashes
        #expect(ClientOptions.variable(prefix: "P", option: "stra\u{DF}e-x") == "P_STRASSE_X")  // not ASCII: Unicode's rules
        var e = ClientOptions()
        try e.set("endpoint", "http://flag:1")
        let env = ["LOCKSMITHD_ENDPOINT": "http://env:1,http://env:2", "LOCKSMITHD_GROUP": "lb", "LOCKSMITHD_ETCD_USERNAME": ""]
        #expect(try e.loadEnvironment(prefix: "LOCKSMITHD", lookup: { env[$0] }) == 2)
        #expect(e.endpoints == ["http://env:1", "http://env:2"] && e.group == "lb" && e.username == nil)
        #expect(throws: LocksmithError.self) { try e.loadEnvironment(prefix: "LOCKSMITHD", lookup: { $0 == "LOCKSMITHD_TIMEOUT" ? "x" : nil }) }
    }
}

/// FleetLock's requests and what its answers mean (the `fleetlock-url` client), without a server.
@Suite struct FleetLockWireTests {
    func answer(_ status: Int, _ text: String) -> HTTPResponse { HTTPResponse(status: status, body: Array(text.utf8)) }

    @Test func bodyAndGroups() throws {
        let server = try FleetLockServer(url: "http://h:3333/base", group: "")
        #expect(server.base == "http://h:3333/base/")
        #expect(server.group == "default")
        #expect(String(decoding: server.body(id: "a\"b"), as: UTF8.self) == #"{"client_params":{"id":"a\"b","group":"default"}}"#)
        #expect(try FleetLockServer.group(of: "web-1.eu") == "web-1.eu")
        for bad in ["web_1", "a b", "é", String(repeating: "a", count: 256)] {
            #expect(throws: LocksmithError.self) { try FleetLockServer.group(of: bad) }
        }
    }

    @Test func answers() throws {
        let server = try FleetLockServer(url: "http://h/", group: "web")
        #expect(server.outcome(of: answer(200, ""), call: "pre-reboot") == nil)
        // airlock's refusal, and ours: no slot now.
        let full = server.outcome(of: answer(500, #"{"kind":"failed_lock","value":"semaphore full"}"#), call: "pre-reboot")
        #expect(full?.kind == .busy)
        #expect(full?.message == #"the FleetLock server http://h/ granted no slot (HTTP 500: failed_lock "semaphore full")"#)
        // etcd out of reach behind the server: perhaps taken.
        #expect(server.outcome(of: answer(503, #"{"kind":"failed_lock","value":"etcd"}"#), call: "pre-reboot")?.kind == .connectionFailed)
        #expect(server.outcome(of: answer(500, #"{"kind":"failed_unlock","value":"x"}"#), call: "steady-state")?.kind == .connectionFailed)
        #expect(server.outcome(of: answer(400, #"{"kind":"unknown_group","value":"no"}"#), call: "pre-reboot")?.kind == .invalidArgument)
        #expect(server.outcome(of: answer(302, ""), call: "pre-reboot")?.kind == .protocolError)
        #expect(server.outcome(of: answer(404, "<html>"), call: "pre-reboot")?.message.contains("has no pre-reboot call (HTTP 404)") == true)
        // A kind that is not an identifier is not shown as one; the value is quoted and bounded.
        let odd = server.outcome(of: answer(500, #"{"kind":"\u001b[31m","value":"\u001b[31m red"}"#), call: "pre-reboot")
        #expect(odd?.kind == .connectionFailed)
        #expect(odd?.message.contains("\u{1b}") == false)
        let long = server.outcome(of: answer(400, #"{"kind":"x","value":""# + String(repeating: "v", count: 5000) + #""}"#), call: "pre-reboot")
        #expect((long?.message.count ?? 0) < 400)
    }

    @Test func theOption() throws {
        var options = ClientOptions()
        try options.set("fleetlock-url", "https://lock.example:3333/")
        #expect(options.fleetLockURL == "https://lock.example:3333")
        #expect(options.display("fleetlock-url")?.value == "https://lock.example:3333")
        for bad in ["lock.example", "http://u:p@h/", "http://h/a b", "http://h/\u{7}", "http://h/?x"] {
            #expect(throws: LocksmithError.self) { try options.set("fleetlock-url", bad) }
        }
        try options.set("fleetlock-url", "")
        #expect(options.fleetLockURL == nil)
    }
}

/// What libcurl's TLS failures are explained as (docs/errors.md), without a server.
@Suite struct TLSAdviceTests {
    @Test func eachFailureGetsItsAdvice() {
        let none = TLSFiles(), withCert = TLSFiles(caFile: "/ca.pem", certFile: "/c.pem", keyFile: "/k.pem")
        let closed = "getpeername() failed with errno 107: Transport endpoint is not connected"
        #expect(HTTPConnection.tlsAdvice(closed, tls: none)?.hasPrefix("the server asked for a client certificate and none was given") == true)
        #expect(HTTPConnection.tlsAdvice("OpenSSL SSL_read: error:0A000412:SSL routines::sslv3 alert bad certificate", tls: withCert)?
            .hasPrefix("the server refused the client certificate /c.pem") == true)
        #expect(HTTPConnection.tlsAdvice("SSL certificate problem: unable to get local issuer certificate", tls: none)?.contains("etcd-cafile") == true)
        #expect(HTTPConnection.tlsAdvice("SSL certificate problem: unable to get local issuer certificate", tls: withCert)?.contains("the CA in /ca.pem") == true)
        #expect(HTTPConnection.tlsAdvice("SSL: no alternative certificate subject name matches target host name '127.0.0.1'", tls: withCert)?
            .contains("not made out to the host name") == true)
        #expect(HTTPConnection.tlsAdvice("Failed to connect to 127.0.0.1 port 1: Connection refused", tls: none) == nil)
    }
}
