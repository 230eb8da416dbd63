// Cancelling a client's requests from another thread or a signal handler.
import Synchronization

/// A client's "stop now": set from any thread (or a signal handler: it is one atomic store), it
/// ends a watch in progress within about a second and fails every later request at once.
public final class Cancellation: Sendable {
    private let flag = Atomic<Bool>(false)
    public init() {}
    public func set(_ cancelled: Bool) { flag.store(cancelled, ordering: .relaxed) }
    public var isSet: Bool { flag.load(ordering: .relaxed) }
}
