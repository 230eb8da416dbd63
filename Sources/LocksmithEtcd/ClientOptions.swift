// The settings of an etcd client, named like the command-line flags, with their checks.
import Glibc
import LocksmithCore
import LocksmithSystem

/// Which etcd API to speak.
public enum EtcdAPI: String, Sendable {
    case v2, v3
}

/// The API a client is told to use: one of the two, or `auto` (v2 when the cluster positively
/// serves it, so a fleet still running the original shares its semaphore; v3 otherwise).
public enum APIChoice: String, Sendable {
    case auto, v2, v3
}

public struct ClientOptions: Sendable {
    /// The original's defaults.
    public static let defaultEndpoints = ["http://127.0.0.1:2379", "http://127.0.0.1:4001"]
    public static let defaultTimeoutMilliseconds = 5_000
    public static let defaultQueueTTLSeconds = 60
    /// Every option name `set` accepts, in the order help texts list them.
    public static let names = ["endpoint", "group", "etcd-cafile", "etcd-certfile", "etcd-keyfile",
                               "etcd-username", "etcd-password", "etcd-password-file", "etcd-api", "timeout", "proxy", "queue-ttl",
                               "fleetlock-url"]

    /// What each option takes and does, for help texts (locksmithctl's, locksmith-run's).
    public static let help: [String: (valueName: String, description: String)] = [
        "endpoint": ("URL", "etcd endpoint; repeat the flag or give a comma-separated list (default http://127.0.0.1:2379,http://127.0.0.1:4001)."),
        "group": ("GROUP", "Group of machines whose semaphore to use (default: the daemon's group, else the default group)."),
        "etcd-cafile": ("FILE", "CA certificate to verify etcd's TLS certificate with (the FleetLock server's, with fleetlock-url)."),
        "etcd-certfile": ("FILE", "Client TLS certificate to present to etcd (to the FleetLock server, with fleetlock-url)."),
        "etcd-keyfile": ("FILE", "Key of the client TLS certificate."),
        "etcd-username": ("USER", "User for etcd authentication."),
        "etcd-password": ("PASSWORD", "Password for etcd authentication (prefer -etcd-password-file or the environment: arguments are visible to other users)."),
        "etcd-password-file": ("FILE", "File whose first line is the password for etcd authentication."),
        "etcd-api": ("API", "etcd API to use: v2, v3 or auto (v2 if the cluster serves it, else v3; the default)."),
        "timeout": ("DURATION", "Timeout of each request to etcd, e.g. 500ms or 10s (default 5s)."),
        "proxy": ("URL", "Proxy for the requests to etcd (http://, https:// or socks5://; \"\" for none; default: the proxy variables of the environment, never for loopback)."),
        "fleetlock-url": ("URL", "Take and give back slots through this FleetLock server (its base URL, before /v1/; locksmith-fleetlockd or airlock) instead of etcd: only lock and unlock work then (FleetLock has no status call). TLS files and proxy apply to it; etcd's credentials are not sent."),
        "queue-ttl": ("DURATION", "How long the queue entry of a waiter that stopped (crashed, lost its network) holds up the waiters behind it; a live waiter renews it 20s before it runs out, and at least every third of it (default 60s, 5s to 1h)."),
    ]

    /// Endpoints given so far; empty means the defaults.
    public private(set) var endpointList: [String] = []
    public var group = ""
    public var tls = TLSFiles()
    public var username: String?
    public var password: String?
    public var api = APIChoice.auto
    public var timeoutMilliseconds = ClientOptions.defaultTimeoutMilliseconds
    /// The FleetLock server to take slots through instead of etcd (nil: etcd).
    public var fleetLockURL: String?
    /// The time to live of this client's queue entries, in seconds.
    public var queueTTLSeconds = ClientOptions.defaultQueueTTLSeconds
    /// Whether a wait ends at the first request that gets no answer, with its error (the
    /// `wait-errors` option, `fail`), rather than trying again until its timeout (`retry`, the
    /// default). A program's choice, not a setting: no flag or variable sets it, and it is not
    /// listed with the settings.
    public var waitFailsFast = false

    /// How often a waiter renews its queue entry, in milliseconds: 20 s before it would run out,
    /// and at least every third of its time to live (every 40 s for the default 60 s; every 10 s
    /// for 30 s and under). Each renewal is a request, and a wake-up that renews the watch after
    /// it: a waiter far back in a long queue renews often enough to keep its place through a
    /// slow request or two, and no more.
    public static func queueRenewalMilliseconds(ttlSeconds: Int) -> Int {
        max(ttlSeconds * 1000 / 3, (ttlSeconds - 20) * 1000)
    }
    /// A proxy URL for requests to etcd, "" for none; nil: the environment decides (when
    /// `usesEnvironment`).
    public var proxy: String?
    /// The file the password was read from (etcd-password-file), for showing where it came from.
    public private(set) var passwordFile: String?
    /// Whether the process environment may steer the client (proxy variables, LOCKSMITH_ROOT for
    /// the machine id). Off for callers such as a PAM module, and always off under secure
    /// execution (setuid).
    public var usesEnvironment = !Syscalls.secureExecution
    /// What the programs should tell their user about these settings (a password file every user
    /// can read, ...): the library never logs.
    public private(set) var warnings: [String] = []
    /// Where each option that was set came from: "" for a program's own `set` (its flags), else
    /// the variable and, for the daemon's settings, the file ("LOCKSMITHD_GROUP in
    /// /etc/coreos/update.conf"). Options not listed have their defaults.
    public private(set) var origins: [String: String] = [:]

    public init() {}

    /// The endpoints in use: those given, or the defaults.
    public var endpoints: [String] { endpointList.isEmpty ? ClientOptions.defaultEndpoints : endpointList }

    /// Sets option `name` from text, as a flag or variable would. `endpoint` adds to the list
    /// (comma-separated values allowed; an empty value goes back to the defaults). Throws
    /// `.invalidArgument` naming the option and what is wrong; file options also check that the
    /// file can be read.
    public mutating func set(_ name: String, _ value: String, origin: String = "") throws {
        do {
            try apply(name, value)
        } catch var error as LocksmithError {
            error.option = error.option ?? (ClientOptions.names.contains(name) ? name : nil)
            throw error
        }
        origins[name] = origin
    }

    private mutating func apply(_ name: String, _ value: String) throws {
        switch name {
        case "endpoint":
            if value.isEmpty { endpointList = [] } else { endpointList += try ClientOptions.parseEndpoints(value) }
        case "group":
            _ = try GroupKey.key(group: value)
            group = value
        case "etcd-cafile": tls.caFile = try ClientOptions.readableFile(value, option: name)
        case "etcd-certfile": tls.certFile = try ClientOptions.readableFile(value, option: name)
        case "etcd-keyfile": tls.keyFile = try ClientOptions.readableFile(value, option: name)
        case "etcd-username": username = value.isEmpty ? nil : value
        case "etcd-password":
            password = value.isEmpty ? nil : value
            passwordFile = nil  // the one given last wins: this password, not the file's
        case "etcd-password-file":
            guard let file = try ClientOptions.readableFile(value, option: name) else { password = nil; passwordFile = nil; return }
            password = try ClientOptions.firstLine(of: file, option: name)
            passwordFile = file
            if let mode = Syscalls.worldReadableMode(file) {
                warnings.append("\(name): \(file) can be read by every user (mode \(mode)): chmod o-r it")
            }
        case "etcd-api":
            guard let choice = APIChoice(rawValue: value.lowercased()) else {
                throw LocksmithError(.invalidArgument, "etcd-api: \(JSONText.quotedExcerpt(value)) is not one of v2, v3, auto")
            }
            api = choice
        case "timeout":
            timeoutMilliseconds = Int(try ClientOptions.duration(name, value, from: 1_000_000, "1ms", to: 3_600_000_000_000, "1h") / 1_000_000)
        case "queue-ttl":
            queueTTLSeconds = Int(try ClientOptions.duration(name, value, from: 5_000_000_000, "5s", to: 3_600_000_000_000, "1h") / 1_000_000_000)
        case "fleetlock-url":
            fleetLockURL = value.isEmpty ? nil : try ClientOptions.checkedURL(value, what: "fleetlock-url", of: "a FleetLock server")
        case "wait-errors":
            switch value {
            case "retry": waitFailsFast = false
            case "fail": waitFailsFast = true
            default: throw LocksmithError(.invalidArgument, "wait-errors: \(JSONText.quotedExcerpt(value)) is not one of retry, fail", option: "wait-errors")
            }
        case "proxy":
            if value.isEmpty { proxy = ""; return }
            let lower = value.lowercased()
            guard ["http://", "https://", "socks5://", "socks5h://"].contains(where: { lower.hasPrefix($0) }),
                  !SemaphoreDocument.hasControlCharacter(value), !value.contains(" ") else {
                throw LocksmithError(.invalidArgument, "proxy: \(JSONText.quotedExcerpt(ClientOptions.withoutCredentials(value))) is not an http://, https:// or socks5:// URL")
            }
            proxy = value
        default:
            throw LocksmithError(.invalidArgument, "unknown option \(JSONText.quotedExcerpt(name)) (known: \(ClientOptions.names.joined(separator: ", ")))")
        }
    }

    /// Sets every option whose variable `<PREFIX>_<OPTION>` `lookup` finds non-empty; an
    /// endpoint list from a variable replaces the list. Returns how many were set; a bad value
    /// throws with the variable's name in front.
    @discardableResult
    public mutating func loadEnvironment(prefix: String, lookup: (String) throws -> String?) throws -> Int {
        var count = 0
        for name in ClientOptions.names {
            let variable = ClientOptions.variable(prefix: prefix, option: name)
            guard let value = try lookup(variable), !value.isEmpty else { continue }
            try set(fromVariable: variable, name, value, origin: variable)
            count += 1
        }
        return count
    }

    /// The one rule by which every program finds its etcd settings: each option its own flags
    /// did not set comes from the variable `<PREFIX>_<OPTION>` of the environment (when the
    /// client may read it), else from the daemon's `LOCKSMITHD_<OPTION>` in `daemon` (update.conf
    /// files, and the environment if it was loaded with it), so that on a node every tool looks
    /// at the semaphore its daemon uses. Returns how many options were set; a bad value throws,
    /// naming the variable and where it came from.
    @discardableResult
    public mutating func resolve(prefix: String, daemon: Configuration?) throws -> Int {
        try ClientOptions.checkPrefix(prefix)
        // etcd-password and etcd-password-file are one setting given two ways: once a source has
        // given either, lower sources give neither.
        let password = ["etcd-password", "etcd-password-file"]
        var pending = ClientOptions.names.filter { origins[$0] == nil }
        if pending.count(where: { password.contains($0) }) < 2 { pending.removeAll { password.contains($0) } }
        var count = 0
        // The program's own variables, then the daemon's settings.
        for source in 0..<2 {
            var setNow: [String] = []
            for name in pending {
                if source == 0 {
                    let own = ClientOptions.variable(prefix: prefix, option: name)
                    // The daemon (prefix LOCKSMITHD) has the environment in its configuration already.
                    guard usesEnvironment, prefix != "LOCKSMITHD", let value = try Syscalls.checkedEnvironment(own), !value.isEmpty else { continue }
                    try set(fromVariable: own, name, value, origin: own)
                } else {
                    let theirs = ClientOptions.variable(prefix: "LOCKSMITHD", option: name)
                    guard let setting = daemon?.settings[theirs], !setting.value.isEmpty else { continue }
                    // The daemon's FleetLock server is where its slots are only with that strategy.
                    if name == "fleetlock-url" && daemon?["REBOOT_STRATEGY"] != "fleetlock" { continue }
                    let place = setting.origin == "environment" ? "the environment" : setting.origin
                    try set(fromVariable: theirs, name, setting.value, origin: "\(theirs) in \(place)")
                    if name == "etcd-password", setting.origin != "environment", let mode = Syscalls.worldReadableMode(setting.origin) {
                        warnings.append("\(theirs) is set in \(setting.origin), which every user can read (mode \(mode)): put the password in a file only root can read and name it in LOCKSMITHD_ETCD_PASSWORD_FILE")
                    }
                }
                setNow.append(name)
                count += 1
            }
            pending.removeAll { setNow.contains($0) || (password.contains($0) && !setNow.filter(password.contains).isEmpty) }
        }
        return count
    }

    /// Sets an option from a variable: a list of endpoints replaces the list, and an error names
    /// the variable (and where it came from).
    private mutating func set(fromVariable variable: String, _ name: String, _ value: String, origin: String) throws {
        if name == "endpoint" { endpointList = [] }
        do {
            try set(name, value, origin: origin)
        } catch let error as LocksmithError {
            let place = origin.hasPrefix(variable + " in ") ? " (from \(origin.dropFirst(variable.count + 4)))" : ""
            throw LocksmithError(error.kind, "\(variable): \(error.message)\(place)", option: error.option)
        }
    }

    /// Option `name` as set, the real value (a password too); nil if it is not set.
    func value(_ name: String) -> String? {
        guard origins[name] != nil else { return nil }
        switch name {
        case "endpoint": return endpointList.joined(separator: ",")
        case "group": return group
        case "etcd-cafile": return tls.caFile ?? ""
        case "etcd-certfile": return tls.certFile ?? ""
        case "etcd-keyfile": return tls.keyFile ?? ""
        case "etcd-username": return username ?? ""
        case "etcd-password": return password ?? ""
        case "etcd-password-file": return passwordFile ?? ""
        case "etcd-api": return api.rawValue
        case "timeout": return GoDuration.format(Int64(timeoutMilliseconds) * 1_000_000)
        case "proxy": return proxy ?? ""
        case "queue-ttl": return GoDuration.format(Int64(queueTTLSeconds) * 1_000_000_000)
        case "fleetlock-url": return fleetLockURL ?? ""
        default: return nil
        }
    }

    /// The options set, as the environment of a program that is to use the same ones (a hook's
    /// `locksmithctl`): `PREFIX_OPTION=value` with the real values, in option order. A password
    /// read from a file is passed as the file (the child reads it as this client did), a password
    /// given as such as itself; empty values are left out (the child's own defaults apply).
    public func environment(prefix: String) throws -> [String] {
        try ClientOptions.checkPrefix(prefix)
        return ClientOptions.names.compactMap { name in
            if name == "etcd-password" && passwordFile != nil { return nil }
            guard let value = value(name), !value.isEmpty else { return nil }
            return ClientOptions.variable(prefix: prefix, option: name) + "=" + value
        }
    }

    /// Option `name` as it may be shown (in -debug output): passwords hidden, credentials in
    /// URLs masked, control characters quoted; nil if it is not set.
    public func display(_ name: String) -> (value: String, origin: String)? {
        guard let origin = origins[name], var shown = value(name) else { return nil }
        if name == "etcd-password" { shown = "(hidden)" }
        if name == "endpoint" || name == "proxy" || name == "fleetlock-url" { shown = ClientOptions.withoutCredentials(shown) }
        // Shown as set: a control character would reach the terminal as is.
        if SemaphoreDocument.hasControlCharacter(shown) { shown = JSONText.quoted(shown) }
        return (shown, origin)
    }

    /// A duration option in Go syntax, in nanoseconds, within [least, most].
    static func duration(_ name: String, _ value: String, from least: Int64, _ leastText: String, to most: Int64, _ mostText: String) throws -> Int64 {
        let nanoseconds: Int64
        do {
            nanoseconds = try GoDuration.parse(value)
        } catch let error as LocksmithError {
            throw LocksmithError(.invalidArgument, "\(name): \(error.message)")
        }
        guard nanoseconds >= least, nanoseconds <= most else {
            throw LocksmithError(.invalidArgument, "\(name): \(JSONText.quotedExcerpt(value)) is not between \(leastText) and \(mostText)")
        }
        return nanoseconds
    }

    /// A prefix of the options' variables: upper-case letters, digits and _, such as LOCKSMITHCTL.
    public static func checkPrefix(_ prefix: String) throws {
        guard !prefix.isEmpty, prefix.utf8.allSatisfy({ (65...90).contains($0) || (48...57).contains($0) || $0 == 95 }) else {
            throw LocksmithError(.invalidArgument, "prefix \(JSONText.quotedExcerpt(prefix)) is not an upper-case variable prefix such as LOCKSMITHCTL")
        }
    }

    /// The environment variable of option `name` under `prefix`: LOCKSMITHCTL + etcd-cafile ->
    /// LOCKSMITHCTL_ETCD_CAFILE.
    public static func variable(prefix: String, option: String) -> String {
        // Every caller's names are ASCII: upper-cased byte by byte (this runs twice per option
        // each time a program resolves its settings); anything else by Unicode's rules.
        guard prefix.utf8.allSatisfy({ $0 < 0x80 }), option.utf8.allSatisfy({ $0 < 0x80 }) else {
            return prefix.uppercased() + "_" + option.uppercased().replacingDashes()
        }
        func upper(_ c: UInt8) -> UInt8 { (0x61...0x7a).contains(c) ? c - 0x20 : c }
        return String(decoding: prefix.utf8.map(upper) + [UInt8(ascii: "_")]
            + option.utf8.map { $0 == UInt8(ascii: "-") ? UInt8(ascii: "_") : upper($0) }, as: UTF8.self)
    }

    /// Splits a comma-separated endpoint list; each must be an http:// or https:// URL. A trailing
    /// slash is dropped.
    public static func parseEndpoints(_ value: String) throws -> [String] {
        var out: [String] = []
        for part in value.split(separator: ",") {
            let endpoint = String(part).trimmingBlanks()
            if endpoint.isEmpty { continue }
            out.append(try checkedURL(endpoint, what: "endpoint", of: "an etcd server"))
        }
        if out.isEmpty { throw LocksmithError(.invalidArgument, "endpoint \(JSONText.quotedExcerpt(value)) names no endpoint") }
        return out
    }

    /// One server URL (`what` names the setting in messages): http:// or https://, a host, no
    /// credentials, control characters, blanks, query or fragment. A trailing slash is dropped.
    static func checkedURL(_ text: String, what: String, of server: String) throws -> String {
        var url = text
        let lower = url.lowercased()
        guard lower.hasPrefix("http://") || lower.hasPrefix("https://") else {
            let shown = withoutCredentials(url)
            // A bare host:port (as etcdctl's --endpoints takes it) gets the URL it should be.
            let bare = !url.contains("://") && !SemaphoreDocument.hasControlCharacter(url) && !url.contains(" ") && !url.isEmpty
            let fix = bare ? ": write it as \(JSONText.quotedExcerpt("http://" + shown)) (https:// if the server uses TLS)" : ""
            throw LocksmithError(.invalidArgument, "\(what) \(JSONText.quotedExcerpt(shown)) has no http:// or https:// scheme\(fix)")
        }
        // A control character would reach libcurl's URL parser and every message that shows it.
        if SemaphoreDocument.hasControlCharacter(url) {
            throw LocksmithError(.invalidArgument, "\(what) \(JSONText.quotedExcerpt(withoutCredentials(url))) contains a control character")
        }
        while url.hasSuffix("/") { url.removeLast() }
        let host = url.drop(while: { $0 != ":" }).dropFirst(3)
        // user:password@host would put the password in messages, -debug output and the
        // process list; the message shows the URL without it.
        if host.prefix(while: { $0 != "/" }).contains("@") {
            throw LocksmithError(.invalidArgument, "\(what) \(JSONText.quotedExcerpt(ClientOptions.withoutCredentials(url))) carries credentials: \(what == "endpoint" ? "give them with etcd-username and etcd-password-file" : "leave them out")")
        }
        guard !host.isEmpty, !host.hasPrefix("/"), !host.contains(where: { $0 == " " || $0 == "\t" || $0 == "?" || $0 == "#" }) else {
            throw LocksmithError(.invalidArgument, "\(what) \(JSONText.quotedExcerpt(withoutCredentials(url))) is not a URL of \(server)")
        }
        return url
    }

    /// `endpoints` (a comma-separated list) with any user:password@ replaced by "***@", for
    /// messages and -debug output.
    public static func withoutCredentials(_ endpoints: String) -> String {
        endpoints.split(separator: ",", omittingEmptySubsequences: false).map { part -> String in
            let start: Substring.Index = part.firstRange(of: "://")?.upperBound ?? part.startIndex
            let authorityEnd = part[start..<part.endIndex].firstIndex(of: "/") ?? part.endIndex
            guard let at = part[start..<authorityEnd].lastIndex(of: "@") else { return String(part) }
            return String(part[part.startIndex..<start]) + "***" + String(part[at..<part.endIndex])
        }.joined(separator: ",")
    }

    private static func readableFile(_ path: String, option: String) throws -> String? {
        if path.isEmpty { return nil }
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else {
            let code = errno
            // What to do: a file this user may not read is the common case (made by root, mode 0600).
            let fix = code == EACCES || code == EPERM
                ? ": run as a user who may read it (locksmithd runs as root), or let this user read it (chgrp its group, then chmod g+r)"
                : ""
            throw LocksmithError(code == EACCES ? .permissionDenied : .invalidArgument,
                                 "\(option): cannot read \(path): \(String(cString: strerror(code)))\(fix)")
        }
        close(fd)
        return path
    }

    private static func firstLine(of path: String, option: String) throws -> String {
        let f = fopen(path, "r")
        defer { if f != nil { fclose(f) } }
        var buffer = [CChar](repeating: 0, count: 4096)
        guard let f, fgets(&buffer, Int32(buffer.count), f) != nil else {
            throw LocksmithError(.invalidArgument, "\(option): \(path) is empty")
        }
        var line = buffer.withUnsafeBufferPointer { String(cString: $0.baseAddress!) }
        while line.hasSuffix("\n") || line.hasSuffix("\r") { line.removeLast() }
        return line
    }
}

extension String {
    func replacingDashes() -> String { String(map { $0 == "-" ? "_" : $0 }) }

}
