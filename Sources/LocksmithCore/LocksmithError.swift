// The one error type of the core. Each Kind stands for one errno at the C boundary
// (Sources/Locksmith/Errno.swift holds that table); `message` is the text a person reads.

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
        /// An errno from the system, passed through unchanged.
        case system(Int32)
    }

    public var kind: Kind
    public var message: String

    public init(_ kind: Kind, _ message: String) {
        self.kind = kind
        self.message = message
    }

    public var description: String { message }
}
