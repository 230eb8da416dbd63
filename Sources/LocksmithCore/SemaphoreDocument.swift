// The semaphore document and its rules: parse, lock, unlock, set-max, serialize.
// Stored at the group's key in etcd as {"semaphore":1,"max":1,"holders":null}; byte-compatible
// with what the original Go locksmith wrote (see ../shared/spec/golden-outputs.md).
import CJSONC

/// The reboot semaphore of one group: free slots, the maximum, and the machines holding a slot.
///
/// A value type: every operation changes this copy only. Storing it (with compare-and-swap on
/// the index that etcd reports, never one from the document) is the client's job.
public struct SemaphoreDocument: Sendable {
    /// Stored documents larger than this are refused as corrupt: a real one is a few KiB.
    public static let maxDocumentBytes = 128 * 1024
    /// Longest holder id accepted from a caller (machine ids are 32 bytes).
    public static let maxHolderBytes = 255
    /// The range every count must stay in, so that it fits a C `int`.
    public static let countRange = Int(Int32.min)...Int(Int32.max)

    /// Free slots (`semaphore` in the document). Negative when max was lowered below the holders.
    public private(set) var available: Int
    /// The most machines that may hold a slot at once (`max`).
    public private(set) var max: Int
    /// Machines holding a slot, in stored order (sorted byte-wise when we wrote them).
    public private(set) var holders: [String]
    /// Whether `holders` is written as an array; a fresh document has `null`, as the original's.
    private var holdersIsArray: Bool
    /// Members we do not know, as raw JSON, written back unchanged after ours.
    private var unknownMembers: [(key: String, json: String)]

    /// The document a fresh key is created with: one free slot of one.
    public init() {
        available = 1
        max = 1
        holders = []
        holdersIsArray = false
        unknownMembers = []
    }

    // MARK: Reading

    /// Parses a stored document. Missing or null fields read as 0 / no holders, unknown fields
    /// are kept, field names match case-insensitively (as Go's encoding/json matches them).
    /// Throws `.badMessage` with a message that says what is wrong and shows the start of `text`.
    public init(parsing text: String) throws {
        var bytes = Array(text.utf8)
        try self.init(parsingUTF8: &bytes)
    }

    /// Parses a stored document given as bytes, which need not be valid UTF-8 (that is checked).
    public init(parsingUTF8 bytes: UnsafeRawBufferPointer) throws {
        self.init()
        available = 0
        max = 0
        do {
            try parse(bytes)
        } catch let error as LocksmithError {
            throw LocksmithError(error.kind, "\(error.message) (value: \(SemaphoreDocument.excerpt(bytes)))")
        }
    }

    private init(parsingUTF8 bytes: inout [UInt8]) throws {
        self = try bytes.withUnsafeBytes { try SemaphoreDocument(parsingUTF8: $0) }
    }

    private mutating func parse(_ bytes: UnsafeRawBufferPointer) throws {
        let size = bytes.count
        if size > SemaphoreDocument.maxDocumentBytes {
            throw LocksmithError(.badMessage, "document is \(size) bytes, more than the \(SemaphoreDocument.maxDocumentBytes) allowed")
        }
        guard let base = bytes.baseAddress, size > 0 else {
            throw LocksmithError(.badMessage, "not JSON: the value is empty")
        }
        if bytes.contains(0) {
            throw LocksmithError(.badMessage, "document contains a NUL byte")
        }
        // json-c lets overlong forms and encoded surrogates through; they would come back as
        // U+FFFD in fields we keep and write back.
        if let offset = SemaphoreDocument.firstInvalidUTF8(bytes) {
            throw LocksmithError(.badMessage, "not valid UTF-8 at byte \(offset)")
        }
        do {
            try JSONSyntax.check(bytes)
        } catch {
            throw LocksmithError(.badMessage, "not JSON: \(error.reason) at byte \(error.offset)")
        }
        // Only an object is a document (and json-c needs a terminator after a bare literal).
        switch bytes.first(where: { !SemaphoreDocument.isJSONSpace($0) }) {
        case UInt8(ascii: "{"): break
        case UInt8(ascii: "["): throw LocksmithError(.badMessage, "not a JSON object but an array")
        case UInt8(ascii: "\""): throw LocksmithError(.badMessage, "not a JSON object but a string")
        case UInt8(ascii: "n"): throw LocksmithError(.badMessage, "not a JSON object but null")
        case UInt8(ascii: "t"), UInt8(ascii: "f"): throw LocksmithError(.badMessage, "not a JSON object but a boolean")
        default: throw LocksmithError(.badMessage, "not a JSON object but a number")
        }
        guard let tokener = json_tokener_new() else { throw LocksmithError(.system(12), "out of memory") }
        defer { json_tokener_free(tokener) }
        json_tokener_set_flags(tokener, JSON_TOKENER_STRICT | JSON_TOKENER_VALIDATE_UTF8)
        let root = json_tokener_parse_ex(tokener, base.assumingMemoryBound(to: CChar.self), Int32(size))
        defer { json_object_put(root) }
        let status = json_tokener_get_error(tokener)
        if status != json_tokener_success {
            let offset = json_tokener_get_parse_end(tokener)
            throw LocksmithError(.badMessage, "not JSON: \(String(cString: json_tokener_error_desc(status))) at byte \(offset)")
        }
        guard json_object_get_type(root) == json_type_object else {
            throw LocksmithError(.badMessage, "not a JSON object but \(SemaphoreDocument.typeName(root))")
        }
        var unknown: [(key: String, position: Int, value: OpaquePointer?)] = []
        var position = 0
        var entry = cjsonc_object_first(root)
        while let e = entry {
            let key = String(cString: cjsonc_entry_key(e))
            let value = cjsonc_entry_value(e)
            switch key.lowercased() {
            case "semaphore": available = try SemaphoreDocument.readCount(value, field: "semaphore")
            case "max": max = try SemaphoreDocument.readCount(value, field: "max")
            case "holders": try readHolders(value)
            default: unknown.append((key, position, value))
            }
            position += 1
            entry = cjsonc_entry_next(e)
        }
        guard !unknown.isEmpty else { return }
        // Members we do not read are written back from their own text (a second scan, made only
        // when there are such members); json-c's rendering only if the two readings ever
        // disagree on how many members there are.
        let texts = SemaphoreDocument.memberTexts(bytes).flatMap { $0.count == position ? $0 : nil }
        for member in unknown {
            let json = texts?[member.position]
                ?? String(cString: json_object_to_json_string_ext(member.value, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE))
            unknownMembers.append((member.key, json))
        }
    }

    /// The text of each member json-c keeps, in json-c's order: a repeated name keeps its first
    /// place and its last value. json-c writes integers beyond 64 bits clamped, so a member we do
    /// not read is written back from this text rather than from json-c's value.
    private static func memberTexts(_ bytes: UnsafeRawBufferPointer) -> [String]? {
        guard let members = JSONSyntax.members(bytes) else { return nil }
        var order: [[UInt8]] = []
        var texts: [[UInt8]: String] = [:]
        for member in members {
            // The name as json-c reads it (escapes, surrogates), by json-c itself.
            guard let name = JSONTree(member.name)?.node.bytes else { return nil }
            if texts.updateValue(member.value, forKey: name) == nil { order.append(name) }
        }
        return order.map { texts[$0]! }
    }

    private static func readCount(_ value: OpaquePointer?, field: String) throws -> Int {
        switch json_object_get_type(value) {
        case json_type_null:
            return 0
        case json_type_int:
            let n = json_object_get_int64(value)
            guard countRange.contains(Int(n)) else {
                // json-c clamps numbers beyond 64 bits to the 64-bit limits.
                let shown = n == Int64.max ? "\(n) or more" : n == Int64.min ? "\(n) or less" : "\(n)"
                throw LocksmithError(.badMessage, "\"\(field)\" is out of range: \(shown) (counts must fit a 32-bit int)")
            }
            return Int(n)
        default:
            throw LocksmithError(.badMessage, "\"\(field)\" is not an integer but \(typeName(value))")
        }
    }

    private mutating func readHolders(_ value: OpaquePointer?) throws {
        holders = []
        switch json_object_get_type(value) {
        case json_type_null:
            holdersIsArray = false
            return
        case json_type_array:
            holdersIsArray = true
        default:
            throw LocksmithError(.badMessage, "\"holders\" is not an array but \(SemaphoreDocument.typeName(value))")
        }
        let count = json_object_array_length(value)
        var seen = Set<[UInt8]>()
        holders.reserveCapacity(count)
        for i in 0..<count {
            let item = json_object_array_get_idx(value, i)
            guard json_object_get_type(item) == json_type_string else {
                throw LocksmithError(.badMessage, "holders[\(i)] is not a string but \(SemaphoreDocument.typeName(item))")
            }
            let length = Int(json_object_get_string_len(item))
            let bytes = UnsafeRawBufferPointer(start: json_object_get_string(item), count: length)
            guard !bytes.contains(0), let holder = String(validating: bytes, as: UTF8.self) else {
                throw LocksmithError(.badMessage, "holders[\(i)] is not a valid machine id")
            }
            // Holders end up in status output, logs and sd_notify STATUS: a stored newline or
            // escape sequence would forge lines or drive the reader's terminal.
            guard !SemaphoreDocument.hasControlCharacter(holder) else {
                throw LocksmithError(.badMessage, "holders[\(i)] \(JSONText.quoted(holder)) contains a control character")
            }
            guard seen.insert(Array(bytes)).inserted else {
                throw LocksmithError(.badMessage, "holder \(JSONText.quoted(holder)) is listed twice")
            }
            holders.append(holder)
        }
    }

    // MARK: Operations

    /// Whether `holder` holds a slot (byte-wise match).
    public func holds(_ holder: String) -> Bool {
        holders.contains { Bytewise.equal($0, holder) }
    }

    /// Takes a slot for `holder`. Throws `.busy` ("semaphore is at N") when no slot is free, then
    /// `.exists` ("holder exists") when it already holds one, in the original's order.
    public mutating func lock(_ holder: String) throws {
        try SemaphoreDocument.validateHolder(holder)
        if available <= 0 {
            throw LocksmithError(.busy, "semaphore is at \(available)")
        }
        if holds(holder) {
            throw LocksmithError(.exists, "holder exists")
        }
        // Holders are kept sorted byte-wise (the original sorted after each append). A sorted
        // list takes the new one at its place; one another writer left unsorted is sorted whole.
        if holders.indices.dropFirst().allSatisfy({ !Bytewise.less(holders[$0], holders[$0 - 1]) }) {
            var low = 0, high = holders.count
            while low < high {
                let middle = (low + high) / 2
                if Bytewise.less(holders[middle], holder) { low = middle + 1 } else { high = middle }
            }
            holders.insert(holder, at: low)
        } else {
            holders.append(holder)
            holders.sort(by: Bytewise.less)
        }
        holdersIsArray = true
        available -= 1
    }

    /// Gives back the slot of `holder`. Throws `.notFound` ("holder does not exist").
    public mutating func unlock(_ holder: String) throws {
        try SemaphoreDocument.validateHolder(holder)
        guard let index = holders.firstIndex(where: { Bytewise.equal($0, holder) }) else {
            throw LocksmithError(.notFound, "holder does not exist")
        }
        holders.remove(at: index)
        holdersIsArray = true
        available += 1
    }

    /// Sets the maximum: free slots move by the difference, holders stay, so lowering max below
    /// the holder count leaves `available` negative. `0` pauses the group. Returns the old max.
    @discardableResult
    public mutating func setMax(_ newMax: Int) throws -> Int {
        try SemaphoreDocument.validateMax(newMax)
        let newAvailable = available + newMax - max
        guard SemaphoreDocument.countRange.contains(newAvailable) else {
            throw LocksmithError(.outOfRange, "free slots would be out of range: \(newAvailable)")
        }
        let old = max
        available = newAvailable
        max = newMax
        return old
    }

    /// Checks a maximum a caller wants to set: 0 or more, and a C `int`.
    public static func validateMax(_ newMax: Int) throws {
        guard newMax >= 0 else {
            throw LocksmithError(.invalidArgument, "max must not be negative: \(newMax)")
        }
        guard newMax <= countRange.upperBound else {
            throw LocksmithError(.outOfRange, "max is out of range: \(newMax)")
        }
    }

    /// Checks an id a caller wants to lock or unlock with: non-empty, at most 255 bytes, no
    /// control characters (it ends up in logs, on terminals and in C strings).
    public static func validateHolder(_ holder: String) throws {
        if holder.isEmpty {
            throw LocksmithError(.invalidArgument, "holder id is empty")
        }
        if holder.utf8.count > maxHolderBytes {
            throw LocksmithError(.invalidArgument, "holder id is longer than \(maxHolderBytes) bytes")
        }
        if hasControlCharacter(holder) {
            throw LocksmithError(.invalidArgument, "holder id \(JSONText.quoted(holder)) contains a control character")
        }
    }

    /// Whether `text` holds a C0 control character or DEL: refused in holder ids, given or stored.
    public static func hasControlCharacter(_ text: String) -> Bool {
        text.unicodeScalars.contains { $0.value < 0x20 || $0.value == 0x7f }
    }

    // MARK: Writing

    /// The document as stored: `semaphore`, `max`, `holders`, then unknown members; no spaces.
    public var json: String {
        var out = "{\"semaphore\":\(available),\"max\":\(max),\"holders\":"
        if holdersIsArray {
            out += "[" + holders.map(JSONText.quoted).joined(separator: ",") + "]"
        } else {
            out += "null"
        }
        for member in unknownMembers {
            out += "," + JSONText.quoted(member.key) + ":" + member.json
        }
        out += "}"
        return out
    }

    // MARK: Helpers

    /// The offset of the first byte that is not part of valid UTF-8, or nil.
    static func firstInvalidUTF8(_ bytes: UnsafeRawBufferPointer) -> Int? {
        var iterator = bytes.makeIterator()
        var parser = Unicode.UTF8.ForwardParser()
        var offset = 0
        while true {
            switch parser.parseScalar(from: &iterator) {
            case .valid(let scalar): offset += scalar.count
            case .emptyInput: return nil
            case .error: return offset
            }
        }
    }

    private static func isJSONSpace(_ byte: UInt8) -> Bool {
        byte == 0x20 || byte == 0x09 || byte == 0x0a || byte == 0x0d
    }

    private static func typeName(_ value: OpaquePointer?) -> String {
        switch json_object_get_type(value) {
        case json_type_null: return "null"
        case json_type_boolean: return "a boolean"
        case json_type_double: return "a fraction"
        case json_type_int: return "an integer"
        case json_type_object: return "an object"
        case json_type_array: return "an array"
        case json_type_string: return "a string"
        default: return "an unknown type"
        }
    }

    /// The first few characters of a bad value, quoted, for error messages.
    static func excerpt(_ bytes: UnsafeRawBufferPointer, limit: Int = 40) -> String {
        let text = String(decoding: bytes.prefix(limit * 4), as: UTF8.self)
        let scalars = text.unicodeScalars
        if scalars.count <= limit { return JSONText.quoted(text) }
        var head = ""
        head.unicodeScalars.append(contentsOf: scalars.prefix(limit))
        return JSONText.quoted(head) + "..."
    }
}
