// What an etcd failure means for the operator and what to do about it, in the settings' own
// names: one text per cause, so that every program (locksmithctl, locksmithd, locksmith-run, the
// C and Python callers) says the same. docs/errors.md lists each with the test that provokes it.
// (The TLS and connection texts are HTTPConnection.tlsAdvice and HTTPConnection.perform's.)
import LocksmithCore

enum Advice {
    /// Settings as every program names them: "etcd-username and etcd-password-file (flags
    /// -etcd-username/-etcd-password-file, or LOCKSMITHD_ETCD_USERNAME/LOCKSMITHD_ETCD_PASSWORD_FILE)".
    static func settings(_ options: String...) -> String {
        options.joined(separator: " and ") + " (flag\(options.count > 1 ? "s" : "") " + options.map { "-" + $0 }.joined(separator: "/")
            + ", or " + options.map { ClientOptions.variable(prefix: "LOCKSMITHD", option: $0) }.joined(separator: "/") + ")"
    }

    /// Where every key of locksmith lives: the prefix a role must be granted.
    static let prefix = GroupKey.prefix + "/"

    // MARK: Authentication and permission

    /// etcd wants credentials and none were given.
    static let credentialsNeeded = "etcd requires a user name and password: set \(settings("etcd-username", "etcd-password-file"))"

    /// v3: etcd refused the user name or password (authentication failed).
    static func wrongCredentials(user: String, etcdSaid: String) -> String {
        "etcd refused user \(JSONText.quoted(user)): the user name or the password is wrong: check "
            + "\(settings("etcd-username", "etcd-password-file")) (\(etcdSaid))"
    }

    /// v3: the user authenticated, but no role of it may read and write locksmith's keys.
    static func noPermission(user: String, etcdSaid: String) -> String {
        "etcd refused user \(JSONText.quoted(user)) access to \(prefix): none of its roles may read and write there: "
            + "grant one of them readwrite on that prefix (etcdctl role grant-permission --prefix=true ROLE readwrite \(prefix)) (\(etcdSaid))"
    }

    /// v2: etcd answers "requires user authentication" both to a wrong password and to a user
    /// without permission: the text names both.
    static func v2Refused(user: String, etcdSaid: String) -> String {
        "etcd refused user \(JSONText.quoted(user)): the password is wrong, or none of the user's roles may read and write "
            + "/\(prefix)*: check \(settings("etcd-username", "etcd-password-file")), and the user's roles "
            + "(ETCDCTL_API=2 etcdctl role grant ROLE --readwrite --path '/\(prefix)*') (\(etcdSaid))"
    }

    // MARK: What answers at the endpoint

    /// An etcd (version `version`, as /version says) answered a v2 request with a 404 that is
    /// not a v2 answer: it does not serve the v2 API.
    static func noV2(version: String) -> String {
        "this etcd (\(version)) does not serve the v2 API (etcd 3.4 serves it only when started with --enable-v2=true, "
            + "3.6 not at all): set \(settings("etcd-api")) to v3 or auto. Machines that still run the original locksmith "
            + "speak only v2, and v2 and v3 keep separate semaphores: while any do, keep every machine on v2 and start etcd with --enable-v2=true"
    }

    /// Something other than etcd answered (a web server, a proxy's error page, another service).
    static func notEtcd(status: Int, method: String, path: String, body: String) -> String {
        "this is not etcd: it answered HTTP \(status) to \(method) \(path) with \(excerpt(body, limit: 60)), which is no etcd answer: "
            + "check that the endpoint is the URL of etcd's client port (--advertise-client-urls, port 2379 by default)"
    }

    /// etcd's JSON gateway (the /v3/ HTTP API) cannot connect to etcd itself: with
    /// --client-cert-auth, etcd 3.4's gateway presents etcd's own server certificate to etcd,
    /// which refuses it unless --trusted-ca-file trusts it and it is for client use too (Flatcar's
    /// test layout has one CA for the server and another for clients).
    static func gatewayCannotConnect(status: Int, etcdSaid: String) -> String {
        "etcd's JSON gateway (its v3 API over HTTP) cannot connect to etcd itself: etcd 3.4's gateway connects to etcd's "
            + "client port as a client, with etcd's own server certificate (--cert-file), and etcd refuses it. Either use "
            + "the v2 API, as the original locksmith does: set \(settings("etcd-api")) to v2, with etcd started with "
            + "--enable-v2=true; or let etcd accept its own certificate: sign the server's and the clients' certificates "
            + "with one CA (or list both CAs in --trusted-ca-file), and give the server's certificate client use too "
            + "(extendedKeyUsage serverAuth,clientAuth); or, on etcd 3.5 and later, give etcd a client certificate for its "
            + "own connections with --client-cert-file and --client-key-file (HTTP \(status) \(excerpt(etcdSaid)))"
    }

    // MARK: Stored data

    /// How to repair a stored value at `key` that is not a semaphore document, which locksmith
    /// never overwrites (the values of each API are seen only through it).
    static func repair(key: String, api: EtcdAPI?) -> String {
        let fresh = #"{"semaphore":1,"max":1,"holders":[]}"#
        let (get, put) = api == .v2
            ? ("ETCDCTL_API=2 etcdctl get /\(key)", "ETCDCTL_API=2 etcdctl set /\(key) '\(fresh)'")
            : ("etcdctl get \(key)", "etcdctl put \(key) '\(fresh)'")
        return "locksmith does not overwrite it: look at it with `\(get)` and store a valid document over it, "
            + "such as `\(put)` (list the machines that hold a slot in holders, and set semaphore to max minus their number)"
    }

    // MARK: Time

    /// The server took the connection, then said nothing within the timeout.
    static let noAnswerInTime = "the server accepted the connection but did not answer in time: is etcd overloaded, "
        + "stopped, or without a quorum of its members (etcdctl endpoint health)? If it is only slow, "
        + "give it longer with \(settings("timeout"))"
}
