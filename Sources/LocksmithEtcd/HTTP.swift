// HTTP to etcd over one reused libcurl easy handle: one connection per client, kept alive
// between requests; TLS always verified; a per-request timeout; streaming for watches.
import CCurl
import Glibc
import LocksmithCore
import LocksmithSystem

/// TLS material for https endpoints. A CA file alone verifies the server; a certificate and key
/// present a client certificate too. Verification is never turned off.
public struct TLSFiles: Sendable, Equatable {
    public var caFile: String?
    public var certFile: String?
    public var keyFile: String?
    public init(caFile: String? = nil, certFile: String? = nil, keyFile: String? = nil) {
        (self.caFile, self.certFile, self.keyFile) = (caFile, certFile, keyFile)
    }
}

struct HTTPResponse {
    var status: Int
    var body: [UInt8]
    var text: String { String(decoding: body, as: UTF8.self) }
}

/// The libcurl library is initialized once per process, before the first handle.
private let curlReady: Bool = curl_global_init(Int(CURL_GLOBAL_ALL)) == CURLE_OK

/// One HTTP connection (reused across requests). Belongs to one thread at a time.
final class HTTPConnection {
    private let handle: UnsafeMutableRawPointer
    private var errorBuffer = [CChar](repeating: 0, count: Int(CURL_ERROR_SIZE) + 1)
    var tls = TLSFiles()
    var basicAuth: (user: String, password: String)?
    /// Called after every request with one line: method, URL, status or error, time taken.
    var trace: ((String) -> Void)?
    /// HTTP requests made, for statistics.
    private(set) var requestCount = 0

    init() throws {
        guard curlReady, let h = curl_easy_init() else {
            throw LocksmithError(.system(ENOMEM), "cannot initialize libcurl")
        }
        handle = h
    }

    deinit { curl_easy_cleanup(handle) }

    /// Sends one request. `onData`, if given, sees the body as it streams in and returns false to
    /// stop the transfer (which then counts as success with what arrived so far).
    func perform(method: String, url: String, body: [UInt8]? = nil, headers: [String] = [],
                 timeoutMilliseconds: Int, onData: ((UnsafeRawBufferPointer) -> Bool)? = nil) throws -> HTTPResponse {
        let sink = Sink(onData: onData)
        let started = Clock.monotonicMilliseconds()
        requestCount += 1
        curl_easy_reset(handle)
        errorBuffer.withUnsafeMutableBufferPointer { _ = ccurl_setopt_pointer(handle, CURLOPT_ERRORBUFFER, $0.baseAddress) }
        errorBuffer[0] = 0
        _ = ccurl_setopt_string(handle, CURLOPT_URL, url)
        _ = ccurl_setopt_long(handle, CURLOPT_NOSIGNAL, 1)
        _ = ccurl_setopt_long(handle, CURLOPT_TIMEOUT_MS, max(1, timeoutMilliseconds))
        _ = ccurl_setopt_long(handle, CURLOPT_CONNECTTIMEOUT_MS, max(1, timeoutMilliseconds))
        _ = ccurl_setopt_string(handle, CURLOPT_PROTOCOLS_STR, "http,https")
        _ = ccurl_setopt_string(handle, CURLOPT_NOPROXY, HTTPConnection.noProxy)
        _ = ccurl_setopt_long(handle, CURLOPT_SSL_VERIFYPEER, 1)
        _ = ccurl_setopt_long(handle, CURLOPT_SSL_VERIFYHOST, 2)
        if let ca = tls.caFile { _ = ccurl_setopt_string(handle, CURLOPT_CAINFO, ca) }
        if let cert = tls.certFile { _ = ccurl_setopt_string(handle, CURLOPT_SSLCERT, cert) }
        if let key = tls.keyFile { _ = ccurl_setopt_string(handle, CURLOPT_SSLKEY, key) }
        if let auth = basicAuth {
            _ = ccurl_setopt_long(handle, CURLOPT_HTTPAUTH, 1)  // CURLAUTH_BASIC, a macro Swift cannot import
            _ = ccurl_setopt_string(handle, CURLOPT_USERNAME, auth.user)
            _ = ccurl_setopt_string(handle, CURLOPT_PASSWORD, auth.password)
        }
        switch method {
        case "GET": _ = ccurl_setopt_long(handle, CURLOPT_HTTPGET, 1)
        case "POST": _ = ccurl_setopt_long(handle, CURLOPT_POST, 1)
        default:
            _ = ccurl_setopt_long(handle, CURLOPT_POST, 1)
            _ = ccurl_setopt_string(handle, CURLOPT_CUSTOMREQUEST, method)
        }
        var list: UnsafeMutablePointer<curl_slist>?
        for h in headers + ["Expect:"] { list = curl_slist_append(list, h) }
        defer { curl_slist_free_all(list) }
        _ = ccurl_setopt_slist(handle, CURLOPT_HTTPHEADER, list)
        let unmanaged = Unmanaged.passRetained(sink)
        defer { unmanaged.release() }
        _ = ccurl_setopt_write_function(handle) { data, size, count, context in
            let sink = Unmanaged<Sink>.fromOpaque(context!).takeUnretainedValue()
            let bytes = UnsafeRawBufferPointer(start: data, count: size * count)
            sink.body.append(contentsOf: bytes)
            if let onData = sink.onData, !onData(bytes) {
                sink.stopped = true
                return 0
            }
            return size * count
        }
        _ = ccurl_setopt_pointer(handle, CURLOPT_WRITEDATA, unmanaged.toOpaque())

        let code: CURLcode = (body ?? []).withUnsafeBufferPointer { buffer in
            if body != nil {
                _ = ccurl_setopt_long(handle, CURLOPT_POSTFIELDSIZE, buffer.count)
                _ = ccurl_setopt_pointer(handle, CURLOPT_POSTFIELDS, UnsafeMutableRawPointer(mutating: buffer.baseAddress ?? UnsafePointer(bitPattern: 1)!))
            }
            return curl_easy_perform(handle)
        }
        var status = 0
        _ = ccurl_getinfo_long(handle, CURLINFO_RESPONSE_CODE, &status)
        let elapsed = Clock.monotonicMilliseconds() - started
        if code == CURLE_OK || (code == CURLE_WRITE_ERROR && sink.stopped) {
            trace?("\(method) \(url) -> \(status) (\(elapsed) ms)")
            return HTTPResponse(status: status, body: sink.body)
        }
        let detail = errorBuffer.withUnsafeBufferPointer { String(cString: $0.baseAddress!) }
        let reason = detail.isEmpty ? String(cString: curl_easy_strerror(code)) : detail
        trace?("\(method) \(url) -> error: \(reason) (\(elapsed) ms)")
        throw LocksmithError(HTTPConnection.kind(of: code), reason)
    }

    private static func kind(of code: CURLcode) -> LocksmithError.Kind {
        switch code {
        case CURLE_OPERATION_TIMEDOUT: return .timedOut
        case CURLE_LOGIN_DENIED, CURLE_REMOTE_ACCESS_DENIED: return .permissionDenied
        default: return .connectionFailed
        }
    }

    /// Loopback is never sent through a proxy (Go's HTTP client did the same); the rest follows
    /// no_proxy / NO_PROXY from the environment.
    private static let noProxy: String = {
        let own = Syscalls.environment("no_proxy") ?? Syscalls.environment("NO_PROXY") ?? ""
        return (own.isEmpty ? "" : own + ",") + "localhost,127.0.0.0/8,::1"
    }()

    private final class Sink {
        var body: [UInt8] = []
        var stopped = false
        let onData: ((UnsafeRawBufferPointer) -> Bool)?
        init(onData: ((UnsafeRawBufferPointer) -> Bool)?) { self.onData = onData }
    }
}
