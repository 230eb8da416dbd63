// The daemon's rules, through its seams: a lock client that answers what each test says, a
// reboot that is only counted, a state file and a slot record kept in memory, and the real
// inputs and clock. The end-to-end tests (Tests/cli/test_locksmithd.py, test_daemon_attacks.py)
// run the real program against etcd and D-Bus; these pin the decisions one by one.
import Glibc
import Locksmith
import LocksmithDaemon
import Testing

/// A value shared between the test and the daemon's thread.
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

/// A lock client whose answers come from a script; it records what it was asked.
final class ScriptedClient: SlotClient, @unchecked Sendable {
    let key = "coreos.com/updateengine/rebootlock/semaphore"
    private let state = Locked(State())
    struct State {
        var lockAnswers: [LocksmithFailure?] = []
        var locks: [String] = []
        var unlocks: [String] = []
        var seen: SemaphoreDocument?
        var unlockFailure: LocksmithFailure?
        var reads = 0
    }

    init(lockAnswers: [LocksmithFailure?] = [], seen: SemaphoreDocument? = nil) {
        state.withLock { $0.lockAnswers = lockAnswers; $0.seen = seen }
    }

    var locks: [String] { state.withLock { $0.locks } }
    var unlocks: [String] { state.withLock { $0.unlocks } }
    func answer(_ failure: LocksmithFailure?) { state.withLock { $0.lockAnswers.append(failure) } }

    func lock(_ id: String) throws {
        let answer: LocksmithFailure? = state.withLock {
            $0.locks.append(id)
            // Past the script: the semaphore stays full.
            return $0.lockAnswers.isEmpty ? busy : $0.lockAnswers.removeFirst()
        }
        if let answer { throw answer }
    }

    func unlock(_ id: String) throws {
        let failure: LocksmithFailure? = state.withLock { $0.unlocks.append(id); return $0.unlockFailure }
        if let failure { throw failure }
    }

    func wait(milliseconds: Int) throws -> Bool {
        usleep(UInt32(min(milliseconds, 20)) * 1000)
        return true
    }

    /// The queue as the library runs it, on the scripted answers: at the head (always, here),
    /// progress(0) before each attempt that may take a slot (not while the semaphore is seen
    /// full), then the lock; a busy answer waits a moment.
    func acquire(_ id: String, milliseconds: Int?, progress: ((Int) -> Bool)?) throws -> Client.QueueOutcome {
        let deadline = milliseconds.map { monotonicMilliseconds() + $0 }
        while true {
            let seen = state.withLock { $0.seen }
            let full = seen.map { $0.available <= 0 && !$0.holders.contains(id) } ?? false
            if !full {
                if progress?(0) == false { return .declined }
                do {
                    try lock(id)
                    return .taken
                } catch let failure as LocksmithFailure where failure.code == EBUSY {
                    if seen?.holders.contains(id) == true { throw exists }
                }
            }
            if progress?(-1) == false { return .declined }  // still waiting
            if let deadline, monotonicMilliseconds() >= deadline { return .timedOut }
            usleep(20_000)
        }
    }

    func lastSeen() throws -> SemaphoreDocument? { state.withLock { $0.seen } }
    func read() throws -> SemaphoreDocument? { state.withLock { $0.reads += 1; return $0.seen } }
    var reads: Int { state.withLock { $0.reads } }
    func cancel(_ cancelled: Bool) {}
}

let busy = LocksmithFailure(code: EBUSY, message: "semaphore is at 0")
let exists = LocksmithFailure(code: EEXIST, message: "holder exists")
let unreachable = LocksmithFailure(code: ECONNREFUSED, message: "no etcd endpoint answered")
let machine = "0123456789abcdef0123456789abcdef"

/// A daemon run on its own thread with recording seams.
final class Harness: @unchecked Sendable {
    let inputs = SharedInputs()
    let daemon: Daemon
    private let log = Locked<[String]>([])
    private let events = Locked<[String]>([])
    let reboots = Locked(0)
    let finished = Locked(false)

    /// What each phase's hooks answer, in turn (past the script: passed); the runs, in order.
    let hookAnswers = Locked<[HookPhase: [HookOutcome]]>([:])
    let hookRuns = Locked<[HookPhase]>([])
    let metricsText = Locked<String?>(nil)

    init(strategy: String = "etcd-lock", client: @escaping () throws -> SlotClient, recordFails: Bool = false,
         rebootFails: Bool = false, rebootAnswerLost: Bool = false, window: (start: String, length: String)? = nil, broadcastDelay: Int64 = 0, reached: Int = 0,
         hooks: [HookPhase: [HookOutcome]] = [:], slotWait: String = "watch", extra: String = "") {
        let log = self.log, events = self.events, reboots = self.reboots
        let hookAnswers = self.hookAnswers, hookRuns = self.hookRuns, metricsText = self.metricsText
        hookAnswers.withLock { $0 = hooks }
        let world = DaemonWorld(
            makeClient: { _ in try client() },
            reboot: {
                if rebootFails { throw LocksmithFailure(code: EACCES, message: "logind refused") }
                reboots.withLock { $0 += 1 }
                if rebootAnswerLost { throw RebootAnswerLost("logind refused to reboot: Connection reset by peer") }
            },
            broadcast: { text in events.withLock { $0.append("broadcast " + text) }; return reached },
            setState: { state in events.withLock { $0.append("state " + state.rawValue) } },
            recordSlot: { held in
                if recordFails && held != nil { throw LocksmithFailure(code: EROFS, message: "read-only file system") }
                events.withLock { $0.append(held.map { "record " + $0.id } ?? "record none") }
            },
            now: { Int64(time(nil)) },
            log: { _, text, _ in log.withLock { $0.append(text) } },
            status: { _ in }, notify: { _ in },
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
            + (window.map { "REBOOT_WINDOW_START=\($0.start)\nREBOOT_WINDOW_LENGTH=\($0.length)\n" } ?? "") + extra
        let settings = try! DaemonSettings(Configuration(parsing: text, origin: "test"), root: "/")
        daemon = Daemon(settings: settings, world: world, inputs: inputs, machineID: machine)
    }

    var rebootCount: Int { reboots.withLock { $0 } }
    var logged: [String] { log.withLock { $0 } }
    var recorded: [String] { events.withLock { $0.filter { $0.hasPrefix("record") } } }
    var states: [String] { events.withLock { $0.filter { $0.hasPrefix("state") } } }

    /// Runs the daemon with a reboot needed from the start, until `until` holds or `seconds` pass,
    /// then stops it and waits for it to end.
    func run(for seconds: Double, until: @escaping () -> Bool = { false }) {
        inputs.update { $0.rebootNeeded = true }
        let box = Unmanaged.passRetained(self)
        var thread = pthread_t()
        pthread_create(&thread, nil, { p in
            let h = Unmanaged<Harness>.fromOpaque(p!).takeRetainedValue()
            _ = h.daemon.run()
            h.finished.withLock { $0 = true }
            return nil
        }, box.toOpaque())
        let deadline = monotonicMilliseconds() + Int(seconds * 1000)
        while monotonicMilliseconds() < deadline && !until() && !finished.withLock({ $0 }) { usleep(10_000) }
        daemon.requestStop()
        pthread_join(thread, nil)
    }
}

/// REBOOT_STRATEGY=fleetlock: the same rules, without reading a semaphore (a FleetLock server has none).
@Suite struct ThroughAFleetLockServer {
    static let settings = "LOCKSMITHD_FLEETLOCK_URL=http://fleetlock.example/\n"

    @Test func refusalsArePolledAndThePreLockHooksRunBeforeEachAttempt() {
        let client = ScriptedClient(lockAnswers: [busy, busy, nil])
        let h = Harness(strategy: "fleetlock", client: { client }, hooks: [.preLock: []], slotWait: "watch", extra: ThroughAFleetLockServer.settings)
        #expect(h.daemon.settings.slotWait == "poll")
        h.run(for: 3) { h.rebootCount > 0 }
        #expect(h.rebootCount == 1)
        #expect(client.reads == 0, "a FleetLock server is never read")
        #expect(client.locks.count == 3)
        #expect(h.hookRuns.withLock { $0 }.filter { $0 == .preLock }.count == 3)
        #expect(h.recorded == ["record \(machine)"])
    }

    @Test func aLostAnswerIsRecordedAndARefusalAfterItClearsTheRecord() {
        let client = ScriptedClient(lockAnswers: [unreachable, busy])
        let h = Harness(strategy: "fleetlock", client: { client }, extra: ThroughAFleetLockServer.settings)
        h.run(for: 0.5)
        #expect(h.rebootCount == 0)
        #expect(h.recorded.prefix(2) == ["record \(machine)", "record none"])
    }
}

@Suite struct NoRebootWithoutTheLock {
    @Test func aClientThatCannotBeMadeIsRetriedNeverHeld() {
        let h = Harness(client: { throw LocksmithFailure(code: ELIBACC, message: "cannot load libcurl.so.4") })
        h.run(for: 0.5)
        #expect(h.rebootCount == 0)
        #expect(h.logged.contains { $0.contains("cannot make the etcd client: cannot load libcurl.so.4") })
        #expect(h.recorded.isEmpty)
    }

    @Test func aFullSemaphoreIsWaitedFor() {
        let client = ScriptedClient(lockAnswers: [busy, busy, busy])
        let h = Harness(client: { client })
        h.run(for: 0.3)
        #expect(h.rebootCount == 0)
        #expect(client.locks.count >= 2)
    }

    @Test func aSlotTakenIsRecordedBeforeTheReboot() {
        let client = ScriptedClient(lockAnswers: [busy, nil])
        let h = Harness(client: { client })
        h.run(for: 3) { h.rebootCount > 0 }
        #expect(h.rebootCount == 1)
        #expect(h.recorded == ["record \(machine)"])
        #expect(h.states.suffix(1) == ["state rebooting"])
    }

    @Test func aSlotThatCannotBeRecordedIsGivenBack() {
        let client = ScriptedClient(lockAnswers: [nil, busy])
        let h = Harness(client: { client }, recordFails: true)
        h.run(for: 0.5)
        #expect(h.rebootCount == 0)
        #expect(client.unlocks.first == machine)
        #expect(h.logged.contains { $0.contains("took a slot but cannot record it, so gave it back") })
    }

    @Test func aRefusedRebootGivesTheSlotBack() {
        let client = ScriptedClient(lockAnswers: [nil, busy])
        let h = Harness(client: { client }, rebootFails: true)
        h.run(for: 1) { !client.unlocks.isEmpty }
        #expect(client.unlocks == [machine])
        #expect(h.recorded.suffix(1) == ["record none"])
    }
}

@Suite struct OnlyItsOwnSlot {
    @Test func holderExistsWithoutALostAnswerIsSomeoneElses() {
        let client = ScriptedClient(lockAnswers: [exists, exists, exists])
        let h = Harness(client: { client })
        h.run(for: 0.3)
        #expect(h.rebootCount == 0)
        #expect(client.unlocks.isEmpty, "never gives back a slot it did not take")
    }

    @Test func holderExistsAfterALostAnswerIsOurs() {
        let client = ScriptedClient(lockAnswers: [unreachable, exists])
        let h = Harness(client: { client })
        h.run(for: 3) { h.rebootCount > 0 }
        #expect(h.rebootCount == 1)
        // Recorded as perhaps held at the lost answer, then as held.
        #expect(h.recorded == ["record \(machine)", "record \(machine)"])
    }

    @Test func aFullSemaphoreListingUsAfterALostAnswerIsOurs() {
        let client = ScriptedClient(lockAnswers: [unreachable, busy],
                                    seen: try! SemaphoreDocument(parsing: #"{"semaphore":0,"max":1,"holders":["\#(machine)"]}"#))
        let h = Harness(client: { client })
        h.run(for: 3) { h.rebootCount > 0 }
        #expect(h.rebootCount == 1)
    }

    @Test func aLostAnswerThatDidNotLandIsRecordedAsNone() {
        let client = ScriptedClient(lockAnswers: [unreachable, busy, busy])
        let h = Harness(client: { client })
        h.run(for: 0.4)
        #expect(h.rebootCount == 0)
        #expect(h.recorded.prefix(2) == ["record \(machine)", "record none"])
    }

    @Test func theStaleSlotIsGivenBackBeforeLocking() {
        let client = ScriptedClient(lockAnswers: [nil])
        let h = Harness(client: { client })
        h.daemon.staleSlot = (client.key, machine)
        h.run(for: 3) { h.rebootCount > 0 }
        #expect(client.unlocks == [machine])
        #expect(client.locks == [machine])
        #expect(h.recorded == ["record none", "record \(machine)"])
    }

    @Test func theMachinesOwnSlotIsGivenBackTooBeforeLocking() {
        // Issue 25: `locksmithctl lock` by hand, then a restart: the machine id's slot goes back
        // even though the record names another (or none).
        let client = ScriptedClient(lockAnswers: [nil])
        let h = Harness(client: { client })
        h.daemon.staleSlot = (client.key, "job")
        h.daemon.machineSlot = (client.key, machine)
        h.run(for: 3) { h.rebootCount > 0 }
        #expect(client.unlocks == [machine, "job"])
        #expect(client.locks == [machine])
    }

    @Test func aRebootWhoseAnswerWasLostKeepsTheSlot() {
        // Issue 27: logind's shutdown closed the bus before its answer to Reboot came, and the
        // daemon took that for a refusal: it gave the slot back while its machine went down, and
        // the next machine took it. A lost answer keeps the slot, as an answer does; the stop
        // that comes with the shutdown gives nothing back.
        let client = ScriptedClient(lockAnswers: [nil])
        let h = Harness(client: { client }, rebootAnswerLost: true)
        h.run(for: 3) { h.rebootCount > 0 && h.logged.contains { $0.contains("answer to the reboot request was lost") } }
        #expect(h.rebootCount == 1)
        #expect(client.unlocks.isEmpty, "the slot was given back")
        #expect(h.recorded == ["record \(machine)"])
        #expect(h.states.last == "state rebooting")
    }

    @Test func stoppingAfterTakingASlotGivesItBack() {
        // A logged-in user makes the daemon wait a minute before the reboot; it is stopped first.
        let client = ScriptedClient(lockAnswers: [nil])
        let h = Harness(client: { client }, broadcastDelay: 60_000_000_000, reached: 1)
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
        let client = ScriptedClient(lockAnswers: [nil])
        let h = Harness(client: { client }, hooks: [.preLock: [notNow, notNow]])
        h.run(for: 3) { h.rebootCount > 0 }
        #expect(h.hookRuns.withLock { $0.prefix(3) } == [.preLock, .preLock, .preLock])
        #expect(client.locks == [machine], "one lock, after the hooks passed")
        #expect(h.rebootCount == 1)
    }

    @Test func preLockHooksDoNotRunWhileNoSlotIsFree() {
        let full = try! SemaphoreDocument(parsing: #"{"semaphore":0,"max":1,"holders":["other"]}"#)
        let client = ScriptedClient(lockAnswers: [], seen: full)
        let h = Harness(client: { client }, hooks: [.preLock: []])
        h.run(for: 0.4)
        #expect(h.hookRuns.withLock { $0 }.isEmpty)
        #expect(client.locks.isEmpty)
    }

    @Test func pollingReadsTheSemaphoreBeforeThePreLockHooks() {
        let full = try! SemaphoreDocument(parsing: #"{"semaphore":0,"max":1,"holders":["other"]}"#)
        let client = ScriptedClient(lockAnswers: [], seen: full)
        let h = Harness(client: { client }, hooks: [.preLock: []], slotWait: "poll")
        h.run(for: 0.4)
        #expect(h.hookRuns.withLock { $0 }.isEmpty)
        #expect(client.locks.isEmpty)
        #expect(client.reads >= 2, "the semaphore is read again after each wait")
    }

    @Test func withoutEtcdAFailingPreLockHookHoldsTheReboot() {
        let h = Harness(strategy: "reboot", client: { ScriptedClient() }, hooks: [.preLock: [notNow]])
        h.run(for: 3) { h.rebootCount > 0 }
        #expect(h.hookRuns.withLock { $0 } == [.preLock, .preLock, .preReboot])
        #expect(h.rebootCount == 1)
    }

    @Test func aFailingPreRebootHookGivesTheSlotBack() {
        let client = ScriptedClient(lockAnswers: [nil, nil])
        let h = Harness(client: { client }, hooks: [.preReboot: [notNow]])
        h.run(for: 3) { h.rebootCount > 0 }
        #expect(client.unlocks == [machine])
        #expect(client.locks == [machine, machine])
        #expect(h.rebootCount == 1)
        #expect(h.recorded == ["record \(machine)", "record none", "record \(machine)"])
    }

    @Test func theSlotFromBeforeTheRebootWaitsForThePostRebootHooks() {
        let client = ScriptedClient()
        let h = Harness(client: { client }, hooks: [.postReboot: [notNow, notNow, notNow]])
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
        let client = ScriptedClient(lockAnswers: [nil])
        let h = Harness(client: { client })
        h.daemon.staleSlot = (client.key, machine)
        h.run(for: 3) { h.rebootCount > 0 }
        #expect(h.hookRuns.withLock { $0 } == [.preReboot])
        #expect(client.unlocks == [machine])
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
