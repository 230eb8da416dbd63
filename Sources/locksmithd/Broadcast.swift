// The warning to logged-in users before a reboot: one line to every terminal in utmp and of
// logind's sessions.
import CGlibc
import CSystemd
import Glibc
import LocksmithDaemon

enum Broadcast {
    /// Device majors of terminals: virtual consoles and serial ports (4), the console (5, 1),
    /// old and Unix 98 pty slaves (3, 136-143), and common serial and hypervisor consoles.
    /// Nothing else is opened: opening some devices acts by itself (5, 2 makes a new pty).
    static func isTerminal(major: UInt32, minor: UInt32) -> Bool {
        switch major {
        case 3, 4, 136...143, 166, 188, 204, 229: return true
        case 5: return minor == 1
        default: return false
        }
    }

    /// Writes `text` to the terminal of every user session: those in the utmp file `utmp` (a
    /// path under the root) and, on the machine itself (root "/"), those logind knows (Debian 13
    /// has no utmp: login(1) registers its sessions with logind through pam_systemd alone).
    /// Terminal names are read under `root`. Returns the terminals reached, each once.
    static func send(_ text: String, utmp: String, root: String) -> [String] {
        var reached: [String] = []
        let banner = "\r\nBroadcast message from locksmithd:\r\n\r\n\(text)\r\n\r\n"
        var seen = Set<String>()
        for line in utmpTerminals(utmp) + (root == "/" || root.isEmpty ? sessionTerminals() : []) {
            // utmp is writable by group utmp: only terminals under /dev are written to (as
            // systemd's wall does), never a file an entry names.
            if line.isEmpty || line.contains("..") || (line.hasPrefix("/") && !line.hasPrefix("/dev/")) { continue }
            let path = line.hasPrefix("/") ? line : "/dev/" + line
            guard seen.insert(path).inserted else { continue }
            guard let fd = openTerminal(underRoot(path, root)) else { continue }
            let written = banner.withCString { write(fd, $0, strlen($0)) }
            close(fd)
            if written > 0 { reached.append(line) }
        }
        return reached
    }

    /// The terminal lines of the user processes in the utmp file at `path` (none if it is not
    /// there). The file is an array of utmpx records, read directly rather than through
    /// getutxent's process-wide state.
    static func utmpTerminals(_ path: String) -> [String] {
        guard let data = readWholeFile(path, limit: 16 << 20) else { return [] }
        let size = MemoryLayout<utmpx>.size
        var lines: [String] = []
        var offset = 0
        while offset + size <= data.count {
            let entry = data.withUnsafeBytes { $0.loadUnaligned(fromByteOffset: offset, as: utmpx.self) }
            offset += size
            guard entry.ut_type == USER_PROCESS else { continue }
            lines.append(withUnsafeBytes(of: entry.ut_line) { raw in
                String(decoding: raw.prefix { $0 != 0 }, as: UTF8.self)
            })
        }
        return lines
    }

    /// The terminals of logind's sessions (sd-login; none where logind never ran).
    static func sessionTerminals() -> [String] {
        var list: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?
        guard csd_session_ttys(&list) > 0, let list else { return [] }
        defer { csd_strv_free(list) }
        var lines: [String] = []
        var i = 0
        while let tty = list[i] {
            lines.append(String(cString: tty))
            i += 1
        }
        return lines
    }

    /// Opens `path` for writing only if it is a terminal: it is looked at first without being
    /// opened (O_PATH, not following a symbolic link: anyone can plant one in /dev/shm), must be
    /// a character device of a terminal major, and is then opened through that very descriptor,
    /// so that nothing can be swapped in between. nil otherwise.
    static func openTerminal(_ path: String) -> Int32? {
        let probe = cglibc_open_path(path)
        guard probe >= 0 else { return nil }
        defer { close(probe) }
        var info = stat()
        guard fstat(probe, &info) == 0, info.st_mode & S_IFMT == S_IFCHR,
              isTerminal(major: cglibc_major(UInt64(info.st_rdev)), minor: cglibc_minor(UInt64(info.st_rdev))) else { return nil }
        let fd = open("/proc/self/fd/\(probe)", O_WRONLY | O_NOCTTY | O_NONBLOCK | O_CLOEXEC)
        guard fd >= 0 else { return nil }
        guard isatty(fd) == 1 else {
            close(fd)
            return nil
        }
        return fd
    }
}
