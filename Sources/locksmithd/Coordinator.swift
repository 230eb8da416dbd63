// /run/update-engine/coordinator.conf: tells the update engine (and people, and pam_locksmith)
// that locksmithd coordinates reboots and what it is doing. Held with an exclusive flock while
// the daemon runs; every change replaces it atomically (a locked temporary file renamed over).
import CGlibc
import Glibc
import LocksmithDaemon

/// A failure of the daemon's own files: what could not be done, and why.
struct FileError: Error, CustomStringConvertible {
    let description: String
    init(_ what: String, _ code: Int32 = errno) { description = "\(what): \(String(cString: strerror(code)))" }
}

/// `path` (absolute) under `root`.
func underRoot(_ path: String, _ root: String) -> String {
    root == "/" || root.isEmpty ? path : (root.hasSuffix("/") ? String(root.dropLast()) : root) + path
}

final class Coordinator {
    static let path = "/run/update-engine/coordinator.conf"

    let file: String
    let strategy: String
    private var fd: Int32

    /// Creates the file (and its directory) under `root` and takes the lock; fails if another
    /// coordinator holds it.
    init(root: String, strategy: String) throws {
        file = underRoot(Coordinator.path, root)
        self.strategy = strategy
        let directory = String(file[..<file.lastIndex(of: "/")!])
        let r = cglibc_make_directories(directory)
        if r < 0 { throw FileError("cannot create \(directory)", -r) }
        // O_NOFOLLOW: the daemon runs as root; a symlink planted here must not send it elsewhere.
        fd = open(file, O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw FileError("cannot open \(file)") }
        if flock(fd, LOCK_EX | LOCK_NB) != 0 {
            let code = errno
            close(fd)
            if code == EWOULDBLOCK {
                throw FileError("\(file) is locked: another update coordinator is running", EWOULDBLOCK)
            }
            throw FileError("cannot lock \(file)", code)
        }
    }

    deinit { close(fd) }

    /// Replaces the file with NAME, STRATEGY and STATE lines; the new file is locked before it
    /// takes the old one's place.
    func set(_ state: DaemonState) throws {
        let text = "NAME=locksmithd\nSTRATEGY=\(strategy)\nSTATE=\(state.rawValue)\n"
        let newFD = cglibc_replace_file(file, text, 1, 1)
        guard newFD >= 0 else { throw FileError("cannot replace \(file)", -newFD) }
        close(fd)
        fd = newFD
    }
}
