// What every command runs with: the parsed command line, the etcd client made from the
// settings (flags, then the library's rule), and the output helpers.
import Glibc
import Locksmith

/// Everything a command needs: the parsed command line, and the etcd client made from the
/// settings on first use.
final class Context {
    let line: ParsedCommandLine
    let debug: Bool
    private var madeClient: Client?

    init(_ line: ParsedCommandLine) {
        self.line = line
        debug = line.flag("debug")
    }

    /// The root system files are read under (the library's rule: $LOCKSMITH_ROOT, else "/").
    var root: String { Library.root }

    func debugLog(_ text: String) {
        if debug { standardError("locksmithctl: debug: \(text)\n") }
    }

    /// The node's configuration as the daemon sees it (update.conf files and environment).
    func daemonConfiguration() -> Configuration? {
        do {
            return try Configuration()
        } catch {
            debugLog("cannot read the daemon's configuration: \(error)")
            return nil
        }
    }

    func client() throws -> Client {
        if let madeClient { return madeClient }
        let client = try makeClient(group: nil)
        if debug { client.trace { [weak self] line in self?.debugLog(line) } }
        madeClient = client
        return client
    }

    /// Another client with the same settings, for `group`'s semaphore (status --watch
    /// --all-groups watches each group with a client of its own).
    func client(group: String) throws -> Client {
        try makeClient(group: group)
    }

    /// A client from the flags, then the library's rule; `group` (if given) replaces -group.
    private func makeClient(group: String?) throws -> Client {
        let client = try Client()
        if let group { try client.set("group", group) }
        for name in Library.optionNames where group == nil || name != "group" {
            let given = line.values(of: name)
            guard !given.isEmpty else { continue }
            let value = given.joined(separator: ",")
            do {
                try client.set(name, value)
            } catch let error as LocksmithFailure {
                // A value the flag's type refuses is a usage error, as with Go's flag package.
                guard error.option == "etcd-api" || error.option == "timeout" else {
                    throw Failure(message: "Error initializing etcd client: \(error.message)", status: ExitStatus.failed)
                }
                throw Failure(message: "locksmithctl: invalid value \(Library.jsonQuoted(value)) for flag -\(name): \(error.message)\nRun 'locksmithctl help' for usage.",
                              status: ExitStatus.usage)
            }
        }
        // The rest from LOCKSMITHCTL_<NAME>, then the daemon's LOCKSMITHD_<NAME> (the library's rule).
        do {
            try client.loadSettings(prefix: "LOCKSMITHCTL", daemon: daemonConfiguration())
        } catch let error as LocksmithFailure {
            throw Failure(message: "Error initializing etcd client: \(error.message)", status: ExitStatus.failed)
        }
        guard group == nil else { return client }
        // (Only when they are shown: listing the settings asks the library for each of them.)
        if debug {
            for setting in client.settings {
                debugLog("\(setting.name) = \(setting.value) (from \(setting.origin.isEmpty ? "flag -\(setting.name)" : setting.origin))")
            }
        }
        for warning in client.warnings { standardError("locksmithctl: warning: \(warning)\n") }
        return client
    }

    /// Runs an etcd operation, turning its failure into the original's messages: no endpoint
    /// reachable is "Error initializing etcd client", a corrupt document "Error reading
    /// semaphore", anything else `prefix`.
    func etcd<T>(_ prefix: String, _ body: (Client) throws -> T) throws -> T {
        let c = try client()
        defer {
            if let api = c.api { debugLog("etcd API \(api), endpoint \(c.endpoint ?? "none")") }
        }
        do {
            return try body(c)
        } catch let error as LocksmithFailure {
            // Through a FleetLock server there is no etcd client to speak of: its failures,
            // and what it cannot do (EOPNOTSUPP: all but lock and unlock), follow the command's prefix.
            let fleetLock = c.settings.contains { $0.name == "fleetlock-url" && !$0.value.isEmpty }
            switch error.code {
            case let code where code == ELIBACC || (!fleetLock && [ECONNREFUSED, ETIMEDOUT, EACCES].contains(code)):
                throw Failure(message: "Error initializing etcd client: \(error.message)", status: ExitStatus.failed)
            case EBADMSG:
                throw Failure(message: "Error reading semaphore: \(error.message)", status: ExitStatus.failed)
            default:
                throw Failure(message: "\(prefix): \(error.message)", status: ExitStatus.failed)
            }
        }
    }

    /// The machine id argument, or this machine's id.
    func machineID(_ verb: String) throws -> String {
        if line.arguments.count > 1 {
            throw Failure(message: "\(verb) takes at most one machine id\nRun 'locksmithctl help \(verb)' for usage.", status: ExitStatus.usage)
        }
        if let id = line.arguments.first { return id }
        do {
            return try Library.machineID()
        } catch {
            throw Failure(message: "Error reading machine id: \(error), or name the machine: locksmithctl \(verb) ID", status: ExitStatus.failed)
        }
    }
}

func standardOutput(_ text: String) { writeAll(1, text) }
func standardError(_ text: String) { writeAll(2, text) }

/// Writes all of `text` to a file descriptor (unbuffered: nothing is lost at exit).
private func writeAll(_ fd: Int32, _ text: String) {
    var bytes = Array(text.utf8)[...]
    while !bytes.isEmpty {
        let n = bytes.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
        if n < 0 && errno == EINTR { continue }
        if n <= 0 { return }
        bytes = bytes.dropFirst(n)
    }
}
