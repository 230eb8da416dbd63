// Files the daemon owns as root: created only new and renamed into place, never through a
// symbolic link, in directories it makes 0755.
import Glibc
import LocksmithCore
import LocksmithSystem

enum Files {
    /// Creates `directory` and its parents (0755) where they are missing.
    static func makeDirectories(_ directory: String) throws {
        var partial = ""
        for part in directory.split(separator: "/") {
            partial += "/" + part
            if mkdir(partial, 0o755) != 0 && errno != EEXIST { throw Syscalls.errnoError("cannot create \(partial)") }
        }
    }

    /// Replaces `path` with `text` (mode 0644) atomically: a temporary file beside it, created
    /// new (O_EXCL, which also refuses a symbolic link in its place; a leftover of a crashed run
    /// is removed first), written and synced, then renamed over. `beforeRename` may act on the
    /// new file's descriptor first (false: give up). Returns the new file's descriptor, open,
    /// when `keepOpen`; else closes it and returns nil.
    @discardableResult
    static func replace(_ path: String, with text: String, keepOpen: Bool = false,
                        beforeRename: (Int32) -> Bool = { _ in true }) throws -> Int32? {
        let temporary = path + ".\(getpid()).tmp"
        unlink(temporary)
        let fd = open(temporary, O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw Syscalls.errnoError("cannot write \(temporary)") }
        var ok = beforeRename(fd)
        ok = ok && text.withCString { write(fd, $0, strlen($0)) } == text.utf8.count
        ok = ok && fchmod(fd, 0o644) == 0 && fsync(fd) == 0
        if !ok || rename(temporary, path) != 0 {
            let error = Syscalls.errnoError("cannot replace \(path)")
            close(fd)
            unlink(temporary)
            throw error
        }
        if keepOpen { return fd }
        close(fd)
        return nil
    }
}

/// /var/lib/locksmith/reboot-slot: the slot this machine's daemon took and has not given back,
/// kept across the reboot. At its next start the daemon gives back exactly that slot, and only
/// that one: a slot held under the machine id by anyone else (`locksmithctl lock`, a
/// `locksmith-run --id`) is not the daemon's to free.
enum SlotRecord {
    static let path = "/var/lib/locksmith/reboot-slot"

    enum State: Equatable {
        /// No file: the daemon never ran here (or a version that kept no record did).
        case missing
        case notHeld
        /// The slot of `id` in the semaphore at `key` (an etcd key: plain ASCII).
        case held(key: String, id: String)
        /// A file that is not a record; the message says why.
        case unreadable(String)
    }

    static func file(root: String) -> String { SystemRoot.resolve(path, root: root) }

    static func read(root: String) -> State {
        let file = file(root: root)
        let bytes: [UInt8]
        do {
            bytes = try readNoFollow(file)
        } catch let error as LocksmithError where error.kind == .notFound {
            return .missing
        } catch {
            return .unreadable("\(error)")
        }
        guard let text = String(validating: bytes, as: UTF8.self) else { return .unreadable("\(file): not UTF-8 text") }
        var values: [String: String] = [:]
        for (key, value) in EnvironmentFile.parse(text).assignments { values[key] = value }
        switch values["HELD"] {
        case "no"?: return .notHeld
        case "yes"?:
            guard let key = values["KEY"], GroupKey.group(ofKey: key) != nil, let id = values["ID"],
                  (try? SemaphoreDocument.validateHolder(id)) != nil else {
                return .unreadable("\(file): HELD=yes without a valid KEY and ID")
            }
            return .held(key: key, id: id)
        default:
            return .unreadable("\(file): no HELD=yes or HELD=no line")
        }
    }

    /// Records that `id` holds a slot of the semaphore at `key` (nil: that no slot is held).
    static func write(held: (key: String, id: String)?, root: String) throws {
        let file = file(root: root)
        try Files.makeDirectories(String(file[..<file.lastIndex(of: "/")!]))
        var text = "# locksmithd: the reboot slot this machine's daemon holds (it gives it back at its next start)\n"
        if let held {
            text += "HELD=yes\nKEY=\(held.key)\nID=\(held.id)\n"
        } else {
            text += "HELD=no\n"
        }
        try Files.replace(file, with: text)
    }

    /// `write`, with a failure logged rather than thrown (for when nothing else depends on it).
    static func writeLogged(held: (key: String, id: String)?, root: String) {
        do {
            try write(held: held, root: root)
        } catch {
            Log.warning("\(error)")
        }
    }

    private static func readNoFollow(_ file: String) throws -> [UInt8] {
        let fd = open(file, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK)
        guard fd >= 0 else { throw Syscalls.errnoError(file) }
        close(fd)
        return try Syscalls.readFile(file, limit: 4096)
    }
}
