// The one error type of the core. Each Kind stands for one errno at the C boundary
// (Sources/LocksmithCAPI/Boundary.swift holds that table); `message` is the text a person reads.

/// A failure of a locksmith operation: what kind it is, and what exactly went wrong.
public struct LocksmithError: Error, Sendable, Equatable, CustomStringConvertible {
    public enum Kind: Sendable, Equatable {
        /// A caller passed something unusable (bad id, negative max, unparsable window).
        case invalidArgument
        /// Stored data is not a semaphore document (or a server answer is not what the protocol says).
        case badMessage
        /// lock: no free slot.
        case busy
        /// lock: the holder already holds a slot.
        case exists
        /// unlock: not a holder; or a file or key that is not there.
        case notFound
        /// A number that does not fit where it must go.
        case outOfRange
        /// A server or endpoint did not answer in time.
        case timedOut
        /// No connection could be made (refused, unreachable, TLS handshake failed).
        case connectionFailed
        /// The server refused our credentials or a file could not be read for lack of permission.
        case permissionDenied
        /// A compare-and-swap kept losing to other writers; the operation may be retried.
        case conflict
        /// A change made on condition that what was read is still there: it is not (a holder gave
        /// its slot back, and perhaps took one again, since its record was read).
        case changed
        /// A server answered something the protocol does not allow.
        case protocolError
        /// An errno from the system, passed through unchanged.
        case system(Int32)
    }

    public var kind: Kind
    public var message: String
    /// The setting whose value caused the failure ("etcd-api", "LOCKSMITHD_REBOOT_WINDOW_START"),
    /// if one did: callers decide by it, never by the message's text.
    public var option: String?

    public init(_ kind: Kind, _ message: String, option: String? = nil) {
        self.kind = kind
        self.message = message
        self.option = option
    }

    public var description: String { message }
}
