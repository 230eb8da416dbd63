// HTTP to etcd over one reused libcurl easy handle: one connection per client, kept alive
// between requests; TLS always verified; a per-request timeout; streaming for watches.
import CCurl
import Glibc
import LocksmithCore
import LocksmithSystem
import Synchronization

struct HTTPResponse {
    var status: Int
    var body: [UInt8]
    /// The v2 API's `X-Etcd-Index` header: etcd's index when it answered.
    var etcdIndex: Int64? = nil
    var text: String { String(decoding: body, as: UTF8.self) }
}

/// One HTTP connection (reused across requests). Belongs to one thread at a time.
final class HTTPConnection {
    /// Set by `Cancellation.set(true)` from any thread.
    let cancellation: Cancellation
    /// The most kept of one answer, watches included: a semaphore document is at most 128 KiB
    /// (about 171 KiB in base64 inside a v3 answer), a listing of thousands of groups a few MiB.
    /// A server that sends more is cut off, so no answer can grow a program's memory.
    static let maxAnswerBytes = 8 << 20

    private let handle: UnsafeMutableRawPointer
    private let errorBuffer: UnsafeMutablePointer<CChar>
    var settings: ConnectionSettings {
        didSet { configurationError = configure() }
    }
    /// Why the last configuration could not be applied; every request fails with it.
    private var configurationError: LocksmithError?
    /// Called after every request with one line: method, URL, status or error, time taken.
    var trace: ((String) -> Void)?
    /// No request runs past this monotonic time in milliseconds (nil: none).
    var deadline: Int?
    /// HTTP requests made, for statistics.
    private(set) var requestCount = 0
    /// Whether the last request got no answer at all (refused, reset, a TLS failure; not a
    /// timeout, not a cancel): the `wait-errors fail` option ends a wait on it.
    private(set) var lastRequestFailed = false

    init(settings: ConnectionSettings, cancellation: Cancellation = Cancellation()) throws {
        self.cancellation = cancellation
        guard let h = ccurl_easy_init() else {
            let reason = String(cString: ccurl_load_error())
            throw LocksmithError(.system(ELIBACC), reason.isEmpty ? "cannot initialize libcurl" : reason)
        }
        handle = h
        errorBuffer = .allocate(capacity: Int(CURL_ERROR_SIZE) + 1)
        errorBuffer.initialize(repeating: 0, count: Int(CURL_ERROR_SIZE) + 1)
        self.settings = settings
        // Thrown once every property is set, so deinit frees the handle and the buffer.
        if let error = configure() { throw error }
    }

    deinit {
        ccurl_easy_cleanup(handle)
        errorBuffer.deallocate()
    }

    /// The options that stay the same from request to request, set once (and again when the
    /// settings change): the connection is kept between requests either way. Returns why a
    /// setting that safety depends on was refused by libcurl (nil when all were taken).
    private func configure() -> LocksmithError? {
        ccurl_easy_reset(handle)
        _ = ccurl_setopt_pointer(handle, CURLOPT_ERRORBUFFER, errorBuffer)
        _ = ccurl_setopt_long(handle, CURLOPT_NOSIGNAL, 1)
        _ = ccurl_setopt_long(handle, CURLOPT_TCP_NODELAY, 1)
        // Only http and https, for requests and redirects (which are not followed anyway).
        // libcurl before 7.85 refuses the _STR forms: then the bitmask forms; if neither is
        // taken, no request is made at all.
        let protocols = ccurl_setopt_string(handle, CURLOPT_PROTOCOLS_STR, "http,https") == CURLE_OK
            || ccurl_setopt_long(handle, CURLOPT_PROTOCOLS, ccurl_proto_http_https) == CURLE_OK
        let redirects = ccurl_setopt_string(handle, CURLOPT_REDIR_PROTOCOLS_STR, "http,https") == CURLE_OK
            || ccurl_setopt_long(handle, CURLOPT_REDIR_PROTOCOLS, ccurl_proto_http_https) == CURLE_OK
        guard protocols, redirects else {
            return LocksmithError(.protocolError, "libcurl refused to limit its protocols to http and https (\(String(cString: ccurl_version()))): not sending requests with it")
        }
        var ok = ccurl_setopt_long(handle, CURLOPT_FOLLOWLOCATION, 0) == CURLE_OK
        ok = ok && ccurl_setopt_long(handle, CURLOPT_SSL_VERIFYPEER, 1) == CURLE_OK
        ok = ok && ccurl_setopt_long(handle, CURLOPT_SSL_VERIFYHOST, 2) == CURLE_OK
        let tls = settings.tls
        if let ca = tls.caFile {
            // Exactly this CA: not also the system's CA directory, which libcurl searches
            // besides any CA file unless told not to.
            ok = ok && ccurl_setopt_string(handle, CURLOPT_CAINFO, ca) == CURLE_OK
            ok = ok && ccurl_setopt_pointer(handle, CURLOPT_CAPATH, nil) == CURLE_OK
        }
        if let cert = tls.certFile { ok = ok && ccurl_setopt_string(handle, CURLOPT_SSLCERT, cert) == CURLE_OK }
        if let key = tls.keyFile { ok = ok && ccurl_setopt_string(handle, CURLOPT_SSLKEY, key) == CURLE_OK }
        if let proxy = settings.proxy ?? (settings.useEnvironment ? nil : "") {
            // "" turns off the proxy variables of the environment too.
            ok = ok && ccurl_setopt_string(handle, CURLOPT_PROXY, proxy) == CURLE_OK
        }
        ok = ok && ccurl_setopt_string(handle, CURLOPT_NOPROXY, HTTPConnection.noProxy(settings.useEnvironment)) == CURLE_OK
        if let auth = settings.basicAuth {
            ok = ok && ccurl_setopt_long(handle, CURLOPT_HTTPAUTH, 1) == CURLE_OK  // CURLAUTH_BASIC, a macro Swift cannot import
            ok = ok && ccurl_setopt_string(handle, CURLOPT_USERNAME, auth.user) == CURLE_OK
            ok = ok && ccurl_setopt_string(handle, CURLOPT_PASSWORD, auth.password) == CURLE_OK
        }
        guard ok else {
            return LocksmithError(.protocolError, "libcurl refused a TLS, proxy or authentication setting (\(String(cString: ccurl_version()))): not sending requests with it")
        }
        _ = ccurl_setopt_xferinfo_function(handle) { context, _, _, _, _ in
            let cancellation = Unmanaged<Cancellation>.fromOpaque(context!).takeUnretainedValue()
            return cancellation.isSet ? 1 : 0
        }
        _ = ccurl_setopt_pointer(handle, CURLOPT_XFERINFODATA, Unmanaged.passUnretained(cancellation).toOpaque())
        _ = ccurl_setopt_header_function(handle) { data, size, count, context in
            let sink = Unmanaged<Sink>.fromOpaque(context!).takeUnretainedValue()
            sink.header(UnsafeRawBufferPointer(start: data, count: size * count))
            return size * count
        }
        _ = ccurl_setopt_write_function(handle) { data, size, count, context in
            let sink = Unmanaged<Sink>.fromOpaque(context!).takeUnretainedValue()
            let bytes = UnsafeRawBufferPointer(start: data, count: size * count)
            if sink.body.count + bytes.count > HTTPConnection.maxAnswerBytes {
                sink.overflowed = true
                return 0
            }
            sink.body.append(contentsOf: bytes)
            if let onData = sink.onData, !onData(bytes) {
                sink.stopped = true
                return 0
            }
            return size * count
        }
        return nil
    }

    /// Sends one request. `onData`, if given, sees the body as it streams in and returns false to
    /// stop the transfer (which then counts as success with what arrived so far). Long requests
    /// (watches) are `interruptible`: they end within a second of the client's cancellation;
    /// others run to their timeout (libcurl's progress callback costs every request otherwise).
    /// `evenIfCancelled`: a short clean-up request (leaving the queue) that must go out after a
    /// cancel too; it is still bounded by its timeout.
    func perform(method: String, url: String, body: [UInt8]? = nil, headers: [String] = [],
                 timeoutMilliseconds: Int, interruptible: Bool = false, evenIfCancelled: Bool = false,
                 onData: ((UnsafeRawBufferPointer) -> Bool)? = nil) throws -> HTTPResponse {
        if let configurationError { throw configurationError }
        lastRequestFailed = false
        if cancellation.isSet && !evenIfCancelled { throw LocksmithError(.system(ECANCELED), "cancelled") }
        var timeout = max(1, timeoutMilliseconds)
        if let deadline {
            let left = deadline - Clock.monotonicMilliseconds()
            guard left > 0 else { throw LocksmithError(.timedOut, "the deadline passed before \(method) \(url)") }
            timeout = min(timeout, left)
        }
        let sink = Sink(onData: onData)
        let started = tracing ? Clock.monotonicMilliseconds() : 0
        requestCount += 1
        errorBuffer[0] = 0
        _ = ccurl_setopt_string(handle, CURLOPT_URL, url)
        _ = ccurl_setopt_long(handle, CURLOPT_TIMEOUT_MS, timeout)
        _ = ccurl_setopt_long(handle, CURLOPT_CONNECTTIMEOUT_MS, timeout)
        _ = ccurl_setopt_long(handle, CURLOPT_NOPROGRESS, interruptible ? 0 : 1)
        var list: UnsafeMutablePointer<curl_slist>? = ccurl_slist_append(nil, "Expect:")
        for h in headers { list = ccurl_slist_append(list, h) }
        defer { ccurl_slist_free_all(list) }
        _ = ccurl_setopt_slist(handle, CURLOPT_HTTPHEADER, list)
        let unmanaged = Unmanaged.passRetained(sink)
        defer { unmanaged.release() }
        _ = ccurl_setopt_pointer(handle, CURLOPT_WRITEDATA, unmanaged.toOpaque())
        _ = ccurl_setopt_pointer(handle, CURLOPT_HEADERDATA, unmanaged.toOpaque())

        let code: CURLcode = (body ?? []).withUnsafeBufferPointer { buffer in
            if method == "GET" {
                _ = ccurl_setopt_long(handle, CURLOPT_HTTPGET, 1)
                _ = ccurl_setopt_pointer(handle, CURLOPT_CUSTOMREQUEST, nil)
            } else {
                _ = ccurl_setopt_long(handle, CURLOPT_POST, 1)
                _ = ccurl_setopt_pointer(handle, CURLOPT_CUSTOMREQUEST, nil)
                if method != "POST" { _ = ccurl_setopt_string(handle, CURLOPT_CUSTOMREQUEST, method) }
                _ = ccurl_setopt_long(handle, CURLOPT_POSTFIELDSIZE, buffer.count)
                _ = ccurl_setopt_pointer(handle, CURLOPT_POSTFIELDS, UnsafeMutableRawPointer(mutating: buffer.baseAddress ?? UnsafePointer(bitPattern: 1)!))
            }
            let code = ccurl_easy_perform(handle)
            _ = ccurl_setopt_pointer(handle, CURLOPT_POSTFIELDS, nil)
            return code
        }
        _ = ccurl_setopt_pointer(handle, CURLOPT_WRITEDATA, nil)
        _ = ccurl_setopt_pointer(handle, CURLOPT_HEADERDATA, nil)
        var status = 0
        _ = ccurl_getinfo_long(handle, CURLINFO_RESPONSE_CODE, &status)
        if sink.overflowed {
            let reason = "the answer is larger than \(HTTPConnection.maxAnswerBytes >> 20) MiB: not an etcd answer"
            if let trace { trace("\(method) \(url) -> error: \(reason) (\(Clock.monotonicMilliseconds() - started) ms)") }
            throw LocksmithError(.protocolError, "\(method) \(url): \(reason)")
        }
        if code == CURLE_OK || (code == CURLE_WRITE_ERROR && sink.stopped) {
            if let trace { trace("\(method) \(url) -> \(status) (\(Clock.monotonicMilliseconds() - started) ms)") }
            return HTTPResponse(status: status, body: sink.body, etcdIndex: sink.etcdIndex)
        }
        if code == CURLE_ABORTED_BY_CALLBACK && cancellation.isSet {
            if let trace { trace("\(method) \(url) -> cancelled (\(Clock.monotonicMilliseconds() - started) ms)") }
            throw LocksmithError(.system(ECANCELED), "cancelled")
        }
        let detail = String(cString: errorBuffer)
        var reason = detail.isEmpty ? String(cString: ccurl_easy_strerror(code)) : detail
        if let trace { trace("\(method) \(url) -> error: \(reason) (\(Clock.monotonicMilliseconds() - started) ms)") }
        if url.lowercased().hasPrefix("https://"), let advice = HTTPConnection.tlsAdvice(reason, tls: settings.tls) {
            reason = "\(advice) (\(reason))"
        } else if code == CURLE_COULDNT_CONNECT {
            reason = "nothing accepts connections there: is the server running, and is the URL's address and port right? (\(reason))"
        } else if code == CURLE_COULDNT_RESOLVE_HOST {
            reason = "the host name does not resolve: check the URL's host name, or use an address (\(reason))"
        } else if code == CURLE_OPERATION_TIMEDOUT && !interruptible && detail.hasPrefix("Operation timed out") {
            // Connected, then silence (a watch's timeout is its normal end, not this).
            reason = "\(Advice.noAnswerInTime) (\(reason))"
        }
        lastRequestFailed = true
        throw LocksmithError(HTTPConnection.kind(of: code), reason)
    }

    private var tracing: Bool { trace != nil }

    /// What a TLS failure means for the operator, and what to do, from libcurl's text (nil when it
    /// is not one of these): the server wants a client certificate and none was given (servers
    /// close the handshake, or send "certificate required"); the server refused the one given;
    /// the server's own certificate is not trusted. docs/errors.md lists them.
    static func tlsAdvice(_ reason: String, tls: TLSFiles) -> String? {
        let text = reason.lowercased()
        let refusedByServer = ["alert bad certificate", "alert certificate required", "alert unknown ca",
                               "alert certificate unknown", "alert handshake failure", "alert access denied"].contains { text.contains($0) }
        // With TLS 1.3 the client learns of the refusal only when it next reads or writes: the
        // server has closed the connection (Go's, etcd's, without an alert).
        let closedDuringHandshake = text.contains("errno 107") || text.contains("unexpected eof while reading")
            || text.contains("connection reset by peer")
        if tls.certFile == nil && (refusedByServer || closedDuringHandshake) {
            return "the server asked for a client certificate and none was given: name one with etcd-certfile and etcd-keyfile (flags -etcd-certfile/-etcd-keyfile, or LOCKSMITHD_ETCD_CERTFILE/LOCKSMITHD_ETCD_KEYFILE)"
        }
        if let cert = tls.certFile, refusedByServer || closedDuringHandshake {
            return "the server refused the client certificate \(cert): it must be signed by a CA the server trusts (etcd's --trusted-ca-file) and be meant for client use"
        }
        if text.contains("ssl certificate problem") || text.contains("certificate verify failed") {
            if let ca = tls.caFile {
                return "the server's certificate is not signed by the CA in \(ca), or not for this host name"
            }
            return "the server's certificate is not signed by a CA this system trusts: name the CA that signed it with etcd-cafile (flag -etcd-cafile, or LOCKSMITHD_ETCD_CAFILE)"
        }
        if text.contains("no alternative certificate subject name matches") || text.contains("does not match target host") {
            return "the server's certificate is not made out to the host name or address in the endpoint URL"
        }
        return nil
    }

    private static func kind(of code: CURLcode) -> LocksmithError.Kind {
        switch code {
        case CURLE_ABORTED_BY_CALLBACK: return .system(ECANCELED)
        case CURLE_OPERATION_TIMEDOUT: return .timedOut
        case CURLE_LOGIN_DENIED, CURLE_REMOTE_ACCESS_DENIED: return .permissionDenied
        default: return .connectionFailed
        }
    }

    /// Loopback is never sent through a proxy (Go's HTTP client did the same); the rest follows
    /// no_proxy / NO_PROXY from the environment, when the environment counts.
    private static func noProxy(_ useEnvironment: Bool) -> String {
        let own = useEnvironment ? Syscalls.environment("no_proxy") ?? Syscalls.environment("NO_PROXY") ?? "" : ""
        return (own.isEmpty ? "" : own + ",") + "localhost,127.0.0.0/8,::1"
    }

    private final class Sink {
        var body: [UInt8] = []
        var stopped = false
        var overflowed = false
        var etcdIndex: Int64?
        let onData: ((UnsafeRawBufferPointer) -> Bool)?
        init(onData: ((UnsafeRawBufferPointer) -> Bool)?) { self.onData = onData }

        /// One header line: `X-Etcd-Index` (any case) is kept, if it is a number of at most 18
        /// digits; every other header is ignored.
        func header(_ line: UnsafeRawBufferPointer) {
            let name = Array("x-etcd-index:".utf8)
            guard line.count > name.count, line.count < 64 else { return }
            for i in 0..<name.count where (line[i] | 0x20) != name[i] { return }
            var value: Int64 = 0, digits = 0
            for byte in line[name.count...] {
                switch byte {
                case UInt8(ascii: "0")...UInt8(ascii: "9"):
                    guard digits < 18 else { return }
                    value = value * 10 + Int64(byte - UInt8(ascii: "0"))
                    digits += 1
                case UInt8(ascii: " ") where digits == 0, UInt8(ascii: "\t") where digits == 0:
                    continue
                case UInt8(ascii: "\r"), UInt8(ascii: "\n"):
                    break
                default:
                    return
                }
            }
            if digits > 0 { etcdIndex = value }
        }
    }
}
