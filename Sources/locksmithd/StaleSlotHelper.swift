// The start-up helper process: it makes an etcd client (loading libcurl) and gives back the slot
// the record names and the machine id's, while the daemon itself waits for an update without ever
// loading libcurl and the TLS libraries. It tells the daemon through a pipe whether it could make its client.
import CGlibc
import Glibc
import LocksmithDaemon

final class StaleSlotHelper: @unchecked Sendable {
    let pid: pid_t
    /// The helper's wait status once a thread of the daemon reaped it (nil while it runs): it is
    /// reaped as soon as it ends, so that no zombie stays beside the daemon for as long as it runs.
    private var ended: Int32?
    private let lock = UnsafeMutablePointer<pthread_mutex_t>.allocate(capacity: 1)
    private let changed = UnsafeMutablePointer<pthread_cond_t>.allocate(capacity: 1)

    private init(pid: pid_t) {
        self.pid = pid
        pthread_mutex_init(lock, nil)
        pthread_cond_init(changed, nil)
    }

    /// Reaps the helper when it ends, on a thread of its own, which takes no signal: it starts
    /// before the signal thread blocks SIGTERM in every thread, and a SIGTERM delivered to it
    /// would end the daemon without giving a slot back.
    private func reapWhenDone() {
        var all = sigset_t(), previous = sigset_t()
        sigfillset(&all)
        pthread_sigmask(SIG_BLOCK, &all, &previous)
        defer { pthread_sigmask(SIG_SETMASK, &previous, nil) }
        spawnThread { [self] in
            var status: Int32 = 0
            while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
            pthread_mutex_lock(lock)
            ended = status
            pthread_cond_broadcast(changed)
            pthread_mutex_unlock(lock)
        }
    }

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
        let helper = StaleSlotHelper(pid: pid)
        helper.reapWhenDone()
        return helper
    }

    /// Stops the helper if it still runs (etcd unreachable all along); true if it finished its
    /// work (the slot given back, or none to give back).
    func finish() -> Bool {
        pthread_mutex_lock(lock)
        defer { pthread_mutex_unlock(lock) }
        if let ended { return ended == 0 }
        kill(pid, SIGTERM)
        while ended == nil { pthread_cond_wait(changed, lock) }
        return false
    }
}
