// The files a running locksmithd keeps under /run for the other programs of the machine:
// coordinator.conf (the original's three lines, for the update engine and whatever else reads
// it) and /run/locksmith/state (ours: what pam_locksmith and `locksmithctl check` need, so that
// they never have to ask etcd). The daemon holds a write lock (an open-file-description lock,
// which only a writer can take) on each for as long as it runs; a file nobody write-locks is left
// over from a daemon that stopped. (It holds the original's flock on them too, for whatever reads
// that; an flock proves nothing, since any user who can read a file can flock it.)
#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
import CGlibc
import LocksmithCore

public enum DaemonFiles {
    public static let coordinatorPath = "/run/update-engine/coordinator.conf"
    public static let statePath = "/run/locksmith/state"
    /// Both files are a few short lines; anything larger is not one of them.
    public static let maxBytes = 4096

    public enum Liveness: Int32, Sendable {
        /// Nobody holds a write lock on the file: the daemon that wrote it is gone.
        case leftOver = 0
        /// A running process holds a write lock on it: the values are current.
        case running = 1
        /// The kernel could not be asked (fcntl failed).
        case unknown = 2
    }

    public struct Contents: Sendable {
        public var values: Configuration
        public var liveness: Liveness
        /// The file's modification time (Unix seconds): when the daemon last replaced it.
        public var modified: Int64
    }

    /// Reads `path` (absolute) under `root`: a regular file (never through a symbolic link),
    /// owned by root and writable by nobody else, of at most `maxBytes`, in update.conf's
    /// KEY=value form. These files steer what root processes (the PAM module) tell users and
    /// whom they let in, so a file anyone else could have written is refused.
    public static func read(_ path: String, root: String) throws -> Contents {
        let file = SystemRoot.resolve(path, root: root)
        let fd = open(file, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY)
        guard fd >= 0 else {
            if errno == ELOOP { throw LocksmithError(.permissionDenied, "\(file) is a symbolic link: not locksmithd's") }
            throw Syscalls.errnoError(file)
        }
        defer { close(fd) }
        var info = stat()
        guard fstat(fd, &info) == 0 else { throw Syscalls.errnoError(file) }
        guard info.st_mode & S_IFMT == S_IFREG else { throw LocksmithError(.badMessage, "\(file) is not a regular file") }
        guard info.st_uid == 0, info.st_mode & 0o022 == 0 else {
            throw LocksmithError(.permissionDenied, "\(file) is owned by uid \(info.st_uid) with mode \(String(info.st_mode & 0o7777, radix: 8)): "
                + "locksmithd's files are root's and writable by nobody else; ignoring it")
        }
        var bytes = [UInt8](repeating: 0, count: maxBytes + 1)
        var count = 0
        while count < bytes.count {
            let n = bytes.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress! + count, $0.count - count) }
            if n < 0 && errno == EINTR { continue }
            if n < 0 { throw Syscalls.errnoError("cannot read \(file)") }
            if n == 0 { break }
            count += n
        }
        guard count <= maxBytes else { throw LocksmithError(.outOfRange, "\(file) is larger than \(maxBytes) bytes: not locksmithd's") }
        guard let text = String(validating: bytes[0..<count], as: UTF8.self) else { throw LocksmithError(.badMessage, "\(file) is not UTF-8 text") }
        var values = Configuration()
        values.merge(fileText: text, origin: file)
        return Contents(values: values, liveness: writeLockHeld(fd),
                        modified: Int64(info.st_mtim.tv_sec))
    }

    /// Whether a process holds a write lock on the open file `fd`: only one that may write the
    /// file (root) can take one, so another user cannot make a left-over file look current, and
    /// the kernel is asked about this file alone (F_OFD_GETLK), whatever locks others churn
    /// elsewhere. Asking takes no lock: a daemon starting at that moment takes its own as usual.
    static func writeLockHeld(_ fd: Int32) -> Liveness {
        switch cglibc_write_lock_held(fd) {
        case 1: return .running
        case 0: return .leftOver
        default: return .unknown
        }
    }

    /// The slot the daemon holds, for the state file.
    public struct Slot: Sendable, Equatable {
        public var key: String
        public var id: String
        /// When it was taken (Unix seconds); nil when not known (held from before the daemon's start).
        public var since: Int64?
        public init(key: String, id: String, since: Int64?) {
            self.key = key
            self.id = id
            self.since = since
        }
    }

    /// The text of /run/locksmith/state: the daemon's strategy and state since when, and the slot
    /// it holds (nil: none). Values are checked: `state` and `strategy` are words, the key a
    /// semaphore key, the id a valid holder.
    public static func stateText(strategy: String, state: String, stateSince: Int64, slot: Slot?) throws -> String {
        for (name, value) in [("strategy", strategy), ("state", state)] {
            guard !value.isEmpty, value.utf8.count <= 64,
                  value.utf8.allSatisfy({ ($0 >= 0x61 && $0 <= 0x7a) || ($0 >= 0x30 && $0 <= 0x39) || $0 == 0x2d }) else {
                throw LocksmithError(.invalidArgument, "\(JSONText.quotedExcerpt(value)) is not a \(name) (lower-case letters, digits and -)", option: name)
            }
        }
        var text = """
            # locksmithd's state on this machine, for pam_locksmith and `locksmithctl check`
            # (locksmithd replaces this file at each change; see docs/pam.md)
            STRATEGY=\(strategy)
            STATE=\(state)
            STATE_SINCE=\(stateSince)

            """
        guard let slot else { return text + "SLOT_HELD=no\n" }
        guard let group = GroupKey.group(ofKey: slot.key), !slot.key.utf8.contains(where: { $0 <= 0x20 || $0 == 0x7f }) else {
            throw LocksmithError(.invalidArgument, "\(JSONText.quotedExcerpt(slot.key)) is not a semaphore key", option: "key")
        }
        try SemaphoreDocument.validateHolder(slot.id)
        text += "SLOT_HELD=yes\nSLOT_GROUP=\(SlotRecord.quoted(group))\nSLOT_KEY=\(SlotRecord.quoted(slot.key))\nSLOT_ID=\(SlotRecord.quoted(slot.id))\n"
        if let since = slot.since { text += "SLOT_SINCE=\(since)\n" }
        return text
    }
}
