// The hook directories under /etc/locksmith: executables run in name order around a reboot
// (pre-lock.d, pre-reboot.d, post-reboot.d), each with a timeout, its output in the journal under
// its name. Only what root alone can change is run: a hook (or its directory) that is not owned
// by root or is writable by others is refused, and a refused hook fails its phase, as a failing
// one does (a gate that cannot run is closed).
import Glibc
import Locksmith
import LocksmithDaemon

struct Hooks {
    /// The directory of the phase directories (/etc/locksmith under the root).
    let directory: String
    let timeoutMilliseconds: Int
    /// The environment of every hook (the phase is added per run).
    let environment: [String]

    /// What a phase's directory holds: the hooks to run, in name order, or why one is refused.
    enum Entry: Equatable {
        case hook(name: String, path: String)
        case refused(name: String, why: String)
    }

    /// The names that are run: letters, digits, "_", "-" and "."; not hidden files, editor
    /// backups or the package manager's leftovers.
    static func runnable(_ name: String) -> Bool {
        guard let first = name.utf8.first, first != UInt8(ascii: ".") else { return false }
        guard name.utf8.allSatisfy({ isalnum(Int32($0)) != 0 || $0 == UInt8(ascii: "_") || $0 == UInt8(ascii: "-") || $0 == UInt8(ascii: ".") }) else { return false }
        let leftovers = [".dpkg-old", ".dpkg-new", ".dpkg-dist", ".dpkg-tmp", ".dpkg-bak", ".ucf-old", ".ucf-new", ".ucf-dist", ".rpmnew", ".rpmsave", ".swp", ".bak", ".orig"]
        return !leftovers.contains(where: { name.hasSuffix($0) })
    }

    /// Why a file or directory with this status may not be run by root, or nil.
    static func refusal(_ st: stat, directory: Bool) -> String? {
        let kind = st.st_mode & S_IFMT
        if directory && kind != S_IFDIR { return "not a directory" }
        if !directory && kind != S_IFREG { return "not a regular file" }
        if st.st_uid != 0 { return "owned by uid \(st.st_uid), not root" }
        if st.st_mode & 0o022 != 0 { return "writable by \(st.st_mode & 0o002 != 0 ? "every user" : "its group")" }
        if !directory && st.st_mode & 0o100 == 0 { return "not executable" }
        return nil
    }

    func phaseDirectory(_ phase: HookPhase) -> String { directory + "/" + phase.rawValue + ".d" }

    /// The phase's entries in name order; [] when its directory does not exist. A directory that
    /// cannot be trusted is one refused entry.
    func entries(_ phase: HookPhase) -> [Entry] {
        let dir = phaseDirectory(phase)
        var st = stat()
        guard lstat(dir, &st) == 0 else {
            return errno == ENOENT ? [] : [.refused(name: dir, why: String(cString: strerror(errno)))]
        }
        if let why = Hooks.refusal(st, directory: true) { return [.refused(name: dir, why: why)] }
        guard let handle = opendir(dir) else { return [.refused(name: dir, why: String(cString: strerror(errno)))] }
        defer { closedir(handle) }
        var names: [String] = []
        while let entry = readdir(handle) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { String(decoding: $0.prefix(while: { $0 != 0 }), as: UTF8.self) }
            if Hooks.runnable(name) { names.append(name) }
            if names.count > 1000 { break }
        }
        return names.sorted { Array($0.utf8).lexicographicallyPrecedes(Array($1.utf8)) }.map { name in
            let path = dir + "/" + name
            var st = stat()
            // stat, not lstat: a link to a hook elsewhere is fine if what it names passes.
            guard stat(path, &st) == 0 else { return .refused(name: name, why: String(cString: strerror(errno))) }
            if let why = Hooks.refusal(st, directory: false) { return .refused(name: name, why: why) }
            return .hook(name: name, path: path)
        }
    }

    func has(_ phase: HookPhase) -> Bool { !entries(phase).isEmpty }

    /// Runs the phase's hooks in order; the first that fails (or is refused) ends the phase.
    func run(_ phase: HookPhase, stopping: @escaping () -> Bool) -> HookOutcome {
        let timeout = Library.formatDuration(Int64(timeoutMilliseconds) * 1_000_000)
        for entry in entries(phase) {
            switch entry {
            case .refused(let name, let why):
                Log.error("\(phase.rawValue) hook \(name) refused: \(why)", fields(phase, name))
                return .failed(hook: name, reason: "refused: \(why)")
            case .hook(let name, let path):
                Log.info("running \(phase.rawValue) hook \(name)", fields(phase, name))
                let ending = Subprocess.run([path], environment: environment + ["LOCKSMITH_PHASE=\(phase.rawValue)"],
                                            timeoutMilliseconds: timeoutMilliseconds, stopping: stopping) { line in
                    Log.info("\(phase.rawValue)/\(name): \(line)", fields(phase, name))
                }
                guard ending == .exited(0) else {
                    let reason = ending.describe(timeout: timeout)
                    Log.warning("\(phase.rawValue) hook \(name) failed: \(reason)", fields(phase, name))
                    return .failed(hook: name, reason: reason)
                }
            }
        }
        return .passed
    }

    private func fields(_ phase: HookPhase, _ name: String) -> [String] {
        ["LOCKSMITHD_HOOK=\(name)", "LOCKSMITHD_HOOK_PHASE=\(phase.rawValue)"]
    }

    /// The environment of hooks and of a reboot-source command: a fixed PATH, the machine's
    /// group and id, the root when it is not "/", and the daemon's etcd settings as
    /// locksmithctl reads them (LOCKSMITHCTL_<OPTION>), so that `locksmithctl` in a hook talks to
    /// the same cluster. Nothing else of the daemon's environment is passed on.
    static func environment(group: String, machineID: String, root: String, etcd: [(name: String, value: String, origin: String)]) -> [String] {
        var environment = ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "LANG=C.UTF-8",
                           "LOCKSMITH_GROUP=\(group)", "LOCKSMITH_ID=\(machineID)"]
        if root != "/" && !root.isEmpty { environment.append("LOCKSMITH_ROOT=\(root)") }
        for setting in etcd where !setting.value.isEmpty {
            let name = "LOCKSMITHCTL_" + String(setting.name.map { $0 == "-" ? "_" : Character($0.uppercased()) })
            environment.append("\(name)=\(setting.value)")
        }
        return environment
    }
}
