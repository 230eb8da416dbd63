// JSON text the way Go's encoding/json writes it, so that documents we store are byte-identical
// to the ones the original locksmith stored (it escaped <, > and & for HTML safety, wrote
// control characters as \u00XX except \n, \r and \t, and escaped U+2028 and U+2029).

enum JSONText {
    private static let hex: [Character] = Array("0123456789abcdef")

    /// `value` as a quoted JSON string, escaped as Go's json.Marshal escapes it.
    static func quoted(_ value: String) -> String {
        var out = "\""
        out.reserveCapacity(value.utf8.count + 2)
        for scalar in value.unicodeScalars {
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
        out += "\""
        return out
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
