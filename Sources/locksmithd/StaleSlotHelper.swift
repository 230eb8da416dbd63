// The start-up helper process: it makes an etcd client (loading libcurl) and gives back the slot
// the record names and the machine id's, while the daemon itself waits for an update without ever loading libcurl and
// the TLS libraries. It tells the daemon through a pipe whether it could make its client.
import CGlibc
import Glibc
import LocksmithDaemon

struct StaleSlotHelper {
    let pid: pid_t

    /// Starts the helper; returns once it has made its client, or throws why it could not (no
    /// usable libcurl: the daemon must not start, since it could never take a slot). Call before
    /// any thread starts. The helper stops when its parent is gone.
    /// `clearsRecord`: the recorded slot is among the targets, so the record says "none held" once
    /// they are all given back.
    static func start(targets: [(key: String, id: String)], clearsRecord: Bool, fleetLock: Bool, world: DaemonWorld) throws -> StaleSlotHelper {
        var fds: [Int32] = [-1, -1]
        guard cglibc_pipe_cloexec(&fds) == 0 else { throw FileError("cannot make a pipe") }
        let parent = getpid()
        let pid = fork()
        if pid < 0 { throw FileError("cannot start a process") }
        if pid == 0 {
            close(fds[0])
            var clients: [SlotClient] = []
            do {
                // One client per key (the first made even with none: it proves libcurl loads).
                clients = try (targets.isEmpty ? [nil] : targets.map { $0.key }).map { try world.makeClient($0) }
            } catch {
                let message = "\(error)"
                _ = message.withCString { write(fds[1], $0, strlen($0)) }
                _exit(1)
            }
            close(fds[1])
            var pending = Array(zip(targets, clients))
            var attempt = 0, lastError = ""
            while getppid() == parent {
                do {
                    while let (target, client) = pending.first {
                        try Daemon.giveBack(client, id: target.id, fleetLock: fleetLock, log: world.log)
                        pending.removeFirst()
                    }
                    if clearsRecord { do { try world.recordSlot(nil) } catch { world.log(.warning, "\(error)", []) } }
                    _exit(0)
                } catch {
                    let message = "\(error)"
                    if message != lastError { world.log(.warning, "cannot give back a stale reboot slot: \(message); retrying", []); lastError = message }
                }
                // Between attempts, look every second whether the daemon is still there.
                var left = world.backoff(attempt)
                attempt += 1
                while left > 0 && getppid() == parent {
                    usleep(UInt32(min(left, 1000)) * 1000)
                    left -= 1000
                }
            }
            _exit(1)
        }
        close(fds[1])
        defer { close(fds[0]) }
        var message = [UInt8]()
        var buffer = [UInt8](repeating: 0, count: 1024)
        while true {
            let n = buffer.withUnsafeMutableBytes { read(fds[0], $0.baseAddress, $0.count) }
            if n < 0 && errno == EINTR { continue }
            if n <= 0 { break }
            message += buffer[0..<n]
        }
        if !message.isEmpty {
            var status: Int32 = 0
            waitpid(pid, &status, 0)
            throw FileError(String(decoding: message, as: UTF8.self), ELIBACC)
        }
        return StaleSlotHelper(pid: pid)
    }

    /// Stops the helper if it still runs (etcd unreachable all along); true if it finished its
    /// work (the slot given back, or none to give back).
    func finish() -> Bool {
        var status: Int32 = 0
        if waitpid(pid, &status, WNOHANG) == pid { return status == 0 }
        kill(pid, SIGTERM)
        waitpid(pid, &status, 0)
        return false
    }
}
