// A real etcd (Debian's etcd-server) for the tests: started on free loopback ports in a
// temporary data directory, stopped and removed when the test process exits, also after a failed
// test. Tests/harness/run-tests kills any that a crashed test process left behind (their data
// directories are named locksmith-test-etcd-*).
import Glibc
import LocksmithCore
@testable import LocksmithEtcd
import LocksmithSystem
import Synchronization

/// Every etcd this process started, killed at exit. Tests of different suites start and stop
/// servers on their own threads at the same time, so the list is behind a lock.
private let runningServers = Mutex<[pid_t]>([])
private let exitHook: Void = {
    atexit {
        for pid in runningServers.withLock({ $0 }) { kill(pid, SIGKILL) }
    }
}()

final class EtcdServer: @unchecked Sendable {
    let dataDir: String
    private(set) var clientPort: Int
    private(set) var peerPort: Int
    let enableV2: Bool
    let extraArguments: [String]
    private(set) var pid: pid_t = 0

    let certificates: TestCertificates?
    var scheme: String { certificates == nil ? "http" : "https" }
    var endpoint: String { "\(scheme)://127.0.0.1:\(clientPort)" }

    /// Starts etcd and waits until it answers. With `certificates`, it serves https (and, with
    /// `clientCertificates`, asks clients for a certificate signed by the test CA).
    init(enableV2: Bool = true, certificates: TestCertificates? = nil, clientCertificates: Bool = false,
         extraArguments: [String] = []) throws {
        self.certificates = certificates
        var extra = extraArguments
        if let certificates {
            extra += ["--cert-file", certificates.serverCert, "--key-file", certificates.serverKey]
            if clientCertificates { extra += ["--client-cert-auth", "--trusted-ca-file", certificates.ca] }
        }
        _ = exitHook
        let base = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp"
        var template = Array("\(base)/locksmith-test-etcd-XXXXXX".utf8CString)
        dataDir = template.withUnsafeMutableBufferPointer { String(cString: mkdtemp($0.baseAddress!)!) }
        clientPort = EtcdServer.freePort()
        peerPort = EtcdServer.freePort()
        self.enableV2 = enableV2
        self.extraArguments = extra
        // A port found free can be taken before etcd binds it (by another test's server or an
        // outgoing connection): then start again on other ports.
        for attempt in 1... {
            do {
                try start()
                return
            } catch let error as LocksmithError where error.kind == .connectionFailed && attempt < 4 && log().contains("address already in use") {
                clientPort = EtcdServer.freePort()
                peerPort = EtcdServer.freePort()
                _ = system("rm -rf '\(dataDir)/data' '\(dataDir)/etcd.log'")
            }
        }
    }

    deinit {
        stop(signal: SIGKILL)
        _ = system("rm -rf '\(dataDir)'")
    }

    func start() throws {
        let arguments = [
            "etcd", "--name", "test", "--data-dir", dataDir + "/data",
            "--listen-client-urls", "\(scheme)://127.0.0.1:\(clientPort)",
            "--advertise-client-urls", "\(scheme)://127.0.0.1:\(clientPort)",
            "--listen-peer-urls", "http://127.0.0.1:\(peerPort)",
            "--initial-advertise-peer-urls", "http://127.0.0.1:\(peerPort)",
            "--initial-cluster", "test=http://127.0.0.1:\(peerPort)",
            "--enable-v2=\(enableV2)", "--log-outputs", dataDir + "/etcd.log", "--logger", "zap",
        ] + extraArguments
        var fileActions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&fileActions)
        defer { posix_spawn_file_actions_destroy(&fileActions) }
        posix_spawn_file_actions_addopen(&fileActions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_addopen(&fileActions, 1, dataDir + "/stdout.log", O_WRONLY | O_CREAT | O_APPEND, 0o644)
        posix_spawn_file_actions_addopen(&fileActions, 2, dataDir + "/stderr.log", O_WRONLY | O_CREAT | O_APPEND, 0o644)
        var argv: [UnsafeMutablePointer<CChar>?] = arguments.map { strdup($0) } + [nil]
        defer { argv.forEach { free($0) } }
        var child: pid_t = 0
        let r = posix_spawnp(&child, "etcd", &fileActions, nil, &argv, environ)
        guard r == 0 else { throw LocksmithError(.system(r), "cannot start etcd: \(String(cString: strerror(r)))") }
        pid = child
        runningServers.withLock { $0.append(child) }
        try waitUntilServing()
    }

    /// Stops etcd (SIGTERM by default) and waits for it to exit.
    func stop(signal: Int32 = SIGTERM) {
        guard pid > 0 else { return }
        kill(pid, signal)
        var status: Int32 = 0
        waitpid(pid, &status, 0)
        runningServers.withLock { [pid] servers in servers.removeAll { $0 == pid } }
        pid = 0
    }

    func restart() throws {
        stop()
        try start()
    }

    private func waitUntilServing() throws {
        let tls = certificates.map { TLSFiles(caFile: $0.ca, certFile: $0.clientCert, keyFile: $0.clientKey) } ?? TLSFiles()
        let http = try HTTPConnection(settings: ConnectionSettings(tls: tls))
        let deadline = Clock.monotonicMilliseconds() + 20_000
        while Clock.monotonicMilliseconds() < deadline {
            if let r = try? http.perform(method: "GET", url: endpoint + "/version", timeoutMilliseconds: 500), r.status == 200 { return }
            var status: Int32 = 0
            if waitpid(pid, &status, WNOHANG) == pid {
                pid = 0
                throw LocksmithError(.connectionFailed, "etcd exited at start-up: \(log())")
            }
            Clock.sleep(milliseconds: 50)
        }
        throw LocksmithError(.timedOut, "etcd did not answer within 20 s: \(log())")
    }

    func log() -> String {
        let bytes = (try? Syscalls.readFile(dataDir + "/etcd.log")) ?? []
        return String(decoding: bytes.suffix(2000), as: UTF8.self)
    }

    /// A port nothing listens on right now.
    static func freePort() -> Int {
        let (fd, port) = loopbackSocket()
        close(fd)
        return port
    }
}

/// A TCP socket bound to a free port on 127.0.0.1, and the port.
func loopbackSocket() -> (fd: Int32, port: Int) {
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    var address = sockaddr_in()
    address.sin_family = sa_family_t(AF_INET)
    address.sin_addr.s_addr = inet_addr("127.0.0.1")
    address.sin_port = 0
    var length = socklen_t(MemoryLayout<sockaddr_in>.size)
    _ = withUnsafePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, length) } }
    _ = withUnsafeMutablePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) } }
    return (fd, Int(UInt16(bigEndian: address.sin_port)))
}

/// A CA, a server certificate for 127.0.0.1 and a client certificate, made with openssl.
final class TestCertificates: @unchecked Sendable {
    let dir: String
    var ca: String { dir + "/ca.pem" }
    var serverCert: String { dir + "/server.pem" }
    var serverKey: String { dir + "/server-key.pem" }
    var clientCert: String { dir + "/client.pem" }
    var clientKey: String { dir + "/client-key.pem" }
    /// A second CA that signed nothing here: trusting it must fail verification.
    var otherCA: String { dir + "/other-ca.pem" }

    init() throws {
        var template = Array("/tmp/locksmith-test-tls-XXXXXX".utf8CString)
        dir = template.withUnsafeMutableBufferPointer { String(cString: mkdtemp($0.baseAddress!)!) }
        let script = """
            set -e; cd '\(dir)'
            q() { "$@" >/dev/null 2>&1; }
            q openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=locksmith-test-ca -keyout ca-key.pem -out ca.pem
            q openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=other-ca -keyout other-ca-key.pem -out other-ca.pem
            printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\\nextendedKeyUsage=serverAuth,clientAuth\\n' > server.ext
            printf 'extendedKeyUsage=clientAuth\\n' > client.ext
            q openssl req -newkey rsa:2048 -nodes -subj /CN=127.0.0.1 -keyout server-key.pem -out server.csr
            q openssl x509 -req -in server.csr -CA ca.pem -CAkey ca-key.pem -CAcreateserial -days 2 -extfile server.ext -out server.pem
            q openssl req -newkey rsa:2048 -nodes -subj /CN=locksmith -keyout client-key.pem -out client.csr
            q openssl x509 -req -in client.csr -CA ca.pem -CAkey ca-key.pem -CAcreateserial -days 2 -extfile client.ext -out client.pem
            """
        guard system(script) == 0 else { throw LocksmithError(.system(EIO), "openssl could not make the test certificates") }
    }

    deinit { _ = system("rm -rf '\(dir)'") }
}

/// A TCP listener that accepts connections (the kernel does, through the backlog) and never
/// answers: an endpoint that hangs.
final class HungEndpoint {
    let fd: Int32
    let port: Int
    var endpoint: String { "http://127.0.0.1:\(port)" }

    init() {
        (fd, port) = loopbackSocket()
        listen(fd, 64)
    }

    deinit { close(fd) }
}

/// The etcd most tests share (each test uses its own group, so they do not interfere).
let sharedEtcd: EtcdServer = {
    do { return try EtcdServer() } catch { fatalError("cannot start etcd for the tests: \(error)") }
}()

/// Raw access to what etcd stores, bypassing the client under test.
struct RawEtcd {
    let endpoint: String
    let http: HTTPConnection

    init(_ server: EtcdServer) throws {
        endpoint = server.endpoint
        http = try HTTPConnection(settings: ConnectionSettings())
    }

    func v2Get(_ key: String) throws -> (status: Int, value: String?, index: Int64?) {
        let r = try http.perform(method: "GET", url: endpoint + "/v2/keys/" + URLEscape.path(key), timeoutMilliseconds: 5000)
        let tree = JSONTree(r.body)
        return (r.status, tree?.node["node"]?["value"]?.string, tree?.node["node"]?["modifiedIndex"]?.int64)
    }

    /// GET with a path exactly as given (to check the original's double escaping).
    func v2GetPath(_ path: String) throws -> Int {
        try http.perform(method: "GET", url: endpoint + path, timeoutMilliseconds: 5000).status
    }

    func v2Put(_ key: String, _ value: String) throws {
        _ = try http.perform(method: "PUT", url: endpoint + "/v2/keys/" + URLEscape.path(key),
                             body: Array(("value=" + URLEscape.query(value)).utf8), headers: [V2.formHeader], timeoutMilliseconds: 5000)
    }

    func v2MakeDirectory(_ key: String) throws {
        _ = try http.perform(method: "PUT", url: endpoint + "/v2/keys/" + URLEscape.path(key) + "?dir=true", timeoutMilliseconds: 5000)
    }

    func v3Get(_ key: String, revision: Int64? = nil) throws -> (value: String?, modRevision: Int64?, revision: Int64?) {
        let body = revision.map { #"{"key":"\#(Base64.encode(key))","revision":"\#($0)"}"# } ?? #"{"key":"\#(Base64.encode(key))"}"#
        let r = try http.perform(method: "POST", url: endpoint + "/v3/kv/range", body: Array(body.utf8), timeoutMilliseconds: 5000)
        let tree = JSONTree(r.body)
        let kv = tree?.node["kvs"]?[0]
        return (kv?["value"]?.string.flatMap(Base64.decode).map { String(decoding: $0, as: UTF8.self) },
                kv?["mod_revision"]?.int64, tree?.node["header"]?["revision"]?.int64)
    }

    func v3Put(_ key: String, _ value: String) throws {
        let body = #"{"key":"\#(Base64.encode(key))","value":"\#(Base64.encode(value))"}"#
        _ = try http.perform(method: "POST", url: endpoint + "/v3/kv/put", body: Array(body.utf8), timeoutMilliseconds: 5000)
    }

    func get(_ api: EtcdAPI, _ key: String) throws -> String? {
        api == .v2 ? try v2Get(key).value : try v3Get(key).value
    }

    func put(_ api: EtcdAPI, _ key: String, _ value: String) throws {
        api == .v2 ? try v2Put(key, value) : try v3Put(key, value)
    }
}
