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

    func phaseDirectory(_ phase: HookPhase) -> String { HookFiles.directory(directory, phase) }

    /// The phase's entries in name order (the rules are LocksmithDaemon's HookFiles, which
    /// `locksmithctl check` applies too).
    func entries(_ phase: HookPhase) -> [HookFiles.Entry] { HookFiles.entries(directory, phase) }

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
    /// locksmithctl reads them (`etcd`: LOCKSMITHCTL_<OPTION>=value, the library's
    /// locksmith_client_environment: the real values, a password file rather than its password),
    /// so that `locksmithctl` in a hook talks to the same cluster as the same user. Nothing else
    /// of the daemon's environment is passed on.
    static func environment(group: String, machineID: String, root: String, etcd: [String]) -> [String] {
        var environment = ["PATH=\(HookFiles.path)", "LANG=C.UTF-8",
                           "LOCKSMITH_GROUP=\(group)", "LOCKSMITH_ID=\(machineID)"]
        if root != "/" && !root.isEmpty { environment.append("LOCKSMITH_ROOT=\(root)") }
        return environment + etcd
    }
}
