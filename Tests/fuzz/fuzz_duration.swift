// Fuzzes GoDuration: parsing Go duration syntax and formatting durations the way Go prints them.
//
// Invariants: parse agrees with a model of Go's time.ParseDuration written here independently
// (byte-wise, as Go scans; same accept/refuse, same nanoseconds); format agrees with a model of
// Go's Duration.String; formatting any parsed (or raw 64-bit) value parses back to the same value;
// every failure is an .invalidArgument LocksmithError that quotes the text.
@testable import LocksmithCore

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzDuration(_ data: UnsafePointer<UInt8>?, _ size: Int) -> Int32 {
    let bytes = inputBytes(data, size)

    // Any 8 bytes are also a duration to print.
    if bytes.count >= 8 {
        var raw: UInt64 = 0
        for b in bytes.prefix(8) { raw = raw << 8 | UInt64(b) }
        checkFormat(Int64(bitPattern: raw))
    }

    guard let text = String(validating: bytes, as: UTF8.self) else { return 0 }
    let expected = GoModel.parse(Array(text.utf8))
    do {
        let value = try GoDuration.parse(text)
        invariant(expected == value, "parse \(shown(text)) = \(value), Go would give \(expected.map(String.init) ?? "an error")")
        checkFormat(value)
    } catch let error as LocksmithError {
        invariant(error.kind == .invalidArgument, "parse failed with kind \(error.kind)")
        invariant(startsWithBytes(error.message, "invalid duration \(JSONText.quoted(text)): "), "message does not quote the text: \(error.message)")
        invariant(expected == nil, "parse refused \(shown(text)) (\(error.message)), Go would give \(expected!)")
    } catch {
        invariant(false, "not a LocksmithError: \(error)")
    }
    return 0
}

private func checkFormat(_ value: Int64) {
    let text = GoDuration.format(value)
    invariant(text == GoModel.format(value), "format(\(value)) = \(shown(text)), Go prints \(shown(GoModel.format(value)))")
    let back = try? GoDuration.parse(text)
    invariant(back == value, "format(\(value)) = \(shown(text)) parses back to \(back.map(String.init) ?? "an error")")
}

/// Go's duration rules restated over bytes, as the reference the port must match.
enum GoModel {
    static let units: [[UInt8]: UInt64] = [
        Array("ns".utf8): 1, Array("us".utf8): 1_000, Array("\u{00B5}s".utf8): 1_000, Array("\u{03BC}s".utf8): 1_000,
        Array("ms".utf8): 1_000_000, Array("s".utf8): 1_000_000_000, Array("m".utf8): 60_000_000_000,
        Array("h".utf8): 3_600_000_000_000,
    ]
    static let limit: UInt64 = 1 << 63

    static func isDigit(_ b: UInt8) -> Bool { b >= 0x30 && b <= 0x39 }

    static func parse(_ s: [UInt8]) -> Int64? {
        var i = 0
        var negative = false
        if let c = s.first, c == UInt8(ascii: "-") || c == UInt8(ascii: "+") {
            negative = c == UInt8(ascii: "-")
            i = 1
        }
        if s[i...].elementsEqual([UInt8(ascii: "0")]) { return 0 }
        if i == s.count { return nil }
        var total: UInt64 = 0
        while i < s.count {
            guard s[i] == UInt8(ascii: ".") || isDigit(s[i]) else { return nil }
            // Integer part: refused once it passes 2^63.
            var whole: UInt64 = 0
            let intStart = i
            while i < s.count, isDigit(s[i]) {
                if whole > limit / 10 { return nil }
                whole = whole * 10 + UInt64(s[i] - 48)
                if whole > limit { return nil }
                i += 1
            }
            let hadInteger = i > intStart
            // Fraction: digits are taken while they fit in 63 bits; later ones are ignored.
            var fraction: UInt64 = 0
            var scale = 1.0
            var hadFraction = false
            if i < s.count, s[i] == UInt8(ascii: ".") {
                i += 1
                let fracStart = i
                var overflow = false
                while i < s.count, isDigit(s[i]) {
                    if !overflow {
                        if fraction > (limit - 1) / 10 {
                            overflow = true
                        } else {
                            let next = fraction * 10 + UInt64(s[i] - 48)
                            if next > limit { overflow = true } else { fraction = next; scale *= 10 }
                        }
                    }
                    i += 1
                }
                hadFraction = i > fracStart
            }
            if !hadInteger && !hadFraction { return nil }
            let unitStart = i
            while i < s.count, s[i] != UInt8(ascii: "."), !isDigit(s[i]) { i += 1 }
            if i == unitStart { return nil }
            guard let unit = units[Array(s[unitStart..<i])] else { return nil }
            if whole > limit / unit { return nil }
            var v = whole * unit
            if fraction > 0 {
                v += UInt64(Double(fraction) * (Double(unit) / scale))
                if v > limit { return nil }
            }
            // Refused once the sum passes 2^63, also where adding would wrap around 2^64 (Go's
            // uint64 wraps there; the library refuses: "too long").
            let (sum, wrapped) = total.addingReportingOverflow(v)
            if wrapped || sum > limit { return nil }
            total = sum
        }
        if negative { return total == limit ? Int64.min : -Int64(total) }
        if total > limit - 1 { return nil }
        return Int64(total)
    }

    /// Go's Duration.String, built from the right as Go builds it.
    static func format(_ d: Int64) -> String {
        var u = d.magnitude
        var out: [UInt8] = []  // reversed
        func put(_ s: String) { out += s.utf8.reversed() }
        func fraction(_ precision: Int) {
            var printed = false
            for _ in 0..<precision {
                let digit = u % 10
                printed = printed || digit != 0
                if printed { out.append(UInt8(48 + digit)) }
                u /= 10
            }
            if printed { out.append(UInt8(ascii: ".")) }
        }
        func integer(_ v: UInt64) { put(String(v)) }
        if u < 1_000_000_000 {
            if u == 0 { return "0s" }
            put("s")
            if u < 1_000 { put("n"); fraction(0) } else if u < 1_000_000 { put("\u{00B5}"); fraction(3) } else { put("m"); fraction(6) }
            integer(u)
        } else {
            put("s")
            fraction(9)
            integer(u % 60)
            u /= 60
            if u > 0 {
                put("m")
                integer(u % 60)
                u /= 60
                if u > 0 { put("h"); integer(u) }
            }
        }
        if d < 0 { out.append(UInt8(ascii: "-")) }
        return String(decoding: out.reversed(), as: UTF8.self)
    }
}
