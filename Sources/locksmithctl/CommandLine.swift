// Parsing locksmithctl's command line the way Go's flag package did (-name=value, -name value,
// --name=value, --name value, boolean -debug), with the global flags allowed before or after the
// subcommand. No argument-parsing library: the outputs and exit codes must match the original
// byte for byte, and start-up time matters to scripts that call it in loops.

/// A flag every subcommand accepts.
struct GlobalFlag {
    let name: String
    /// "" for a boolean flag.
    let valueName: String
    let help: String
    var isBoolean: Bool { valueName.isEmpty }
}

let globalFlags: [GlobalFlag] = [
    GlobalFlag(name: "debug", valueName: "", help: "Print where each setting came from, and every request to etcd (method, URL, status, time)."),
    GlobalFlag(name: "endpoint", valueName: "URL", help: "etcd endpoint; repeat the flag or give a comma-separated list (default http://127.0.0.1:2379,http://127.0.0.1:4001)."),
    GlobalFlag(name: "etcd-api", valueName: "API", help: "etcd API to use: v2, v3 or auto (v2 if the cluster serves it, else v3; the default)."),
    GlobalFlag(name: "etcd-cafile", valueName: "FILE", help: "CA certificate to verify etcd's TLS certificate with."),
    GlobalFlag(name: "etcd-certfile", valueName: "FILE", help: "Client TLS certificate to present to etcd."),
    GlobalFlag(name: "etcd-keyfile", valueName: "FILE", help: "Key of the client TLS certificate."),
    GlobalFlag(name: "etcd-username", valueName: "USER", help: "User for etcd authentication."),
    GlobalFlag(name: "etcd-password", valueName: "PASSWORD", help: "Password for etcd authentication (prefer -etcd-password-file or the environment: arguments are visible to other users)."),
    GlobalFlag(name: "etcd-password-file", valueName: "FILE", help: "File whose first line is the password for etcd authentication."),
    GlobalFlag(name: "group", valueName: "GROUP", help: "Group of machines whose semaphore to use (default: the daemon's group, else the default group)."),
    GlobalFlag(name: "timeout", valueName: "DURATION", help: "Timeout of each request to etcd, e.g. 500ms or 10s (default 5s)."),
    GlobalFlag(name: "version", valueName: "", help: "Print the version and exit."),
]

/// What the command line says: global flags in the order given, the subcommand, its arguments,
/// and its own flags.
struct ParsedCommandLine {
    var flags: [(name: String, value: String)] = []
    var command: String?
    var arguments: [String] = []
    var localFlags: Set<String> = []
    var wantsHelp = false
    /// Where -etcd-password values sit in the arguments: (index, byte offset of the value).
    var secretPositions: [(argument: Int, offset: Int)] = []

    func values(of name: String) -> [String] { flags.filter { $0.name == name }.map(\.value) }
    func isSet(_ name: String) -> Bool { !values(of: name).isEmpty }
    func flag(_ name: String) -> Bool { values(of: name).last.map(ParsedCommandLine.isTrue) ?? false }

    static func isTrue(_ value: String) -> Bool { ["1", "t", "T", "true", "TRUE", "True"].contains(value) }
}

/// A command line that cannot be parsed: the message, for stderr, and exit status 2.
struct UsageError: Error {
    let message: String
}

enum CommandLineParser {
    static let booleanValues: Set<String> = ["1", "0", "t", "f", "T", "F", "true", "false", "TRUE", "FALSE", "True", "False"]

    /// Parses `arguments` (without the program name). `localFlagsOf` names the boolean flags a
    /// subcommand has of its own (status: json, all-groups); `takesDashArguments` names the
    /// subcommands whose arguments may start with a dash (set-max -1 is a bad number, not a flag).
    static func parse(_ arguments: [String], localFlagsOf: (String) -> Set<String>,
                      takesDashArguments: (String) -> Bool) throws(UsageError) -> ParsedCommandLine {
        var result = ParsedCommandLine()
        var i = 0
        var onlyArguments = false
        while i < arguments.count {
            let token = arguments[i]
            i += 1
            if onlyArguments || token == "-" || !token.hasPrefix("-") {
                if result.command == nil { result.command = token } else { result.arguments.append(token) }
                continue
            }
            if token == "--" {
                onlyArguments = true
                continue
            }
            let body = token.hasPrefix("--") ? token.dropFirst(2) : token.dropFirst()
            let name: String, inlineValue: String?
            if let eq = body.firstIndex(of: "=") {
                name = String(body[..<eq])
                inlineValue = String(body[body.index(after: eq)...])
            } else {
                name = String(body)
                inlineValue = nil
            }
            if name == "h" || name == "help" {
                result.wantsHelp = true
                continue
            }
            if let flag = globalFlags.first(where: { $0.name == name }) {
                if flag.isBoolean {
                    let value = inlineValue ?? "true"
                    guard booleanValues.contains(value) else {
                        throw UsageError(message: "invalid boolean value \"\(value)\" for -\(name)")
                    }
                    result.flags.append((name, value))
                } else if let inlineValue {
                    result.flags.append((name, inlineValue))
                    if name == "etcd-password" { result.secretPositions.append((i - 1, token.utf8.count - inlineValue.utf8.count)) }
                } else {
                    guard i < arguments.count else { throw UsageError(message: "flag needs an argument: -\(name)") }
                    result.flags.append((name, arguments[i]))
                    if name == "etcd-password" { result.secretPositions.append((i, 0)) }
                    i += 1
                }
                continue
            }
            if let command = result.command {
                if localFlagsOf(command).contains(name) {
                    let value = inlineValue ?? "true"
                    guard booleanValues.contains(value) else {
                        throw UsageError(message: "invalid boolean value \"\(value)\" for -\(name)")
                    }
                    if ParsedCommandLine.isTrue(value) { result.localFlags.insert(name) } else { result.localFlags.remove(name) }
                    continue
                }
                if takesDashArguments(command) {
                    result.arguments.append(token)
                    continue
                }
            }
            throw UsageError(message: "flag provided but not defined: -\(name)")
        }
        return result
    }
}
