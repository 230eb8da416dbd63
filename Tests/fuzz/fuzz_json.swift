// Fuzzes the JSON readers of the core: JSONSyntax (the strict RFC 8259 check run before json-c)
// and JSONTree / JSONNode (how etcd answers are read).
//
// Invariants: JSONSyntax accepts exactly what an independent RFC 8259 checker written here
// accepts (an iterative pushdown automaton, with the same depth rule and the same refusal of
// \u0000 in member names), and its failure offset lies inside the input; whatever it accepts that
// is valid UTF-8, json-c's strict mode parses too, at the depth each caller uses (json-c's strict
// mode also takes "1." and NaN, which is why the check exists: those are refused here);
// JSONTree accepts only what JSONSyntax accepts; walking a tree through JSONNode never crashes,
// and a string read as String has the same bytes as read as bytes.
import CJSONC
@testable import LocksmithCore

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzJSON(_ data: UnsafePointer<UInt8>?, _ size: Int) -> Int32 {
    let bytes = inputBytes(data, size)
    let validUTF8 = String(validating: bytes, as: UTF8.self) != nil
    let hasNUL = bytes.contains(0)

    for depth in [32, 64] {
        let ours: JSONSyntax.Failure?
        do {
            try JSONSyntax.check(bytes, maxDepth: depth)
            ours = nil
        } catch {
            ours = error
            invariant(error.offset >= 0 && error.offset <= bytes.count, "failure offset \(error.offset) outside the input")
        }
        let reference = ReferenceJSON.accepts(bytes, maxDepth: depth)
        invariant((ours == nil) == reference,
                  "depth \(depth): JSONSyntax says \(ours.map { "no (\($0.reason) at \($0.offset))" } ?? "yes"), the reference says \(reference ? "yes" : "no") for \(shown(bytes))")
        guard ours == nil, validUTF8, !hasNUL else { continue }
        let theirs = jsonCStrict(bytes, depth: depth)
        invariant(theirs == nil, "depth \(depth): JSONSyntax accepts what json-c strict refuses (\(theirs ?? "")): \(shown(bytes))")
    }

    let tree = JSONTree(bytes)
    if let tree {
        invariant((try? JSONSyntax.check(bytes, maxDepth: 64)) != nil, "JSONTree accepted what JSONSyntax refuses")
        walk(tree.node, depth: 0)
    }
    return 0
}

/// Parses with json-c in strict mode, as SemaphoreDocument does; nil when it succeeds and only
/// blanks follow the value, else json-c's complaint.
private func jsonCStrict(_ bytes: UnsafeRawBufferPointer, depth: Int) -> String? {
    var copy = Array(bytes)
    copy.append(0)
    return copy.withUnsafeBytes { raw -> String? in
        guard let tokener = json_tokener_new_ex(Int32(depth)) else { return "no memory" }
        defer { json_tokener_free(tokener) }
        json_tokener_set_flags(tokener, JSON_TOKENER_STRICT | JSON_TOKENER_VALIDATE_UTF8)
        let object = json_tokener_parse_ex(tokener, raw.baseAddress!.assumingMemoryBound(to: CChar.self), Int32(raw.count))
        defer { json_object_put(object) }
        let status = json_tokener_get_error(tokener)
        if status != json_tokener_success { return String(cString: json_tokener_error_desc(status)) }
        let end = json_tokener_get_parse_end(tokener)
        for b in raw[end...] where !(b == 0x20 || b == 0x09 || b == 0x0a || b == 0x0d || b == 0) {
            return "data after the value at \(end)"
        }
        return nil
    }
}

private let probeKeys = ["node", "nodes", "value", "key", "kvs", "errorCode", "result", "events", "kv", "header", "", "a"]

private func walk(_ node: JSONNode, depth: Int) {
    guard depth < 70 else { return }
    if let s = node.string {
        invariant(node.bytes == Array(s.utf8), "string and bytes of one node differ")
    }
    if let b = node.bytes, node.string == nil {
        invariant(String(validating: b, as: UTF8.self) == nil, "valid UTF-8 bytes not readable as a string")
    }
    if let n = node.int64, let s = node.string {
        invariant(Int64(s) == n, "string integer read wrongly")
    }
    _ = node.bool
    let count = node.count
    invariant(count >= 0, "negative count")
    invariant(node[-1] == nil && node[count] == nil, "index out of bounds answered")
    for i in 0..<min(count, 8) {
        guard let child = node[i] else { invariant(false, "array element \(i) of \(count) missing"); return }
        walk(child, depth: depth + 1)
    }
    for key in probeKeys {
        if let child = node[key] { walk(child, depth: depth + 1) }
    }
}

/// RFC 8259 JSON text, checked a second way: a loop over tokens with an explicit stack of open
/// containers, where JSONSyntax recurses. A value at nesting level n (the top value is level 1)
/// is refused beyond `maxDepth`; a member name may not contain the escape \u0000.
enum ReferenceJSON {
    enum Want { case value, valueOrClose, name, nameOrClose, colon, commaOrClose, end }

    static func accepts(_ b: UnsafeRawBufferPointer, maxDepth: Int) -> Bool {
        var open: [UInt8] = []
        var want = Want.value
        var i = 0
        while true {
            while i < b.count, b[i] == 0x20 || b[i] == 0x09 || b[i] == 0x0a || b[i] == 0x0d { i += 1 }
            guard i < b.count else { return want == .end }
            let c = b[i]
            switch want {
            case .end:
                return false
            case .value, .valueOrClose:
                if want == .valueOrClose, c == UInt8(ascii: "]") {
                    i += 1
                    open.removeLast()
                    want = open.isEmpty ? .end : .commaOrClose
                    continue
                }
                guard open.count < maxDepth else { return false }
                if c == UInt8(ascii: "{") || c == UInt8(ascii: "[") {
                    open.append(c)
                    i += 1
                    want = c == UInt8(ascii: "{") ? .nameOrClose : .valueOrClose
                    continue
                }
                guard let next = scalar(b, i) else { return false }
                i = next
                want = open.isEmpty ? .end : .commaOrClose
            case .name, .nameOrClose:
                if want == .nameOrClose, c == UInt8(ascii: "}") {
                    i += 1
                    open.removeLast()
                    want = open.isEmpty ? .end : .commaOrClose
                    continue
                }
                guard c == UInt8(ascii: "\""), let next = string(b, i, name: true) else { return false }
                i = next
                want = .colon
            case .colon:
                guard c == UInt8(ascii: ":") else { return false }
                i += 1
                want = .value
            case .commaOrClose:
                let isObject = open.last == UInt8(ascii: "{")
                if c == UInt8(ascii: ",") {
                    want = isObject ? .name : .value
                } else if c == (isObject ? UInt8(ascii: "}") : UInt8(ascii: "]")) {
                    open.removeLast()
                    want = open.isEmpty ? .end : .commaOrClose
                } else {
                    return false
                }
                i += 1
            }
        }
    }

    /// The index after a string, number or literal starting at `i`, or nil.
    static func scalar(_ b: UnsafeRawBufferPointer, _ i: Int) -> Int? {
        let rest = b[i...]
        for word in ["true", "false", "null"] where rest.starts(with: word.utf8) { return i + word.utf8.count }
        if b[i] == UInt8(ascii: "\"") { return string(b, i, name: false) }
        return number(b, i)
    }

    static func string(_ b: UnsafeRawBufferPointer, _ start: Int, name: Bool) -> Int? {
        var i = start + 1
        while i < b.count {
            switch b[i] {
            case UInt8(ascii: "\""):
                return i + 1
            case UInt8(ascii: "\\"):
                guard i + 1 < b.count else { return nil }
                let e = b[i + 1]
                if e == UInt8(ascii: "u") {
                    guard i + 6 <= b.count, b[(i + 2)..<(i + 6)].allSatisfy(isHex) else { return nil }
                    if name, b[(i + 2)..<(i + 6)].allSatisfy({ $0 == UInt8(ascii: "0") }) { return nil }
                    i += 6
                } else if "\"\\/bfnrt".utf8.contains(e) {
                    i += 2
                } else {
                    return nil
                }
            case 0..<0x20:
                return nil
            default:
                i += 1
            }
        }
        return nil
    }

    /// -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?
    static func number(_ b: UnsafeRawBufferPointer, _ start: Int) -> Int? {
        var i = start
        func digits() -> Int {
            let from = i
            while i < b.count, b[i] >= 0x30 && b[i] <= 0x39 { i += 1 }
            return i - from
        }
        if i < b.count, b[i] == UInt8(ascii: "-") { i += 1 }
        guard i < b.count, b[i] >= 0x30 && b[i] <= 0x39 else { return nil }
        if b[i] == UInt8(ascii: "0") { i += 1 } else { _ = digits() }
        if i < b.count, b[i] == UInt8(ascii: ".") {
            i += 1
            guard digits() > 0 else { return nil }
        }
        if i < b.count, b[i] == UInt8(ascii: "e") || b[i] == UInt8(ascii: "E") {
            i += 1
            if i < b.count, b[i] == UInt8(ascii: "+") || b[i] == UInt8(ascii: "-") { i += 1 }
            guard digits() > 0 else { return nil }
        }
        return i
    }

    static func isHex(_ c: UInt8) -> Bool {
        (0x30...0x39).contains(c) || (0x41...0x46).contains(c) || (0x61...0x66).contains(c)
    }
}
