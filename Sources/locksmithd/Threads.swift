// The daemon's threads: the one that takes signals, and how threads are started.
import Glibc
import LocksmithDaemon

/// Blocks SIGTERM, SIGINT and SIGHUP in every thread and starts one that waits for them: the
/// first asks the daemon to stop (which ends etcd requests in progress and wakes the main thread).
func startSignalThread(_ daemon: Daemon) {
    var set = sigset_t()
    sigemptyset(&set)
    for s in [SIGTERM, SIGINT, SIGHUP] { sigaddset(&set, s) }
    pthread_sigmask(SIG_BLOCK, &set, nil)
    spawnThread {
        var set = sigset_t()
        sigemptyset(&set)
        for s in [SIGTERM, SIGINT, SIGHUP] { sigaddset(&set, s) }
        while true {
            var received: Int32 = 0
            if sigwait(&set, &received) != 0 { continue }
            if received == SIGHUP { continue }
            Log.info("got \(received == SIGTERM ? "SIGTERM" : "SIGINT"): stopping")
            daemon.requestStop()
        }
    }
}

/// Runs `body` on a new detached thread.
func spawnThread(_ body: @escaping @Sendable () -> Void) {
    final class Box { let body: @Sendable () -> Void; init(_ b: @escaping @Sendable () -> Void) { body = b } }
    var thread = pthread_t()
    let box = Unmanaged.passRetained(Box(body)).toOpaque()
    pthread_create(&thread, nil, { p in
        Unmanaged<Box>.fromOpaque(p!).takeRetainedValue().body()
        return nil
    }, box)
    pthread_detach(thread)
}
