// Where "reboot needed" comes from besides the update engine: a sentinel file (Debian's and
// Ubuntu's /run/reboot-required), watched with inotify, or a command run at an interval (Fedora's
// `needs-restarting -r`). Each runs on a thread of its own and, once it says so, sets the
// daemon's input (a reboot needed stays needed).
import Glibc
import Locksmith
import LocksmithDaemon

enum SentinelFile {
    /// Watches `path` until it exists, then calls `needed` once. The nearest existing directory on
    /// the way to it is watched (so a sentinel whose directory is made later is seen too); never
    /// polled. A sentinel older than this boot is stale (a reboot did not remove it: it is not on
    /// /run): it is ignored, with a warning, until it is written again.
    static func watch(_ path: String, needed: @escaping (String) -> Void) {
        let fd = inotify_init1(Int32(IN_CLOEXEC))
        guard fd >= 0 else {
            Log.error("cannot watch \(path) (inotify: \(String(cString: strerror(errno)))): a reboot needed there is not seen")
            return
        }
        var staleSaid = false
        var buffer = [UInt8](repeating: 0, count: 4096)
        // The directory watched and its watch: kept while it is still the nearest one. (Removing
        // and adding the watch at each event would itself make an event, IN_IGNORED, for ever.)
        var watched: (directory: String, wd: Int32)?
        while true {
            let directory = nearestDirectory(of: path)
            if watched?.directory != directory {
                if let old = watched { inotify_rm_watch(fd, old.wd) }
                watched = nil
                let mask = UInt32(IN_CREATE | IN_MOVED_TO | IN_CLOSE_WRITE | IN_ATTRIB | IN_DELETE_SELF | IN_MOVE_SELF)
                let wd = inotify_add_watch(fd, directory, mask)
                if wd < 0 {
                    Log.warning("cannot watch \(directory) for \(path): \(String(cString: strerror(errno))); trying again in a minute")
                    sleep(60)
                    continue
                }
                watched = (directory, wd)
            }
            // Checked after the watch is in place: a sentinel made in between is not missed.
            var st = stat()
            if stat(path, &st) == 0 && st.st_mode & S_IFMT != S_IFDIR {
                if Int64(st.st_mtim.tv_sec) + 5 >= bootTime() {
                    needed(path)
                    close(fd)
                    return
                }
                if !staleSaid {
                    Log.warning("\(path) is older than this boot: ignoring it (a reboot does not remove it; keep the sentinel on /run, or remove it)")
                    staleSaid = true
                }
            }
            var n = 0
            repeat { n = read(fd, &buffer, buffer.count) } while n < 0 && errno == EINTR
            if n <= 0 { sleep(1) }  // an inotify descriptor that fails: looked at again, not spun on
            // The watch is gone when its directory went (IN_IGNORED for it): made again above.
            var offset = 0
            while n > 0 && offset + 16 <= n {
                let wd = buffer.withUnsafeBytes { $0.loadUnaligned(fromByteOffset: offset, as: Int32.self) }
                let mask = buffer.withUnsafeBytes { $0.loadUnaligned(fromByteOffset: offset + 4, as: UInt32.self) }
                let length = buffer.withUnsafeBytes { $0.loadUnaligned(fromByteOffset: offset + 12, as: UInt32.self) }
                if wd == watched?.wd && mask & UInt32(IN_IGNORED) != 0 { watched = nil }
                offset += 16 + Int(length)
            }
        }
    }

    /// `path`'s parent directory, or the nearest of its ancestors that exists.
    static func nearestDirectory(of path: String) -> String {
        var directory = path
        repeat {
            directory = String(directory[..<(directory.lastIndex(of: "/") ?? directory.startIndex)])
            var st = stat()
            if directory.isEmpty { return "/" }
            if stat(directory, &st) == 0 && st.st_mode & S_IFMT == S_IFDIR { return directory }
        } while true
    }

    /// When this boot began, in Unix seconds.
    static func bootTime() -> Int64 {
        var now = timespec(), up = timespec()
        clock_gettime(CLOCK_REALTIME, &now)
        clock_gettime(CLOCK_BOOTTIME, &up)
        return Int64(now.tv_sec - up.tv_sec)
    }

    /// A warning if others than root can create the sentinel (its directory, or the nearest
    /// existing one, is writable by them): each of them could ask for a reboot.
    static func openness(_ path: String) -> String? {
        let directory = nearestDirectory(of: path)
        var st = stat()
        guard stat(directory, &st) == 0 else { return nil }
        if st.st_uid != 0 || st.st_mode & 0o022 != 0 {
            return "\(directory) is writable by users other than root: any of them can ask for a reboot by creating \(path)"
        }
        return nil
    }
}

enum CheckCommand {
    /// Runs `/bin/sh -c line` now and then every `interval` until it says a reboot is needed
    /// (exit 1), then calls `needed` once. Exit 0 is "nothing to do"; anything else is an error,
    /// logged and tried again with backoff (never later than the interval).
    static func watch(_ line: String, interval: Int64, timeout: Int64, environment: [String], needed: @escaping () -> Void) {
        let intervalSeconds = max(Int(interval / 1_000_000_000), 1)
        let timeoutText = Library.formatDuration(timeout)
        var failures = 0
        while true {
            let ending = Subprocess.run(["/bin/sh", "-c", line], environment: environment,
                                        timeoutMilliseconds: Int(timeout / 1_000_000), stopping: { false }) { output in
                Log.info("reboot check: \(output)", ["LOCKSMITHD_REBOOT_SOURCE=command"])
            }
            var wait = intervalSeconds
            switch ending {
            case .exited(0):
                failures = 0
            case .exited(1):
                needed()
                return
            default:
                Log.warning("the reboot check \(Library.jsonQuoted(line)) failed (\(ending.describe(timeout: timeoutText)); exit 0 means no reboot needed, 1 a reboot needed): trying again",
                            ["LOCKSMITHD_REBOOT_SOURCE=command"])
                wait = min(Int(Library.backoff(attempt: failures)), intervalSeconds)
                failures += 1
            }
            sleep(UInt32(wait))
        }
    }
}
