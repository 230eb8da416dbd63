// Fuzzes update.conf reading: EnvironmentFile.parse (systemd EnvironmentFile= syntax), merging into
// a Configuration, and the daemon settings read from it (strategy, durations, reboot window).
//
// Invariants: every assignment has a valid shell name; writing the assignments back out in
// double quotes (escaping \ " ` $) and parsing that gives the same assignments, and so does
// single-quoting values without a quote; warnings name lines that exist; the merged settings hold
// the last value of each key; settings either read or fail with an .invalidArgument message
// naming the variable, and a window read from them reads back from its normalized text.
@testable import LocksmithCore

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzEnvironmentFile(_ data: UnsafePointer<UInt8>?, _ size: Int) -> Int32 {
    let bytes = inputBytes(data, size)
    // Real files are read only when they are UTF-8; other bytes still make a string to parse.
    let text = String(validating: bytes, as: UTF8.self) ?? String(decoding: bytes, as: UTF8.self)
    let parsed = EnvironmentFile.parse(text)

    let lines = text.unicodeScalars.filter { $0 == "\n" }.count + 1
    for warning in parsed.warnings {
        invariant(startsWithBytes(warning, "line "), "warning without a line: \(warning)")
        let number = Int(warning.dropFirst(5).prefix { $0.isASCII && $0.isNumber }) ?? 0
        invariant(number >= 1 && number <= lines, "warning names line \(number) of \(lines)")
    }
    for (key, _) in parsed.assignments {
        invariant(EnvironmentFile.isValidName(key), "invalid name \(shown(key)) assigned")
    }

    // Written back in double quotes, the assignments read the same.
    let doubleQuoted = parsed.assignments.map { "\($0.key)=\"\(escapeDoubleQuoted($0.value))\"\n" }.joined()
    let again = EnvironmentFile.parse(doubleQuoted)
    invariant(again.warnings.isEmpty, "rewritten file has warnings: \(again.warnings)")
    invariant(same(again.assignments, parsed.assignments), "double-quoted rewrite reads differently: \(shown(doubleQuoted))")

    // Single quotes take everything literally but a quote.
    let quotable = parsed.assignments.filter { !$0.value.unicodeScalars.contains("'") }
    let singleQuoted = quotable.map { "  \($0.key) = '\($0.value)'  \n" }.joined()
    invariant(same(EnvironmentFile.parse(singleQuoted).assignments, quotable), "single-quoted rewrite reads differently: \(shown(singleQuoted))")

    // Merged, the last assignment of a key wins.
    var config = Configuration()
    config.merge(fileText: text, origin: "/etc/flatcar/update.conf")
    for (key, value) in parsed.assignments.reversed() {
        if let last = parsed.assignments.last(where: { $0.key == key }), last.value.utf8.elementsEqual(value.utf8) {
            invariant(config[key].map { $0.utf8.elementsEqual(value.utf8) } ?? false, "\(key) is not its last value")
        }
    }
    invariant(config.warnings.count == parsed.warnings.count, "merge lost warnings")

    // The daemon's settings from it.
    expectSettingError { _ = try config.rebootStrategy() }
    expectSettingError { _ = try config.duration("LOCKSMITHD_REBOOT_BROADCAST_DELAY", default: 300_000_000_000) }
    expectSettingError {
        if let (window, start, length) = try config.rebootWindow() {
            invariant(!start.value.isEmpty && !length.value.isEmpty, "window from empty settings")
            let again = try RebootWindow(start: window.startText, length: window.lengthText)
            invariant(again == window, "window does not read back from its normalized text")
        }
    }
    return 0
}

private func escapeDoubleQuoted(_ value: String) -> String {
    var out = ""
    for c in value.unicodeScalars {
        if c == "\\" || c == "\"" || c == "`" || c == "$" { out += "\\" }
        out.unicodeScalars.append(c)
    }
    return out
}

private func same(_ a: [(key: String, value: String)], _ b: [(key: String, value: String)]) -> Bool {
    a.count == b.count && zip(a, b).allSatisfy { $0.key.utf8.elementsEqual($1.key.utf8) && $0.value.utf8.elementsEqual($1.value.utf8) }
}

private func expectSettingError(_ body: () throws -> Void) {
    do {
        try body()
    } catch let error as LocksmithError {
        invariant(error.kind == .invalidArgument, "setting failed with kind \(error.kind)")
        invariant(containsBytes(error.message, "(from /etc/flatcar/update.conf)"), "message does not name the file: \(error.message)")
    } catch {
        invariant(false, "not a LocksmithError: \(error)")
    }
}
