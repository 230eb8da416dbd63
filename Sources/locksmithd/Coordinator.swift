// /run/update-engine/coordinator.conf: tells the update engine (and people, and pam_locksmith)
// that locksmithd coordinates reboots and what it is doing. Held with an exclusive flock while
// the daemon runs; every change replaces it atomically (a locked temporary file renamed over).
import Glibc
import LocksmithCore
import LocksmithSystem

final class Coordinator {
    enum State: String {
        case starting, running
        case rebootPlanned = "reboot-planned"
        case rebooting
    }

    static let path = "/run/update-engine/coordinator.conf"

    let file: String
    let strategy: String
    private var fd: Int32

    /// Creates the file (and its directory) under `root` and takes the lock; fails if another
    /// coordinator holds it.
    init(root: String, strategy: String) throws {
        file = SystemRoot.resolve(Coordinator.path, root: root)
        self.strategy = strategy
        try Syscalls.makeDirectories(String(file[..<file.lastIndex(of: "/")!]))
        // O_NOFOLLOW: the daemon runs as root; a symlink planted here must not send it elsewhere.
        fd = open(file, O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw Syscalls.errnoError("cannot open \(file)") }
        if flock(fd, LOCK_EX | LOCK_NB) != 0 {
            let code = errno
            close(fd)
            if code == EWOULDBLOCK {
                throw LocksmithError(.exists, "\(file) is locked: another update coordinator is running")
            }
            throw Syscalls.errnoError("cannot lock \(file)", code)
        }
    }

    deinit { close(fd) }

    /// Replaces the file with NAME, STRATEGY and STATE lines; the new file is locked before it
    /// takes the old one's place.
    func set(_ state: State) throws {
        let text = "NAME=locksmithd\nSTRATEGY=\(strategy)\nSTATE=\(state.rawValue)\n"
        let newFD = try Syscalls.replaceFile(file, with: text, keepOpen: true) { flock($0, LOCK_EX | LOCK_NB) == 0 }
        close(fd)
        fd = newFD ?? -1
    }
}
