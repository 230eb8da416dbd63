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
    }

    private enum State {
        case preKey, key, preValue, value, valueEscape, singleQuote, doubleQuote, doubleQuoteEscape
        case comment, commentEscape
    }

    public static func parse(_ text: String) -> Result {
        var result = Result()
        var state = State.preKey
        var key: [Unicode.Scalar] = []
        var keyLength = 0  // key without trailing blanks
        var value: [Unicode.Scalar] = []
        var valueLength = 0  // value without trailing unquoted blanks
        var line = 1
        var keyLine = 1

        func commit() {
            let name = String(String.UnicodeScalarView(key.prefix(keyLength)))
            if isValidName(name) {
                result.assignments.append((name, String(String.UnicodeScalarView(value.prefix(valueLength)))))
            } else {
                result.warnings.append("line \(keyLine): \(JSONText.quoted(name)) is not a valid variable name, line ignored")
            }
            key = []; value = []; keyLength = 0; valueLength = 0
        }
        func append(_ c: Unicode.Scalar, keep: Bool) {
            value.append(c)
            if keep { valueLength = value.count }
        }

        for c in text.unicodeScalars {
            let newline = c == "\n" || c == "\r"
            let blank = c == " " || c == "\t" || newline
            switch state {
            case .preKey:
                if c == "#" || c == ";" {
                    state = .comment
                } else if !blank {
                    state = .key
                    keyLine = line
                    key = [c]
                    keyLength = 1
                }
            case .key:
                if newline {
                    result.warnings.append("line \(keyLine): no \"=\" in \(JSONText.quoted(String(String.UnicodeScalarView(key)))), line ignored")
                    key = []; keyLength = 0
                    state = .preKey
                } else if c == "=" {
                    state = .preValue
                } else {
                    key.append(c)
                    if !blank { keyLength = key.count }
                }
            case .preValue:
                if newline {
                    commit()
                    state = .preKey
                } else if c == "'" {
                    state = .singleQuote
                } else if c == "\"" {
                    state = .doubleQuote
                } else if c == "\\" {
                    state = .valueEscape
                } else if !blank {
                    append(c, keep: true)
                    state = .value
                }
            case .value:
                if newline {
                    commit()
                    state = .preKey
                } else if c == "\\" {
                    state = .valueEscape
                } else {
                    append(c, keep: !blank)
                }
            case .valueEscape:
                if !newline { append(c, keep: true) }
                state = .value
            case .singleQuote:
                if c == "'" { state = .preValue } else { append(c, keep: true) }
            case .doubleQuote:
                if c == "\"" {
                    state = .preValue
                } else if c == "\\" {
                    state = .doubleQuoteEscape
                } else {
                    append(c, keep: true)
                }
            case .doubleQuoteEscape:
                if c == "\"" || c == "\\" || c == "`" || c == "$" {
                    append(c, keep: true)
                } else if !newline {
                    append("\\", keep: true)
                    append(c, keep: true)
                }
                state = .doubleQuote
            case .comment:
                if c == "\\" { state = .commentEscape } else if newline { state = .preKey }
            case .commentEscape:
                state = .comment
            }
            if c == "\n" { line += 1 }
        }
        switch state {
        case .preKey, .comment, .commentEscape:
            break
        case .key:
            result.warnings.append("line \(keyLine): no \"=\" in \(JSONText.quoted(String(String.UnicodeScalarView(key)))), line ignored")
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
