// What the daemon's threads share: one lock and condition over the daemon's inputs (reboot
// needed, stop requested), changed by the bus and signal threads, waited on by the main thread.
import Glibc

/// The daemon's inputs, changed by the bus and signal threads, waited on by the main thread.
public struct Inputs: Sendable {
    public var rebootNeeded = false
    /// Which source said so first ("the update engine", "/run/reboot-required", ...).
    public var rebootNeededBy = ""
    public var stopRequested = false
    public var updateEngineOperation = ""
    public init() {}
}

public final class SharedInputs: @unchecked Sendable {
    private let mutex = UnsafeMutablePointer<pthread_mutex_t>.allocate(capacity: 1)
    private let condition = UnsafeMutablePointer<pthread_cond_t>.allocate(capacity: 1)
    private var inputs = Inputs()

    public init() {
        pthread_mutex_init(mutex, nil)
        var attributes = pthread_condattr_t()
        pthread_condattr_init(&attributes)
        pthread_condattr_setclock(&attributes, CLOCK_MONOTONIC)
        pthread_cond_init(condition, &attributes)
        pthread_condattr_destroy(&attributes)
    }

    public func update(_ change: (inout Inputs) -> Void) {
        pthread_mutex_lock(mutex)
        change(&inputs)
        pthread_cond_broadcast(condition)
        pthread_mutex_unlock(mutex)
    }

    public var current: Inputs {
        pthread_mutex_lock(mutex)
        defer { pthread_mutex_unlock(mutex) }
        return inputs
    }

    /// Waits until `done(inputs)` or a stop request, or until `milliseconds` pass (nil: no limit).
    @discardableResult
    public func wait(milliseconds: Int?, until done: (Inputs) -> Bool) -> Inputs {
        let deadline = milliseconds.map { monotonicMilliseconds() + max($0, 0) }
        pthread_mutex_lock(mutex)
        defer { pthread_mutex_unlock(mutex) }
        while !done(inputs) && !inputs.stopRequested {
            guard let deadline else {
                pthread_cond_wait(condition, mutex)
                continue
            }
            let now = monotonicMilliseconds()
            if now >= deadline { break }
            var ts = timespec()
            clock_gettime(CLOCK_MONOTONIC, &ts)
            let remaining = deadline - now
            ts.tv_sec += remaining / 1000
            ts.tv_nsec += (remaining % 1000) * 1_000_000
            if ts.tv_nsec >= 1_000_000_000 { ts.tv_sec += 1; ts.tv_nsec -= 1_000_000_000 }
            pthread_cond_timedwait(condition, mutex, &ts)
        }
        return inputs
    }
}
