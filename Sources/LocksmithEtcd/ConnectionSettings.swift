// How a client reaches etcd, beyond the endpoints: TLS files, credentials, a proxy.

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

/// How a connection reaches its server, beyond TLS: a proxy, and whether the process environment
/// may choose one.
struct ConnectionSettings {
    var tls = TLSFiles()
    var basicAuth: (user: String, password: String)?
    /// A proxy URL, "" for none; nil: the environment's proxy variables, when `useEnvironment`.
    var proxy: String?
    /// Whether libcurl may take a proxy from http_proxy and friends.
    var useEnvironment = true
}
