// What every export needs at the C boundary, kept in one place: the table from error kinds to
// errno, the thread's last error message, checked conversion of C strings, and object handles.
import Glibc
import LocksmithCore
import LocksmithSystem

// MARK: Errors

extension LocksmithError.Kind {
    /// The one table from the core's failure kinds to errno.
    var errno: Int32 {
        switch self {
        case .invalidArgument: return EINVAL
        case .badMessage: return EBADMSG
        case .busy: return EBUSY
        case .exists: return EEXIST
        case .notFound: return ENOENT
        case .outOfRange: return ERANGE
        case .timedOut: return ETIMEDOUT
        case .connectionFailed: return ECONNREFUSED
        case .permissionDenied: return EACCES
        case .conflict: return EAGAIN
        case .changed: return ESTALE
        case .protocolError: return EPROTO
        case .system(let code): return code > 0 ? code : EIO
        }
    }
}

/// The calling thread's last error message (malloc()ed), freed when the thread exits.
private let lastErrorKey: pthread_key_t = {
    var key = pthread_key_t()
    pthread_key_create(&key) { free($0) }
    return key
}()

nonisolated(unsafe) private let emptyMessage: UnsafeMutablePointer<CChar> = strdup("")!

func setLastError(_ message: String) {
    free(pthread_getspecific(lastErrorKey))
    pthread_setspecific(lastErrorKey, strdup(message))
}

func lastErrorEmpty() -> UnsafePointer<CChar> { UnsafePointer(emptyMessage) }

func lastErrorMessage() -> UnsafePointer<CChar> {
    guard let p = pthread_getspecific(lastErrorKey) else { return UnsafePointer(emptyMessage) }
    return UnsafePointer(p.assumingMemoryBound(to: CChar.self))
}

/// Records `error` as the thread's last error and returns it as a negative errno.
func fail(_ error: any Error) -> Int32 {
    let e = (error as? LocksmithError) ?? LocksmithError(.system(EIO), "\(error)")
    setLastError(e.message)
    return -e.kind.errno
}

/// Runs `body`, turning a thrown error into a negative errno. Out-parameters are written by
/// `body` only after everything that can fail has succeeded.
func call(_ body: () throws -> Int32) -> Int32 {
    do {
        return try body()
    } catch {
        return fail(error)
    }
}

func invalid(_ message: String) -> LocksmithError {
    LocksmithError(.invalidArgument, message)
}

// MARK: Arguments

/// Strings callers hand in are bounded, so an unterminated or hostile one costs little.
let maxArgumentBytes = 1 << 20

/// A required C string argument as Swift text: NULL, over-long or non-UTF-8 input is -EINVAL
/// with a message naming `name`.
func text(_ p: UnsafePointer<CChar>?, _ name: String, limit: Int = maxArgumentBytes) throws -> String {
    let raw = try bytes(p, name, limit: limit)
    guard let s = String(validating: raw, as: UTF8.self) else { throw invalid("\(name) is not valid UTF-8") }
    return s
}

/// A required C string argument as bytes (not checked for UTF-8): NULL or over-long is -EINVAL.
func bytes(_ p: UnsafePointer<CChar>?, _ name: String, limit: Int = maxArgumentBytes) throws -> UnsafeRawBufferPointer {
    guard let p else { throw invalid("\(name) is NULL") }
    let length = strnlen(p, limit + 1)
    guard length <= limit else { throw invalid("\(name) is longer than \(limit) bytes") }
    return UnsafeRawBufferPointer(start: p, count: length)
}

/// A required out-parameter.
func out<T>(_ p: UnsafeMutablePointer<T>?, _ name: String) throws -> UnsafeMutablePointer<T> {
    guard let p else { throw invalid("\(name) is NULL") }
    return p
}

/// A malloc()ed copy of `s` for a char **ret_* parameter.
func copyOut(_ s: String) throws -> UnsafeMutablePointer<CChar> {
    guard let p = strdup(s) else { throw LocksmithError(.system(ENOMEM), "out of memory") }
    return p
}

/// A malloc()ed NULL-terminated array of malloc()ed copies of `strings` for a char ***ret_*
/// parameter (locksmith_strv_free frees it).
func copyOut(_ strings: [String]) throws -> UnsafeMutablePointer<UnsafeMutablePointer<CChar>?> {
    guard let array = calloc(strings.count + 1, MemoryLayout<UnsafeMutablePointer<CChar>?>.stride)?
        .bindMemory(to: UnsafeMutablePointer<CChar>?.self, capacity: strings.count + 1) else {
        throw LocksmithError(.system(ENOMEM), "out of memory")
    }
    for (i, s) in strings.enumerated() {
        guard let p = strdup(s) else {
            for j in 0..<i { free(array[j]) }
            free(array)
            throw LocksmithError(.system(ENOMEM), "out of memory")
        }
        array[i] = p
    }
    return array
}

/// Index `i` of a list of `count`: -EINVAL out of range.
func index(_ i: Int32, _ count: Int) throws -> Int {
    guard i >= 0, Int(i) < count else { throw invalid("index \(i) is out of range (\(count) items)") }
    return Int(i)
}

/// Whether `i` indexes a list of `count`; when not, an accessor fails (the reason recorded).
func inRange(_ i: Int32, _ count: Int) -> Bool {
    guard i >= 0, Int(i) < count else {
        setLastError("index \(i) is out of range (\(count) items)")
        return false
    }
    return true
}

/// Runs an accessor (a function that returns the value asked for rather than a status): every
/// failure of one is `failure`, the one failure value of its type (NULL, -1, -EINVAL), with the
/// reason in the thread's last error, as the header's conventions say.
func accessor<T>(_ failure: T, _ body: () throws -> T) -> T {
    do {
        return try body()
    } catch {
        _ = fail(error)
        return failure
    }
}

/// The flags the LOCKSMITH_2 functions know.
let knownFlags: UInt64 = 1  // LOCKSMITH_NO_ENVIRONMENT

/// Whether a call with `flags` may read the process environment (never under secure execution).
func usesEnvironment(flags: UInt64) throws -> Bool {
    guard flags & ~knownFlags == 0 else { throw invalid("flags has unknown bits: 0x\(String(flags, radix: 16))") }
    return flags & 1 == 0 && !Syscalls.secureExecution
}

/// An explicit root argument: NULL is "/"; otherwise an absolute path.
func rootArgument(_ root: UnsafePointer<CChar>?) throws -> String {
    guard let root else { return "/" }
    let path = try text(root, "root", limit: 4096)
    guard path.hasPrefix("/") else { throw invalid("root \(JSONText.quoted(path)) is not an absolute path") }
    return path
}

// MARK: Objects

/// The object behind an opaque C pointer: a Swift value plus the C strings lent out from it.
final class Handle<Value> {
    var value: Value {
        didSet { releaseBorrowed() }
    }
    /// Strings handed out as `const char *`, by slot, valid until the value changes or the
    /// handle dies. Asking for the same slot again returns the same pointer.
    private var borrowed: [String: UnsafeMutablePointer<CChar>] = [:]

    init(_ value: Value) { self.value = value }
    deinit { releaseBorrowed() }

    func lend(_ slot: String, _ make: () -> String) -> UnsafePointer<CChar>? {
        if let p = borrowed[slot] { return UnsafePointer(p) }
        guard let p = strdup(make()) else { return nil }
        borrowed[slot] = p
        return UnsafePointer(p)
    }

    func releaseBorrowed() {
        borrowed.values.forEach { free($0) }
        borrowed.removeAll()
    }

    /// A new C handle owning `value`.
    static func make(_ value: Value) -> OpaquePointer {
        OpaquePointer(Unmanaged.passRetained(Handle(value)).toOpaque())
    }

    /// The handle behind `p`; -EINVAL if NULL.
    static func from(_ p: OpaquePointer?, _ name: String) throws -> Handle {
        guard let p else { throw invalid("\(name) is NULL") }
        return Unmanaged<Handle>.fromOpaque(UnsafeRawPointer(p)).takeUnretainedValue()
    }

    /// The handle behind `p` for an accessor: nil if NULL, with the reason in the thread's last
    /// error (see `accessor`).
    static func accessed(_ p: OpaquePointer?, _ name: String) -> Handle? {
        do { return try from(p, name) } catch {
            _ = fail(error)
            return nil
        }
    }

    /// The number of items of a list the object behind `p` holds (a count accessor): -EINVAL for a
    /// NULL object.
    static func count<Item>(_ p: OpaquePointer?, _ name: String, _ list: (Value) -> [Item]) -> Int32 {
        call { Int32(clamping: list(try from(p, name).value).count) }
    }

    /// Item `i` of a list the object behind `p` holds, for an accessor: nil for a NULL object or
    /// an index out of range, with the reason in the thread's last error.
    static func item<Item>(_ p: OpaquePointer?, _ name: String, _ i: Int32, _ list: (Value) -> [Item]) -> (Handle, Item)? {
        guard let handle = accessed(p, name) else { return nil }
        let items = list(handle.value)
        guard inRange(i, items.count) else { return nil }
        return (handle, items[Int(i)])
    }

    /// A text field of item `i` (see `item`), lent out as a C string in slot "`slot` `i`"; nil
    /// also when the item has no such text.
    static func lendItem<Item>(_ p: OpaquePointer?, _ name: String, _ i: Int32, _ slot: String,
                               _ list: (Value) -> [Item], _ field: (Item) -> String?) -> UnsafePointer<CChar>? {
        guard let (handle, item) = item(p, name, i, list), let text = field(item) else { return nil }
        return handle.lend("\(slot) \(i)") { text }
    }

    /// Releases the handle behind `p` (NULL is fine); returns NULL for `x = x_free(x)`.
    static func release(_ p: OpaquePointer?) -> OpaquePointer? {
        if let p { Unmanaged<Handle>.fromOpaque(UnsafeRawPointer(p)).release() }
        return nil
    }
}
