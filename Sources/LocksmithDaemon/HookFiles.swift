// The hook directories under /etc/locksmith (pre-lock.d, pre-reboot.d, post-reboot.d): which
// files locksmithd runs and which it refuses. locksmithd runs them (Sources/locksmithd/Hooks.swift);
// `locksmithctl check` reports them with the same rules. Only what root alone can change is run: a
// hook (or its directory, or a directory on the way to it) that is not owned by root or is
// writable by others is refused.
import Glibc

public enum HookFiles {
    /// The PATH hooks and a reboot-source command run with (and `check` looks the command up in).
    public static let path = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

    /// What a phase's directory holds: the hooks to run, in name order, or why one is refused.
    public enum Entry: Equatable, Sendable {
        case hook(name: String, path: String)
        case refused(name: String, why: String)
    }

    /// The names that are run: letters, digits, "_", "-" and "."; not hidden files, editor
    /// backups or the package manager's leftovers.
    public static func runnable(_ name: String) -> Bool {
        guard let first = name.utf8.first, first != UInt8(ascii: ".") else { return false }
        guard name.utf8.allSatisfy({ isalnum(Int32($0)) != 0 || $0 == UInt8(ascii: "_") || $0 == UInt8(ascii: "-") || $0 == UInt8(ascii: ".") }) else { return false }
        let leftovers = [".dpkg-old", ".dpkg-new", ".dpkg-dist", ".dpkg-tmp", ".dpkg-bak", ".ucf-old", ".ucf-new", ".ucf-dist", ".rpmnew", ".rpmsave", ".swp", ".bak", ".orig"]
        return !leftovers.contains(where: { name.hasSuffix($0) })
    }

    /// Why a file or directory with this status may not be run by root, or nil.
    public static func refusal(_ st: stat, directory: Bool) -> String? {
        let kind = st.st_mode & S_IFMT
        if directory && kind != S_IFDIR { return "not a directory" }
        if !directory && kind != S_IFREG { return "not a regular file" }
        if st.st_uid != 0 { return "owned by uid \(st.st_uid), not root" }
        if st.st_mode & 0o022 != 0 { return "writable by \(st.st_mode & 0o002 != 0 ? "every user" : "its group")" }
        if !directory && st.st_mode & 0o100 == 0 { return "not executable" }
        return nil
    }

    /// The directory of `phase`'s hooks under `directory` (/etc/locksmith under the root).
    public static func directory(_ directory: String, _ phase: HookPhase) -> String { directory + "/" + phase.rawValue + ".d" }

    /// The first directory on the way from "/" to `directory` (the hooks' directory, included)
    /// that someone other than root could change, and why; nil when root alone can. Whoever can
    /// write a directory on the way can move what is below it away (and a missing phase directory
    /// is a phase without hooks, which passes) or put their own in its place. An ancestor that
    /// others may write is accepted only if it is root's and sticky (/tmp): there nobody else may
    /// move or replace the root-owned directory below, which the next step checks. The walk
    /// follows symbolic links (each target is checked in turn) and stops at the first missing
    /// directory: nothing below it exists, so nothing is run.
    public static func untrusted(_ directory: String) -> (path: String, why: String)? {
        var path = ""
        let components = directory.split(separator: "/")
        for index in -1..<components.count {
            path = index < 0 ? "/" : (path == "/" ? "" : path) + "/" + components[index]
            var st = stat()
            guard stat(path, &st) == 0 else {
                return errno == ENOENT ? nil : (path, String(cString: strerror(errno)))
            }
            if st.st_mode & S_IFMT != S_IFDIR { return (path, "not a directory") }
            if st.st_uid != 0 { return (path, "owned by uid \(st.st_uid), not root") }
            let last = index == components.count - 1
            if st.st_mode & 0o022 != 0 && (last || st.st_mode & S_ISVTX == 0) {
                return (path, "writable by \(st.st_mode & 0o002 != 0 ? "every user" : "its group")")
            }
        }
        return nil
    }

    /// The phase's entries in name order; [] when its directory does not exist. A directory that
    /// cannot be trusted, or one on the way to it, is one refused entry.
    public static func entries(_ directory: String, _ phase: HookPhase) -> [Entry] {
        if let (path, why) = untrusted(directory) { return [.refused(name: path, why: why)] }
        let dir = HookFiles.directory(directory, phase)
        var st = stat()
        guard lstat(dir, &st) == 0 else {
            return errno == ENOENT ? [] : [.refused(name: dir, why: String(cString: strerror(errno)))]
        }
        if let why = refusal(st, directory: true) { return [.refused(name: dir, why: why)] }
        guard let handle = opendir(dir) else { return [.refused(name: dir, why: String(cString: strerror(errno)))] }
        defer { closedir(handle) }
        var names: [String] = []
        while let entry = readdir(handle) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { String(decoding: $0.prefix(while: { $0 != 0 }), as: UTF8.self) }
            if runnable(name) { names.append(name) }
            if names.count > 1000 { break }
        }
        return names.sorted { Array($0.utf8).lexicographicallyPrecedes(Array($1.utf8)) }.map { name in
            let path = dir + "/" + name
            var st = stat()
            // stat, not lstat: a link to a hook elsewhere is fine if what it names passes.
            guard stat(path, &st) == 0 else { return .refused(name: name, why: String(cString: strerror(errno))) }
            if let why = refusal(st, directory: false) { return .refused(name: name, why: why) }
            return .hook(name: name, path: path)
        }
    }
}
