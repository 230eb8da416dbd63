// Every libc call of the I/O layer goes through here, so the core stays free of the system and
// errors come back as LocksmithError with the errno intact.
#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
import CGlibc
import LocksmithCore

public enum Syscalls {
    /// The current errno as an error whose message names `what` and says why.
    public static func errnoError(_ what: String, _ code: Int32 = errno) -> LocksmithError {
        LocksmithError(code == ENOENT ? .notFound : .system(code), "\(what): \(String(cString: strerror(code)))")
    }

    /// Reads a whole file of at most `limit` bytes. A missing file is `.notFound`.
    public static func readFile(_ path: String, limit: Int = 1 << 20, followLinks: Bool = true) throws -> [UInt8] {
        var data: UnsafeMutablePointer<UInt8>?
        let n = cglibc_read_file(path, limit, followLinks ? 0 : 1, &data)
        if n == -Int(EFBIG) { throw LocksmithError(.outOfRange, "\(path): larger than \(limit) bytes") }
        if n < 0 { throw errnoError(path, Int32(-n)) }
        defer { free(data) }
        return Array(UnsafeBufferPointer(start: data, count: n))
    }

    /// The target of symbolic link `path`.
    public static func readLink(_ path: String) throws -> String {
        var buffer = [CChar](repeating: 0, count: 4096)
        let n = readlink(path, &buffer, buffer.count - 1)
        guard n >= 0 else { throw errnoError(path) }
        return String(decoding: buffer[0..<n].map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    /// The permission bits of `path` (octal text) if every user can read it, else nil (also
    /// when it cannot be examined). For warnings about files that hold a password.
    public static func worldReadableMode(_ path: String) -> String? {
        var info = stat()
        guard stat(path, &info) == 0, info.st_mode & 0o004 != 0 else { return nil }
        return String(info.st_mode & 0o777, radix: 8)
    }

    /// Whether the process runs with a less privileged caller's environment (setuid or setgid:
    /// AT_SECURE). The library then reads no environment variable at all.
    public static let secureExecution = cglibc_secure_execution() != 0

    /// The value of environment variable `name`, or nil; always nil under secure execution
    /// (secure_getenv), so that su or sudo's caller cannot steer the library.
    public static func environment(_ name: String) -> String? {
        cglibc_secure_getenv(name).map { String(cString: $0) }
    }

    /// As `environment(name)`, but a value that is not valid UTF-8 is an error naming the
    /// variable (read as text, it would silently be something else).
    public static func checkedEnvironment(_ name: String) throws -> String? {
        guard let p = cglibc_secure_getenv(name) else { return nil }
        guard let value = String(validatingCString: p) else {
            throw LocksmithError(.invalidArgument, "\(name) is not valid UTF-8")
        }
        return value
    }

    /// Every variable of the process environment, in order; none under secure execution.
    public static func environment() -> [(key: String, value: String)] {
        if secureExecution { return [] }
        var out: [(key: String, value: String)] = []
        var p = environ
        while let entry = p.pointee {
            // Split at the first "=" byte, as libc does, rather than at the first Character "="
            // (which a value starting with a combining mark would hide); bytes, not Characters,
            // also because this runs over the whole environment in every process that loads
            // its configuration.
            if let eq = strchr(entry, Int32(UInt8(ascii: "="))) {
                let name = UnsafeBufferPointer(start: UnsafeRawPointer(entry).assumingMemoryBound(to: UInt8.self), count: eq - entry)
                out.append((String(decoding: name, as: UTF8.self), String(cString: eq + 1)))
            }
            p += 1
        }
        return out
    }
}

// Files a root process owns: created only new and renamed into place, never through a symbolic
// link, in directories it makes 0755.
extension Syscalls {
    /// Creates `directory` and its parents (0755) where they are missing.
    public static func makeDirectories(_ directory: String) throws {
        let r = cglibc_make_directories(directory)
        if r < 0 { throw errnoError("cannot create \(directory)", -r) }
    }

    /// Replaces `path` with `text` (mode 0644) atomically, never through a symbolic link
    /// (cglibc_replace_file).
    public static func replaceFile(_ path: String, with text: String) throws {
        let r = cglibc_replace_file(path, text, 0, 0)
        if r < 0 { throw errnoError("cannot replace \(path)", -r) }
    }
}

/// Monotonic time and sleeping, for timeouts and retries.
public enum Clock {
    public static func monotonicMilliseconds() -> Int {
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        return ts.tv_sec * 1000 + ts.tv_nsec / 1_000_000
    }

    /// Sleeps for `milliseconds`, resuming after signals until the time is up.
    public static func sleep(milliseconds: Int) {
        guard milliseconds > 0 else { return }
        var request = timespec(tv_sec: milliseconds / 1000, tv_nsec: (milliseconds % 1000) * 1_000_000)
        var remaining = timespec()
        while nanosleep(&request, &remaining) == -1 && errno == EINTR { request = remaining }
    }
}
