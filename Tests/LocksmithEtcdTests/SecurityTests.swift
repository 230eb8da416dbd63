import Glibc
import Synchronization
import Testing
import LocksmithCore
@testable import LocksmithEtcd
import LocksmithSystem

/// TLS and authentication against real etcd servers configured for them.
@Suite(.serialized) struct SecurityTests {
    static let certificates: TestCertificates = {
        do { return try TestCertificates() } catch { fatalError("\(error)") }
    }()

    func client(_ api: EtcdAPI, _ server: EtcdServer, _ settings: [(String, String)]) throws -> EtcdClient {
        var options = ClientOptions()
        try options.set("endpoint", server.endpoint)
        try options.set("group", uniqueGroup("secure"))
        try options.set("etcd-api", api.rawValue)
        try options.set("timeout", "3s")
        for (name, value) in settings { try options.set(name, value) }
        return try EtcdClient(options: options)
    }

    func expectFailure(_ body: () throws -> Void, kind: LocksmithError.Kind, mentioning fragments: [String],
                       never secret: String? = nil) {
        do {
            try body()
            Issue.record("succeeded")
        } catch let error as LocksmithError {
            #expect(error.kind == kind, "\(error.message)")
            for f in fragments { #expect(error.message.contains(f), "\(error.message)") }
            if let secret { #expect(!error.message.contains(secret)) }
        } catch {
            Issue.record("\(error)")
        }
    }

    @Test(arguments: bothAPIs)
    func caFileAloneVerifiesTheServer(api: EtcdAPI) throws {
        let certs = SecurityTests.certificates
        let server = try EtcdServer(certificates: certs)
        let c = try client(api, server, [("etcd-cafile", certs.ca)])
        try c.lock("m")
        #expect(try c.get().holders == ["m"])
        #expect(c.endpointInUse?.hasPrefix("https://") == true)
        // Another CA, or none at all (the system's store): verification fails, it is never skipped.
        expectFailure({ _ = try self.client(api, server, [("etcd-cafile", certs.otherCA)]).get() },
                      kind: .connectionFailed, mentioning: [server.endpoint, "certificate"])
        expectFailure({ _ = try self.client(api, server, []).get() },
                      kind: .connectionFailed, mentioning: [server.endpoint, "certificate"])
    }

    @Test(arguments: bothAPIs)
    func clientCertificates(api: EtcdAPI) throws {
        let certs = SecurityTests.certificates
        let server = try EtcdServer(certificates: certs, clientCertificates: true)
        let c = try client(api, server, [("etcd-cafile", certs.ca), ("etcd-certfile", certs.clientCert), ("etcd-keyfile", certs.clientKey)])
        try c.lock("m")
        try c.unlock("m")
        // Without a client certificate the server refuses the handshake.
        expectFailure({ _ = try self.client(api, server, [("etcd-cafile", certs.ca)]).get() },
                      kind: .connectionFailed, mentioning: [server.endpoint, "the server asked for a client certificate and none was given"])
    }

    @Test func unreadableOrBrokenTLSFilesAreClearErrors() throws {
        var options = ClientOptions()
        #expect(throws: LocksmithError.self) { try options.set("etcd-cafile", "/nonexistent/ca.pem") }
        do { try options.set("etcd-keyfile", "/nonexistent/key.pem") } catch let e as LocksmithError {
            #expect(e.message == "etcd-keyfile: cannot read /nonexistent/key.pem: No such file or directory")
        }
        let certs = SecurityTests.certificates
        let server = try EtcdServer(certificates: certs)
        // A file that is not a certificate fails the request, naming the endpoint and the reason.
        expectFailure({ _ = try self.client(.v3, server, [("etcd-cafile", certs.dir + "/server.ext")]).get() },
                      kind: .connectionFailed, mentioning: [server.endpoint])
    }

    @Test func v3AuthenticationWithTokensThatExpire() throws {
        let server = try EtcdServer(extraArguments: ["--auth-token", "simple", "--auth-token-ttl", "1"])
        let raw = try RawEtcd(server)
        for (path, body) in [("/v3/auth/user/add", #"{"name":"root","password":"s3cret-pw"}"#),
                             ("/v3/auth/role/add", #"{"name":"root"}"#),
                             ("/v3/auth/user/grant", #"{"user":"root","role":"root"}"#),
                             ("/v3/auth/enable", "{}")] {
            _ = try raw.http.perform(method: "POST", url: server.endpoint + path, body: Array(body.utf8), timeoutMilliseconds: 5000)
        }
        let traced = Mutex<[String]>([])
        let c = try client(.v3, server, [("etcd-username", "root"), ("etcd-password", "s3cret-pw")])
        c.trace = { line in traced.withLock { $0.append(line) } }
        try c.lock("m")
        Clock.sleep(milliseconds: 2_500)  // the token expires
        try c.unlock("m")
        let lines = traced.withLock { $0 }
        #expect(lines.filter { $0.contains("/v3/auth/authenticate") }.count >= 2, "\(lines)")
        #expect(!lines.joined().contains("s3cret-pw"))

        expectFailure({ _ = try self.client(.v3, server, [("etcd-username", "root"), ("etcd-password", "wrong-pw")]).get() },
                      kind: .permissionDenied, mentioning: ["root"], never: "wrong-pw")
        expectFailure({ _ = try self.client(.v3, server, []).get() }, kind: .permissionDenied, mentioning: [])
    }

    @Test func v2BasicAuthentication() throws {
        let server = try EtcdServer()
        let raw = try RawEtcd(server)
        _ = try raw.http.perform(method: "PUT", url: server.endpoint + "/v2/auth/users/root",
                                 body: Array(#"{"user":"root","password":"s3cret-pw"}"#.utf8), timeoutMilliseconds: 5000)
        _ = try raw.http.perform(method: "PUT", url: server.endpoint + "/v2/auth/enable", timeoutMilliseconds: 5000)
        raw.http.settings.basicAuth = ("root", "s3cret-pw")
        // Take the guest role's default full access away, so that only root may write.
        let revoke = try raw.http.perform(method: "PUT", url: server.endpoint + "/v2/auth/roles/guest",
                                          body: Array(#"{"role":"guest","revoke":{"kv":{"read":["/*"],"write":["/*"]}}}"#.utf8),
                                          timeoutMilliseconds: 5000)
        #expect(revoke.status == 200, "\(revoke.text)")

        let c = try client(.v2, server, [("etcd-username", "root"), ("etcd-password", "s3cret-pw")])
        try c.lock("m")
        #expect(try c.get().holders == ["m"])
        expectFailure({ _ = try self.client(.v2, server, [("etcd-username", "root"), ("etcd-password", "wrong-pw")]).get() },
                      kind: .permissionDenied, mentioning: [], never: "wrong-pw")
        expectFailure({ _ = try self.client(.v2, server, []).get() }, kind: .permissionDenied, mentioning: [])
    }

    @Test func passwordFromAFile() throws {
        let certs = SecurityTests.certificates
        let file = certs.dir + "/password"
        let f = fopen(file, "w")!
        fputs("from-file-pw\n", f)
        fclose(f)
        var options = ClientOptions()
        try options.set("etcd-password-file", file)
        #expect(options.password == "from-file-pw")
    }
}
