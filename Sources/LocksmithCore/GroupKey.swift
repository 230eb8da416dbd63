// Where a group's semaphore lives in etcd, and the escaping the original used for group names.

public enum GroupKey {
    /// The prefix under which all reboot-lock keys live.
    public static let prefix = "coreos.com/updateengine/rebootlock"
    /// The default group's key.
    public static let defaultKey = prefix + "/semaphore"
    /// Longest group name accepted.
    public static let maxGroupBytes = 255

    /// The key of `group`'s semaphore: the default key for nil or "", else
    /// `<prefix>/groups/<QueryEscape(group)>/semaphore`.
    public static func key(group: String?) throws -> String {
        guard let group, !group.isEmpty else { return defaultKey }
        guard group.utf8.count <= maxGroupBytes else {
            throw LocksmithError(.invalidArgument, "group name is longer than \(maxGroupBytes) bytes")
        }
        return prefix + "/groups/" + URLEscape.query(group) + "/semaphore"
    }

    /// The group a key belongs to ("" for the default key), or nil if `key` is not a semaphore key.
    public static func group(ofKey key: String) -> String? {
        let k = key.hasPrefix("/") ? String(key.dropFirst()) : key
        if k == defaultKey { return "" }
        let head = prefix + "/groups/", tail = "/semaphore"
        guard k.hasPrefix(head), k.hasSuffix(tail), k.utf8.count > head.utf8.count + tail.utf8.count else { return nil }
        let escaped = k.dropFirst(head.count).dropLast(tail.count)
        return queryUnescape(String(escaped))
    }

    /// The inverse of `URLEscape.query`; nil for malformed escapes or bytes that are not UTF-8.
    public static func queryUnescape(_ text: String) -> String? {
        var out = [UInt8]()
        var bytes = text.utf8.makeIterator()
        while let byte = bytes.next() {
            switch byte {
            case UInt8(ascii: "+"): out.append(UInt8(ascii: " "))
            case UInt8(ascii: "%"):
                guard let hi = bytes.next().flatMap(hexValue), let lo = bytes.next().flatMap(hexValue) else { return nil }
                out.append(hi << 4 | lo)
            default: out.append(byte)
            }
        }
        return String(validating: out, as: UTF8.self)
    }

    private static func hexValue(_ c: UInt8) -> UInt8? {
        switch c {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): return c - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): return c - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): return c - UInt8(ascii: "A") + 10
        default: return nil
        }
    }
}
