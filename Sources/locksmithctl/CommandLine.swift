// Parsing locksmithctl's command line the way Go's flag package did (-name=value, -name value,
// --name=value, --name value, boolean -debug), with the global flags allowed before or after the
// subcommand. No argument-parsing library: the outputs and exit codes must match the original
// byte for byte, and start-up time matters to scripts that call it in loops.

import Locksmith

/// A flag every subcommand accepts.
struct GlobalFlag {
    let name: String
    let isBoolean: Bool
    private let texts: Texts

    /// Where the value name and help come from: this program's own flags carry theirs; an etcd
    /// option's are the library's, read only when help, completions or the manual are printed
    /// (making them costs more than parsing a command line that never shows them).
    private enum Texts {
        case own(help: String)
        case option(Int)
    }

    /// A boolean flag of locksmithctl's own.
    init(boolean name: String, help: String) {
        (self.name, isBoolean, texts) = (name, true, .own(help: help))
    }

    /// The flag of the library's etcd option number `index` (Library.optionNames).
    init(option index: Int) {
        (name, isBoolean, texts) = (Library.optionNames[index], false, .option(index))
    }

    /// What the flag takes ("URL", "FILE", ...); "" for a boolean flag.
    var valueName: String {
        switch texts {
        case .own: ""
        case .option(let index): Library.options[index].valueName
        }
    }

    var help: String {
        switch texts {
        case .own(let help): help
        case .option(let index): Library.options[index].description
        }
    }
}

/// -debug, -version, and one flag per etcd option, with the library's names and help texts
/// (locksmith_client_option_name, locksmith_client_option_help), in alphabetical order.
let globalFlags: [GlobalFlag] = (
    [GlobalFlag(boolean: "debug", help: "Print where each setting came from, and every request to etcd (method, URL, status, time)."),
     GlobalFlag(boolean: "version", help: "Print the version and exit.")]
    + Library.optionNames.indices.map { GlobalFlag(option: $0) }
).sorted { $0.name < $1.name }

/// What the command line says: global flags in the order given, the subcommand, its arguments,
/// and its own flags.
struct ParsedCommandLine {
    var flags: [(name: String, value: String)] = []
    var command: String?
    var arguments: [String] = []
    var localFlags: Set<String> = []
    /// The subcommand's own flags that take a value (unlock --older-than=2h).
    var localValues: [String: String] = [:]
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
    static func parse(_ arguments: [String], localFlagsOf: (String) -> Set<String>, localValueFlagsOf: (String) -> Set<String> = { _ in [] },
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
                if localValueFlagsOf(command).contains(name) {
                    if let inlineValue {
                        result.localValues[name] = inlineValue
                    } else {
                        guard i < arguments.count else { throw UsageError(message: "flag needs an argument: --\(name)") }
                        result.localValues[name] = arguments[i]
                        i += 1
                    }
                    continue
                }
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
