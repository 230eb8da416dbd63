// The warning to logged-in users before a reboot: one line to every terminal in utmp.
import Glibc
import LocksmithSystem

enum Broadcast {
    static let message = "System reboot in 5 minutes!"

    /// Writes `message` to the terminal of every user session in the utmp file `utmp` (a path
    /// under the root); terminal names are read under `root` too. Returns the terminals reached.
    static func send(_ text: String, utmp: String, root: String) -> [String] {
        var reached: [String] = []
        let banner = "\r\nBroadcast message from locksmithd:\r\n\r\n\(text)\r\n\r\n"
        // The utmp file is an array of utmpx records; read it directly (under the root) rather
        // than through getutxent's process-wide state.
        guard let data = try? Syscalls.readFile(utmp, limit: 16 << 20) else { return [] }
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
            let device = SystemRoot.resolve(line.hasPrefix("/") ? line : "/dev/" + line, root: root)
            let fd = open(device, O_WRONLY | O_NOCTTY | O_NONBLOCK | O_CLOEXEC)
            if fd < 0 { continue }
            var info = stat()
            guard fstat(fd, &info) == 0, info.st_mode & 0o170000 == 0o020000 /* S_IFCHR */, isatty(fd) == 1 else {
                close(fd)
                continue
            }
            let written = banner.withCString { write(fd, $0, strlen($0)) }
            close(fd)
            if written > 0 { reached.append(line) }
        }
        return reached
    }
}
