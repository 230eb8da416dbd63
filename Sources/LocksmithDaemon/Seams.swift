// What the daemon's state machine needs from the world, as values it is given: the lock client,
// the reboot, the warning to users, the state file, the slot record, time and waiting, the log. The
// program (Sources/locksmithd) passes the real ones: liblocksmith's client, logind, utmp
// terminals, coordinator.conf, the journal. The unit tests pass their own, so that the rules
// are tested without processes (the end-to-end tests run the real daemon).
import Glibc
import Locksmith

/// The operations on one group's semaphore that the daemon uses (`Locksmith.Client` has them).
/// Failures are `LocksmithFailure`s with an errno code.
public protocol SlotClient: AnyObject {
    /// The etcd key of the group's semaphore.
    var key: String { get }
    func lock(_ id: String) throws
    func unlock(_ id: String) throws
    /// True when the semaphore changed, false on timeout.
    func wait(milliseconds: Int) throws -> Bool
    /// Waits in the group's queue and takes a slot in turn (see `Client.acquire`).
    func acquire(_ id: String, milliseconds: Int?, progress: ((Int) -> Bool)?) throws -> Client.QueueOutcome
    /// The semaphore as etcd has it now (nil: none yet); never creates it.
    func read() throws -> SemaphoreDocument?
    /// The newest semaphore seen, without asking etcd.
    func lastSeen() throws -> SemaphoreDocument?
    /// Ends a wait in progress and fails later calls (any thread), until called with false.
    func cancel(_ cancelled: Bool)
}

extension Client: SlotClient {}

/// The states written to coordinator.conf (the original's names).
public enum DaemonState: String, Sendable {
    case starting, running
    case rebootPlanned = "reboot-planned"
    case rebooting
}

public enum LogLevel: Int32, Sendable {
    case error = 3, warning = 4, notice = 5, info = 6
}

/// The hook directories, run in this order around a reboot.
public enum HookPhase: String, Sendable, CaseIterable {
    /// Before a slot is taken (or, without etcd, before the reboot is prepared): a failure
    /// means "not now".
    case preLock = "pre-lock"
    /// Once the slot is held, before the warning and the reboot: a failure gives the slot back.
    case preReboot = "pre-reboot"
    /// After the machine is back, before the slot from before the reboot is given back: the
    /// slot is kept until they all succeed.
    case postReboot = "post-reboot"
}

/// What running the hooks of a phase came to.
public enum HookOutcome: Equatable, Sendable {
    case passed
    /// The first hook that failed (it ends the phase) and why: its exit status, a signal, the
    /// timeout, or why it was refused.
    case failed(hook: String, reason: String)
}

/// The reboot request's answer was lost (the bus connection closed, no reply): logind may be
/// rebooting the machine already, since its shutdown closes the bus before the answer is sent.
/// Not a refusal: the slot is kept, as after an answer.
public struct RebootAnswerLost: Error, CustomStringConvertible {
    public let description: String
    public init(_ description: String) { self.description = description }
}

/// Everything the state machine acts through.
public struct DaemonWorld {
    /// A client of the semaphore at `key` (nil: the configured group's); made when first needed.
    public var makeClient: (_ key: String?) throws -> SlotClient
    /// Asks for the reboot (logind); throws RebootAnswerLost when no answer came.
    public var reboot: () throws -> Void
    /// Warns logged-in users with `text`; returns how many terminals were reached.
    public var broadcast: (_ text: String) -> Int
    /// Records the state (coordinator.conf).
    public var setState: (DaemonState) throws -> Void
    /// Records the slot taken (nil: none held), for the next start.
    public var recordSlot: ((key: String, id: String)?) throws -> Void
    /// Time and waiting: the system's (`SystemClock`), or a test's virtual clock.
    public var clock: DaemonClock
    /// One log entry, with journal fields ("KEY=value").
    public var log: (LogLevel, String, [String]) -> Void
    /// The one-line status for the service manager (sd_notify STATUS=).
    public var status: (String) -> Void
    /// Tells the service manager the daemon is ready / stopping / alive.
    public var notify: (String) -> Void
    /// The wait before retry number `attempt`, in milliseconds.
    public var backoff: (_ attempt: Int) -> Int
    /// Half the unit's WatchdogSec, if it has one: no wait lasts longer, and each ends with a ping.
    public var watchdogMilliseconds: Int?
    /// Called once the daemon settles into waiting for an update (it may page its code out).
    public var idle: () -> Void
    /// Runs the hooks of a phase in name order, the first failure ending the run; `stopping`
    /// says when to stop a hook because the daemon is stopping.
    public var runHooks: (_ phase: HookPhase, _ stopping: @escaping () -> Bool) -> HookOutcome
    /// Whether a phase has any hook (the post-reboot phase holds the slot only if it has).
    public var hasHooks: (HookPhase) -> Bool
    /// Replaces the metrics file with this text (nil: no metrics file).
    public var writeMetrics: ((String) -> Void)?

    public init(makeClient: @escaping (String?) throws -> SlotClient, reboot: @escaping () throws -> Void,
                broadcast: @escaping (String) -> Int, setState: @escaping (DaemonState) throws -> Void,
                recordSlot: @escaping ((key: String, id: String)?) throws -> Void, clock: DaemonClock = SystemClock(),
                log: @escaping (LogLevel, String, [String]) -> Void, status: @escaping (String) -> Void,
                notify: @escaping (String) -> Void, backoff: @escaping (Int) -> Int = { Int(Library.backoff(attempt: $0)) * 1000 },
                watchdogMilliseconds: Int? = nil, idle: @escaping () -> Void = {},
                runHooks: @escaping (HookPhase, @escaping () -> Bool) -> HookOutcome = { _, _ in .passed },
                hasHooks: @escaping (HookPhase) -> Bool = { _ in false }, writeMetrics: ((String) -> Void)? = nil) {
        self.makeClient = makeClient
        self.reboot = reboot
        self.broadcast = broadcast
        self.setState = setState
        self.recordSlot = recordSlot
        self.clock = clock
        self.log = log
        self.status = status
        self.notify = notify
        self.backoff = backoff
        self.watchdogMilliseconds = watchdogMilliseconds
        self.idle = idle
        self.runHooks = runHooks
        self.hasHooks = hasHooks
        self.writeMetrics = writeMetrics
    }
}

/// Time and waiting, as the daemon sees them. Every wait of the daemon goes through one, so that
/// its tests run on a virtual clock: a wait there passes at once, and nothing sleeps.
public protocol DaemonClock: AnyObject {
    /// The wall clock, in Unix seconds (the reboot window is placed on it).
    func now() -> Int64
    /// Monotonic milliseconds, for waits that the wall clock must not stretch.
    func monotonic() -> Int
    /// Waits until `done(inputs)` or a stop request, or until `milliseconds` pass (nil: no
    /// limit); returns the inputs as last seen.
    func wait(_ inputs: SharedInputs, milliseconds: Int?, until done: (Inputs) -> Bool) -> Inputs
    /// Waits `milliseconds`, stop or not (a slot being given back must go through).
    func sleep(milliseconds: Int)
}

/// The system's clocks; waits on the inputs' condition variable.
public final class SystemClock: DaemonClock, @unchecked Sendable {
    public init() {}
    public func now() -> Int64 { Int64(time(nil)) }
    public func monotonic() -> Int { monotonicMilliseconds() }
    public func wait(_ inputs: SharedInputs, milliseconds: Int?, until done: (Inputs) -> Bool) -> Inputs {
        inputs.wait(milliseconds: milliseconds, until: done)
    }
    public func sleep(milliseconds: Int) { usleep(UInt32(max(milliseconds, 0)) * 1000) }
}

/// Monotonic milliseconds, for waits that the wall clock must not stretch.
public func monotonicMilliseconds() -> Int {
    var ts = timespec()
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return ts.tv_sec * 1000 + ts.tv_nsec / 1_000_000
}

/// `path` (absolute) under `root` (LOCKSMITH_ROOT's rule, the library's: "/" or "" is the system itself).
public func underRoot(_ path: String, _ root: String) -> String { Library.path(path, under: root) }
