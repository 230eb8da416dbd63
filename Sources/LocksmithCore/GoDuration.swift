// Durations in the syntax of Go's time.ParseDuration ("1h30m", "45m", "1.5h", "300ms", "-2s"),
// which is what the original accepted for REBOOT_WINDOW_LENGTH and what etcd users type for
// timeouts. Parsed to nanoseconds; anything that would overflow 64 bits is an error.

public enum GoDuration {
    private static let units: [(name: String, nanoseconds: UInt64)] = [
        ("ns", 1), ("us", 1_000), ("\u{00B5}s", 1_000), ("\u{03BC}s", 1_000),
        ("ms", 1_000_000), ("s", 1_000_000_000), ("m", 60_000_000_000), ("h", 3_600_000_000_000),
    ]

    /// Parses `text` to nanoseconds. A sequence of decimal numbers, each with an optional
    /// fraction and a required unit (ns, us, µs, ms, s, m, h), after an optional sign; "0" alone
    /// needs no unit. Throws `.invalidArgument` naming what is wrong.
    public static func parse(_ text: String) throws -> Int64 {
        var rest = Substring(text)
        var negative = false
        if let sign = rest.first, sign == "-" || sign == "+" {
            negative = sign == "-"
            rest = rest.dropFirst()
        }
        if rest == "0" { return 0 }
        if rest.isEmpty { throw invalid(text, "no number") }

        var total: UInt64 = 0
        while !rest.isEmpty {
            let integer = rest.prefix { $0.isASCII && $0.isNumber }
            rest = rest.dropFirst(integer.count)
            var fraction = Substring("")
            if rest.first == "." {
                rest = rest.dropFirst()
                fraction = rest.prefix { $0.isASCII && $0.isNumber }
                rest = rest.dropFirst(fraction.count)
            }
            if integer.isEmpty && fraction.isEmpty { throw invalid(text, "expected a number") }
            let unitText = rest.prefix { !($0.isASCII && $0.isNumber) && $0 != "." }
            rest = rest.dropFirst(unitText.count)
            if unitText.isEmpty { throw invalid(text, "missing unit") }
            guard let unit = units.first(where: { $0.name == unitText })?.nanoseconds else {
                throw invalid(text, "unknown unit \"\(unitText)\" (use ns, us, ms, s, m or h)")
            }
            guard let whole = decimal(integer) else { throw invalid(text, "number too large") }
            let (scaled, overflow) = whole.multipliedReportingOverflow(by: unit)
            if overflow { throw invalid(text, "too long") }
            var part = scaled
            if !fraction.isEmpty {
                // Go's rule: fraction digits count while the number stays within 2^63 (18 or 19
                // digits), later ones are ignored; the cut decides how the nanoseconds round.
                var digits: UInt64 = 0
                var scale = 1.0
                for c in fraction {
                    guard digits <= (UInt64(1) << 63 - 1) / 10 else { break }
                    let next = digits * 10 + UInt64(c.asciiValue! - 48)
                    guard next <= UInt64(1) << 63 else { break }
                    digits = next
                    scale *= 10
                }
                let add = UInt64(Double(digits) * (Double(unit) / scale))
                let (sum, overflow) = part.addingReportingOverflow(add)
                if overflow { throw invalid(text, "too long") }
                part = sum
            }
            let (sum, overflow2) = total.addingReportingOverflow(part)
            if overflow2 { throw invalid(text, "too long") }
            total = sum
        }
        if negative {
            if total > UInt64(Int64.max) + 1 { throw invalid(text, "too long") }
            return total == UInt64(Int64.max) + 1 ? Int64.min : -Int64(total)
        }
        if total > UInt64(Int64.max) { throw invalid(text, "too long") }
        return Int64(total)
    }

    /// Whole seconds and a remainder formatted the way Go's Duration.String does for the values
    /// users see here ("1h30m0s", "45m0s", "10s", "1.5s", "0s").
    public static func format(_ nanoseconds: Int64) -> String {
        if nanoseconds == 0 { return "0s" }
        let negative = nanoseconds < 0
        let magnitude = nanoseconds.magnitude
        var out = ""
        if magnitude < 1_000_000_000 {
            let (value, unit): (UInt64, String) =
                magnitude < 1_000 ? (magnitude, "ns") : magnitude < 1_000_000 ? (magnitude, "\u{00B5}s") : (magnitude, "ms")
            let divisor: UInt64 = unit == "ns" ? 1 : unit == "ms" ? 1_000_000 : 1_000
            out = fixed(value, divisor) + unit
        } else {
            let totalSeconds = magnitude / 1_000_000_000
            let hours = totalSeconds / 3600
            let minutes = (totalSeconds / 60) % 60
            let seconds = fixed(magnitude % 60_000_000_000, 1_000_000_000)
            if hours > 0 { out += "\(hours)h" }
            if hours > 0 || minutes > 0 { out += "\(minutes)m" }
            out += seconds + "s"
        }
        return negative ? "-" + out : out
    }

    /// `value / divisor` in decimal, with the fraction's trailing zeros dropped.
    private static func fixed(_ value: UInt64, _ divisor: UInt64) -> String {
        let whole = value / divisor
        var remainder = value % divisor
        if remainder == 0 { return "\(whole)" }
        var digits = ""
        var d = divisor / 10
        while remainder > 0 && d > 0 {
            digits.append(Character(Unicode.Scalar(UInt8(48 + remainder / d))))
            remainder %= d
            d /= 10
        }
        return "\(whole).\(digits)"
    }

    private static func decimal(_ digits: Substring) -> UInt64? {
        var value: UInt64 = 0
        for c in digits {
            let (times10, o1) = value.multipliedReportingOverflow(by: 10)
            let (next, o2) = times10.addingReportingOverflow(UInt64(c.asciiValue! - 48))
            if o1 || o2 { return nil }
            value = next
        }
        return value
    }

    private static func invalid(_ text: String, _ why: String) -> LocksmithError {
        LocksmithError(.invalidArgument, "invalid duration \(JSONText.quoted(text)): \(why)")
    }
}
