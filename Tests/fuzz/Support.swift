// Shared by every fuzz harness: reading the input, and failing loudly when an invariant breaks.
// A failed invariant aborts, so libFuzzer saves the input as a crash artifact like any crash.
#if canImport(Glibc)
import Glibc
#endif

/// Stops the run with `message` on stderr when `condition` is false.
@inline(__always)
func invariant(_ condition: @autoclosure () -> Bool, _ message: @autoclosure () -> String,
               file: StaticString = #fileID, line: UInt = #line) {
    if !condition() {
        let text = "INVARIANT FAILED (\(file):\(line)): \(message())\n"
        fputs(text, stderr)
        abort()
    }
}

/// The fuzz input as bytes.
func inputBytes(_ data: UnsafePointer<UInt8>?, _ size: Int) -> UnsafeRawBufferPointer {
    UnsafeRawBufferPointer(start: data, count: data == nil ? 0 : size)
}

/// Bytes for messages: printable ASCII as is, the rest as \xNN.
func shown(_ bytes: some Sequence<UInt8>) -> String {
    var out = "\""
    for b in bytes {
        if b >= 0x20 && b < 0x7f && b != UInt8(ascii: "\"") && b != UInt8(ascii: "\\") {
            out.unicodeScalars.append(Unicode.Scalar(b))
        } else {
            let hex = Array("0123456789abcdef")
            out += "\\x" + String(hex[Int(b >> 4)]) + String(hex[Int(b & 15)])
        }
    }
    return out + "\""
}

func shown(_ text: String) -> String { shown(text.utf8) }

/// Splits `bytes` at the first `count - 1` occurrences of `separator` (the last part keeps the rest).
func fields(_ bytes: UnsafeRawBufferPointer, separator: UInt8, count: Int) -> [ArraySlice<UInt8>] {
    let all = Array(bytes)
    var parts: [ArraySlice<UInt8>] = []
    var start = 0
    var i = 0
    while i < all.count && parts.count < count - 1 {
        if all[i] == separator {
            parts.append(all[start..<i])
            start = i + 1
        }
        i += 1
    }
    parts.append(all[start...])
    return parts
}

/// Whether `text` contains `part`, byte for byte. (String.contains and hasPrefix compare
/// characters, so a quote followed by a combining mark would not match a plain quote.)
func containsBytes(_ text: String, _ part: String) -> Bool {
    let t = Array(text.utf8), p = Array(part.utf8)
    guard p.count <= t.count else { return false }
    if p.isEmpty { return true }
    for start in 0...(t.count - p.count) where t[start..<start + p.count].elementsEqual(p) { return true }
    return false
}

/// Whether `text` starts with `prefix`, byte for byte.
func startsWithBytes(_ text: String, _ prefix: String) -> Bool { text.utf8.starts(with: prefix.utf8) }
