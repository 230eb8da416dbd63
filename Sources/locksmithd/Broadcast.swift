// The warning to logged-in users before a reboot: one line to every terminal in utmp.
import CGlibc
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

    /// Writes `text` to the terminal of every user session in the utmp file `utmp` (a path
    /// under the root); terminal names are read under `root` too. Returns the terminals reached.
    static func send(_ text: String, utmp: String, root: String) -> [String] {
        var reached: [String] = []
        let banner = "\r\nBroadcast message from locksmithd:\r\n\r\n\(text)\r\n\r\n"
        // The utmp file is an array of utmpx records; read it directly (under the root) rather
        // than through getutxent's process-wide state.
        guard let data = readWholeFile(utmp, limit: 16 << 20) else { return [] }
        let size = MemoryLayout<utmpx>.size
        var offset = 0
        while offset + size <= data.count {
            let entry = data.withUnsafeBytes { $0.loadUnaligned(fromByteOffset: offset, as: utmpx.self) }
            offset += size
            guard entry.ut_type == USER_PROCESS else { continue }
            let line = withUnsafeBytes(of: entry.ut_line) { raw in
                String(decoding: raw.prefix { $0 != 0 }, as: UTF8.self)
            }
            // utmp is writable by group utmp: only terminals under /dev are written to (as
            // systemd's wall does), never a file an entry names.
            if line.isEmpty || line.contains("..") || (line.hasPrefix("/") && !line.hasPrefix("/dev/")) { continue }
            let device = underRoot(line.hasPrefix("/") ? line : "/dev/" + line, root)
            guard let fd = openTerminal(device) else { continue }
            let written = banner.withCString { write(fd, $0, strlen($0)) }
            close(fd)
            if written > 0 { reached.append(line) }
        }
        return reached
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
