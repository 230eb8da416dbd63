// update.conf text, read the way systemd reads an EnvironmentFile= (the unit of the original
// loaded update.conf that way), so a setting means the same with or without the unit:
//
//   # comment            ; comment too (only at the start of a line, after blanks)
//   KEY=value            blanks around the key and before the value are dropped, trailing
//                        blanks of an unquoted value too; a backslash escapes the next
//                        character; backslash-newline continues the line
//   KEY='single'         no escapes inside single quotes
//   KEY="double"         \" \\ \` \$ and backslash-newline are escapes inside double quotes
//   KEY="a" 'b'c         quoted and unquoted pieces join: "abc"
//
// Lines without `=` and keys that are not shell names ([A-Za-z_][A-Za-z0-9_]*) are skipped with a
// warning; a later line for the same key wins.

public enum EnvironmentFile {
    public struct Result: Sendable {
        /// Assignments in file order (a key may repeat; the last one wins).
        public var assignments: [(key: String, value: String)] = []
        /// One line per skipped line, naming its line number.
        public var warnings: [String] = []
        /// The line each assignment starts on, in the order of `assignments`.
        public var lines: [Int] = []
    }

    private enum State {
        case preKey, key, preValue, value, valueEscape, singleQuote, doubleQuote, doubleQuoteEscape
        case comment, commentEscape
    }

    /// Works on the UTF-8 bytes: every character with a meaning here is ASCII, and the bytes of
    /// a multi-byte character are never ASCII, so each value keeps its characters whole. (Bytes,
    /// not Unicode scalars: a PAM module parses a file at every login, and building strings from
    /// scalars goes through generic code whose type metadata the Swift runtime first has to build.)
    public static func parse(_ text: String) -> Result {
        var result = Result()
        var state = State.preKey
        var key: [UInt8] = []
        var keyLength = 0  // key without trailing blanks
        var value: [UInt8] = []
        var valueLength = 0  // value without trailing unquoted blanks
        var line = 1
        var keyLine = 1

        func string(_ bytes: [UInt8], _ count: Int) -> String {
            String(decoding: bytes[0..<count], as: UTF8.self)
        }
        func commit() {
            let name = string(key, keyLength)
            if isValidName(name) {
                result.assignments.append((name, string(value, valueLength)))
                result.lines.append(keyLine)
            } else {
                result.warnings.append("line \(keyLine): \(JSONText.quoted(name)) is not a valid variable name, line ignored")
            }
            key.removeAll(keepingCapacity: true); value.removeAll(keepingCapacity: true); keyLength = 0; valueLength = 0
        }
        func append(_ c: UInt8, keep: Bool) {
            value.append(c)
            if keep { valueLength = value.count }
        }
        let lf = UInt8(ascii: "\n"), cr = UInt8(ascii: "\r"), space = UInt8(ascii: " "), tab = UInt8(ascii: "\t")
        let backslash = UInt8(ascii: "\\"), doubleQuote = UInt8(ascii: "\""), singleQuote = UInt8(ascii: "'")

        for c in text.utf8 {
            let newline = c == lf || c == cr
            let blank = c == space || c == tab || newline
            switch state {
            case .preKey:
                if c == UInt8(ascii: "#") || c == UInt8(ascii: ";") {
                    state = .comment
                } else if !blank {
                    state = .key
                    keyLine = line
                    key.append(c)
                    keyLength = 1
                }
            case .key:
                if newline {
                    result.warnings.append("line \(keyLine): no \"=\" in \(JSONText.quoted(string(key, key.count))), line ignored")
                    key.removeAll(keepingCapacity: true); keyLength = 0
                    state = .preKey
                } else if c == UInt8(ascii: "=") {
                    state = .preValue
                } else {
                    key.append(c)
                    if !blank { keyLength = key.count }
                }
            case .preValue:
                if newline {
                    commit()
                    state = .preKey
                } else if c == singleQuote {
                    state = .singleQuote
                } else if c == doubleQuote {
                    state = .doubleQuote
                } else if c == backslash {
                    state = .valueEscape
                } else if !blank {
                    append(c, keep: true)
                    state = .value
                }
            case .value:
                if newline {
                    commit()
                    state = .preKey
                } else if c == backslash {
                    state = .valueEscape
                } else {
                    append(c, keep: !blank)
                }
            case .valueEscape:
                if !newline { append(c, keep: true) }
                state = .value
            case .singleQuote:
                if c == singleQuote { state = .preValue } else { append(c, keep: true) }
            case .doubleQuote:
                if c == doubleQuote {
                    state = .preValue
                } else if c == backslash {
                    state = .doubleQuoteEscape
                } else {
                    append(c, keep: true)
                }
            case .doubleQuoteEscape:
                if c == doubleQuote || c == backslash || c == UInt8(ascii: "`") || c == UInt8(ascii: "$") {
                    append(c, keep: true)
                } else if !newline {
                    append(backslash, keep: true)
                    append(c, keep: true)
                }
                state = .doubleQuote
            case .comment:
                if c == backslash { state = .commentEscape } else if newline { state = .preKey }
            case .commentEscape:
                state = .comment
            }
            if c == lf { line += 1 }
        }
        switch state {
        case .preKey, .comment, .commentEscape:
            break
        case .key:
            result.warnings.append("line \(keyLine): no \"=\" in \(JSONText.quoted(string(key, key.count))), line ignored")
        default:
            commit()
        }
        return result
    }

    /// A shell variable name: a letter or underscore, then letters, digits or underscores.
    public static func isValidName(_ name: String) -> Bool {
        guard let first = name.utf8.first, !(UInt8(ascii: "0")...UInt8(ascii: "9")).contains(first) else { return false }
        return name.utf8.allSatisfy { b in
            (UInt8(ascii: "a")...UInt8(ascii: "z")).contains(b) || (UInt8(ascii: "A")...UInt8(ascii: "Z")).contains(b)
                || (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(b) || b == UInt8(ascii: "_")
        }
    }
}
