// Programs the daemon runs (hooks, a reboot-source command): started with a clean environment in
// a process group of their own, their output logged line by line, stopped at a deadline or when
// the daemon stops.
import CGlibc
import Glibc
import LocksmithDaemon

enum Subprocess {
    /// How a run ended.
    enum Ending: Equatable {
        case exited(Int32)
        case signaled(Int32)
        case timedOut
        case stopped
        case notStarted(String)

        /// "exit status 3", "killed by signal 9", "timed out after 10m", ...
        func describe(timeout: String) -> String {
            switch self {
            case .exited(let code): return "exit status \(code)"
            case .signaled(let signal): return "killed by signal \(signal)"
            case .timedOut: return "timed out after \(timeout), stopped"
            case .stopped: return "stopped: the daemon is stopping"
            case .notStarted(let why): return "could not be started: \(why)"
            }
        }
    }

    /// Most output logged per run, and longest line: a program that floods cannot flood the journal.
    static let lineLimit = 4096
    static let linesPerRun = 1000
    /// How long a stopped process group has between SIGTERM and SIGKILL.
    static let killGraceMilliseconds = 5000

    /// Runs `arguments` (the first a path) with exactly `environment` for at most
    /// `timeoutMilliseconds`; each output line goes to `output`. `stopping` is asked about four
    /// times a second while the program runs.
    static func run(_ arguments: [String], environment: [String], timeoutMilliseconds: Int,
                    stopping: () -> Bool, output: (String) -> Void) -> Ending {
        var argv = arguments.map { strdup($0) } + [nil]
        var envp = environment.map { strdup($0) } + [nil]
        defer {
            argv.forEach { free($0) }
            envp.forEach { free($0) }
        }
        var readEnd: Int32 = -1
        let pid = cglibc_spawn(&argv, &envp, &readEnd)
        if pid < 0 { return .notStarted(String(cString: strerror(-pid))) }
        defer { close(readEnd) }

        let deadline = monotonicMilliseconds() + timeoutMilliseconds
        var pending: [UInt8] = []
        var lines = 0, open = true
        func emit(_ bytes: ArraySlice<UInt8>) {
            lines += 1
            if lines <= linesPerRun {
                output(String(decoding: bytes.prefix(lineLimit), as: UTF8.self))
            } else if lines == linesPerRun + 1 {
                output("(more output not logged)")
            }
        }
        var buffer = [UInt8](repeating: 0, count: 4096)
        var ending: Ending?
        while ending == nil {
            if stopping() { ending = .stopped; break }
            let left = deadline - monotonicMilliseconds()
            if left <= 0 { ending = .timedOut; break }
            if !open {
                // Output closed: wait for the exit itself.
                if let done = reap(pid, wait: false) { return done }
                usleep(UInt32(min(left, 50)) * 1000)
                continue
            }
            var descriptor = pollfd(fd: readEnd, events: Int16(POLLIN), revents: 0)
            let ready = poll(&descriptor, 1, Int32(min(left, 250)))
            if ready < 0 && errno != EINTR { open = false }
            guard ready > 0 else { continue }
            let n = buffer.withUnsafeMutableBytes { read(readEnd, $0.baseAddress, $0.count) }
            if n < 0 && (errno == EINTR || errno == EAGAIN) { continue }
            if n <= 0 {
                open = false
                if !pending.isEmpty { emit(pending[...]); pending.removeAll() }
                continue
            }
            pending += buffer[0..<n]
            while let newline = pending.firstIndex(of: 10) {
                emit(pending[..<newline])
                pending.removeSubrange(...newline)
            }
            if pending.count > lineLimit {  // a line without end: log what fits, drop the rest of it
                emit(pending[...])
                pending.removeAll()
            }
        }
        // Timed out or stopping: the whole process group goes, politely first.
        kill(-pid, SIGTERM)
        let grace = monotonicMilliseconds() + killGraceMilliseconds
        while monotonicMilliseconds() < grace {
            if reap(pid, wait: false) != nil {
                kill(-pid, SIGKILL)  // children the program left behind
                return ending!
            }
            usleep(50_000)
        }
        kill(-pid, SIGKILL)
        _ = reap(pid, wait: true)
        return ending!
    }

    /// The ending of `pid` if it ended (waiting for it if `wait`).
    private static func reap(_ pid: Int32, wait: Bool) -> Ending? {
        var status: Int32 = 0
        while true {
            let r = waitpid(pid, &status, wait ? 0 : WNOHANG)
            if r == pid { break }
            if r < 0 && errno == EINTR { continue }
            return r < 0 ? .notStarted("lost: \(String(cString: strerror(errno)))") : nil
        }
        let signal = status & 0x7f
        return signal == 0 ? .exited((status >> 8) & 0xff) : .signaled(signal)
    }
}
