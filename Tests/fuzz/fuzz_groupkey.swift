// Fuzzes group names and the escapings around them: GroupKey (a group's etcd key and back),
// URLEscape (Go's QueryEscape and EscapedPath) and Base64 (the v3 gateway's keys and values).
//
// Invariants: a group's key is printable ASCII under the reboot-lock prefix, its escaped part
// holds only unreserved bytes, '+' and %XX (uppercase hex), and the key maps back to the same
// group byte for byte; any key that maps to a group is that group's key up to escaping; query
// unescaping inverts escaping; the v2 URL path decodes back to the key; Base64 decodes what it
// encodes, and re-encodes anything it decodes to an equivalent text.
@testable import LocksmithCore

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzGroupKey(_ data: UnsafePointer<UInt8>?, _ size: Int) -> Int32 {
    let bytes = inputBytes(data, size)
    let text = String(decoding: bytes, as: UTF8.self)

    // The group's key and back.
    do {
        let key = try GroupKey.key(group: text)
        if text.isEmpty {
            invariant(key == GroupKey.defaultKey, "the empty group does not use the default key")
        } else {
            let head = GroupKey.prefix + "/groups/", tail = "/semaphore"
            invariant(startsWithBytes(key, head) && key.utf8.reversed().starts(with: tail.utf8.reversed()), "key \(shown(key)) is not under the groups prefix")
            let escaped = Array(key.utf8.dropFirst(head.utf8.count).dropLast(tail.utf8.count))
            invariant(isQueryEscaped(escaped), "escaped group \(shown(escaped)) has bytes Go would escape")
            invariant(URLEscape.query(text) == String(decoding: escaped, as: UTF8.self), "the key does not hold QueryEscape(group)")
        }
        invariant(key.utf8.allSatisfy { $0 > 0x20 && $0 < 0x7f }, "key \(shown(key)) is not printable ASCII")
        let back = GroupKey.group(ofKey: key)
        invariant(back.map { $0.utf8.elementsEqual(text.utf8) } ?? false, "key \(shown(key)) maps back to \(back.map(shown) ?? "nothing"), not \(shown(text))")
        invariant(GroupKey.group(ofKey: "/" + key).map { $0.utf8.elementsEqual(text.utf8) } ?? false, "a leading slash changes the group")
        // The v2 path escapes the key again; decoding it once gives the key.
        invariant(percentDecode(Array(URLEscape.path(key).utf8)) == Array(key.utf8), "path escaping of \(shown(key)) does not decode back")
    } catch let error as LocksmithError {
        invariant(error.kind == .invalidArgument && text.utf8.count > GroupKey.maxGroupBytes, "group refused: \(error.message)")
    } catch {
        invariant(false, "not a LocksmithError: \(error)")
    }

    // Any text read as a key.
    if let group = GroupKey.group(ofKey: text), !group.isEmpty, group.utf8.count <= GroupKey.maxGroupBytes {
        let canonical = try? GroupKey.key(group: group)
        invariant(canonical.flatMap(GroupKey.group(ofKey:)).map { $0.utf8.elementsEqual(group.utf8) } ?? false,
                  "group \(shown(group)) read from \(shown(text)) does not survive its own key")
    }

    // Query escaping is inverted by unescaping, for any text; unescaping what parses re-escapes.
    let escaped = URLEscape.query(text)
    invariant(GroupKey.queryUnescape(escaped).map { $0.utf8.elementsEqual(text.utf8) } ?? false, "QueryEscape of \(shown(text)) does not unescape")
    if let plain = GroupKey.queryUnescape(text) {
        invariant(GroupKey.queryUnescape(URLEscape.query(plain)).map { $0.utf8.elementsEqual(plain.utf8) } ?? false, "unescape/escape not stable")
        invariant(percentDecode(Array(text.utf8), plusIsSpace: true) == Array(plain.utf8), "queryUnescape(\(shown(text))) disagrees with a plain decoder")
    }

    // Base64 both ways.
    let encoded = Base64.encode(Array(bytes))
    invariant(encoded.utf8.count == (bytes.count + 2) / 3 * 4, "base64 length wrong")
    invariant(Base64.decode(encoded) == Array(bytes), "base64 of \(shown(bytes)) does not decode back")
    if let decoded = Base64.decode(text) {
        invariant(Base64.decode(Base64.encode(decoded)) == decoded, "base64 re-encoding is not stable")
        let unpadded = text.utf8.filter { $0 != UInt8(ascii: "=") }
        invariant(decoded.count == unpadded.count * 6 / 8, "base64 \(shown(text)) decoded to \(decoded.count) bytes")
    }
    return 0
}

private func isQueryEscaped(_ bytes: [UInt8]) -> Bool {
    var i = 0
    while i < bytes.count {
        let b = bytes[i]
        if b == UInt8(ascii: "%") {
            guard i + 2 < bytes.count, isUpperHex(bytes[i + 1]), isUpperHex(bytes[i + 2]) else { return false }
            i += 3
            continue
        }
        let unreserved = (0x30...0x39).contains(b) || (0x41...0x5a).contains(b) || (0x61...0x7a).contains(b)
            || b == UInt8(ascii: "-") || b == UInt8(ascii: "_") || b == UInt8(ascii: ".") || b == UInt8(ascii: "~")
        guard unreserved || b == UInt8(ascii: "+") else { return false }
        i += 1
    }
    return true
}

private func isUpperHex(_ b: UInt8) -> Bool { (0x30...0x39).contains(b) || (0x41...0x46).contains(b) }

/// %XX decoding, independent of the code under test; nil for a malformed escape.
private func percentDecode(_ bytes: [UInt8], plusIsSpace: Bool = false) -> [UInt8]? {
    func hex(_ b: UInt8) -> UInt8? {
        switch b {
        case 0x30...0x39: return b - 0x30
        case 0x41...0x46: return b - 0x41 + 10
        case 0x61...0x66: return b - 0x61 + 10
        default: return nil
        }
    }
    var out: [UInt8] = []
    var i = 0
    while i < bytes.count {
        if bytes[i] == UInt8(ascii: "%") {
            guard i + 2 < bytes.count, let h = hex(bytes[i + 1]), let l = hex(bytes[i + 2]) else { return nil }
            out.append(h << 4 | l)
            i += 3
        } else {
            out.append(plusIsSpace && bytes[i] == UInt8(ascii: "+") ? 0x20 : bytes[i])
            i += 1
        }
    }
    return out
}
