// The daemon's rules, through its seams: a lock client whose answers come from a script, a
// reboot that is only counted, a state file and a slot record kept in memory, and a virtual
// clock: every wait of the daemon passes at once, so the tests are deterministic and never sleep.
// The end-to-end tests (Tests/cli/test_locksmithd.py, test_daemon_attacks.py) run the real program
// against etcd and D-Bus; these pin the decisions one by one.
import Glibc
import Locksmith
import LocksmithDaemon
import Testing

/// A value the test and the daemon's seams share.
final class Locked<T>: @unchecked Sendable {
    private var value: T
    private var mutex = pthread_mutex_t()
    init(_ value: T) {
        self.value = value
        pthread_mutex_init(&mutex, nil)
    }
    func withLock<R>(_ body: (inout T) -> R) -> R {
        pthread_mutex_lock(&mutex)
        defer { pthread_mutex_unlock(&mutex) }
        return body(&value)
    }
}

/// The daemon's time in these tests: a wait passes at once, by moving the clock on. The run ends
/// (a stop request, as SIGTERM would make) at the first wait where `until` holds, or when the
/// run's virtual time is over.
final class VirtualClock: DaemonClock, @unchecked Sendable {
    private(set) var elapsed = 0
    /// The wall clock at the start: 2026-01-01 00:00 UTC, a Thursday.
    var wallStart: Int64 = 1_767_225_600
    /// A jump of the wall clock (to `wall`, Unix seconds) once `at` milliseconds have passed.
    var jump: (at: Int, wall: Int64)?
    var end = Int.max
    var until: () -> Bool = { false }
    var stop: () -> Void = {}
    private var waits = 0

    func now() -> Int64 {
        if let jump, elapsed >= jump.at { return jump.wall + Int64((elapsed - jump.at) / 1000) }
        return wallStart + Int64(elapsed / 1000)
    }
    func monotonic() -> Int { elapsed }

    /// Moves the clock on by `milliseconds` (nil: to the end of the run); false once the run is over.
    @discardableResult
    func pass(_ milliseconds: Int?) -> Bool {
        waits += 1
        // A daemon that waits without end at no cost would be a bug: stop it rather than hang,
        // and fail the test that let it.
        if waits > 100_000 {
            Issue.record("the daemon waited 100,000 times without the run's time passing")
            stop()
            return false
        }
        if until() {
            stop()
            return false
        }
        let target = milliseconds.map { elapsed + max($0, 0) } ?? end
        if target >= end {
            elapsed = max(elapsed, end)
            stop()
            return false
        }
        elapsed = target
        return true
    }

    func wait(_ inputs: SharedInputs, milliseconds: Int?, until done: (Inputs) -> Bool) -> Inputs {
        let seen = inputs.current
        if done(seen) || seen.stopRequested { return seen }
        pass(milliseconds)
        return inputs.current
    }

    func sleep(milliseconds: Int) { elapsed += milliseconds }
}

/// A lock client that answers from a script and records what it was asked. It keeps no
/// semaphore and no queue of its own: what etcd and the library would answer is the test's to say.
final class ScriptedClient: SlotClient, @unchecked Sendable {
    let key = "coreos.com/updateengine/rebootlock/semaphore"
    let clock: VirtualClock
    /// One turn in the group's queue (a call of `acquire`): the places in line reported to the
    /// daemon (0: at the head, -1: still waiting), then the outcome, unless the daemon declines.
    struct Turn {
        enum Outcome { case taken, timedOut, fails(LocksmithFailure) }
        var reports: [Int] = []
        var outcome: Outcome
        static let taken = Turn(outcome: .taken)
        /// At the head, where the pre-lock hooks run, then taken.
        static let atHead = Turn(reports: [0], outcome: .taken)
        static func fails(_ failure: LocksmithFailure) -> Turn { Turn(outcome: .fails(failure)) }
    }
    let state = Locked(State())
    struct State {
        var lockAnswers: [LocksmithFailure?] = []
        var turns: [Turn] = []
        var locks: [String] = []
        var acquires: [String] = []
        var takes = 0
        var unlocks: [String] = []
        /// Answers to unlock, in turn (nil: given back); past them, given back.
        var unlockAnswers: [LocksmithFailure?] = []
        var seen: SemaphoreDocument?
        var reads = 0
    }

    init(clock: VirtualClock, lockAnswers: [LocksmithFailure?] = [], turns: [Turn] = [], seen: SemaphoreDocument? = nil) {
        self.clock = clock
        state.withLock { $0.lockAnswers = lockAnswers; $0.turns = turns; $0.seen = seen }
    }

    var locks: [String] { state.withLock { $0.locks } }
    var acquires: [String] { state.withLock { $0.acquires } }
    /// Turns that ended with the slot taken.
    var takes: Int { state.withLock { $0.takes } }
    var unlocks: [String] { state.withLock { $0.unlocks } }
    var reads: Int { state.withLock { $0.reads } }

    func lock(_ id: String) throws {
        let answer: LocksmithFailure? = state.withLock {
            $0.locks.append(id)
            // Past the script: the semaphore stays full.
            return $0.lockAnswers.isEmpty ? busy : $0.lockAnswers.removeFirst()
        }
        if let answer { throw answer }
    }

    /// A scripted ECANCELED is the daemon's own stop arriving during the request (the stop is
    /// requested, as the signal thread would, then the request fails).
    var onCancelledUnlock: () -> Void = {}

    func unlock(_ id: String) throws {
        let answer: LocksmithFailure? = state.withLock {
            $0.unlocks.append(id)
            return $0.unlockAnswers.isEmpty ? nil : $0.unlockAnswers.removeFirst()
        }
        if let answer {
            if answer.code == ECANCELED { onCancelledUnlock() }
            throw answer
        }
    }

    /// Nothing changes: the wait times out.
    func wait(milliseconds: Int) throws -> Bool {
        clock.pass(milliseconds)
        return false
    }

    /// The next turn of the script; past it, the turn never comes: a heartbeat (-1) every 20 s
    /// until the time limit.
    func acquire(_ id: String, milliseconds: Int?, progress: ((Int) -> Bool)?) throws -> Client.QueueOutcome {
        let turn: Turn? = state.withLock {
            $0.acquires.append(id)
            return $0.turns.isEmpty ? nil : $0.turns.removeFirst()
        }
        if let turn {
            for place in turn.reports where progress?(place) == false { return .declined }
            switch turn.outcome {
            case .taken:
                state.withLock { $0.takes += 1 }
                return .taken
            case .timedOut:
                clock.pass(milliseconds)
                return .timedOut
            case .fails(let failure): throw failure
            }
        }
        let deadline = milliseconds.map { clock.monotonic() + $0 }
        while true {
            let going = clock.pass(deadline.map { min(20_000, $0 - clock.monotonic()) } ?? 20_000)
            if progress?(-1) == false || !going { return .declined }
            if let deadline, clock.monotonic() >= deadline { return .timedOut }
        }
    }

    func lastSeen() throws -> SemaphoreDocument? { state.withLock { $0.seen } }
    func read() throws -> SemaphoreDocument? { state.withLock { $0.reads += 1; return $0.seen } }
    func cancel(_ cancelled: Bool) {}
}

let busy = LocksmithFailure(code: EBUSY, message: "semaphore is at 0")
let exists = LocksmithFailure(code: EEXIST, message: "holder exists")
let unreachable = LocksmithFailure(code: ECONNREFUSED, message: "no etcd endpoint answered")
let machine = "0123456789abcdef0123456789abcdef"

/// A daemon run on the test's thread, on a virtual clock, with recording seams.
final class Harness: @unchecked Sendable {
    let inputs = SharedInputs()
    let clock = VirtualClock()
    let daemon: Daemon
    private let log = Locked<[String]>([])
    let events = Locked<[String]>([])
    let reboots = Locked(0)
    /// The wall clock at each reboot request.
    let rebootTimes = Locked<[Int64]>([])

    /// What each phase's hooks answer, in turn (past the script: passed); the runs, in order.
    let hookAnswers = Locked<[HookPhase: [HookOutcome]]>([:])
    let hookRuns = Locked<[HookPhase]>([])
    let metricsText = Locked<String?>(nil)

    init(strategy: String = "etcd-lock", client: @escaping (VirtualClock) throws -> SlotClient, recordFails: Bool = false,
         rebootFails: Bool = false, rebootAnswerLost: Bool = false, window: (start: String, length: String)? = nil, broadcastDelay: Int64 = 0, reached: Int = 0,
         hooks: [HookPhase: [HookOutcome]] = [:], slotWait: String = "watch", extra: String = "") {
        let log = self.log, events = self.events, reboots = self.reboots, rebootTimes = self.rebootTimes, clock = self.clock
        let hookAnswers = self.hookAnswers, hookRuns = self.hookRuns, metricsText = self.metricsText
        hookAnswers.withLock { $0 = hooks }
        let world = DaemonWorld(
            makeClient: { _ in try client(clock) },
            reboot: {
                if rebootFails { throw LocksmithFailure(code: EACCES, message: "logind refused") }
                reboots.withLock { $0 += 1 }
                rebootTimes.withLock { $0.append(clock.now()) }
                if rebootAnswerLost { throw RebootAnswerLost("logind refused to reboot: Connection reset by peer") }
            },
            broadcast: { text in events.withLock { $0.append("broadcast " + text) }; return reached },
            setState: { state in events.withLock { $0.append("state " + state.rawValue) } },
            recordSlot: { held in
                if recordFails && held != nil { throw LocksmithFailure(code: EROFS, message: "read-only file system") }
                events.withLock { $0.append(held.map { "record " + $0.id } ?? "record none") }
            },
            clock: clock,
            log: { _, text, _ in log.withLock { $0.append(text) } },
            status: { _ in }, notify: { text in events.withLock { $0.append("notify " + text) } },
            backoff: { _ in 20 },
            runHooks: { phase, _ in
                hookRuns.withLock { $0.append(phase) }
                return hookAnswers.withLock { answers in
                    guard var list = answers[phase], !list.isEmpty else { return .passed }
                    let first = list.removeFirst()
                    answers[phase] = list
                    return first
                }
            },
            hasHooks: { phase in hooks[phase] != nil },
            writeMetrics: { text in metricsText.withLock { $0 = text } })
        // The daemon's settings as the library reads them from an update.conf.
        let text = "REBOOT_STRATEGY=\(strategy)\nLOCKSMITHD_REBOOT_BROADCAST_DELAY=\(broadcastDelay / 1_000_000)ms\nLOCKSMITHD_SLOT_WAIT=\(slotWait)\n"
            + (window.map { "REBOOT_WINDOW_START=\($0.start)\nREBOOT_WINDOW_LENGTH=\($0.length)\nLOCKSMITHD_REBOOT_WINDOW_TZ=UTC\n" } ?? "") + extra
        let settings = try! DaemonSettings(Configuration(parsing: text, origin: "test"), root: "/")
        daemon = Daemon(settings: settings, world: world, inputs: inputs, machineID: machine)
    }

    var rebootCount: Int { reboots.withLock { $0 } }
    var logged: [String] { log.withLock { $0 } }
    var recorded: [String] { events.withLock { $0.filter { $0.hasPrefix("record") } } }
    var states: [String] { events.withLock { $0.filter { $0.hasPrefix("state") } } }

    /// Runs the daemon (a reboot needed from the start, unless said otherwise) until `until` holds at one of its
    /// waits or `seconds` of virtual time pass; then it is stopped, and ends.
    func run(for seconds: Double, rebootNeeded: Bool = true, until: @escaping () -> Bool = { false }) {
        inputs.update { $0.rebootNeeded = rebootNeeded }
        clock.end = clock.monotonic() + Int(seconds * 1000)
        clock.until = until
        clock.stop = { [weak daemon] in daemon?.requestStop() }
        _ = daemon.run()
    }
}

/// REBOOT_STRATEGY=fleetlock: the same rules, without reading a semaphore (a FleetLock server has none).
@Suite struct ThroughAFleetLockServer {
    static let settings = "LOCKSMITHD_FLEETLOCK_URL=http://fleetlock.example/\n"

    @Test func refusalsArePolledAndThePreLockHooksRunBeforeEachAttempt() {
        let box = ClientBox { ScriptedClient(clock: $0, lockAnswers: [busy, busy, nil]) }
        let h = Harness(strategy: "fleetlock", client: { box.get($0) }, hooks: [.preLock: []], slotWait: "watch",
                        extra: ThroughAFleetLockServer.settings)
        let client = box.get(h.clock)
        #expect(h.daemon.settings.slotWait == .poll)
        h.run(for: 3) { h.rebootCount > 0 }
        #expect(h.rebootCount == 1)
        #expect(client.reads == 0, "a FleetLock server is never read")
        #expect(client.locks.count == 3)
        #expect(h.hookRuns.withLock { $0 }.filter { $0 == .preLock }.count == 3)
        #expect(h.recorded == ["record \(machine)"])
    }

    @Test func aLostAnswerIsRecordedAndARefusalAfterItClearsTheRecord() {
        let h = Harness(strategy: "fleetlock", client: { ScriptedClient(clock: $0, lockAnswers: [unreachable, busy]) },
                        extra: ThroughAFleetLockServer.settings)
        h.run(for: 0.5)
        #expect(h.rebootCount == 0)
        #expect(h.recorded.prefix(2) == ["record \(machine)", "record none"])
    }
}

/// One client per harness, made on the harness's clock when the daemon first asks.
final class ClientBox: @unchecked Sendable {
    var client: ScriptedClient?
    let make: (VirtualClock) -> ScriptedClient
    init(_ make: @escaping (VirtualClock) -> ScriptedClient) { self.make = make }
    func get(_ clock: VirtualClock) -> ScriptedClient {
        if let client { return client }
        client = make(clock)
        return client!
    }
}

/// A harness with a scripted client (`turns` in the queue, `lockAnswers` when polling).
func harness(lockAnswers: [LocksmithFailure?] = [], turns: [ScriptedClient.Turn] = [], seen: SemaphoreDocument? = nil,
             recordFails: Bool = false, rebootFails: Bool = false, rebootAnswerLost: Bool = false,
             window: (start: String, length: String)? = nil, broadcastDelay: Int64 = 0, reached: Int = 0,
             hooks: [HookPhase: [HookOutcome]] = [:], slotWait: String = "watch") -> (Harness, ScriptedClient) {
    let box = ClientBox { ScriptedClient(clock: $0, lockAnswers: lockAnswers, turns: turns, seen: seen) }
    let h = Harness(client: { box.get($0) }, recordFails: recordFails, rebootFails: rebootFails, rebootAnswerLost: rebootAnswerLost,
                    window: window, broadcastDelay: broadcastDelay, reached: reached, hooks: hooks, slotWait: slotWait)
    return (h, box.get(h.clock))
}

@Suite struct NoRebootWithoutTheLock {
    @Test func aClientThatCannotBeMadeIsRetriedNeverHeld() {
        let h = Harness(client: { _ in throw LocksmithFailure(code: ELIBACC, message: "cannot load libcurl.so.4") })
        h.run(for: 0.5)
        #expect(h.rebootCount == 0)
        #expect(h.logged.contains { $0.contains("cannot make the etcd client: cannot load libcurl.so.4") })
        #expect(h.recorded.isEmpty)
    }

    @Test func aFullSemaphoreIsWaitedForInTheQueue() {
        let (h, client) = harness()
        h.run(for: 3600)
        #expect(h.rebootCount == 0)
        #expect(client.acquires == [machine], "one turn, waited for an hour")
        #expect(h.recorded.isEmpty)
    }

    @Test func aFullSemaphoreIsPolled() {
        let (h, client) = harness(lockAnswers: [busy, busy, busy], slotWait: "poll")
        h.run(for: 0.3)
        #expect(h.rebootCount == 0)
        #expect(client.locks.count >= 2)
    }

    @Test func aSlotTakenIsRecordedBeforeTheReboot() {
        let (h, _) = harness(turns: [.taken])
        h.run(for: 3) { h.rebootCount > 0 }
        #expect(h.rebootCount == 1)
        #expect(h.recorded == ["record \(machine)"])
        #expect(h.states == ["state running", "state reboot-planned", "state rebooting"])
    }

    @Test func runningIsRecordedBeforeReadyAndTheUpdateIsWaitedFor() {
        let (h, _) = harness()
        h.run(for: 3600, rebootNeeded: false)
        #expect(h.events.withLock { $0.prefix(2) } == ["state running", "notify READY=1"])
        #expect(h.logged.prefix(3) == ["state running", "waiting for an update", "stopped"])
        #expect(h.events.withLock { $0.suffix(1) } == ["notify STOPPING=1"])
    }

    @Test func aSlotThatCannotBeRecordedIsGivenBack() {
        let (h, client) = harness(turns: [.taken], recordFails: true)
        h.run(for: 0.5)
        #expect(h.rebootCount == 0)
        #expect(client.unlocks.first == machine)
        #expect(h.logged.contains { $0.contains("took a slot but cannot record it, so gave it back") })
    }

    @Test func aRefusedRebootGivesTheSlotBack() {
        let (h, client) = harness(turns: [.taken], rebootFails: true)
        h.run(for: 1) { !client.unlocks.isEmpty }
        #expect(client.unlocks == [machine])
        #expect(h.recorded.suffix(1) == ["record none"])
        #expect(h.states.suffix(1) == ["state running"])
    }
}

@Suite struct OnlyItsOwnSlot {
    @Test func holderExistsWithoutALostAnswerIsSomeoneElses() {
        let (h, client) = harness(turns: [.fails(exists), .fails(exists), .fails(exists)])
        h.run(for: 3600)
        #expect(h.rebootCount == 0)
        #expect(client.acquires.count == 4, "waited for it three times, then in line")
        #expect(client.unlocks.isEmpty, "never gives back a slot it did not take")
    }

    @Test func holderExistsAfterALostAnswerIsOurs() {
        let (h, _) = harness(turns: [.fails(unreachable), .fails(exists)])
        h.run(for: 3) { h.rebootCount > 0 }
        #expect(h.rebootCount == 1)
        // Recorded as perhaps held at the lost answer, then as held.
        #expect(h.recorded == ["record \(machine)", "record \(machine)"])
    }

    @Test func aFullSemaphoreListingUsAfterALostAnswerIsOurs() {
        let (h, _) = harness(lockAnswers: [unreachable, busy],
                             seen: try! SemaphoreDocument(parsing: #"{"semaphore":0,"max":1,"holders":["\#(machine)"]}"#), slotWait: "poll")
        h.run(for: 3) { h.rebootCount > 0 }
        #expect(h.rebootCount == 1)
    }

    @Test func aLostAnswerThatDidNotLandIsRecordedAsNone() {
        let (h, _) = harness(lockAnswers: [unreachable, busy, busy], slotWait: "poll")
        h.run(for: 0.4)
        #expect(h.rebootCount == 0)
        #expect(h.recorded.prefix(2) == ["record \(machine)", "record none"])
    }

    @Test func theStaleSlotIsGivenBackBeforeLocking() {
        let (h, client) = harness(turns: [.taken])
        h.daemon.staleSlot = (client.key, machine)
        h.run(for: 3) { h.rebootCount > 0 }
        #expect(client.unlocks == [machine])
        #expect(client.acquires == [machine])
        #expect(h.recorded == ["record none", "record \(machine)"])
    }

    @Test func theMachinesOwnSlotIsGivenBackTooBeforeLocking() {
        // Issue 25: `locksmithctl lock` by hand, then a restart: the machine id's slot goes back
        // even though the record names another (or none).
        let (h, client) = harness(turns: [.taken])
        h.daemon.staleSlot = (client.key, "job")
        h.daemon.machineSlot = (client.key, machine)
        h.run(for: 3) { h.rebootCount > 0 }
        #expect(client.unlocks == [machine, "job"])
        #expect(client.acquires == [machine])
    }

    @Test func aRebootWhoseAnswerWasLostKeepsTheSlot() {
        // Issue 27: logind's shutdown closed the bus before its answer to Reboot came, and the
        // daemon took that for a refusal: it gave the slot back while its machine went down, and
        // the next machine took it. A lost answer keeps the slot, as an answer does; the stop
        // that comes with the shutdown gives nothing back. Still up a minute later, it asks again.
        let (h, client) = harness(turns: [.taken], rebootAnswerLost: true)
        h.run(for: 150)
        #expect(h.rebootCount == 3, "at 0, 60 and 120 s")
        #expect(h.logged.filter { $0.contains("answer to the reboot request was lost") }.count == 1)
        #expect(client.unlocks.isEmpty, "the slot was given back")
        #expect(h.recorded == ["record \(machine)"])
        #expect(h.states.last == "state rebooting")
    }

    @Test func aLogindThatNeverAnswersDoesNotHoldTheSlotForEver() {
        // Every answer lost, and the machine still up ten minutes later: no reboot is under way.
        // The slot goes back to the group, and the update is tried again later.
        let (h, client) = harness(turns: [.taken, .taken], rebootAnswerLost: true)
        h.run(for: 11 * 60) { !client.unlocks.isEmpty }
        #expect(h.rebootCount == 11, "at 0, 60, ... 600 s")
        #expect(client.unlocks == [machine])
        #expect(h.recorded == ["record \(machine)", "record none"])
        #expect(h.logged.contains { $0.hasPrefix("logind's answer to the reboot request was lost 11 times") })
    }

    @Test func stoppingAfterTakingASlotGivesItBack() {
        // A logged-in user makes the daemon wait a minute before the reboot; it is stopped first.
        let (h, client) = harness(turns: [.taken], broadcastDelay: 60_000_000_000, reached: 1)
        h.run(for: 3) { h.recorded.contains("record \(machine)") }
        #expect(h.rebootCount == 0)
        #expect(client.unlocks == [machine])
        #expect(h.recorded == ["record \(machine)", "record none"])
    }

    @Test func theStaleTargetFollowsTheRecord() {
        let log: (LogLevel, String, [String]) -> Void = { _, _, _ in }
        let defaultKey = "coreos.com/updateengine/rebootlock/semaphore"
        #expect(Daemon.staleTarget({ .missing }, group: "", machineID: machine, log: log)! == (defaultKey, machine))
        #expect(Daemon.staleTarget({ .notHeld }, group: "", machineID: machine, log: log) == nil)
        #expect(Daemon.staleTarget({ .held(key: "k", id: "other") }, group: "", machineID: machine, log: log)! == ("k", "other"))
        #expect(Daemon.machineTarget(group: "", machineID: machine, besides: nil)! == (defaultKey, machine))
        #expect(Daemon.machineTarget(group: "", machineID: machine, besides: (defaultKey, machine)) == nil)
        #expect(Daemon.machineTarget(group: "", machineID: machine, besides: ("k", machine))! == (defaultKey, machine))
        #expect(Daemon.machineTarget(group: "", machineID: machine, besides: (defaultKey, "other"))! == (defaultKey, machine))
        var warned = false
        #expect(Daemon.staleTarget({ throw LocksmithFailure(code: EBADMSG, message: "not a record") }, group: "", machineID: machine,
                                   log: { _, _, _ in warned = true }) == nil)
        #expect(warned)
    }
}

@Suite struct Words {
    @Test(arguments: [(300_000, "System reboot in 5 minutes!"), (1_000, "System reboot in 1 second!"),
                      (90_000, "System reboot in 1 minute 30 seconds!"), (3_600_000, "System reboot in 1 hour!"),
                      (0, "System reboot now!"), (1, "System reboot in 1 second!")])
    func theWarningSaysTheRealDelay(milliseconds: Int, text: String) {
        #expect(Daemon.warning(delayMilliseconds: milliseconds) == text)
    }

    @Test func waitsAsPeopleSayThem() {
        #expect(Daemon.human(3 * 3600 + 12 * 60) == "3h12m")
        #expect(Daemon.human(45 * 60) == "45m")
        #expect(Daemon.human(30) == "30s")
    }

    @Test func retryStatusNamesWhatStandsInTheWay() {
        #expect(Daemon.retryStatus(LocksmithFailure(code: EBADMSG, message: ""), "take a slot").contains("not valid"))
        #expect(Daemon.retryStatus(LocksmithFailure(code: ELIBACC, message: ""), "take a slot").contains("libcurl"))
        #expect(Daemon.retryStatus(unreachable, "take a slot") == "cannot reach etcd to take a slot; retrying")
    }
}

let notNow = HookOutcome.failed(hook: "10-check", reason: "exit status 1")

@Suite struct Hooks {
    @Test func aFailingPreLockHookTakesNoSlotUntilItPasses() {
        let (h, client) = harness(turns: [.atHead, .atHead, .atHead], hooks: [.preLock: [notNow, notNow]])
        h.run(for: 3) { h.rebootCount > 0 }
        #expect(h.hookRuns.withLock { $0.prefix(3) } == [.preLock, .preLock, .preLock])
        #expect(client.acquires.count == 3, "a declined turn leaves the queue; the next joins again")
        #expect(client.takes == 1, "one slot, after the hooks passed")
        #expect(h.rebootCount == 1)
    }

    @Test func preLockHooksDoNotRunWhileNoSlotIsFree() {
        let full = try! SemaphoreDocument(parsing: #"{"semaphore":0,"max":1,"holders":["other"]}"#)
        let (h, client) = harness(turns: [ScriptedClient.Turn(reports: [1, -1], outcome: .timedOut)], seen: full, hooks: [.preLock: []])
        h.run(for: 600)
        #expect(h.hookRuns.withLock { $0 }.isEmpty)
        #expect(client.takes == 0)
        #expect(h.logged.contains("waiting for a slot: 2nd in line"))
        #expect(h.logged.contains("waiting for a slot: 0 of 1 free, held by other"))
    }

    @Test func pollingReadsTheSemaphoreBeforeThePreLockHooks() {
        let full = try! SemaphoreDocument(parsing: #"{"semaphore":0,"max":1,"holders":["other"]}"#)
        let (h, client) = harness(seen: full, hooks: [.preLock: []], slotWait: "poll")
        h.run(for: 0.4)
        #expect(h.hookRuns.withLock { $0 }.isEmpty)
        #expect(client.locks.isEmpty)
        #expect(client.reads >= 2, "the semaphore is read again after each wait")
    }

    @Test func withoutEtcdAFailingPreLockHookHoldsTheReboot() {
        let h = Harness(strategy: "reboot", client: { ScriptedClient(clock: $0) }, hooks: [.preLock: [notNow]])
        h.run(for: 3) { h.rebootCount > 0 }
        #expect(h.hookRuns.withLock { $0 } == [.preLock, .preLock, .preReboot])
        #expect(h.rebootCount == 1)
    }

    @Test func aFailingPreRebootHookGivesTheSlotBack() {
        let (h, client) = harness(turns: [.taken, .taken], hooks: [.preReboot: [notNow]])
        h.run(for: 3) { h.rebootCount > 0 }
        #expect(client.unlocks == [machine])
        #expect(client.takes == 2)
        #expect(h.rebootCount == 1)
        #expect(h.recorded == ["record \(machine)", "record none", "record \(machine)"])
        #expect(h.logged.contains { $0.hasPrefix("pre-reboot hook 10-check failed (exit status 1): not rebooting; giving the slot back and trying again in 0s") })
    }

    @Test func aStopDuringTheGiveBackAfterAFailedHookDoesNotDelayIt() {
        // systemctl stop during a pre-reboot hook: the hook fails on the same SIGTERM, and the
        // stop cancels the give-back under way. It is made again at once, not after backoff.
        let (h, client) = harness(turns: [.taken], hooks: [.preReboot: [notNow]])
        client.state.withLock { $0.unlockAnswers = [LocksmithFailure(code: ECANCELED, message: "cancelled")] }
        client.onCancelledUnlock = { [weak h] in h?.clock.stop() }
        h.run(for: 3)
        #expect(client.unlocks == [machine, machine])
        #expect(h.rebootCount == 0)
        #expect(h.recorded == ["record \(machine)", "record none"])
        #expect(!h.logged.contains { $0.hasPrefix("cannot give the reboot slot back") })
        #expect(h.clock.monotonic() < 200)
    }

    @Test func theSlotFromBeforeTheRebootWaitsForThePostRebootHooks() {
        let (h, client) = harness(hooks: [.postReboot: [notNow, notNow, notNow]])
        h.daemon.staleSlot = (client.key, machine)
        h.run(for: 3) { !client.unlocks.isEmpty }
        #expect(h.hookRuns.withLock { $0.prefix(4) } == [.postReboot, .postReboot, .postReboot, .postReboot])
        #expect(client.unlocks == [machine], "given back once, after the fourth run passed")
        #expect(h.logged.contains { $0.contains("post-reboot hook 10-check failed (exit status 1): keeping the reboot slot") })
        #expect(h.logged.filter { $0.contains("keeping the reboot slot") }.count == 1, "said once, not at every retry")
        let text = h.metricsText.withLock { $0 } ?? ""
        #expect(text.contains("locksmithd_hook_failures_total{phase=\"post-reboot\"} 3\n"))
        #expect(text.contains("locksmithd_slot_held 0\n"))
    }

    @Test func withoutPostRebootHooksNothingIsHeldBack() {
        let (h, client) = harness(turns: [.taken])
        h.daemon.staleSlot = (client.key, machine)
        h.run(for: 3) { h.rebootCount > 0 }
        #expect(h.hookRuns.withLock { $0 } == [.preReboot])
        #expect(client.unlocks == [machine])
    }
}

/// The reboot window, on the virtual wall clock (2026-01-01 00:00 UTC at the start).
@Suite struct TheWindow {
    @Test func theRebootWaitsForTheWindowToOpen() {
        let (h, client) = harness(turns: [.taken], window: ("02:00", "1h"))
        h.run(for: 4 * 3600) { h.rebootCount > 0 }
        #expect(h.rebootCount == 1)
        let at = h.rebootTimes.withLock { $0 }.first ?? 0
        #expect(at >= h.clock.wallStart + 7200 && at < h.clock.wallStart + 7200 + 300, "within 5 minutes of the opening")
        #expect(h.logged.contains("waiting for reboot window 02:00 UTC time, opens in 2h0m"))
        #expect(client.acquires == [machine], "no slot asked for before the window opened")
    }

    @Test func aSlotWaitEndsWhenTheWindowCloses() {
        // The queue's wait is limited to what is left of the window (and a second).
        let (h, client) = harness(window: ("00:00", "30m"))
        h.run(for: 3600)
        #expect(h.rebootCount == 0)
        #expect(client.acquires == [machine])
        #expect(h.logged.contains("the reboot window closed before a slot was free"))
        #expect(h.states == ["state running", "state reboot-planned", "state running"])
    }

    @Test func aClockErrorNeverMeansOpen() {
        // The wall clock jumps past the year 9999 while the daemon polls for a slot: the window
        // cannot be placed, and that is a closed window, in the slot wait as everywhere.
        let (h, client) = harness(lockAnswers: [busy], window: ("00:00", "1h"), slotWait: "poll")
        h.clock.jump = (at: 10, wall: 253_402_300_800)
        h.run(for: 3600)
        #expect(h.rebootCount == 0)
        #expect(client.locks == [machine, machine], "the lock that was under way is the last")
        #expect(h.logged.contains("the reboot window closed before a slot was free"))
        #expect(h.logged.contains { $0.hasPrefix("cannot place the reboot window in the current time") })
    }
}

@Suite struct MetricsText {
    @Test func everyMetricWithHelpAndTypeAndEscapedLabels() {
        var m = Metrics()
        m.state = .rebootPlanned
        m.stateSince = 1_700_000_000
        m.group = "a\"b\\c\nd"
        m.strategy = "etcd-lock"
        m.hookFailures[.preLock] = 2
        m.freeSlots = 1
        m.maxSlots = 3
        let text = m.render()
        #expect(text.contains("locksmithd_info{strategy=\"etcd-lock\",group=\"a\\\"b\\\\c\\nd\"} 1\n"))
        #expect(text.contains("locksmithd_state{state=\"reboot-planned\"} 1\nlocksmithd_state{state=\"rebooting\"} 0\n"))
        #expect(text.contains("locksmithd_state_since_seconds 1700000000\n"))
        #expect(text.contains("locksmithd_hook_failures_total{phase=\"pre-lock\"} 2\nlocksmithd_hook_failures_total{phase=\"pre-reboot\"} 0\n"))
        #expect(text.contains("locksmithd_group_free_slots{group="))
        // Every sample has its HELP and TYPE, and nothing but samples and comments is written.
        let lines = text.split(separator: "\n")
        let names = Set(lines.filter { !$0.hasPrefix("#") }.map { $0.prefix(while: { $0 != "{" && $0 != " " }) })
        for name in names {
            #expect(lines.contains { $0.hasPrefix("# HELP \(name) ") })
            #expect(lines.contains { $0.hasPrefix("# TYPE \(name) ") })
        }
        var none = Metrics()
        none.freeSlots = nil
        #expect(!none.render().contains("group_free_slots"), "not before the semaphore was seen")
    }
}
