// JSON text the way Go's encoding/json writes it, so that documents we store are byte-identical
// to the ones the original locksmith stored (it escaped <, > and & for HTML safety, wrote
// control characters as \u00XX except \n, \r and \t, and escaped U+2028 and U+2029).

public enum JSONText {
    private static let hex: [Character] = Array("0123456789abcdef")

    /// `value` as a quoted JSON string, escaped as Go's json.Marshal escapes it.
    public static func quoted(_ value: String) -> String {
        var out = "\""
        out.reserveCapacity(value.utf8.count + 2)
        for scalar in value.unicodeScalars { append(scalar, to: &out) }
        out += "\""
        return out
    }

    /// `bytes` as a quoted JSON string: as `quoted`, with each byte that is not part of valid
    /// UTF-8 written as the escape \ufffd, as Go writes it.
    public static func quoted(utf8 bytes: some Collection<UInt8>) -> String {
        var out = "\""
        var iterator = bytes.makeIterator()
        var decoder = UTF8()
        while true {
            switch decoder.decode(&iterator) {
            case .scalarValue(let scalar): append(scalar, to: &out)
            case .error: out += "\\ufffd"
            case .emptyInput:
                out += "\""
                return out
            }
        }
    }

    /// At most `limit` characters of `value`, quoted, with "..." when cut: for messages that
    /// quote what a caller or a file gave, however long it is.
    public static func quotedExcerpt(_ value: String, limit: Int = 200) -> String {
        value.count <= limit ? quoted(value) : quoted(String(value.prefix(limit))) + "..."
    }

    private static func append(_ scalar: Unicode.Scalar, to out: inout String) {
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            case "<", ">", "&", "\u{2028}", "\u{2029}":
                out += unicodeEscape(scalar.value)
            default:
                if scalar.value < 0x20 {
                    out += unicodeEscape(scalar.value)
                } else {
                    out.unicodeScalars.append(scalar)
                }
            }
    }

    private static func unicodeEscape(_ v: UInt32) -> String {
        var s = "\\u"
        for shift in stride(from: 12, through: 0, by: -4) {
            s.append(hex[Int((v >> UInt32(shift)) & 0xf)])
        }
        return s
    }
}

/// Byte-wise comparison of strings, as Go compares them: Swift's own `==` and `<` treat
/// canonically equivalent strings as equal, which a list of machine ids must not.
enum Bytewise {
    static func equal(_ a: String, _ b: String) -> Bool { a.utf8.elementsEqual(b.utf8) }
    static func less(_ a: String, _ b: String) -> Bool { a.utf8.lexicographicallyPrecedes(b.utf8) }
}

/// A strict RFC 8259 syntax check, run before json-c builds values: json-c accepts single
/// quotes and other extensions that Go's decoder (and so the original) refused.
enum JSONSyntax {
    struct Failure: Error {
        var offset: Int
        var reason: String
    }

    /// Checks that `bytes` hold exactly one JSON value (blanks around it allowed), nested at
    /// most `maxDepth` deep. Does not check UTF-8 (json-c does).
    static func check(_ bytes: UnsafeRawBufferPointer, maxDepth: Int = 32) throws(Failure) {
        var scanner = Scanner(bytes: bytes, maxDepth: maxDepth)
        scanner.skipBlanks()
        try scanner.value(depth: 1)
        scanner.skipBlanks()
        if scanner.i < bytes.count { throw Failure(offset: scanner.i, reason: "extra data after the document") }
    }

    /// The members of the object `bytes` holds, in document order: each name as written (quotes
    /// included) and its value's text without the blanks between tokens. nil if `bytes` is not
    /// a JSON object.
    static func members(_ bytes: UnsafeRawBufferPointer, maxDepth: Int = 32) -> [(name: [UInt8], value: String)]? {
        var scanner = Scanner(bytes: bytes, maxDepth: maxDepth)
        var members: [(name: [UInt8], value: String)] = []
        do {
            scanner.skipBlanks()
            try scanner.expect(UInt8(ascii: "{"), "'{'")
            scanner.skipBlanks()
            if scanner.current == UInt8(ascii: "}") { return members }
            while true {
                scanner.skipBlanks()
                let nameStart = scanner.i
                try scanner.string(isName: true)
                let name = Array(bytes[nameStart..<scanner.i])
                scanner.skipBlanks()
                try scanner.expect(UInt8(ascii: ":"), "':'")
                scanner.skipBlanks()
                let valueStart = scanner.i
                try scanner.value(depth: 2)
                members.append((name, compact(UnsafeRawBufferPointer(rebasing: bytes[valueStart..<scanner.i]))))
                scanner.skipBlanks()
                if scanner.current == UInt8(ascii: ",") { scanner.i += 1; continue }
                try scanner.expect(UInt8(ascii: "}"), "',' or '}'")
                return members
            }
        } catch {
            return nil
        }
    }

    /// JSON text without the blanks between tokens; strings are kept as written.
    private static func compact(_ text: UnsafeRawBufferPointer) -> String {
        var out: [UInt8] = []
        out.reserveCapacity(text.count)
        var inString = false, escaped = false
        for b in text {
            if inString {
                if escaped { escaped = false } else if b == UInt8(ascii: "\\") { escaped = true } else if b == UInt8(ascii: "\"") { inString = false }
                out.append(b)
            } else if b == UInt8(ascii: "\"") {
                inString = true
                out.append(b)
            } else if !(b == 0x20 || b == 0x09 || b == 0x0a || b == 0x0d) {
                out.append(b)
            }
        }
        return String(decoding: out, as: UTF8.self)
    }

    private struct Scanner {
        let bytes: UnsafeRawBufferPointer
        let maxDepth: Int
        var i = 0

        init(bytes: UnsafeRawBufferPointer, maxDepth: Int) {
            self.bytes = bytes
            self.maxDepth = maxDepth
        }

        var current: UInt8? { i < bytes.count ? bytes[i] : nil }

        mutating func skipBlanks() {
            while let c = current, c == 0x20 || c == 0x09 || c == 0x0a || c == 0x0d { i += 1 }
        }

        func fail(_ reason: String) -> Failure {
            Failure(offset: i, reason: i < bytes.count ? reason : "unexpected end of data")
        }

        mutating func expect(_ c: UInt8, _ what: String) throws(Failure) {
            guard current == c else { throw fail("expected \(what)") }
            i += 1
        }

        mutating func value(depth: Int) throws(Failure) {
            guard depth <= maxDepth else { throw fail("nested deeper than \(maxDepth) levels") }
            guard let c = current else { throw fail("") }
            switch c {
            case UInt8(ascii: "{"):
                i += 1
                skipBlanks()
                if current == UInt8(ascii: "}") { i += 1; return }
                while true {
                    skipBlanks()
                    try string(isName: true)
                    skipBlanks()
                    try expect(UInt8(ascii: ":"), "':'")
                    skipBlanks()
                    try value(depth: depth + 1)
                    skipBlanks()
                    if current == UInt8(ascii: ",") { i += 1; continue }
                    try expect(UInt8(ascii: "}"), "',' or '}'")
                    return
                }
            case UInt8(ascii: "["):
                i += 1
                skipBlanks()
                if current == UInt8(ascii: "]") { i += 1; return }
                while true {
                    skipBlanks()
                    try value(depth: depth + 1)
                    skipBlanks()
                    if current == UInt8(ascii: ",") { i += 1; continue }
                    try expect(UInt8(ascii: "]"), "',' or ']'")
                    return
                }
            case UInt8(ascii: "\""):
                try string()
            case UInt8(ascii: "t"): try literal("true")
            case UInt8(ascii: "f"): try literal("false")
            case UInt8(ascii: "n"): try literal("null")
            case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"):
                try number()
            default:
                throw fail("expected a value")
            }
        }

        mutating func literal(_ word: String) throws(Failure) {
            for c in word.utf8 {
                guard current == c else { throw fail("expected \(word)") }
                i += 1
            }
        }

        mutating func digits() throws(Failure) {
            guard let c = current, (0x30...0x39).contains(c) else { throw fail("expected a digit") }
            while let c = current, (0x30...0x39).contains(c) { i += 1 }
        }

        mutating func number() throws(Failure) {
            if current == UInt8(ascii: "-") { i += 1 }
            if current == UInt8(ascii: "0") { i += 1 } else { try digits() }
            if current == UInt8(ascii: ".") { i += 1; try digits() }
            if current == UInt8(ascii: "e") || current == UInt8(ascii: "E") {
                i += 1
                if current == UInt8(ascii: "+") || current == UInt8(ascii: "-") { i += 1 }
                try digits()
            }
        }

        /// A string; in a member name, \u0000 is refused (json-c keeps names as C strings, so
        /// the name would be cut short when written back).
        mutating func string(isName: Bool = false) throws(Failure) {
            try expect(UInt8(ascii: "\""), "a string in double quotes")
            while let c = current {
                i += 1
                switch c {
                case UInt8(ascii: "\""):
                    return
                case UInt8(ascii: "\\"):
                    guard let e = current else { throw fail("") }
                    i += 1
                    switch e {
                    case UInt8(ascii: "\""), UInt8(ascii: "\\"), UInt8(ascii: "/"), UInt8(ascii: "b"),
                         UInt8(ascii: "f"), UInt8(ascii: "n"), UInt8(ascii: "r"), UInt8(ascii: "t"):
                        break
                    case UInt8(ascii: "u"):
                        if isName, i + 4 <= bytes.count, bytes[i..<i + 4].allSatisfy({ $0 == UInt8(ascii: "0") }) {
                            i -= 2
                            throw fail("\\u0000 in a member name")
                        }
                        for _ in 0..<4 {
                            guard let h = current, (0x30...0x39).contains(h) || (0x41...0x46).contains(h) || (0x61...0x66).contains(h)
                            else { throw fail("bad \\u escape") }
                            i += 1
                        }
                    default:
                        i -= 1
                        throw fail("bad escape in a string")
                    }
                case 0..<0x20:
                    i -= 1
                    throw fail("control character in a string")
                default:
                    break
                }
            }
            throw fail("")
        }
    }
}
