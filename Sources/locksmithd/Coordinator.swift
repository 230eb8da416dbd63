// /run/update-engine/coordinator.conf: tells the update engine (and people, and pam_locksmith)
// that locksmithd coordinates reboots and what it is doing, in the original's three lines. And
// /run/locksmith/state: the same state with since when, and the slot this daemon holds, so that
// pam_locksmith and `locksmithctl check` never need to ask etcd (its text is the library's,
// locksmith_daemon_state_text). Each is write-locked while the daemon runs (a lock only a writer,
// root, can take: readers ask the kernel whether it is held) and flocked as the original did;
// every change replaces it atomically (a locked temporary file renamed over).
import CGlibc
import Glibc
import Locksmith
import LocksmithDaemon

/// A failure of the daemon's own files: what could not be done, and why.
struct FileError: Error, CustomStringConvertible {
    let description: String
    init(_ what: String, _ code: Int32 = errno) { description = "\(what): \(String(cString: strerror(code)))" }
}

final class Coordinator {
    let file: String
    let stateFile: String
    let strategy: String
    /// /run/locksmith/locksmithd.lock, root's alone (0600), flocked while the daemon runs: one
    /// coordinator per machine. Not coordinator.conf itself: anyone who can read a file can flock
    /// it, and a user holding a leftover coordinator.conf would keep the daemon from starting.
    private let lockFD: Int32
    /// The current coordinator.conf and state file, write-locked while open (-1: not written yet).
    private var fd: Int32 = -1
    private var stateFD: Int32 = -1
    private var state = DaemonState.starting
    private var stateSince = Int64(time(nil))
    private var slot: (key: String, id: String, since: Int64?)?
    /// The daemon's own process: a helper process it forked must not replace the files (the new
    /// file's lock would go with the helper).
    private let owner = getpid()

    /// Creates the files' directories under `root` and takes the coordinator's lock; fails if
    /// another coordinator holds it.
    init(root: String, strategy: String) throws {
        file = underRoot(DaemonFile.coordinatorPath, root)
        stateFile = underRoot(DaemonFile.statePath, root)
        self.strategy = strategy
        for directory in [file, stateFile].map({ String($0[..<$0.lastIndex(of: "/")!]) }) {
            let r = cglibc_make_directories(directory)
            if r < 0 { throw FileError("cannot create \(directory)", -r) }
        }
        let lockFile = String(stateFile[..<stateFile.lastIndex(of: "/")!]) + "/locksmithd.lock"
        // O_NOFOLLOW: the daemon runs as root; a symlink planted here must not send it elsewhere.
        lockFD = open(lockFile, O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0o600)
        guard lockFD >= 0 else { throw FileError("cannot open \(lockFile)") }
        var info = stat()
        if fstat(lockFD, &info) != 0 || info.st_mode & S_IFMT != S_IFREG || info.st_uid != geteuid() || fchmod(lockFD, 0o600) != 0 {
            close(lockFD)
            throw FileError("\(lockFile) is not a regular file of this user's", EPERM)
        }
        if flock(lockFD, LOCK_EX | LOCK_NB) != 0 {
            let code = errno
            close(lockFD)
            if code == EWOULDBLOCK {
                throw FileError("\(lockFile) is locked: another update coordinator is running", EWOULDBLOCK)
            }
            throw FileError("cannot lock \(lockFile)", code)
        }
    }

    deinit {
        if fd >= 0 { close(fd) }
        if stateFD >= 0 { close(stateFD) }
        close(lockFD)
    }

    /// Replaces coordinator.conf with NAME, STRATEGY and STATE lines (the new file is locked
    /// before it takes the old one's place), then the state file.
    func set(_ state: DaemonState) throws {
        guard getpid() == owner else { return }
        let text = "NAME=locksmithd\nSTRATEGY=\(strategy)\nSTATE=\(state.rawValue)\n"
        let newFD = cglibc_replace_file(file, text, 1, 1)
        guard newFD >= 0 else { throw FileError("cannot replace \(file)", -newFD) }
        if fd >= 0 { close(fd) }
        fd = newFD
        if state != self.state {
            self.state = state
            stateSince = Int64(time(nil))
        }
        writeState()
    }

    /// Records in the state file the slot this daemon holds (nil: none), taken at `since` (nil:
    /// not known, e.g. held from before the daemon started). A failure is logged: the slot
    /// record in /var/lib is what the daemon relies on, this file only informs.
    func setSlot(_ held: (key: String, id: String)?, since: Int64?) {
        guard getpid() == owner else { return }
        if let held, let slot, slot.key == held.key, slot.id == held.id { return }
        slot = held.map { ($0.key, $0.id, since) }
        writeState()
    }

    private func writeState() {
        do {
            let text = try DaemonFile.stateText(strategy: strategy, state: state.rawValue, stateSince: stateSince, slot: slot)
            let newFD = cglibc_replace_file(stateFile, text, 1, 1)
            guard newFD >= 0 else { throw FileError("cannot replace \(stateFile)", -newFD) }
            if stateFD >= 0 { close(stateFD) }
            stateFD = newFD
        } catch {
            Log.warning("\(error) (pam_locksmith and locksmithctl check read it)")
        }
    }
}
