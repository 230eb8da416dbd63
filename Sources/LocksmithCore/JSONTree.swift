// Reading JSON answers (etcd's) through json-c: a parsed tree and typed lookups into it.
import CJSONC

/// A parsed JSON value; nodes read from it live as long as the tree.
public final class JSONTree {
    let root: OpaquePointer

    /// Parses `bytes` (strictly: one value, RFC 8259 syntax, UTF-8); nil if it is not JSON.
    public init?(_ bytes: some Collection<UInt8>) {
        var copy = Array(bytes)
        copy.append(0)  // json-c wants a terminator after a bare literal
        // json-c takes the length as an int: a longer answer is not one we read (nor JSON we want).
        guard copy.count <= Int(Int32.max) else { return nil }
        let parsed: OpaquePointer? = copy.withUnsafeBytes { raw -> OpaquePointer? in
            let body = UnsafeRawBufferPointer(rebasing: raw.dropLast())
            guard (try? JSONSyntax.check(body, maxDepth: 64)) != nil else { return nil }
            guard let tokener = json_tokener_new_ex(64) else { return nil }
            defer { json_tokener_free(tokener) }
            json_tokener_set_flags(tokener, JSON_TOKENER_VALIDATE_UTF8)
            return json_tokener_parse_ex(tokener, raw.baseAddress!.assumingMemoryBound(to: CChar.self), Int32(raw.count))
        }
        guard let parsed else { return nil }
        root = parsed
    }

    deinit { json_object_put(root) }

    public var node: JSONNode { JSONNode(pointer: root, tree: self) }
}

/// One value inside a JSONTree.
public struct JSONNode {
    let pointer: OpaquePointer?
    let tree: JSONTree

    public subscript(key: String) -> JSONNode? {
        guard json_object_get_type(pointer) == json_type_object else { return nil }
        var child: OpaquePointer?
        guard json_object_object_get_ex(pointer, key, &child) != 0, child != nil else { return nil }
        return JSONNode(pointer: child, tree: tree)
    }

    public subscript(index: Int) -> JSONNode? {
        guard json_object_get_type(pointer) == json_type_array, index >= 0, index < json_object_array_length(pointer) else { return nil }
        return JSONNode(pointer: json_object_array_get_idx(pointer, index), tree: tree)
    }

    public var count: Int { json_object_get_type(pointer) == json_type_array ? json_object_array_length(pointer) : 0 }

    public var string: String? {
        guard json_object_get_type(pointer) == json_type_string else { return nil }
        let bytes = UnsafeRawBufferPointer(start: json_object_get_string(pointer), count: Int(json_object_get_string_len(pointer)))
        return String(validating: bytes, as: UTF8.self)
    }

    /// The string's raw bytes (may include NUL, need not be UTF-8).
    public var bytes: [UInt8]? {
        guard json_object_get_type(pointer) == json_type_string else { return nil }
        return Array(UnsafeRawBufferPointer(start: json_object_get_string(pointer), count: Int(json_object_get_string_len(pointer))))
    }

    /// An integer, also when given as a decimal string (etcd's gateway sends 64-bit integers so).
    public var int64: Int64? {
        switch json_object_get_type(pointer) {
        case json_type_int: return json_object_get_int64(pointer)
        case json_type_string: return string.flatMap { Int64($0) }
        default: return nil
        }
    }

    public var bool: Bool? {
        json_object_get_type(pointer) == json_type_boolean ? json_object_get_boolean(pointer) != 0 : nil
    }
}
